"""``Sequential.stream()``: a Keras-shaped model run one time step at a time.

Every recurrent layer keeps its state in the core (an ``rnnkit.Stream`` of its core module);
Dense and Embedding apply to each step, Dropout is the identity (inference). The output of a
step is what the model outputs for the last time step of the sequence so far:
``predict(x)[:, t]`` for a model whose last recurrent layer returns sequences, else
``predict(x[:, : t + 1])``. Non-causal layers (Bidirectional, ``go_backwards``, RepeatVector,
Flatten over time) refuse with an error naming the layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .base import Layer, format_shape
from .core_layers import Dense, Dropout, Embedding, Flatten
from .recurrent import _RNN, GRU, LSTM, Bidirectional, SimpleRNN

if TYPE_CHECKING:
    from ..models import Sequential
    from ..streams import Stream

Array = np.ndarray


def _refuse(model: Sequential, layer: Layer, why: str) -> ValueError:
    return ValueError(
        f"[{model.name}.stream] layer {layer.name!r} ({type(layer).__name__}) {why}; a stream "
        "runs one time step at a time and needs every layer to be causal"
    )


class ModelStream:
    """One stream of ``batch`` sequences through a built :class:`~rnnkit.models.Sequential`.

    Shapes: ``step(x_t)`` takes one time step of the model's input, ``(B, F)`` (``(B,)``
    integer ids for an Embedding-first model), and returns ``(B, *output)``; ``run(x)`` takes
    ``(B, T, ...)`` and returns every step's output, ``(B, T, *output)``. ``state`` is a list,
    one entry per recurrent layer: ``[h, c]`` (LSTM) or ``h`` (GRU, SimpleRNN), each
    ``(B, units)``.

    The recurrent layers' outputs equal those of ``predict`` bit for bit; Dense layers apply
    numpy's matrix product to one step's rows instead of all steps' rows, which can differ
    in the last bits.
    """

    def __init__(self, model: Sequential, batch: int = 1) -> None:
        if not model.built:
            raise ValueError(
                f"[{model.name}.stream] the model is not built: give the first layer an "
                "input_shape (or start with Input(shape)), or call predict once"
            )
        shape = model.input_shape
        float_input = model._first_float()
        if len(shape) < (3 if float_input else 2):
            raise ValueError(
                f"[{model.name}.stream] the model's input {format_shape(shape)} has no time "
                "axis: expected (batch, time, features) (or (batch, time) token ids)"
            )
        self.model = model
        self.batch = int(batch)
        self._step_shape = tuple(shape[2:])  # one step of one sequence, without batch and time
        self._dtype = model.layers[0].dtype
        self._float_input = float_input
        self._fns: list[Callable[[Array], Array]] = []
        self._runs: list[Callable[[Array], Array]] = []
        self._streams: list[tuple[_RNN, Stream]] = []
        has_time = True
        for layer in model.layers:
            if isinstance(layer, Bidirectional):
                raise _refuse(model, layer, "reads the sequence backwards (not causal)")
            if isinstance(layer, _RNN):
                if not isinstance(layer, (LSTM, GRU, SimpleRNN)):
                    raise _refuse(model, layer, "cannot stream")
                if layer.go_backwards:
                    raise _refuse(model, layer, "has go_backwards=True (not causal)")
                layer.core.eval()
                s = layer.core.stream(self.batch)
                self._streams.append((layer, s))
                self._fns.append(s.step)
                self._runs.append(s.run)
                has_time = layer.return_sequences
            elif isinstance(layer, (Dense, Embedding)):
                if getattr(layer, "mask_zero", False):
                    raise _refuse(
                        model, layer, "has mask_zero=True (a stream takes every step it is given)"
                    )
                fn = self._per_step(layer)
                self._fns.append(fn)
                self._runs.append(fn)
            elif isinstance(layer, Dropout):
                continue  # identity at inference
            elif isinstance(layer, Flatten) and not has_time and len(layer.input_shape) == 2:
                continue  # (B, U) stays (B, U)
            else:
                raise _refuse(model, layer, "has no per-step form")
        if not self._streams:
            raise ValueError(f"[{model.name}.stream] the model has no recurrent layer to stream")

    @staticmethod
    def _per_step(layer: Dense | Embedding) -> Callable[[Array], Array]:
        if isinstance(layer, Embedding):

            def embed(ids: Array) -> Array:
                layer.check_indices(ids)
                return layer.forward(ids, False)

            return embed
        return lambda x: layer.forward(x, False)

    def _convert(self, x: Any, argument: str, time: bool) -> Array:
        owner = f"{self.model.name}.stream"
        if self._float_input:
            arr = np.asarray(x)
            if arr.dtype.kind not in "fiub":
                raise TypeError(f"[{owner}] {argument} must be numeric; got dtype {arr.dtype}")
            arr = np.ascontiguousarray(arr, dtype=self._dtype)
        else:
            from .base import _as_indices

            arr = np.ascontiguousarray(_as_indices(x, owner, argument))
        lead = (self.batch, arr.shape[1]) if time and arr.ndim >= 2 else (self.batch,)
        want = (*lead, *self._step_shape)
        ok = arr.shape[: len(lead)] == lead and arr.ndim == len(want)
        ok = ok and all(w is None or w == s for w, s in zip(want, arr.shape))
        if not ok or (time and arr.shape[1] < 1):
            dims = [str(self.batch), *(["time"] if time else [])]
            dims += ["any" if s is None else str(s) for s in self._step_shape]
            what = "several steps (batch, time, ...)" if time else "one step (batch, ...)"
            raise ValueError(
                f"[{owner}] {argument} has shape {format_shape(arr.shape)}; expected "
                f"({', '.join(dims)}): {what} for a stream of batch {self.batch}"
            )
        return arr

    def step(self, x: Any) -> Array:
        """One time step: ``x (B, F)`` (or ``(B,)`` ids) -> the model's output for it."""
        y = self._convert(x, "x", time=False)
        for fn in self._fns:
            y = fn(y)
        return y

    def run(self, x: Any) -> Array:
        """Several time steps: ``x (B, T, ...)`` -> every step's output ``(B, T, ...)``."""
        y = self._convert(x, "x", time=True)
        for fn in self._runs:
            y = fn(y)
        return y

    @property
    def state(self) -> list[Any]:
        """Copies of the recurrent layers' states: ``[h, c]`` (LSTM) or ``h``, (B, units) each."""
        out: list[Any] = []
        for layer, s in self._streams:
            st = s.state
            out.append([st[0][0], st[1][0]] if isinstance(layer, LSTM) else st[0])
        return out

    @state.setter
    def state(self, value: list[Any]) -> None:
        owner = f"{self.model.name}.stream"
        if not isinstance(value, (list, tuple)) or len(value) != len(self._streams):
            raise ValueError(
                f"[{owner}] state must be a list of {len(self._streams)} entries, one per "
                "recurrent layer"
            )
        staged = []
        for (layer, s), v in zip(self._streams, value):
            if isinstance(layer, LSTM):
                if not isinstance(v, (list, tuple)) or len(v) != 2:
                    raise ValueError(f"[{owner}] the state of LSTM {layer.name!r} is [h, c]")
                parts = [np.asarray(p, dtype=layer.dtype) for p in v]
            else:
                parts = [np.asarray(v, dtype=layer.dtype)]
            for p in parts:
                if p.shape != (self.batch, layer.units):
                    raise ValueError(
                        f"[{owner}] a state of {layer.name!r} has shape {format_shape(p.shape)}; "
                        f"expected ({self.batch}, {layer.units})"
                    )
            staged.append((s, [p[None] for p in parts]))
        for s, parts in staged:
            s.state = tuple(parts) if len(parts) == 2 else parts[0]

    def reset(self) -> None:
        """Zero every recurrent layer's state."""
        for _, s in self._streams:
            s.reset()

    def __repr__(self) -> str:
        return f"<ModelStream of {self.model.name!r}, batch={self.batch}>"
