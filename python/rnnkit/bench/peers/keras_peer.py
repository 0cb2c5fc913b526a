"""Keras (TensorFlow backend) peer: ``keras.layers.LSTM`` / ``GRU``.

Weights are converted from PyTorch's layout: ``kernel = W_ihᵀ`` (I, G·U),
``recurrent_kernel = W_hhᵀ`` (U, G·U); LSTM keeps the gate blocks [i|f|c|o] and sums the
two biases; GRU reorders r, z, n to [z|r|h] and keeps both biases as a (2, 3U) array
(``reset_after=True``). Stacked layers are chained in a functional model; bidirectional
layers use ``keras.layers.Bidirectional(merge_mode="concat")``.

Keras is batch-major, so the input is transposed to (B, T, I) once, outside the timed call.
Two inference variants are timed: a ``tf.function`` wrapping ``model(x, training=False)``
(traced once with a fixed input signature) and ``model.predict``. Training is a
``tf.function`` with a ``tf.GradientTape`` around ``sum(y * dy)``, returning the gradients
of x and every weight. Threads: ``tf.config.threading`` intra-op = inter-op = n, set before
TensorFlow runs anything.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")

from ..cases import Case, flat_weights  # noqa: E402
from . import Peer  # noqa: E402

INFER_VARIANTS = ("tf.function", "predict")


def keras_layer_weights(
    case: Case, weights: dict[str, np.ndarray], layer: int, d: int
) -> list[np.ndarray]:
    """``[kernel, recurrent_kernel, bias]`` of one Keras layer from PyTorch weights."""
    w_ih, w_hh, b_ih, b_hh = flat_weights(case, weights, layer, d)
    h = case.hidden_size
    if case.cell == "lstm":  # i, f, g, o == Keras i, f, c, o
        return [w_ih.T.copy(), w_hh.T.copy(), (b_ih + b_hh).astype(np.float32)]
    order = np.r_[h : 2 * h, 0:h, 2 * h : 3 * h]  # r, z, n -> z, r, h
    return [w_ih[order].T.copy(), w_hh[order].T.copy(), np.stack([b_ih[order], b_hh[order]])]


def torch_grads_from_keras(case: Case, grads: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Map Keras weight gradients (in ``trainable_variables`` order) to PyTorch keys.

    The inverse of :func:`keras_layer_weights`; the LSTM's single Keras bias receives the
    gradient of both PyTorch biases.
    """
    h = case.hidden_size
    inv = np.arange(case.gates * h)
    if case.cell == "gru":
        inv = np.argsort(np.r_[h : 2 * h, 0:h, 2 * h : 3 * h])
    out, it = {}, iter(grads)
    for layer in range(case.num_layers):
        for d in range(case.directions):
            sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
            kernel, recurrent, bias = next(it), next(it), next(it)
            out["grad.weight_ih" + sfx] = kernel.T[inv]
            out["grad.weight_hh" + sfx] = recurrent.T[inv]
            if case.cell == "lstm":
                out["grad.bias_ih" + sfx] = out["grad.bias_hh" + sfx] = bias
            else:
                out["grad.bias_ih" + sfx], out["grad.bias_hh" + sfx] = bias[0][inv], bias[1][inv]
    return out


def _make_rnn(case: Case, **kwargs: Any) -> keras.layers.Layer:
    if case.cell == "lstm":
        return keras.layers.LSTM(case.hidden_size, return_sequences=True, **kwargs)
    return keras.layers.GRU(case.hidden_size, return_sequences=True, reset_after=True, **kwargs)


def build_model(case: Case, weights: dict[str, np.ndarray], batch: int, steps: int) -> keras.Model:
    """Functional Keras model ``(B, T, I) -> (B, T, D·H)`` with ``weights`` set."""
    inp = keras.Input(shape=(steps, case.input_size), batch_size=batch)
    out = inp
    layers = []
    for _ in range(case.num_layers):
        rnn = _make_rnn(case)
        if case.bidirectional:
            rnn = keras.layers.Bidirectional(rnn, merge_mode="concat")
        out = rnn(out)
        layers.append(rnn)
    model = keras.Model(inp, out)
    for layer, rnn in enumerate(layers):
        values = []
        for d in range(case.directions):
            values += keras_layer_weights(case, weights, layer, d)
        rnn.set_weights(values)
    return model


class KerasPeer(Peer):
    """Keras 3 on TensorFlow, CPU."""

    key = "keras"
    label = "Keras"

    def __init__(self, threads: int) -> None:
        super().__init__(threads)
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already ran in this process: its pools are fixed
            pass
        self.weights: dict[str, np.ndarray] = {}
        self.models: dict[tuple[int, int], keras.Model] = {}
        self.steps: dict[tuple[int, int], Callable] = {}

    @staticmethod
    def versions() -> dict[str, str]:
        """Keras and TensorFlow versions."""
        return {"keras": keras.__version__, "tensorflow": tf.__version__}

    def config(self) -> str:
        """Thread settings and backend."""
        return (
            f"backend={keras.backend.backend()}, "
            f"intra_op={tf.config.threading.get_intra_op_parallelism_threads()}, "
            f"inter_op={tf.config.threading.get_inter_op_parallelism_threads()}, "
            f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')}"
        )

    def build(self, case: Case, weights: dict[str, np.ndarray]) -> None:
        """Remember the weights; models are built per input shape on first use."""
        self.case, self.weights, self.models, self.steps = case, weights, {}, {}
        keras.backend.clear_session()

    def _model(self, batch: int, steps: int) -> keras.Model:
        if (batch, steps) not in self.models:
            self.models[(batch, steps)] = build_model(self.case, self.weights, batch, steps)
        return self.models[(batch, steps)]

    def variants(self, mode: str) -> tuple[str, ...]:
        """``tf.function`` and ``predict`` for inference; ``tf.function`` otherwise."""
        return INFER_VARIANTS if mode == "inference" else ("tf.function",)

    @staticmethod
    def _bt(x: np.ndarray) -> tf.Tensor:
        return tf.constant(np.ascontiguousarray(x.transpose(1, 0, 2)))

    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """``y`` from ``model(x, training=False)``, back in (T, B, D·H)."""
        model = self._model(x.shape[1], x.shape[0])
        y = model(self._bt(x), training=False).numpy()
        return {"y": y.transpose(1, 0, 2)}

    def _train_step(self, x: np.ndarray, dy: np.ndarray) -> Callable:
        """Traced GradientTape step for this shape (built once, then reused)."""
        t, b = x.shape[:2]
        if (b, t) in self.steps:
            return self.steps[(b, t)]
        model = self._model(b, t)
        variables = model.trainable_variables
        spec_x = tf.TensorSpec((b, t, x.shape[2]), tf.float32)
        spec_dy = tf.TensorSpec((b, t, dy.shape[2]), tf.float32)

        @tf.function(input_signature=[spec_x, spec_dy])
        def step(x: tf.Tensor, dy: tf.Tensor) -> list[tf.Tensor]:
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = model(x, training=True)
                loss = tf.reduce_sum(y * dy)
            return [y, *tape.gradient(loss, [x, *variables])]

        self.steps[(b, t)] = step
        return step

    def gradients(self, x: np.ndarray, dy: np.ndarray) -> dict[str, np.ndarray]:
        """``y``, ``dx`` and the weight gradients mapped back to PyTorch layout."""
        y, dx, *grads = self._train_step(x, dy)(self._bt(x), self._bt(dy))
        out = torch_grads_from_keras(self.case, [g.numpy() for g in grads])
        return {"y": y.numpy().transpose(1, 0, 2), "dx": dx.numpy().transpose(1, 0, 2), **out}

    def infer_fn(self, x: np.ndarray, variant: str = "tf.function") -> Callable[[], Any]:
        """A traced ``tf.function`` call, or ``model.predict``."""
        batch = x.shape[1]
        model = self._model(batch, x.shape[0])
        xb = self._bt(x)
        if variant == "predict":
            xn = xb.numpy()
            return lambda: model.predict(xn, batch_size=batch, verbose=0)
        fn = tf.function(
            lambda v: model(v, training=False),
            input_signature=[tf.TensorSpec(xb.shape, tf.float32)],
        )
        return lambda: fn(xb)

    def train_fn(self, x: np.ndarray, dy: np.ndarray) -> Callable[[], Any]:
        """The traced GradientTape step."""
        step = self._train_step(x, dy)
        xb, dyb = self._bt(x), self._bt(dy)
        return lambda: step(xb, dyb)

    def stream_fn(self, x: np.ndarray) -> Callable[[], list[np.ndarray]]:
        """One traced call per step with ``initial_state``; the state stays a tf.Tensor."""
        case = self.case
        if case.num_layers != 1 or case.bidirectional:
            raise NotImplementedError("streaming is benchmarked for one unidirectional layer")
        h = case.hidden_size
        rnn = _make_rnn(case, return_state=True)
        rnn.build((1, 1, case.input_size))
        rnn.set_weights(keras_layer_weights(case, self.weights, 0, 0))
        n_state = 2 if case.cell == "lstm" else 1
        spec_s = tf.TensorSpec((1, h), tf.float32)

        @tf.function(
            input_signature=[tf.TensorSpec((1, 1, case.input_size), tf.float32)]
            + [spec_s] * n_state
        )
        def step(xt: tf.Tensor, *state: tf.Tensor) -> list[tf.Tensor]:
            return rnn(xt, initial_state=list(state))

        steps = [np.ascontiguousarray(x[t : t + 1]) for t in range(x.shape[0])]

        def call() -> list[np.ndarray]:
            out = []
            state = [tf.zeros((1, h))] * n_state
            for xt in steps:  # (1, 1, I): time-major and batch-major agree at T = B = 1
                y, *state = step(xt, *state)
                out.append(y.numpy())
            return out

        return call
