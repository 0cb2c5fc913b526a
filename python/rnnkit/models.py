"""Keras-shaped models: :class:`Sequential` (build, compile, fit, evaluate, predict, summary,
save) and :func:`load_model`.

A model is a stack of layers applied in order to batch-first arrays. ``fit`` runs
mini-batch training entirely in numpy and the C++ core: per batch one forward through the
layers, the loss and its gradient, one backward, and an in-place optimizer step.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import callbacks as callbacks_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from ._checks import check_float
from ._namespace import missing_attribute
from ._training import saving
from ._training.base import (
    Layer,
    Shape,
    expected_shape_text,
    format_shape,
    unique_name,
)
from ._training.batches import BatchSource, source_kind
from ._training.core_layers import Dense, InputLayer
from ._training.progbar import ASCII_BOX, Progbar, safe_write, supports_unicode
from ._training.random import get_rng
from ._training.streaming import ModelStream

Array = np.ndarray


class NonFiniteLossWarning(RuntimeWarning):
    """``fit`` met a NaN/inf loss or gradient and stopped, keeping the previous weights."""


def _verbosity(verbose: Any, owner: str) -> int:
    if verbose == "auto":
        return 1
    if verbose in (0, 1, 2) and not isinstance(verbose, bool):
        return int(verbose)
    if isinstance(verbose, bool):
        return int(verbose)
    raise ValueError(f"[{owner}] verbose must be 'auto', 0, 1 or 2; got {verbose!r}")


def _positive_int(value: Any, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"[{owner}] {name} must be a positive int; got {value!r}")
    return int(value)


def _check_finite(arr: Array, owner: str, argument: str) -> None:
    """Refuse NaN/inf in training data up front: bad input, not a training problem."""
    if arr.dtype.kind not in "fc" or np.isfinite(arr).all():
        return
    index = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
    count = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    where = index[0] if len(index) == 1 else index
    raise ValueError(
        f"[{owner}] {argument} holds {arr[index]} at index {where} ({count} non-finite "
        f"value{'s' if count > 1 else ''} in all): NaN and inf are not valid training data. "
        "Drop or impute those samples (e.g. np.nan_to_num, or a mask) before fit; "
        "nothing was trained"
    )


def _step_mask(mask: Array | None, out: Array) -> Array | None:
    """The mask of a sequence output's steps ((N, T) for an output (N, T, ...)), or None."""
    if mask is None or out.ndim < 3 or mask.shape != out.shape[:2] or mask.all():
        return None
    return mask


def _masked_weights(w: Array | None, mask: Array | None, out: Array) -> Array | None:
    """Sample weights with a sequence output's time-step mask folded in, as Keras 3 does:
    the mask scaled by steps / valid steps (so the loss is the mean over the valid steps),
    times the sample weights."""
    mask = _step_mask(mask, out)
    if mask is None:
        return w
    scaled = mask * (mask.size / (float(mask.sum()) + 1e-7))
    if w is None:
        return scaled
    return (w[:, None] if w.ndim == 1 else w) * scaled


def _batch_result(logs: dict[str, float], return_dict: bool) -> Any:
    """train_on_batch/test_on_batch's result: the logs, or their values (one: a float)."""
    if return_dict:
        return dict(logs)
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def _class_ids(y: Array, sparse: bool) -> Array:
    """Each target's class, for class_weight: the ids themselves (sparse losses), the argmax
    of one-hot rows, or the rounded value of a single output (binary), as Keras."""
    if sparse:
        return y.astype(np.int64)
    if y.shape[-1] > 1:
        return np.argmax(y, axis=-1)
    return np.round(y[..., 0]).astype(np.int64)


class Model:
    """A model: layers wired from inputs to outputs, with Keras's training loop
    (``compile``/``fit``/``evaluate``/``predict``/``train_on_batch``), weights, saving and
    summaries.

    ``Model(inputs, outputs)`` is the functional API (Keras 3's): ``inputs`` are tensors from
    :func:`rnnkit.layers.Input`, ``outputs`` what layers called on them return (one tensor or
    a list; a list or a single tensor for inputs). :class:`Sequential` is the same model for a
    stack of layers.

    Examples
    --------
    >>> from rnnkit import Model, layers
    >>> inp = layers.Input(shape=(None, 8))
    >>> seq, h, c = layers.LSTM(32, return_sequences=True, return_state=True)(inp)
    >>> out = layers.Dense(1)(h)
    >>> model = Model(inputs=inp, outputs=out)
    >>> model.compile(optimizer="adam", loss="mse")
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is Model:
            if not args and "inputs" not in kwargs:
                raise TypeError(
                    "[Model] give inputs= and outputs= (the functional API: "
                    "Model(inputs=Input(...), outputs=layer(...)(...))); subclassing Model with "
                    "a call() method is not supported: write the model as a graph of layers"
                )
            return object.__new__(Functional)
        return object.__new__(cls)

    def _init_training(self, name: str, trainable: bool) -> None:
        self.name = name
        self.trainable = bool(trainable)
        self.optimizer: optimizers_module.Optimizer | None = None
        self.loss: Any = None  # the Loss (one output) or list of them
        self._losses: list[losses_module.Loss | None] = []
        self._loss_weights: list[float] | None = None
        self._metric_ids: list[list[Any]] = []
        self._weighted_metric_ids: list[list[Any]] = []
        self.compiled = False
        self.stop_training = False
        self.history: callbacks_module.History | None = None
        self.quantization_mode: str | None = None  # set by quantize()

    # --------------------------------------------- structure (defined by subclasses)
    @property
    def _owner(self) -> str:
        return type(self).__name__ if isinstance(self, Sequential) else "Model"

    def _weight_layers(self) -> list[Layer]:
        """The layers that hold weights and run in training, each once, in model order."""
        raise NotImplementedError

    def _all_layers(self) -> list[Layer]:
        """Every layer, InputLayers included (for _undo_build_on_error)."""
        return self._weight_layers()

    def _output_shapes(self) -> list[Shape]:
        raise NotImplementedError

    def _output_names(self) -> list[str]:
        """The names of the outputs in logs: the layers that produce them."""
        raise NotImplementedError

    def _output_dtype(self, k: int) -> np.dtype:
        raise NotImplementedError

    def _prepare_inputs(self, x: Any, owner: str, argument: str = "x") -> list[Array]:
        raise NotImplementedError

    def _forward_list(self, xs: list[Array], training: bool) -> list[Array]:
        raise NotImplementedError

    def _fused_outputs(self) -> list[Dense | None]:
        """Per output, the Dense whose activation fuses into its loss (softmax/sigmoid with
        cross-entropy), or None."""
        raise NotImplementedError

    def _backward_list(self, grads: list[Array], fused: list[Dense | None]) -> None:
        raise NotImplementedError

    @property
    def _n_outputs(self) -> int:
        return len(self._output_shapes())

    @staticmethod
    def _fusable(layer: Any, loss: Any) -> bool:
        return (
            isinstance(layer, Dense)
            and loss is not None
            and loss.supports_logits
            and not getattr(loss, "from_logits", True)
            and layer.activation == loss.fused_activation
        )

    # ------------------------------------------------------------------- weights
    def get_weights(self) -> list[Array]:
        """All layers' weights (Keras layout), in layer order; copies."""
        return [w for layer in self._weight_layers() for w in layer.get_weights()]

    def set_weights(self, weights: list[Any]) -> None:
        """Set all layers' weights from ``get_weights()``-ordered arrays (shapes checked)."""
        weights = list(weights)
        layers = self._weight_layers()
        counts = [len(layer.weight_shapes()) for layer in layers]
        if sum(counts) != len(weights):
            raise ValueError(
                f"[{self.name}] set_weights got {len(weights)} arrays; the model has {sum(counts)}"
            )
        shapes = [s for layer in layers for s in layer.weight_shapes()]
        for k, (w, s) in enumerate(zip(weights, shapes)):
            if np.shape(w) != s:
                raise ValueError(
                    f"[{self.name}] set_weights: array {k} has shape "
                    f"{format_shape(np.shape(w))}; expected {format_shape(s)}"
                )
        start = 0
        for layer, n in zip(layers, counts):
            layer.set_weights(weights[start : start + n])
            start += n

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self._weight_layers())

    def reset_states(self) -> None:
        """Clear the kept states of ``stateful`` recurrent layers."""
        for layer in self._weight_layers():
            reset = getattr(layer, "reset_states", None)
            if reset is not None:
                reset()

    # ------------------------------------------------------------------- compile
    def _per_output(self, value: Any, what: str, owner: str) -> list[Any]:
        """compile's loss/metrics/loss_weights: one entry per output, from a list (in output
        order) or a dict keyed by output name; a single value for a one-output model."""
        names = self._output_names()
        n = len(names)
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(names))
            if unknown:
                raise ValueError(
                    f"[{owner}] {what} names {', '.join(map(repr, unknown))}, not an output; "
                    f"the outputs are {', '.join(map(repr, names))}"
                )
            return [value.get(name) for name in names]
        if isinstance(value, (list, tuple)) and what != "metrics":
            if len(value) != n:
                raise ValueError(
                    f"[{owner}] {what} has {len(value)} entries; the model has {n} output"
                    f"{'s' if n > 1 else ''} ({', '.join(map(repr, names))})"
                )
            return list(value)
        if n > 1 and what == "loss":
            return [value] * n  # as Keras: one loss for every output
        if n > 1 and what == "loss_weights":
            raise ValueError(f"[{owner}] loss_weights must be a list or dict, one per output")
        return [value] if n == 1 or what != "metrics" else [value] * n

    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Any = None,
        loss_weights: Any = None,
        weighted_metrics: Any = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: Any = "auto",
        auto_scale_loss: bool = True,
    ) -> None:
        """Set the optimizer, the loss and the metrics (names or objects, Keras-style).

        A model with several outputs takes a loss per output (a list in output order or a
        dict keyed by output layer name; one loss applies to every output), ``loss_weights``
        the same way (the trained loss is their weighted sum), and metrics as a list of lists
        or a dict. ``weighted_metrics`` (the same shapes) are metrics weighted by the samples'
        ``sample_weight`` (and ``class_weight``, and a sequence output's mask); plain
        ``metrics`` are not, as Keras 3. A weighted metric is logged under its name, or
        ``weighted_<name>`` where a plain metric has that name. ``run_eagerly``,
        ``steps_per_execution``, ``jit_compile`` and ``auto_scale_loss`` are accepted and
        ignored (rnnkit always runs the same core).
        """
        owner = f"{self._owner}.compile"
        n = self._n_outputs
        if isinstance(loss, (list, tuple, dict)):
            loss_list = self._per_output(loss, "loss", owner)
        else:
            loss_list = [loss] * n
        losses = [None if v is None else losses_module.get(v) for v in loss_list]
        weights = None
        if loss_weights is not None:
            raw = self._per_output(loss_weights, "loss_weights", owner)
            weights = [
                1.0 if v is None else check_float(owner, "loss_weights", v, 0.0, math.inf)
                for v in raw
            ]
        per_out = self._metric_groups(metrics, "metrics", owner)
        weighted = self._metric_groups(weighted_metrics, "weighted_metrics", owner)
        self.optimizer = optimizers_module.get(optimizer)
        self._losses = losses
        self.loss = losses[0] if n == 1 else list(losses)
        self._loss_weights = weights
        self._metric_ids = per_out
        self._weighted_metric_ids = weighted
        self.compiled = True

    def _metric_groups(self, metrics: Any, what: str, owner: str) -> list[list[Any]]:
        """compile's ``metrics`` (or ``weighted_metrics``) as one list per output, each entry
        checked: a name, a Metric, or a function (wrapped in MeanMetricWrapper)."""
        n = self._n_outputs
        if metrics is None:
            metrics = []
        elif isinstance(metrics, (str, metrics_module.Metric)) or (
            callable(metrics) and not isinstance(metrics, type)
        ):
            metrics = [metrics]
        if isinstance(metrics, dict):
            per_out = [[] if v is None else v for v in self._per_output(metrics, "metrics", owner)]
            per_out = [[v] if not isinstance(v, (list, tuple)) else list(v) for v in per_out]
        elif n > 1 and any(isinstance(m, (list, tuple)) for m in metrics):
            if len(metrics) != n:
                raise ValueError(
                    f"[{owner}] {what} as a list of lists needs one list per output ({n})"
                )
            per_out = [
                [] if m is None else (list(m) if isinstance(m, (list, tuple)) else [m])
                for m in metrics
            ]
        else:
            per_out = [list(metrics) for _ in range(n)]  # the caller's list stays as it was
        for group in per_out:
            for i, m in enumerate(group):  # validate names now
                if isinstance(m, str) and m.lower() not in ("accuracy", "acc"):
                    metrics_module.get(m)
                elif callable(m) and not isinstance(m, (type, metrics_module.Metric)):
                    group[i] = metrics_module.MeanMetricWrapper(m)
                elif not isinstance(m, (str, metrics_module.Metric)):
                    raise TypeError(
                        f"[{owner}] {what} must be names, Metric objects or functions "
                        f"fn(y_true, y_pred); got {type(m).__name__}"
                    )
        return per_out

    def _require_compiled(self, what: str) -> None:
        if not self.compiled or self.optimizer is None:
            raise RuntimeError(
                f"[{self._owner}.{what}] the model must be compiled first: call "
                "model.compile(optimizer=..., loss=...) before fit/evaluate"
            )
        missing = [name for name, loss in zip(self._output_names(), self._losses) if loss is None]
        if missing:
            if self._n_outputs == 1:
                raise ValueError(f"[{self._owner}.{what}] no loss: pass loss= to compile()")
            raise ValueError(
                f"[{self._owner}.{what}] no loss for output(s) {', '.join(map(repr, missing))}: "
                "give compile() a loss for every output"
            )

    # ----------------------------------------------------------- data validation
    @contextlib.contextmanager
    def _undo_build_on_error(self) -> Any:
        """Around a call's validation: if the model is unbuilt and the call is rejected after
        building it from the data's shape, put it back unbuilt (with the random generator's
        state), so that a rejected call changes nothing."""
        if self.built:
            yield
            return
        layers: list[Any] = []
        todo: list[Any] = list(self._all_layers())
        while todo:
            lay = todo.pop()
            if isinstance(lay, Layer) and all(lay is not seen for seen in layers):
                layers.append(lay)
                todo.extend(v for v in vars(lay).values() if isinstance(v, Layer))
        saved = [(obj, dict(vars(obj))) for obj in (self, *layers)]
        rng = get_rng()
        rng_state = rng.bit_generator.state
        try:
            yield
        except BaseException:
            for obj, attrs in saved:
                vars(obj).clear()
                vars(obj).update(attrs)
            rng.bit_generator.state = rng_state
            raise

    @staticmethod
    def _n_samples(xs: list[Array], owner: str, argument: str = "x") -> int:
        n = xs[0].shape[0]
        for i, a in enumerate(xs[1:], 1):
            if a.shape[0] != n:
                raise ValueError(
                    f"[{owner}] {argument}[0] has {n} samples but {argument}[{i}] has "
                    f"{a.shape[0]}: every input needs the same number of samples"
                )
        return n

    def _check_all_finite(self, arrays: list[Array], owner: str, argument: str) -> None:
        for i, a in enumerate(arrays):
            _check_finite(a, owner, argument if len(arrays) == 1 else f"{argument}[{i}]")

    def _prepare_targets(self, y: Any, n: int, owner: str, argument: str = "y") -> list[Array]:
        """``y`` as one checked array per output (a list in output order or a dict keyed by
        output name for several outputs)."""
        count = self._n_outputs
        if count == 1:
            if isinstance(y, (list, tuple)) and len(y) == 1 and isinstance(y[0], np.ndarray):
                y = y[0]
            return [self._prepare_y(y, n, owner, argument, 0)]
        names = self._output_names()
        if isinstance(y, dict):
            missing = [name for name in names if name not in y]
            if missing:
                raise ValueError(
                    f"[{owner}] {argument} has no targets for output(s) "
                    f"{', '.join(map(repr, missing))}"
                )
            items = [y[name] for name in names]
        elif isinstance(y, (list, tuple)) and len(y) == count:
            items = list(y)
        else:
            raise ValueError(
                f"[{owner}] the model has {count} outputs ({', '.join(map(repr, names))}); "
                f"{argument} must be a list of {count} arrays or a dict keyed by output name"
            )
        return [self._prepare_y(v, n, owner, f"{argument}[{k}]", k) for k, v in enumerate(items)]

    def _prepare_y(self, y: Any, n: int, owner: str, argument: str, k: int) -> Array:
        """The targets of output ``k``, checked against its loss and shape."""
        loss = self._losses[k]
        assert loss is not None
        if y is None:
            raise ValueError(f"[{owner}] {argument} is required for training and evaluation")
        arr = np.asarray(y)
        if arr.ndim == 0:
            raise ValueError(f"[{owner}] {argument} must have a batch axis; got a scalar")
        if arr.shape[0] != n:
            raise ValueError(f"[{owner}] x has {n} samples but {argument} has {arr.shape[0]}")
        out_shape = self._output_shapes()[k]
        if loss.sparse_labels:
            if arr.dtype.kind not in "fiub":
                raise TypeError(f"[{owner}] {argument} must hold integer class ids")
            if arr.ndim == len(out_shape) and arr.shape[-1] == 1:
                arr = arr[..., 0]
            if arr.ndim != len(out_shape) - 1:
                raise ValueError(
                    f"[{owner}] {argument} has shape {format_shape(arr.shape)}; "
                    f"{loss.name} expects class ids of shape "
                    f"{expected_shape_text(out_shape[:-1])}"
                )
            if arr.dtype.kind == "f":
                if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                    raise ValueError(f"[{owner}] {argument} must hold integer class ids")
            labels = arr.astype(np.int64)
            losses_module.check_class_ids(labels, out_shape[-1], owner)
            return np.ascontiguousarray(labels)
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"[{owner}] {argument} must be numeric; got dtype {arr.dtype}")
        if arr.ndim == len(out_shape) - 1 and out_shape[-1] == 1:
            arr = arr[..., None]
        ok = arr.ndim == len(out_shape) and all(
            o is None or o == s for o, s in zip(out_shape[1:], arr.shape[1:])
        )
        if not ok:
            raise ValueError(
                f"[{owner}] {argument} has shape {format_shape(arr.shape)}; the "
                f"model outputs {expected_shape_text(out_shape)}"
            )
        return np.ascontiguousarray(arr, dtype=self._output_dtype(k))

    def _prepare_weights(
        self, sample_weight: Any, class_weight: Any, ys: list[Array], owner: str, prefix: str = ""
    ) -> list[Array | None] | None:
        """The loss weights of ``fit``/``evaluate``/``train_on_batch`` per output (float64,
        ``(N,)`` or ``(N, T)`` for sequence outputs), or None. For several outputs,
        ``sample_weight`` is one array for all of them, or a list or dict of one per output."""
        if sample_weight is None and class_weight is None:
            return None
        if len(ys) == 1:
            return [self._prepare_weight_one(sample_weight, class_weight, ys[0], owner, prefix, 0)]
        if class_weight is not None:
            raise ValueError(
                f"[{owner}] class_weight is for models with one output (as Keras); give "
                "sample_weight per output instead"
            )
        names = self._output_names()
        if isinstance(sample_weight, dict):
            items = [sample_weight.get(name) for name in names]
        elif isinstance(sample_weight, (list, tuple)) and not isinstance(
            sample_weight[0] if sample_weight else None, (int, float, np.number)
        ):
            if len(sample_weight) != len(ys):
                raise ValueError(
                    f"[{owner}] {prefix}sample_weight has {len(sample_weight)} entries; the "
                    f"model has {len(ys)} outputs"
                )
            items = list(sample_weight)
        else:
            items = [sample_weight] * len(ys)
        return [
            None if v is None else self._prepare_weight_one(v, None, y, owner, prefix, k)
            for k, (v, y) in enumerate(zip(items, ys))
        ]

    def _prepare_weight_one(
        self, sample_weight: Any, class_weight: Any, y: Array, owner: str, prefix: str, k: int
    ) -> Array | None:
        """The loss weights of output ``k`` (see ``_prepare_weights``)."""
        if sample_weight is None and class_weight is None:
            return None
        if sample_weight is not None and class_weight is not None:
            raise ValueError(
                f"[{owner}] give sample_weight or class_weight, not both (as Keras); fold the "
                "class weights into sample_weight"
            )
        out_shape = self._output_shapes()[k]
        out_ndim = len(out_shape)
        n = y.shape[0]
        if class_weight is not None:
            if not isinstance(class_weight, dict) or not class_weight:
                raise TypeError(
                    f"[{owner}] class_weight must be a non-empty dict {{class id: weight}}; "
                    f"got {class_weight!r}"
                )
            if out_ndim > 2:
                raise ValueError(
                    f"[{owner}] class_weight is for outputs (N, C); the model outputs "
                    f"{format_shape(out_shape)}: use sample_weight (N, T) instead"
                )
            table: dict[int, float] = {}
            for cid, v in class_weight.items():
                if isinstance(cid, bool) or not isinstance(cid, (int, np.integer)) or cid < 0:
                    raise ValueError(
                        f"[{owner}] class_weight keys must be class ids >= 0; got {cid!r}"
                    )
                table[int(cid)] = check_float(owner, f"class_weight[{cid}]", v, 0.0, math.inf)
            ids = _class_ids(y, bool(getattr(self._losses[k], "sparse_labels", False)))
            return np.array([table.get(int(c), 1.0) for c in ids.reshape(-1)]).reshape(ids.shape)
        name = prefix + "sample_weight"
        w = np.asarray(sample_weight)
        if w.dtype.kind not in "fiub":
            raise TypeError(f"[{owner}] {name} must be numeric; got dtype {w.dtype}")
        w = w.astype(np.float64)
        if w.ndim == 2 and w.shape[1] == 1 and out_ndim == 2:
            w = w[:, 0]
        expected = (n, *out_shape[1:-1])
        if not 1 <= w.ndim <= len(expected) or w.shape != expected[: w.ndim]:
            shapes = " or ".join(format_shape(expected[:k]) for k in range(1, len(expected) + 1))
            raise ValueError(
                f"[{owner}] {name} has shape {format_shape(w.shape)}; expected {shapes} (one "
                f"weight per sample{', or per sample and step' if len(expected) > 1 else ''})"
            )
        _check_finite(w, owner, name)
        return w

    @staticmethod
    def _source_steps(kind: str | None, steps: Any, owner: str) -> int | None:
        """evaluate's/predict's steps: batches of a generator or PyDataset to take."""
        if steps is None:
            return None
        if kind is None:
            raise ValueError(
                f"[{owner}] steps is for a generator or PyDataset x; arrays run "
                "ceil(N / batch_size) steps"
            )
        return _positive_int(steps, "steps", owner)

    @staticmethod
    def _array_batches(
        xs: list[Array],
        ys: list[Array],
        ws: list[Array | None] | None,
        batch_size: int,
        order: Array | None,
    ) -> Iterator[tuple[list[Array], list[Array], list[Array | None] | None]]:
        """fit's batches of arrays, in order or in ``order``."""
        n = xs[0].shape[0]
        for lo in range(0, n, batch_size):
            hi = min(lo + batch_size, n)
            if order is None:
                wb = None if ws is None else [None if w is None else w[lo:hi] for w in ws]
                yield [x[lo:hi] for x in xs], [y[lo:hi] for y in ys], wb
            else:
                idx = order[lo:hi]
                wb = (
                    None if ws is None else [None if w is None else w.take(idx, axis=0) for w in ws]
                )
                yield [x.take(idx, axis=0) for x in xs], [y.take(idx, axis=0) for y in ys], wb

    def _prepare_batch(
        self, source: BatchSource, item: Any, step: int, class_weight: Any, need_y: bool
    ) -> tuple[list[Array], Any, list[Array | None] | None]:
        """A batch of a generator/PyDataset, checked and converted as fit's arrays."""
        owner, where = source.owner, f"{source.argument} batch {step}"
        xb, yb, wb = source.unpack(item, step, need_y)
        xs = self._prepare_inputs(xb, owner, f"{where}: x")
        self._check_all_finite(xs, owner, f"{where}: x")
        if not need_y:
            return xs, None, None
        if yb is None:
            raise ValueError(f"[{owner}] {where} has no targets (y is None)")
        ys = self._prepare_targets(yb, self._n_samples(xs, owner), owner, f"{where}: y")
        self._check_all_finite(ys, owner, f"{where}: y")
        w = self._prepare_weights(wb, class_weight, ys, owner, prefix=f"{where}: ")
        return xs, ys, w

    def _evaluate_source(self, source: BatchSource, bar: Progbar | None) -> dict[str, float]:
        """evaluate over a generator's or PyDataset's batches."""
        batches = (
            self._prepare_batch(source, item, i, None, True)
            for i, item in enumerate(source.epoch())
        )
        return self._evaluate_batches(batches, bar, None)

    # ---------------------------------------------------------------- internals
    def _loss_value(
        self,
        ys: list[Array],
        outs: list[Array],
        fused: list[Dense | None],
        need_grad: bool,
        ws: list[Array | None] | None = None,
    ) -> tuple[float, list[Array | None], list[float]]:
        """The total loss (weighted sum over outputs plus the layers' penalties), the
        gradient for each output (the logits' for fused outputs) and each output's loss."""
        total = 0.0
        grads: list[Array | None] = []
        parts: list[float] = []
        masks = getattr(self, "_last_masks", None) or [None] * len(outs)
        for k, (y, out, dense) in enumerate(zip(ys, outs, fused)):
            loss = self._losses[k]
            assert loss is not None
            w = None if ws is None else ws[k]
            w = _masked_weights(w, masks[k], out)
            if dense is not None:
                z = dense.last_logits.reshape(out.shape)
                value, grad = loss.value_and_grad_from_logits(y, z, need_grad, sample_weight=w)
            else:
                value, grad = loss.value_and_grad(y, out, need_grad, sample_weight=w)
            parts.append(float(value))
            scale = 1.0 if self._loss_weights is None else self._loss_weights[k]
            if scale != 1.0:
                value = value * scale
                if grad is not None:
                    grad = grad * grad.dtype.type(scale)
            total += value
            grads.append(grad)
        # Keras 3 reports the loss plus the layers' penalties (regularizers).
        total += sum(layer._penalty() for layer in self._weight_layers())
        return total, grads, parts

    def _refuse_if_quantized(self, what: str) -> None:
        if self.quantization_mode is not None:
            raise RuntimeError(
                f"[{self._owner}.{what}] the model was quantized to {self.quantization_mode} "
                f"(model.quantize('{self.quantization_mode}')): inference only. Train a float32 "
                "model and quantize it afterwards"
            )

    def quantize(self, mode: str) -> None:
        """Convert the trained weights for fast inference, in place (Keras 3's name).

        ``"bfloat16"``: every recurrent layer's weights are rounded to bfloat16 and its core
        module switches to bfloat16 kernels (``rnnkit.LSTM.bfloat16()``: VDPBF16PS or AMX tiles
        where the CPU has them; states, sums and gates stay float32), and every Dense layer's
        kernel and bias are rounded to bfloat16 (kept as float32 arrays). The model becomes
        inference-only: ``fit`` and ``train_on_batch`` raise, ``predict``/``evaluate`` run.
        ``save`` records the mode and ``load_model`` restores it. Keras 3 has no bfloat16
        quantize mode (it uses a dtype policy for that), so a quantized model saved as a Keras
        file holds the rounded values in float32. The model must be built and float32.
        """
        from ._training.base import check_quantization_mode

        owner = f"{self._owner}.quantize"
        mode = check_quantization_mode(owner, mode)
        if not self.built:
            raise RuntimeError(
                f"[{owner}] the model is not built; call it on data, build it or "
                "give the first layer input_shape first"
            )
        layers = self._weight_layers()
        wrong = [lay.name for lay in layers if lay.dtype != np.float32]
        if wrong:
            raise TypeError(
                f"[{owner}] quantize('{mode}') needs float32 layers; "
                f"{', '.join(repr(n) for n in wrong)} are not"
            )
        for layer in layers:
            layer.quantize(mode)
        self.quantization_mode = mode

    def _training_setup(self) -> None:
        layers = self._weight_layers()
        self._train_layers = [lay for lay in layers if lay.trainable and lay.parameters()]
        self._params = [p for lay in self._train_layers for p in lay.parameters()]

    def _make_metrics(self, ys: list[Array]) -> list[list[metrics_module.Metric]]:
        """Fresh metric objects, per output the plain ones then the weighted ones (which
        carry ``_weighted = True``)."""
        weighted_ids = self._weighted_metric_ids
        result = []
        for k, (y, shape) in enumerate(zip(ys, self._output_shapes())):
            group = []
            plain = self._metric_ids[k] if k < len(self._metric_ids) else []
            weighted = weighted_ids[k] if k < len(weighted_ids) else []
            for i, m in enumerate([*plain, *weighted]):
                if isinstance(m, metrics_module.Metric):
                    m = copy.copy(m)  # training and validation each keep their own totals
                    m.reset_state()
                else:
                    m = metrics_module.get(m, y.shape, (y.shape[0], *shape[1:]))
                m._weighted = i >= len(plain)
                group.append(m)
            result.append(group)
        return result

    def _log_names(self, metrics: list[list[metrics_module.Metric]]) -> list[str]:
        """Keys of the metric logs: the metric's name, prefixed with the output's name when
        the model has several outputs (Keras 3: ``dense_1_accuracy``); a weighted metric
        whose name a plain one has takes ``weighted_<name>``, as Keras 3."""
        names = self._output_names()
        prefix = [f"{names[k]}_" if len(metrics) > 1 else "" for k in range(len(metrics))]
        used = {prefix[k] + m.name for k, g in enumerate(metrics) for m in g if not m._weighted}
        out = []
        for k, group in enumerate(metrics):
            for m in group:
                name = prefix[k] + m.name
                out.append(
                    f"{prefix[k]}weighted_{m.name}" if m._weighted and name in used else name
                )
        return out

    def _logs(
        self,
        loss: metrics_module.Mean,
        parts: list[metrics_module.Mean],
        metrics: list[list[metrics_module.Metric]],
    ) -> dict[str, float]:
        logs = {"loss": loss.result()}
        if len(parts) > 1:
            for name, tracker in zip(self._output_names(), parts):
                logs[f"{name}_loss"] = tracker.result()
        for key, m in zip(self._log_names(metrics), (m for g in metrics for m in g)):
            logs[key] = m.result()
        return logs

    def _update_metrics(
        self,
        metrics: list[list[metrics_module.Metric]],
        ys: list[Array],
        outs: list[Array],
        ws: list[Array | None] | None = None,
    ) -> None:
        """Add a batch to the metrics: only the valid steps of a masked sequence output;
        the weighted metrics with the batch's sample weights (``ws``, one per output)."""
        masks = getattr(self, "_last_masks", None) or [None] * len(outs)
        for k, (group, y, out, mask) in enumerate(zip(metrics, ys, outs, masks)):
            w = None if ws is None else ws[k]
            if _step_mask(mask, out) is not None:  # only the steps that are not padding
                y, out = y[mask], out[mask]
                if w is not None:
                    w = np.broadcast_to(w[:, None] if w.ndim == 1 else w, mask.shape)[mask]
            for m in group:
                m.update_state(y, out, w if m._weighted else None)

    def _train_step(
        self,
        xs: list[Array],
        ys: list[Array],
        fused: list[Dense | None],
        ws: list[Array | None] | None = None,
    ) -> tuple[float, list[Array], list[float], str | None]:
        """One optimizer step (ws: the batch's sample weights). Returns (loss, outputs,
        per-output losses, problem); on a problem (non-finite loss or gradient) the weights
        are left untouched."""
        outs = self._forward_list(xs, True)
        loss_value, grads, parts = self._loss_value(ys, outs, fused, True, ws)
        if not math.isfinite(loss_value):
            return loss_value, outs, parts, "loss"
        for layer in self._train_layers:
            layer.zero_grad()
        self._backward_list(grads, fused)  # type: ignore[arg-type]
        for layer in self._train_layers:  # the regularizers' gradients
            layer._add_penalty_gradients()
        grad_arrays = [g for lay in self._train_layers for g in lay.gradients()]
        sq = 0.0
        for g in grad_arrays:
            sq += float(np.vdot(g, g))
        if not math.isfinite(sq):
            return loss_value, outs, parts, "gradient"
        assert self.optimizer is not None
        self.optimizer.apply(grad_arrays, self._params)
        for layer in self._train_layers:  # constraints project after the step
            layer._apply_constraints()
        return loss_value, outs, parts, None

    # ----------------------------------------------------------------------- fit
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = "auto",
        callbacks: list[callbacks_module.Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: Any = True,
        class_weight: Any = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: Any = None,
        validation_steps: Any = None,
        validation_batch_size: int | None = None,
        validation_freq: int = 1,
    ) -> callbacks_module.History:
        """Train for ``epochs`` passes over ``(x, y)`` in mini-batches of ``batch_size``.

        Parameters
        ----------
        x : array (N, ...)
            Inputs, e.g. (N, T, I) for a recurrent first layer; cast to the model's dtype
            (float32 unless the layers were made with ``dtype="float64"``), as Keras does.
        y : array (N, ...)
            Targets matching the output (N, U), or (N,) when U == 1; integer class ids
            (N,) for ``sparse_categorical_crossentropy``.
        batch_size : int, default 32
        epochs : int
        verbose : "auto", 0, 1 or 2
            1/"auto": a progress bar per epoch; 2: one line per epoch; 0: silent.
        callbacks : list of Callback
        validation_split : float in [0, 1)
            Fraction of the data, taken from the end before shuffling, held out.
        validation_data : (x_val, y_val)
        shuffle : bool
            Reshuffle the training samples every epoch (rnnkit's seeded generator).
        initial_epoch : int
            Epoch to start at (for resuming).

        Returns
        -------
        History
            ``history.history`` maps "loss", the metric names and their ``val_`` forms to
            one value per epoch (sample-weighted means over the epoch's batches).

        NaN or inf in ``x``, ``y`` or ``validation_data`` raises ValueError naming the array
        and the first bad index, before anything is trained. A NaN/inf loss or gradient
        during training (divergence) stops training with a :class:`NonFiniteLossWarning`
        that names the epoch and batch; the weights stay those from before that batch, and
        the returned History holds the epochs completed before it (as after a callback set
        ``model.stop_training``).
        """
        owner = f"{self._owner}.fit"
        self._refuse_if_quantized("fit")
        self._require_compiled("fit")
        kind = source_kind(x)
        val_kind = source_kind(validation_data)
        if steps_per_epoch is not None:
            if kind is None:
                raise ValueError(
                    f"[{owner}] steps_per_epoch is for a generator or PyDataset x; arrays run "
                    "ceil(N / batch_size) steps"
                )
            steps_per_epoch = _positive_int(steps_per_epoch, "steps_per_epoch", owner)
        if validation_steps is not None:
            if val_kind is None:
                raise ValueError(
                    f"[{owner}] validation_steps is for a generator or PyDataset validation_data"
                )
            validation_steps = _positive_int(validation_steps, "validation_steps", owner)
        batch_size = 32 if batch_size is None else _positive_int(batch_size, "batch_size", owner)
        val_batch = (
            batch_size
            if validation_batch_size is None
            else _positive_int(validation_batch_size, "validation_batch_size", owner)
        )
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"[{owner}] epochs must be an int >= 0; got {epochs!r}")
        validation_freq = _positive_int(validation_freq, "validation_freq", owner)
        verbose = _verbosity(verbose, owner)
        validation_split = check_float(owner, "validation_split", validation_split, 0.0, 1.0)
        if (
            isinstance(initial_epoch, bool)
            or not isinstance(initial_epoch, (int, np.integer))
            or initial_epoch < 0
        ):
            raise ValueError(f"[{owner}] initial_epoch must be an int >= 0; got {initial_epoch!r}")
        if callbacks is not None and not isinstance(callbacks, (list, tuple)):
            raise TypeError(
                f"[{owner}] callbacks must be a list of rnnkit.callbacks.Callback; "
                f"got {type(callbacks).__name__}"
            )
        history = callbacks_module.History()
        cbs = [*(callbacks or []), history]
        for cb in cbs:
            if not isinstance(cb, callbacks_module.Callback):
                raise TypeError(
                    f"[{owner}] callbacks must be rnnkit.callbacks.Callback "
                    f"objects; got {type(cb).__name__}"
                )
        source: BatchSource | None = None
        val_source: BatchSource | None = None
        w: Array | None = None
        with self._undo_build_on_error():
            if kind is not None:
                what = "generator" if kind == "generator" else "PyDataset"
                for name, v in (("y", y), ("sample_weight", sample_weight)):
                    if v is not None:
                        raise ValueError(
                            f"[{owner}] {name} must be None when x is a {what}: its batches are "
                            "(x, y) or (x, y, sample_weight)"
                        )
                if validation_split:
                    raise ValueError(
                        f"[{owner}] validation_split needs arrays; with a {what}, pass "
                        "validation_data"
                    )
                source = BatchSource(x, kind, steps_per_epoch, owner, "x")
                x, y, w = self._prepare_batch(source, source.peek(), 0, class_weight, True)
            else:
                x = self._prepare_inputs(x, owner)
                y = self._prepare_targets(y, self._n_samples(x, owner), owner)
                self._check_all_finite(x, owner, "x")
                self._check_all_finite(y, owner, "y")
                w = self._prepare_weights(sample_weight, class_weight, y, owner)
            val: tuple[list[Array], list[Array], Any] | None = None
            if val_kind is not None:
                val_source = BatchSource(
                    validation_data, val_kind, validation_steps, owner, "validation_data"
                )
            elif validation_data is not None:
                if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (
                    2,
                    3,
                ):
                    raise ValueError(
                        f"[{owner}] validation_data must be a tuple (x_val, y_val) or "
                        "(x_val, y_val, sample_weight_val)"
                    )
                xv = self._prepare_inputs(validation_data[0], owner, "validation_data[0]")
                yv = self._prepare_targets(
                    validation_data[1], self._n_samples(xv, owner), owner, "validation_data[1]"
                )
                self._check_all_finite(xv, owner, "validation_data[0]")
                self._check_all_finite(yv, owner, "validation_data[1]")
                wv = None
                if len(validation_data) == 3 and validation_data[2] is not None:
                    wv = self._prepare_weights(
                        validation_data[2], None, yv, owner, prefix="validation_data[2] as "
                    )
                val = (xv, yv, wv)
            elif validation_split > 0:
                n_all = self._n_samples(x, owner)
                n_val = int(n_all * validation_split)
                if n_val == 0 or n_val == n_all:
                    raise ValueError(
                        f"[{owner}] validation_split={validation_split} leaves "
                        f"{n_val} validation samples out of {n_all}"
                    )
                split = n_all - n_val

                def cut(arrays: Any, lo: int | None, hi: int | None) -> Any:
                    if arrays is None:
                        return None
                    return [None if a is None else a[lo:hi] for a in arrays]

                val = (cut(x, split, None), cut(y, split, None), cut(w, split, None))
                x, y, w = cut(x, None, split), cut(y, None, split), cut(w, None, split)

        n = self._n_samples(x, owner)
        steps: int | None = -(-n // batch_size) if source is None else source.steps
        fused = self._fused_outputs()
        self._training_setup()
        metrics = self._make_metrics(y)
        loss_tracker = metrics_module.Mean("loss")
        part_trackers = [metrics_module.Mean(f"{k}_loss") for k in self._output_names()]
        params = {"epochs": epochs, "steps": steps, "verbose": verbose}
        cblist = callbacks_module.CallbackList(cbs, self, params)
        # Per-batch hooks, without the base class's no-ops (a call per batch is overhead).
        base = callbacks_module.Callback

        def overridden(hook: str) -> list[Any]:
            fns = [getattr(cb, hook) for cb in cbs]
            return [f for f in fns if getattr(f, "__func__", None) is not getattr(base, hook)]

        batch_begin = overridden("on_train_batch_begin")
        batch_end = overridden("on_train_batch_end")

        self.stop_training = False
        self.history = history
        rng = get_rng()
        cblist.on_train_begin({})
        for epoch in range(initial_epoch, epochs):
            cblist.on_epoch_begin(epoch, {})
            loss_tracker.reset_state()
            for tracker in part_trackers:
                tracker.reset_state()
            for group in metrics:
                for m in group:
                    m.reset_state()
            if verbose:
                sys.stdout.write(f"Epoch {epoch + 1}/{epochs}\n")
            bar = Progbar(steps, verbose=verbose)
            problem = None
            if source is None:
                batches = self._array_batches(
                    x, y, w, batch_size, rng.permutation(n) if shuffle else None
                )
            else:
                batches = (
                    self._prepare_batch(source, item, i, class_weight, True)
                    for i, item in enumerate(
                        source.epoch(
                            rng.permutation(len(source.data))
                            if shuffle and source.kind == "dataset"
                            else None
                        )
                    )
                )
            step = -1
            for step, (xb, yb, wb) in enumerate(batches):
                for fn in batch_begin:
                    fn(step, {})
                loss_value, out, parts, problem = self._train_step(xb, yb, fused, wb)
                if problem is not None:
                    break
                nb = xb[0].shape[0]
                loss_tracker.update_state(loss_value, nb)
                for tracker, part in zip(part_trackers, parts):
                    tracker.update_state(part, nb)
                self._update_metrics(metrics, yb, out, wb)
                logs = self._logs(loss_tracker, part_trackers, metrics)
                for fn in batch_end:
                    fn(step, logs)
                bar.update(step + 1, logs, finalize=False)
                if self.stop_training:
                    break
            if source is not None and step < 0:  # a generator with nothing left
                warnings.warn(
                    f"[{owner}] x ran out of data at epoch {epoch + 1}: training stopped. A "
                    "generator must yield steps_per_epoch * epochs batches (or use a PyDataset)",
                    UserWarning,
                    stacklevel=2,
                )
                break
            if source is not None:
                source.end_epoch()
            if problem is not None:
                if verbose == 1 and bar.dynamic:
                    sys.stdout.write("\n")
                what = (
                    f"non-finite loss ({loss_value})"
                    if problem == "loss"
                    else f"non-finite gradient (loss {loss_value:.4g})"
                )
                warnings.warn(
                    f"[{owner}] {what} at epoch {epoch + 1}, batch {step + 1}: training "
                    "stopped; the weights are those from before this batch. Lower the "
                    "learning rate, scale the data, or clip gradients (clipnorm=...).",
                    NonFiniteLossWarning,
                    stacklevel=2,
                )
                break
            epoch_logs = self._logs(loss_tracker, part_trackers, metrics)
            if (val is not None or val_source is not None) and (
                epoch + 1 - initial_epoch
            ) % validation_freq == 0:
                cblist.on_test_begin({})
                if val_source is not None:
                    val_logs = self._evaluate_source(val_source, None)
                    val_source.end_epoch()
                else:
                    assert val is not None
                    val_logs = self._evaluate_arrays(val[0], val[1], val_batch, w=val[2])
                cblist.on_test_end(val_logs)
                for k, v in val_logs.items():
                    epoch_logs["val_" + k] = v
            bar.update(step + 1, epoch_logs, finalize=True)
            cblist.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        cblist.on_train_end({})
        return history

    def train_on_batch(
        self,
        x: Any,
        y: Any,
        sample_weight: Any = None,
        class_weight: Any = None,
        return_dict: bool = False,
    ) -> float | list[float] | dict[str, float]:
        """One optimizer step on one batch; returns the loss (and metrics, if compiled with
        any) measured in that step's forward pass, or with ``return_dict`` a dict keyed as
        fit's logs. sample_weight/class_weight: as in fit."""
        owner = f"{self._owner}.train_on_batch"
        self._refuse_if_quantized("train_on_batch")
        self._require_compiled("train_on_batch")
        with self._undo_build_on_error():
            x = self._prepare_inputs(x, owner)
            y = self._prepare_targets(y, self._n_samples(x, owner), owner)
            self._check_all_finite(x, owner, "x")
            self._check_all_finite(y, owner, "y")
            w = self._prepare_weights(sample_weight, class_weight, y, owner)
        fused = self._fused_outputs()
        self._training_setup()
        loss_value, out, parts, problem = self._train_step(x, y, fused, w)
        if problem is not None:
            warnings.warn(
                f"[{owner}] non-finite {problem}; the weights were not updated",
                NonFiniteLossWarning,
                stacklevel=2,
            )
        metrics = self._make_metrics(y)
        n = self._n_samples(x, owner)
        loss_tracker = metrics_module.Mean("loss")
        loss_tracker.update_state(loss_value, n)
        part_trackers = [metrics_module.Mean(f"{k}_loss") for k in self._output_names()]
        for tracker, part in zip(part_trackers, parts):
            tracker.update_state(part, n)
        self._update_metrics(metrics, y, out, w)
        logs = self._logs(loss_tracker, part_trackers, metrics)
        return _batch_result(logs, return_dict)

    # ------------------------------------------------------------ evaluate/predict

    def _evaluate_arrays(
        self,
        x: list[Array],
        y: list[Array],
        batch_size: int,
        bar: Progbar | None = None,
        w: Any = None,
    ) -> dict[str, float]:
        return self._evaluate_batches(self._array_batches(x, y, w, batch_size, None), bar, y)

    def _evaluate_batches(
        self,
        batches: Iterator[tuple[list[Array], list[Array], Any]],
        bar: Progbar | None,
        y_all: list[Array] | None,
    ) -> dict[str, float]:
        """Loss and metrics over batches (metrics made from y_all, else the first batch)."""
        fused = self._fused_outputs()
        metrics = None if y_all is None else self._make_metrics(y_all)
        tracker = metrics_module.Mean("loss")
        part_trackers = [metrics_module.Mean(f"{k}_loss") for k in self._output_names()]
        for step, (xb, yb, wb) in enumerate(batches):
            if metrics is None:
                metrics = self._make_metrics(yb)
            out = self._forward_list(xb, False)
            value, _, parts = self._loss_value(yb, out, fused, False, wb)
            nb = xb[0].shape[0]
            tracker.update_state(value, nb)
            for part_tracker, part in zip(part_trackers, parts):
                part_tracker.update_state(part, nb)
            self._update_metrics(metrics, yb, out, wb)
            if bar is not None:
                bar.update(step + 1, {"loss": tracker.result()}, finalize=False)
        return self._logs(tracker, part_trackers, metrics or [[] for _ in part_trackers])

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        sample_weight: Any = None,
        steps: Any = None,
        callbacks: Any = None,
        return_dict: bool = False,
    ) -> Any:
        """Loss (and metrics) on ``(x, y)`` in inference mode (no dropout).

        Returns the loss as a float when there are no metrics, else ``[loss, *metrics]``;
        with ``return_dict=True`` a dict keyed by name.
        """
        owner = f"{self._owner}.evaluate"
        self._require_compiled("evaluate")
        kind = source_kind(x)
        steps = self._source_steps(kind, steps, owner)
        batch_size = 32 if batch_size is None else _positive_int(batch_size, "batch_size", owner)
        verbose = _verbosity(verbose, owner)
        if kind is not None:
            for name, v in (("y", y), ("sample_weight", sample_weight)):
                if v is not None:
                    raise ValueError(
                        f"[{owner}] {name} must be None when x is a generator or PyDataset: its "
                        "batches are (x, y) or (x, y, sample_weight)"
                    )
            source = BatchSource(x, kind, steps, owner, "x")
            with self._undo_build_on_error():
                self._prepare_batch(source, source.peek(), 0, None, True)
            bar = Progbar(source.steps, verbose=verbose)
            logs = self._evaluate_source(source, bar)
            bar.update(source.last_steps, logs, finalize=True)
        else:
            with self._undo_build_on_error():
                x = self._prepare_inputs(x, owner)
                y = self._prepare_targets(y, self._n_samples(x, owner), owner)
                w = self._prepare_weights(sample_weight, None, y, owner)
            bar = Progbar(-(-x[0].shape[0] // batch_size), verbose=verbose)
            logs = self._evaluate_arrays(x, y, batch_size, bar, w)
            bar.update(bar.target or 1, logs, finalize=True)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: Any = None,
        callbacks: Any = None,
    ) -> Any:
        """Outputs for ``x`` in inference mode, computed ``batch_size`` samples at a time.

        ``x (N, ...)`` -> ``(N, *output_shape[1:])`` in the model's dtype; a list of arrays
        for a model with several outputs.
        """
        owner = f"{self._owner}.predict"
        kind = source_kind(x)
        steps = self._source_steps(kind, steps, owner)
        batch_size = 32 if batch_size is None else _positive_int(batch_size, "batch_size", owner)
        verbose = _verbosity(verbose, owner)
        if kind is not None:
            source = BatchSource(x, kind, steps, owner, "x")
            with self._undo_build_on_error():
                self._prepare_batch(source, source.peek(), 0, None, False)
            bar = Progbar(source.steps, verbose=verbose)
            outs = []
            for i, item in enumerate(source.epoch()):
                xb, _, _ = self._prepare_batch(source, item, i, None, False)
                outs.append(self._forward_list(xb, False))
                bar.update(i + 1, finalize=False)
            bar.update(source.last_steps, finalize=True)
            merged = [np.concatenate(parts, axis=0) for parts in zip(*outs)]
            return merged[0] if len(merged) == 1 else merged
        with self._undo_build_on_error():
            x = self._prepare_inputs(x, owner)
        n = self._n_samples(x, owner)
        steps_n = -(-n // batch_size)
        bar = Progbar(steps_n, verbose=verbose)
        result: list[Array] | None = None
        for step in range(steps_n):
            lo, hi = step * batch_size, min((step + 1) * batch_size, n)
            outs = self._forward_list([a[lo:hi] for a in x], False)
            if result is None:
                result = [np.empty((n, *o.shape[1:]), dtype=o.dtype) for o in outs]
            for r, o in zip(result, outs):
                r[lo:hi] = o
            bar.update(step + 1, finalize=False)
        bar.update(steps_n, finalize=True)
        assert result is not None
        return result[0] if len(result) == 1 else result

    def predict_on_batch(self, x: Any) -> Any:
        with self._undo_build_on_error():
            xs = self._prepare_inputs(x, f"{self._owner}.predict_on_batch")
        outs = self._forward_list(xs, False)
        return outs[0] if len(outs) == 1 else outs

    def test_on_batch(
        self, x: Any, y: Any, sample_weight: Any = None, return_dict: bool = False
    ) -> float | list[float] | dict[str, float]:
        """Loss and metrics of one batch without training (as ``train_on_batch`` returns
        them); ``sample_weight`` as in evaluate."""
        self._require_compiled("test_on_batch")
        owner = f"{self._owner}.test_on_batch"
        with self._undo_build_on_error():
            x = self._prepare_inputs(x, owner)
            y = self._prepare_targets(y, self._n_samples(x, owner), owner)
            w = self._prepare_weights(sample_weight, None, y, owner)
        logs = self._evaluate_arrays(x, y, x[0].shape[0], w=w)
        return _batch_result(logs, return_dict)

    # ------------------------------------------------------------- files
    def save(self, filepath: str | os.PathLike, overwrite: bool = True) -> None:
        """Write the model to one file; the extension names the format.

        - ``*.rnnkit``: rnnkit's own format, an ``.npz`` archive of a JSON config and plain
          arrays with a digest: config, weights, compile settings and the optimizer's full
          state, so that ``fit`` resumes exactly.
        - ``*.keras``: a Keras 3 file (config, compile config, weights in Keras's layout)
          that ``keras.models.load_model`` opens; the optimizer keeps its config and step
          count, not its slots.
        - ``*.h5`` / ``*.hdf5``: a legacy Keras HDF5 file (Keras 2 style config), opened by
          Keras 3 and tf.keras.

        Keras files need h5py (``pip install 'rnnkit[keras-files]'``). Any other extension
        raises ValueError. Every format is written to a temporary file and renamed, so an
        interrupted save never leaves a corrupt file.
        """
        fmt = _file_format(filepath, weights=False)
        if fmt == "rnnkit":
            saving.save_model(self, filepath, overwrite=overwrite)
            return
        self._refuse_keras_file("save", filepath)
        from ._training import keras_files

        if fmt == "keras":
            keras_files.save_keras(self, filepath, overwrite=overwrite)
        else:
            keras_files.save_legacy_h5(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath: str | os.PathLike, overwrite: bool = True) -> None:
        """Write only the weights: ``*.rnnkit`` (rnnkit's format), ``*.weights.h5`` (Keras 3)
        or ``*.h5`` (legacy Keras); read back with ``load_weights``."""
        fmt = _file_format(filepath, weights=True)
        if fmt == "rnnkit":
            saving.save_weights(self, filepath, overwrite=overwrite)
            return
        self._refuse_keras_file("save_weights", filepath)
        from ._training import keras_files

        if fmt == "weights.h5":
            keras_files.save_keras_weights(self, filepath, overwrite=overwrite)
        else:
            keras_files.save_legacy_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: str | os.PathLike) -> None:
        """Load weights written by ``save_weights`` or ``save`` (rnnkit's format), or from a
        Keras ``.weights.h5``, ``.keras`` or legacy ``.h5`` file (matched layer by layer in
        order, as Keras does). The format is read from the file's contents; every shape is
        checked before any weight changes."""
        from ._training import keras_files

        if keras_files.sniff(filepath) is not None:
            self._refuse_keras_file("load_weights", filepath)
            keras_files.load_weights(self, filepath)
        else:
            saving.load_weights(self, filepath)

    def _refuse_keras_file(self, what: str, filepath: Any) -> None:
        name = os.fspath(filepath)
        if not isinstance(self, Sequential) and str(name).lower().endswith((".h5", ".hdf5")):
            if what == "save" or not str(name).lower().endswith(".weights.h5"):
                raise NotImplementedError(
                    f"[Model.{what}] {name!r}: legacy .h5 files of graph models "
                    "(Model(inputs, outputs)) are not written by rnnkit (their Keras 2 config "
                    "format differs); save as *.keras (Keras 3 opens it) or *.rnnkit"
                )

    def __reduce__(self) -> tuple[Any, ...]:
        return (saving.model_from_state, (saving.model_state(self),))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        """A model from ``get_config()``: a graph's config (it has ``input_layers``) makes a
        functional model, a stack's a :class:`Sequential`."""
        if not isinstance(config, dict):
            raise TypeError(f"[Model.from_config] config must be a dict; got {type(config)}")
        target = Functional if "input_layers" in config else Sequential
        return target.from_config(config)


class Sequential(Model):
    """A linear stack of layers (Keras's ``Sequential``).

    Parameters
    ----------
    layers : list of Layer, optional
        Layers to add in order. An :class:`~rnnkit.layers.InputLayer` (``Input(shape)``)
        or an ``input_shape=`` on the first layer lets the model build before seeing data.
    name : str, optional

    Examples
    --------
    >>> from rnnkit.models import Sequential
    >>> from rnnkit.layers import LSTM, Dense
    >>> model = Sequential([LSTM(50, input_shape=(10, 1)), Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> history = model.fit(X, y, epochs=20, batch_size=32)      # doctest: +SKIP
    """

    def __init__(
        self, layers: list[Layer] | None = None, name: str | None = None, trainable: bool = True
    ) -> None:
        self._init_training(name if name is not None else unique_name("sequential"), trainable)
        self._layers: list[Layer] = []
        self._input_layer: InputLayer | None = None
        self.built = False
        self._build_input_shape: Shape | None = None
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------------ structure

    @property
    def layers(self) -> list[Layer]:
        """The layers, without the InputLayer (as in Keras 3)."""
        return list(self._layers)

    def add(self, layer: Layer) -> None:
        """Append a layer; builds the model when the input shape is known."""
        from ._training.functional import KerasTensor

        if isinstance(layer, KerasTensor) and layer._node is not None and layer._node.is_input:
            layer = layer._node.layer  # Input(shape) first: its InputLayer
        if not isinstance(layer, Layer):
            raise TypeError(f"[Sequential.add] expected a rnnkit layer; got {type(layer).__name__}")
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError("[Sequential.add] an InputLayer must come first, and only once")
            self._input_layer = layer
            return
        if getattr(layer, "return_state", False):
            raise ValueError(
                f"[Sequential.add] {layer.name!r} has return_state=True and so "
                "returns several arrays; a Sequential model passes one array "
                "between layers. Call the layer directly to get its states."
            )
        names = {lay.name for lay in self._layers}
        if layer.name in names:
            raise ValueError(
                f"[Sequential.add] a layer named {layer.name!r} is already in the "
                "model; layer names must be unique"
            )
        self._layers.append(layer)
        self.built = False
        shape = self._declared_input_shape()
        if shape is not None:
            self.build(shape)

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._layers:
            raise IndexError("[Sequential.pop] the model has no layers")
        layer = self._layers.pop()
        self.built = False
        if self._layers and self._build_input_shape is not None:
            self.build(self._build_input_shape)
        return layer

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"[Sequential.get_layer] no layer named {name!r}; layers: "
            f"{', '.join(lay.name for lay in self._layers)}"
        )

    def _declared_input_shape(self) -> Shape | None:
        if self._input_layer is not None:
            return self._input_layer.input_shape_hint
        if self._layers and self._layers[0].input_shape_hint is not None:
            return self._layers[0].input_shape_hint
        return None

    def build(self, input_shape: Shape | None = None) -> None:
        """Build every layer for inputs of ``input_shape`` (batch axis first, may be None)."""
        if input_shape is None:
            input_shape = self._declared_input_shape()
        if input_shape is None:
            raise ValueError(
                f"[{self.name}] build needs an input shape; pass input_shape to "
                "the first layer, start with Input(shape), or call fit/predict"
            )
        if not self._layers:
            raise ValueError(f"[{self.name}] the model has no layers")
        shape = tuple(input_shape)
        if self._input_layer is not None and not self._input_layer.built:
            self._input_layer.build(shape)
        for layer in self._layers:
            if layer.built:
                layer._check_input_shape(tuple(1 if s is None else s for s in shape), "input")
            else:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self._build_input_shape = tuple(input_shape)
        self._output_shape = shape
        self.built = True

    @property
    def input_shape(self) -> Shape:
        if not self.built:
            raise AttributeError(f"[{self.name}] input_shape: the model is not built")
        return self._build_input_shape  # type: ignore[return-value]

    @property
    def output_shape(self) -> Shape:
        if not self.built:
            raise AttributeError(f"[{self.name}] output_shape: the model is not built")
        return self._output_shape

    # ------------------------------------------------------------------- weights

    # ------------------------------------------------------- the Model hooks
    @property
    def _n_outputs(self) -> int:
        return 1

    def _weight_layers(self) -> list[Layer]:
        return list(self._layers)

    def _all_layers(self) -> list[Layer]:
        return [lay for lay in (self._input_layer, *self._layers) if lay is not None]

    def _output_shapes(self) -> list[Shape]:
        return [self.output_shape]

    def _output_names(self) -> list[str]:
        return [self._layers[-1].name] if self._layers else ["output"]

    def _output_dtype(self, k: int) -> np.dtype:
        return self._layers[-1].dtype

    def _prepare_inputs(self, x: Any, owner: str, argument: str = "x") -> list[Array]:
        return [self._prepare_x(x, owner, argument)]

    def _forward_list(self, xs: list[Array], training: bool) -> list[Array]:
        return [self._forward(xs[0], training)]

    def _fused_outputs(self) -> list[Dense | None]:
        """The last Dense when its activation fuses into the loss (softmax/sigmoid + CE)."""
        last = self._layers[-1]
        return [last if self._fusable(last, self._losses[0]) else None]

    def _training_setup(self) -> None:
        super()._training_setup()
        layers = self._layers
        first = next((i for i, lay in enumerate(layers) if lay in self._train_layers), None)
        self._first_trainable = len(layers) if first is None else first

    def _backward_list(self, grads: list[Array], fused: list[Dense | None]) -> None:
        layers = self._layers
        grad = grads[0]
        stop = self._first_trainable
        i = len(layers) - 1
        if fused[0] is not None:
            grad = fused[0].backward_from_logits(grad.reshape(-1, fused[0].units), i > stop)
            i -= 1
        while i >= stop:
            grad = layers[i]._backward(grad, i > stop)
            i -= 1

    # ----------------------------------------------------------- data validation
    def _first_float(self) -> bool:
        # An Embedding first takes ids whatever the InputLayer's dtype (Keras casts them).
        if self._layers and not self._layers[0]._float_input:
            return False
        first = self._input_layer or (self._layers[0] if self._layers else None)
        return first is None or first._float_input

    def _prepare_x(self, x: Any, owner: str, argument: str = "x") -> Array:
        if x is None:
            raise ValueError(f"[{owner}] {argument} is required")
        if (
            isinstance(x, (list, tuple))
            and x
            and isinstance(x[0], np.ndarray)
            and len({np.shape(a) for a in x}) > 1
        ):
            raise TypeError(
                f"[{owner}] {argument} must be one array; multi-input models are not supported"
            )
        if not self._layers:
            raise ValueError(f"[{owner}] the model has no layers")
        dtype = self._layers[0].dtype
        if self._first_float():
            arr = np.asarray(x)
            if arr.dtype.kind not in "fiub":
                raise TypeError(f"[{owner}] {argument} must be numeric; got dtype {arr.dtype}")
            arr = np.ascontiguousarray(arr, dtype=dtype)
        else:
            from ._training.base import _as_indices

            arr = np.ascontiguousarray(_as_indices(x, owner, argument))
        if arr.ndim < 2:
            raise ValueError(
                f"[{owner}] {argument} has shape {format_shape(arr.shape)}; "
                "expected a batch axis first, e.g. (samples, time, features)"
            )
        if arr.shape[0] == 0:
            raise ValueError(f"[{owner}] {argument} has no samples")
        if not self.built:
            self.build((None, *arr.shape[1:]))
        self._check_x_shape(arr.shape, owner, argument)
        first = self._layers[0]
        if hasattr(first, "check_indices"):
            first.check_indices(arr, argument)
        return arr

    def _check_x_shape(self, shape: tuple[int, ...], owner: str, argument: str) -> None:
        expected = self._build_input_shape
        assert expected is not None
        declared = self._declared_input_shape()
        ok = len(shape) == len(expected) and (expected[-1] is None or shape[-1] == expected[-1])
        if ok and declared is not None:
            ok = all(d is None or d == s for d, s in zip(declared[1:], shape[1:]))
            expected = declared
        if not ok:
            raise ValueError(
                f"[{owner}] {argument} has shape {format_shape(shape)}; the model "
                f"expects {expected_shape_text(expected)}"
            )

    def _forward(self, x: Array, training: bool) -> Array:
        mask = None
        for layer in self._layers:
            if mask is not None and layer._mask_aware:
                out = layer.forward(x, training, mask=mask)
            else:
                out = layer.forward(x, training)
            mask = layer.compute_mask(x, mask)
            x = out
        self._last_masks = [mask]
        return x

    def stream(self, batch: int = 1) -> ModelStream:
        """Run the model one time step at a time: a :class:`ModelStream` of ``batch`` sequences.

        Every recurrent layer keeps its state in the core between calls; Dense and Embedding
        apply to each step, Dropout is the identity. ``s.step(x_t)`` returns what ``predict``
        gives for the last step of the sequence so far. Non-causal layers (Bidirectional,
        ``go_backwards``) raise ValueError naming the layer. The recurrent layers switch to
        inference mode.
        """
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise ValueError(f"[{self.name}.stream] batch must be an int >= 1; got {batch!r}")
        return ModelStream(self, int(batch))

    def __call__(self, x: Any, training: bool = False) -> Array:
        """Forward pass on ``x`` (one batch); returns the outputs."""
        return self._forward(self._prepare_x(x, f"{self.name}"), training)

    # ------------------------------------------------------------------ summary

    def summary(self, line_length: int | None = None, print_fn: Any = None) -> None:
        """Print a Keras-style table: layer (type), output shape, parameter count.

        ``print_fn(line)`` receives each line (default: print to ``sys.stdout``, with ASCII
        box characters when its encoding cannot show the Unicode ones, as Keras does).
        """
        if print_fn is not None:
            emit = print_fn
        else:
            out = sys.stdout
            table = None if supports_unicode(out) else ASCII_BOX

            def emit(line: str) -> None:
                safe_write(out, (line if table is None else line.translate(table)) + "\n")

        w = (33, 26, 15)
        if line_length:
            w = (max(line_length - 43, 20), 26, 15)

        def row(a: str, b: str, c: str, l_: str, m: str, r: str) -> str:
            return f"{l_} {a:<{w[0] - 2}} {m} {b:<{w[1] - 2}} {m} {c:>{w[2] - 2}} {r}"

        def rule(left: str, fill: str, mid: str, right: str) -> str:
            return left + mid.join(fill * n for n in w) + right

        emit(f'Model: "{self.name}"')
        emit(rule("┏", "━", "┳", "┓"))
        emit(row("Layer (type)", "Output Shape", "Param #", "┃", "┃", "┃"))
        emit(rule("┡", "━", "╇", "┩"))
        for k, layer in enumerate(self._layers):
            shape = format_shape(layer.output_shape) if layer.built else "?"
            params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
            label = f"{layer.name} ({type(layer).__name__})"
            if len(label) > w[0] - 2:
                label = label[: w[0] - 5] + "..."
            emit(row(label, shape, params, "│", "│", "│"))
            if k < len(self._layers) - 1:
                emit(rule("├", "─", "┼", "┤"))
        emit(rule("└", "─", "┴", "┘"))
        total = self.count_params()
        trainable = sum(lay._count_trainable() for lay in self._layers)
        itemsize = self._layers[0].dtype.itemsize if self._layers else 4

        def size(nparams: int) -> str:
            b = nparams * itemsize
            for unit in ("B", "KB", "MB", "GB"):
                if b < 1024 or unit == "GB":
                    return f"{b:.2f} {unit}"
                b /= 1024
            return ""

        emit(f" Total params: {total:,} ({size(total)})")
        emit(f" Trainable params: {trainable:,} ({size(trainable)})")
        emit(f" Non-trainable params: {total - trainable:,} ({size(total - trainable)})")

    # ------------------------------------------------------------- config & I/O

    def get_config(self) -> dict[str, Any]:
        layers = []
        if self._input_layer is not None:
            layers.append({"class_name": "InputLayer", "config": self._input_layer.get_config()})
        for layer in self._layers:
            layers.append({"class_name": type(layer).__name__, "config": layer.get_config()})
        config: dict[str, Any] = {
            "name": self.name,
            "layers": layers,
            "build_input_shape": None
            if self._build_input_shape is None
            else list(self._build_input_shape),
        }
        if self.quantization_mode is not None:
            config["quantization"] = self.quantization_mode  # applied again after loading
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        from . import layers as layers_module

        model = cls(name=config.get("name"))
        for entry in config.get("layers", []):
            model.add(layers_module.deserialize(entry))
        shape = config.get("build_input_shape")
        if shape is not None and not model.built:
            model.build(tuple(shape))
        return model

    def __repr__(self) -> str:
        return f"<Sequential name={self.name!r}, layers={len(self._layers)}, built={self.built}>"


class Functional(Model):
    """A model made by ``rnnkit.Model(inputs, outputs)``: a graph of layer calls (see
    :class:`Model`). Layers may be shared (called more than once), take several inputs
    (Concatenate, Attention ...), return several outputs (``return_state=True``) and take
    ``initial_state=`` tensors; the backward runs through all of it, the gradients of a
    decoder's initial state flowing into the encoder that produced it."""

    def __init__(
        self,
        inputs: Any = None,
        outputs: Any = None,
        name: str | None = None,
        trainable: bool = True,
    ) -> None:
        from ._training.functional import Graph

        owner = "Model"
        if inputs is None or outputs is None:
            raise TypeError(f"[{owner}] give both inputs= and outputs=")
        if isinstance(inputs, dict) or isinstance(outputs, dict):
            raise NotImplementedError(
                f"[{owner}] inputs and outputs as dicts are not supported; give lists (the "
                "inputs' and outputs' layer names key dict data in fit/predict)"
            )
        self._init_training(name if name is not None else unique_name("functional"), trainable)
        self._list_inputs = isinstance(inputs, (list, tuple))
        self._list_outputs = isinstance(outputs, (list, tuple))
        in_list = list(inputs) if self._list_inputs else [inputs]
        out_list = list(outputs) if self._list_outputs else [outputs]
        if not in_list or not out_list:
            raise ValueError(f"[{owner}] inputs and outputs must not be empty")
        self._graph = Graph(in_list, out_list, owner)
        names: list[str] = []
        for t in out_list:
            base = t._node.layer.name
            name_k = base
            k = 1
            while name_k in names:
                name_k = f"{base}_{k}"
                k += 1
            names.append(name_k)
        self._out_names = names
        layers = self._graph.layers()
        seen: dict[str, Layer] = {}
        for lay in layers:
            other = seen.get(lay.name)
            if other is not None and other is not lay:
                raise ValueError(
                    f"[{owner}] two different layers are named {lay.name!r}; layer names in a "
                    "model must be unique"
                )
            seen[lay.name] = lay
        self.built = True

    # ------------------------------------------------------------------ structure
    @property
    def inputs(self) -> list[Any]:
        return list(self._graph.inputs)

    @property
    def outputs(self) -> list[Any]:
        return list(self._graph.outputs)

    @property
    def layers(self) -> list[Layer]:
        """Every layer once, InputLayers first and then in the order they run (as Keras 3)."""
        return self._graph.layers()

    @property
    def input_names(self) -> list[str]:
        return [t._node.layer.name for t in self._graph.inputs]

    @property
    def output_names(self) -> list[str]:
        return list(self._out_names)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        layers = self.layers
        if index is not None:
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"[Model.get_layer] no layer named {name!r}; layers: "
            f"{', '.join(lay.name for lay in layers)}"
        )

    @property
    def input_shape(self) -> Any:
        shapes = [t.shape for t in self._graph.inputs]
        return shapes if self._list_inputs else shapes[0]

    @property
    def output_shape(self) -> Any:
        shapes = self._output_shapes()
        return shapes if self._list_outputs else shapes[0]

    def build(self, input_shape: Any = None) -> None:
        """A functional model is built when it is made; accepted for Keras compatibility."""

    # ------------------------------------------------------- the Model hooks
    def _weight_layers(self) -> list[Layer]:
        return [lay for lay in self._graph.layers() if not isinstance(lay, InputLayer)]

    def _all_layers(self) -> list[Layer]:
        return self._graph.layers()

    def _output_shapes(self) -> list[Shape]:
        return [t.shape for t in self._graph.outputs]

    def _output_names(self) -> list[str]:
        return list(self._out_names)

    def _output_dtype(self, k: int) -> np.dtype:
        return self._graph.outputs[k].dtype

    def _consumers(self, tensor: Any) -> list[Any]:
        return self._graph.readers.get(id(tensor), [])

    def _prepare_inputs(self, x: Any, owner: str, argument: str = "x") -> list[Array]:
        from ._training.base import _as_indices

        tensors = self._graph.inputs
        names = self.input_names
        if x is None:
            raise ValueError(f"[{owner}] {argument} is required")
        if isinstance(x, dict):
            missing = [n for n in names if n not in x]
            if missing:
                raise ValueError(
                    f"[{owner}] {argument} has no data for input(s) {', '.join(map(repr, missing))}"
                )
            items = [x[n] for n in names]
        elif len(tensors) == 1:
            items = [x[0] if isinstance(x, (list, tuple)) and len(x) == 1 else x]
        elif isinstance(x, (list, tuple)) and len(x) == len(tensors):
            items = list(x)
        else:
            raise ValueError(
                f"[{owner}] the model has {len(tensors)} inputs ({', '.join(map(repr, names))}); "
                f"{argument} must be a list of {len(tensors)} arrays or a dict keyed by input name"
            )
        out = []
        for k, (t, value) in enumerate(zip(tensors, items)):
            where = argument if len(tensors) == 1 else f"{argument}[{k}] ({names[k]!r})"
            layer = t._node.layer
            readers = [node.layer for node in self._consumers(t)]
            ids = layer._int_input or (readers and all(not r._float_input for r in readers))
            if ids:
                arr = np.ascontiguousarray(_as_indices(value, owner, where))
            else:
                arr = np.asarray(value)
                if arr.dtype.kind not in "fiub":
                    raise TypeError(f"[{owner}] {where} must be numeric; got dtype {arr.dtype}")
                arr = np.ascontiguousarray(arr, dtype=layer.dtype)
            shape = t.shape
            ok = arr.ndim == len(shape) and all(
                d is None or d == s for d, s in zip(shape[1:], arr.shape[1:])
            )
            if not ok:
                raise ValueError(
                    f"[{owner}] {where} has shape {format_shape(arr.shape)}; the model expects "
                    f"{expected_shape_text(shape)}"
                )
            if arr.shape[0] == 0:
                raise ValueError(f"[{owner}] {where} has no samples")
            for reader in readers:
                if hasattr(reader, "check_indices"):
                    reader.check_indices(arr, where)
            out.append(arr)
        self._n_samples(out, owner, argument)
        return out

    def _forward_list(self, xs: list[Array], training: bool) -> list[Array]:
        outs = self._graph.forward(xs, training)
        self._last_masks = self._graph.last_masks
        return outs

    def _fused_outputs(self) -> list[Dense | None]:
        result: list[Dense | None] = []
        outputs = self._graph.outputs
        for k, t in enumerate(outputs):
            layer = t._node.layer
            fusable = (
                self._fusable(layer, self._losses[k] if k < len(self._losses) else None)
                and id(layer) not in self._graph.shared
                and not self._consumers(t)
                and sum(o is t for o in outputs) == 1
            )
            result.append(layer if fusable else None)
        return result

    def _training_setup(self) -> None:
        super()._training_setup()
        self._needs = self._graph.trainable_flags()

    def _backward_list(self, grads: list[Array], fused: list[Dense | None]) -> None:
        outputs = self._graph.outputs
        logits = {id(t): d for t, d in zip(outputs, fused) if d is not None}
        self._graph.backward(grads, self._needs, logits)

    def __call__(self, x: Any, training: bool = False) -> Any:
        """Forward pass on arrays (one batch); returns the output, or a list of them."""
        from ._training.functional import any_symbolic

        if any_symbolic(x, {}):
            raise NotImplementedError(
                "[Model] calling a model on symbolic tensors (a model as a layer) is not "
                "supported; build one graph from the layers, or a second Model from the same "
                "layers (they share weights)"
            )
        outs = self._forward_list(self._prepare_inputs(x, self.name), training)
        return outs if self._list_outputs else outs[0]

    def stream(self, batch: int = 1) -> Any:
        raise NotImplementedError(
            "[Model.stream] streaming is for Sequential models and the core modules; a graph "
            "model runs whole sequences (predict)"
        )

    # ------------------------------------------------------------------ summary
    def summary(self, line_length: int | None = None, print_fn: Any = None) -> None:
        """Print a Keras-style table: layer (type), output shape, parameter count and the
        tensors each layer reads ("Connected to")."""
        if print_fn is not None:
            emit = print_fn
        else:
            out = sys.stdout
            table = None if supports_unicode(out) else ASCII_BOX

            def emit(line: str) -> None:
                safe_write(out, (line if table is None else line.translate(table)) + "\n")

        w = (26, 24, 11, 24)
        if line_length:
            extra = max(line_length - sum(w) - 5, 0)
            w = (w[0] + extra // 2, w[1], w[2], w[3] + extra - extra // 2)

        def row(cells: tuple[str, str, str, str]) -> str:
            a, b, c, d = cells
            return f"│ {a:<{w[0] - 2}} │ {b:<{w[1] - 2}} │ {c:>{w[2] - 2}} │ {d:<{w[3] - 2}} │"

        def rule(left: str, fill: str, mid: str, right: str) -> str:
            return left + mid.join(fill * n for n in w) + right

        def clip(text: str, width: int) -> str:
            return text if len(text) <= width - 2 else text[: width - 5] + "..."

        nodes_of: dict[int, list[Any]] = {}
        for node in self._graph.nodes:
            nodes_of.setdefault(id(node.layer), []).append(node)

        def ref(t: Any) -> str:
            layer = t._node.layer
            if layer._nodes and layer._nodes[0].is_input:
                return f"{layer.name}[0][0]"
            own = nodes_of.get(id(layer), [])
            index = next((i for i, n in enumerate(own) if n is t._node), 0)
            return f"{layer.name}[{index}][{t._index}]"

        emit(f'Model: "{self.name}"')
        emit(rule("┏", "━", "┳", "┓"))
        emit(row(("Layer (type)", "Output Shape", "Param #", "Connected to")).replace("│", "┃"))
        emit(rule("┡", "━", "╇", "┩"))
        entries: list[tuple[Layer, list[str], str]] = []
        for t in self._graph.inputs:
            entries.append((t._node.layer, [format_shape(t.shape)], "-"))
        for node in self._graph.nodes:
            shapes = [format_shape(t.shape) for t in node.outputs]
            entries.append((node.layer, shapes, ", ".join(ref(t) for t in node.inputs)))

        def wrap(parts: list[str], width: int) -> list[str]:
            """Items joined by ", " in lines of at most width - 2 characters (Keras wraps
            long shapes and connection lists the same way)."""
            lines: list[str] = []
            for i, part in enumerate(parts):
                piece = part + ("," if i < len(parts) - 1 else "")
                if lines and len(lines[-1]) + 1 + len(piece) <= width - 2:
                    lines[-1] += " " + piece
                else:
                    lines.append(clip(piece, width))
            return lines or [""]

        for k, (layer, shapes, connected) in enumerate(entries):
            shape_parts = shapes if len(shapes) == 1 else [f"[{shapes[0]}", *shapes[1:]]
            if len(shapes) > 1:
                shape_parts[-1] += "]"
            label = f"{layer.name} ({type(layer).__name__})"
            cells = [
                [clip(label, w[0])],
                wrap(shape_parts, w[1]),
                [f"{layer.count_params():,}"],
                wrap(connected.split(", "), w[3]),
            ]
            for line in range(max(len(c) for c in cells)):
                a, b, c, d = (cell[line] if line < len(cell) else "" for cell in cells)
                emit(row((a, b, c, d)))
            if k < len(entries) - 1:
                emit(rule("├", "─", "┼", "┤"))
        emit(rule("└", "─", "┴", "┘"))
        layers = self._weight_layers()
        total = self.count_params()
        trainable = sum(lay._count_trainable() for lay in layers)
        itemsize = layers[0].dtype.itemsize if layers else 4

        def size(nparams: int) -> str:
            b = float(nparams * itemsize)
            for unit in ("B", "KB", "MB", "GB"):
                if b < 1024 or unit == "GB":
                    return f"{b:.2f} {unit}"
                b /= 1024
            return ""

        emit(f" Total params: {total:,} ({size(total)})")
        emit(f" Trainable params: {trainable:,} ({size(trainable)})")
        emit(f" Non-trainable params: {total - trainable:,} ({size(total - trainable)})")

    # ------------------------------------------------------------- config & I/O
    def _model_nodes(self) -> dict[int, list[Any]]:
        """Per layer, its nodes in this model, in creation order (config node indices)."""
        keep = {id(node) for node in self._graph.nodes}
        result: dict[int, list[Any]] = {}
        for layer in self._graph.layers():
            result[id(layer)] = [
                n for n in layer._nodes if id(n) in keep or (n.is_input and not n.inputs)
            ]
        return result

    def get_config(self) -> dict[str, Any]:
        """``{"name", "layers": [{"class_name", "config", "name", "inbound_nodes"}],
        "input_layers", "output_layers"}``, as Keras's functional configs; a tensor is named
        ``[layer name, node index, output index]`` with node indices counted in this model."""
        nodes_of = self._model_nodes()

        def ref(t: Any) -> list[Any]:
            layer = t._node.layer
            own = nodes_of[id(layer)]
            index = next(i for i, n in enumerate(own) if n is t._node)
            return [layer.name, index, t._index]

        entries = []
        for layer in self._graph.layers():
            inbound = []
            for node in nodes_of[id(layer)]:
                if node.is_input:
                    continue
                refs = [ref(t) for t in node.inputs]
                kwargs: dict[str, Any] = {}
                at = node.n_main
                for key, count in node.kw_counts.items():
                    kwargs[key] = refs[at : at + count]
                    at += count
                inbound.append(
                    {
                        "args": refs[: node.n_main],
                        "list": node.list_input,
                        "kwargs": kwargs,
                        "values": dict(node.call_kwargs),
                    }
                )
            entries.append(
                {
                    "class_name": type(layer).__name__,
                    "config": layer.get_config(),
                    "name": layer.name,
                    "inbound_nodes": inbound,
                }
            )
        config: dict[str, Any] = {
            "name": self.name,
            "trainable": self.trainable,
            "layers": entries,
            "input_layers": [ref(t) for t in self._graph.inputs],
            "output_layers": [ref(t) for t in self._graph.outputs],
            "list_inputs": self._list_inputs,
            "list_outputs": self._list_outputs,
        }
        if self.quantization_mode is not None:
            config["quantization"] = self.quantization_mode
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Functional:
        """Rebuild the graph of ``get_config``: layers from their configs (rnnkit's classes
        only), then every node replayed once its input tensors exist."""
        from . import layers as layers_module

        owner = "Model.from_config"
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError(f"[{owner}] config must be a dict with a layers list")
        made: list[Layer] = []
        inbound: dict[str, list[Any]] = {}
        for entry in config["layers"]:
            if not isinstance(entry, dict):
                raise ValueError(f"[{owner}] each layer entry must be a dict")
            layer = layers_module.deserialize(entry)
            nodes = entry.get("inbound_nodes", [])
            if not isinstance(nodes, list):
                raise ValueError(f"[{owner}] inbound_nodes of {layer.name!r} must be a list")
            made.append(layer)
            inbound[layer.name] = list(nodes)
        model = cls._assemble(
            made,
            inbound,
            config.get("input_layers", []),
            config.get("output_layers", []),
            config.get("list_inputs", True),
            config.get("list_outputs", True),
            config.get("name"),
            owner=owner,
        )
        model.trainable = bool(config.get("trainable", True))
        return model

    @classmethod
    def _assemble(
        cls,
        layers: list[Layer],
        inbound: dict[str, list[Any]],
        input_refs: list[Any],
        output_refs: list[Any],
        list_inputs: bool,
        list_outputs: bool,
        name: str | None,
        owner: str,
    ) -> Functional:
        """A model from unbuilt layers and their calls: ``inbound[layer name]`` is a list of
        ``{"args": [[layer, node, index], ...], "list": bool, "kwargs": {key: refs},
        "values": {...}}`` (one per call, in order), tensors named by the node index among
        the layer's calls in this model. Nodes are replayed once their inputs exist."""
        from ._training.functional import input_node

        made: dict[str, Layer] = {}
        pending: list[tuple[Layer, list[Any]]] = []
        tensors: dict[tuple[str, int], list[Any]] = {}
        for layer in layers:
            if layer.name in made:
                raise ValueError(f"[{owner}] layer name {layer.name!r} appears twice")
            made[layer.name] = layer
            if isinstance(layer, InputLayer):
                shape = layer.input_shape_hint
                dtype = np.int64 if layer._int_input else layer.dtype
                tensors[(layer.name, 0)] = [input_node(layer, shape, dtype)]
            else:
                pending.append((layer, list(inbound.get(layer.name, []))))
        own_calls: dict[str, int] = {}

        def lookup(r: Any) -> Any:
            if (
                not isinstance(r, (list, tuple))
                or len(r) != 3
                or not isinstance(r[0], str)
                or any(isinstance(v, bool) or not isinstance(v, int) for v in r[1:])
            ):
                raise ValueError(
                    f"[{owner}] a tensor reference must be [name, node, index]; got {r!r:.100}"
                )
            outs = tensors.get((r[0], r[1]))
            if outs is None:
                return None
            if not 0 <= r[2] < len(outs):
                raise ValueError(f"[{owner}] tensor reference {list(r)} is out of range")
            return outs[r[2]]

        progress = True
        while pending and progress:
            progress = False
            for item in list(pending):
                layer, calls = item
                while calls:
                    node = calls[0]
                    if not isinstance(node, dict) or not isinstance(node.get("args"), list):
                        raise ValueError(f"[{owner}] bad inbound node of {layer.name!r}")
                    args = [lookup(r) for r in node["args"]]
                    kw_refs = node.get("kwargs") or {}
                    if not isinstance(kw_refs, dict):
                        raise ValueError(f"[{owner}] bad inbound node of {layer.name!r}")
                    kwargs = {k: [lookup(r) for r in v] for k, v in kw_refs.items()}
                    if any(a is None for a in args) or any(
                        a is None for v in kwargs.values() for a in v
                    ):
                        break
                    values = node.get("values") or {}
                    if not isinstance(values, dict):
                        raise ValueError(f"[{owner}] bad inbound node of {layer.name!r}")
                    main = args if node.get("list") else args[0]
                    result = layer(main, **kwargs, **values)
                    index = own_calls.get(layer.name, 0)
                    own_calls[layer.name] = index + 1
                    tensors[(layer.name, index)] = (
                        list(result) if isinstance(result, list) else [result]
                    )
                    calls.pop(0)
                    progress = True
                if not calls:
                    pending.remove(item)
        if pending:
            raise ValueError(
                f"[{owner}] the graph cannot be rebuilt: the inputs of "
                f"{', '.join(repr(lay.name) for lay, _ in pending)} are never produced"
            )
        inputs = [lookup(r) for r in input_refs]
        outputs = [lookup(r) for r in output_refs]
        if any(t is None for t in inputs + outputs) or not inputs or not outputs:
            raise ValueError(f"[{owner}] input_layers/output_layers name missing tensors")
        return cls(
            inputs if list_inputs else inputs[0],
            outputs if list_outputs else outputs[0],
            name=name,
        )

    def __repr__(self) -> str:
        return (
            f"<Model name={self.name!r}, inputs={len(self._graph.inputs)}, "
            f"outputs={len(self._graph.outputs)}, layers={len(self.layers)}>"
        )


def _file_format(filepath: str | os.PathLike, weights: bool) -> str:
    """The format an output file's name asks for: rnnkit, keras, weights.h5 or h5."""
    name = os.fspath(filepath)
    lower = str(name).lower()
    owner = "save_weights" if weights else "save"
    if lower.endswith(".rnnkit"):
        return "rnnkit"
    if lower.endswith(".weights.h5"):
        if not weights:
            raise ValueError(
                f"[save] {name!r}: a .weights.h5 file holds weights only; call "
                "save_weights(), or save the whole model as *.keras, *.h5 or *.rnnkit"
            )
        return "weights.h5"
    if lower.endswith(".keras"):
        if weights:
            raise ValueError(
                f"[save_weights] {name!r}: a .keras file holds a whole model; call save(), "
                "or name the weights file *.weights.h5, *.h5 or *.rnnkit"
            )
        return "keras"
    if lower.endswith((".h5", ".hdf5")):
        return "h5"
    choices = (
        "*.rnnkit (rnnkit's format), *.weights.h5 (Keras 3) or *.h5 (legacy Keras)"
        if weights
        else "*.rnnkit (rnnkit's format), *.keras (Keras 3) or *.h5 (legacy Keras)"
    )
    raise ValueError(f"[{owner}] cannot tell the file format from {name!r}; name it {choices}")


def load_model(filepath: str | os.PathLike, compile: bool = True) -> Sequential:
    """Load a model from a file written by :meth:`Sequential.save` or by Keras.

    The format is read from the file's contents, not its name: rnnkit's own format, a
    Keras 3 ``.keras`` file or a legacy Keras ``.h5`` file (Keras 2 / tf.keras or Keras 3),
    the latter two without TensorFlow or Keras (h5py only: ``pip install
    'rnnkit[keras-files]'``). A Keras model must be a ``Sequential`` of layers rnnkit has;
    any other layer, option or value raises :class:`~rnnkit.models.ModelFileError` naming
    it. ``compile=True`` also restores the loss, metrics and optimizer configuration.

    Never unpickles: configs name only rnnkit layer classes, and every weight's shape,
    dtype and size is checked against the config before anything is allocated. A
    truncated, modified or crafted file raises ModelFileError (a ValueError).
    """
    from ._training import keras_files

    if keras_files.sniff(filepath) is not None:
        return keras_files.load_model(filepath, compile=compile)
    return saving.load_model(filepath, compile=compile)


ModelFileError = saving.ModelFileError

__all__ = [
    "Functional",
    "Model",
    "ModelFileError",
    "ModelStream",
    "NonFiniteLossWarning",
    "Sequential",
    "load_model",
]
__getattr__ = missing_attribute(__name__, __all__)
