"""Streaming inference: recurrent state held in the core between calls.

``s = m.stream(batch=1)`` on an ``rnnkit.LSTM``/``GRU``/``RNN`` in eval mode gives a
:class:`Stream`: ``s.step(x_t)`` advances every layer by one time step, ``s.run(x)`` by several,
and the state stays in the core. ``bank = m.streams(capacity=N)`` gives a :class:`StreamBank`:
N independent streams in one buffer, any subset stepped by id in one batched core call
(gather, step, scatter in C++), for services where sessions come and go.

A stream's steps are the steps of the sequence call: T calls of ``step`` give, bit for bit,
the outputs and final state of one ``m(x)`` over the T steps (every cell, option, dtype and
instruction set). A bank stepping ids ``[a, b, c]`` computes exactly as a batch of those three
rows in that order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

import numpy as np

from ._checks import as_float_array, check_int, shape_str

if TYPE_CHECKING:
    from ._rnn import _RNNBase

Array = np.ndarray
State = Union[Array, tuple[Array, Array]]


def _require_streamable(module: _RNNBase, what: str) -> None:
    name = f"{module._cell}.{what}"
    if module.bidirectional:
        raise ValueError(
            f"[{name}] a bidirectional module cannot stream: its reverse direction reads the "
            "future of the sequence (not causal). Stream a unidirectional module."
        )
    if getattr(module, "reverse", False):
        raise ValueError(
            f"[{name}] a module with reverse=True cannot stream: it runs from each sequence's "
            "last step to its first (not causal)"
        )
    if module.training:
        raise RuntimeError(
            f"[{name}] the module is in training mode; streams run in inference mode: call "
            ".eval() on it first (the weights become read-only and are packed once)"
        )


class _Converter:
    """The conversions of the slow path (inputs that are not already C-contiguous arrays of the
    module's dtype): the same rules as the module call."""

    def __init__(self, owner: str, dtype: np.dtype) -> None:
        self.owner = owner
        self.dtype = dtype

    def x(self, value: Any) -> Array:
        a = as_float_array(self.owner, "x", value, self.dtype)
        return np.require(a, self.dtype, ["C", "A"])

    def ids(self, value: Any) -> Array:
        if hasattr(value, "detach") and hasattr(value, "numpy"):
            value = value.detach().cpu().numpy()
        a = np.asarray(value)
        if a.dtype.kind not in "iu":
            raise TypeError(f"[{self.owner}] ids must be integers; got dtype {a.dtype}")
        if a.ndim != 1:
            raise ValueError(
                f"[{self.owner}] ids has shape {shape_str(a.shape)}; expected (n,), one id per row"
            )
        return np.require(a, np.int64, ["C", "A"])


class Stream:
    r"""One stream (a batch of B sequences) of a forward ``rnnkit.LSTM``/``GRU``/``RNN``.

    Made by ``m.stream(batch=B)`` on a module in eval mode. The state, one row of h (and c)
    per layer and sequence, lives in the core and starts at zero.

    Shapes (L layers, Hout = proj_size or H)::

        step:  x_t (B, I), or (I,) when B = 1  ->  y_t (B, Hout) / (Hout,)
        run:   x (T, B, I), or (B, T, I) if the module is batch_first, or (T, I) when B = 1
               ->  y with Hout in place of I
        state: LSTM (h (L, B, Hout), c (L, B, H)); GRU, RNN h (L, B, H)

    ``step(x_t)`` after ``run(x)`` (or any mix of them) continues the same sequences:
    the outputs equal, bit for bit, those of one module call over all the steps.

    Thread-safety: a stream is one object; two threads calling it at the same time get a
    ValueError in one of them (never mixed states). Use a :class:`StreamBank` to serve
    many sequences from many threads.
    """

    def __init__(self, module: _RNNBase, batch: int = 1) -> None:
        _require_streamable(module, "stream")
        self.module = module
        self.batch = check_int(f"{module._cell}.stream", "batch", batch, 1)
        self._convert = _Converter(f"{module._cell} stream", module.dtype)
        self._bank = module._core.stream_bank(self.batch, True, self._convert.x, self._convert.ids)

    def step(self, x: Any, out: Array | None = None) -> Array:
        """Advance every layer by one time step; returns the last layer's output.

        ``x`` (B, I), or (I,) for a stream of one sequence. ``out``: a C-contiguous array
        of the output's shape and the module's dtype to write into (no allocation).
        An array that is already C-contiguous in the module's dtype is read in place.
        """
        return self._bank.step_all(x, out)

    def run(self, x: Any) -> Array:
        """Advance by all time steps of ``x`` in one core call (the module's layout)."""
        m = self.module
        xt, unbatched = m._check_x(x)
        if xt.shape[1] != self.batch:
            raise ValueError(
                f"[{m._cell} stream] x holds a batch of {xt.shape[1]} sequences; this stream "
                f"has batch {self.batch}"
            )
        y = self._bank.run(xt)
        return m._from_time_major(y, unbatched)

    @property
    def state(self) -> State:
        """Copies of the state: LSTM ``(h, c)``, GRU ``h`` (see the class docstring)."""
        h, c = self._bank.get_state(-1)
        return h if c is None else (h, c)

    @state.setter
    def state(self, value: State) -> None:
        m = self.module
        L, B = m.num_layers, self.batch
        h, c = _split_state(m, value, f"{m._cell} stream")
        h = _state_array(m, "h", h, (L, B, m.output_size))
        c = None if c is None else _state_array(m, "c", c, (L, B, m.hidden_size))
        self._bank.set_state(-1, h, c)

    def reset(self) -> None:
        """Zero the state: the next step starts new sequences."""
        self._bank.reset(None)

    def __repr__(self) -> str:
        return f"<Stream of {self.module!r}, batch={self.batch}>"


class StreamBank:
    r"""The states of up to ``capacity`` independent streams of one module, in one core buffer.

    Made by ``m.streams(capacity=N)`` on a unidirectional module in eval mode. Streams are
    added and freed as sessions come and go; ``step(ids, x)`` advances exactly the streams
    ``ids`` by one time step in one batched core call (their states gathered, stepped as one
    batch, and scattered back in C++).

    Shapes (n ids, L layers, Hout = proj_size or H)::

        step:  ids (n,), x (n, I)  ->  y (n, Hout), row i for stream ids[i]
        state(id): LSTM (h (L, Hout), c (L, H)); GRU, RNN h (L, H)

    Thread-safety: several threads may step (reset, read, free) disjoint sets of ids of one
    bank at the same time; the core computes them concurrently when a step is large enough
    to release the GIL. A call that meets an id another call is using, an id given twice, or
    a free id raises ValueError naming it and changes nothing.
    """

    def __init__(self, module: _RNNBase, capacity: int) -> None:
        _require_streamable(module, "streams")
        self.module = module
        self.capacity = check_int(f"{module._cell}.streams", "capacity", capacity, 1)
        self._convert = _Converter("StreamBank", module.dtype)
        self._bank = module._core.stream_bank(
            self.capacity, False, self._convert.x, self._convert.ids
        )

    def add(self, count: int | None = None) -> Any:
        """Claim a free stream (zero state) and return its id; ``count``: that many, as an
        int64 array. Raises RuntimeError when the bank has no free streams left."""
        n = 1 if count is None else check_int("StreamBank.add", "count", count, 0)
        ids = []
        for _ in range(n):
            i = self._bank.add()
            if i < 0:
                if ids:
                    self._bank.release(np.array(ids, np.int64))
                raise RuntimeError(
                    f"[StreamBank.add] no free streams: {self.capacity - self.num_free} of "
                    f"{self.capacity} are in use and {n} were asked for; free() some, or make "
                    "a larger bank"
                )
            ids.append(i)
        return ids[0] if count is None else np.array(ids, np.int64)

    def free(self, ids: Any) -> None:
        """Release streams (an id or ids) for reuse by ``add``."""
        self._bank.release(np.atleast_1d(np.asarray(ids)))

    def step(self, ids: Any, x: Any, out: Array | None = None) -> Array:
        """Advance streams ``ids`` (n,) by one step with inputs ``x`` (n, I).

        Returns y (n, Hout) (or writes ``out``, a C-contiguous array of that shape and the
        module's dtype). int64 ids and C-contiguous inputs of the module's dtype are read
        in place.
        """
        return self._bank.step(ids, x, out)

    def reset(self, ids: Any = None) -> None:
        """Zero the states of ``ids`` (an id or ids; None: every stream in use)."""
        self._bank.reset(None if ids is None else np.atleast_1d(np.asarray(ids)))

    def state(self, id: int) -> State:
        """A copy of stream ``id``'s state: LSTM ``(h (L, Hout), c (L, H))``, GRU ``h (L, H)``."""
        h, c = self._bank.get_state(self._id(id, "state"))
        return h if c is None else (h, c)

    def set_state(self, id: int, state: State) -> None:
        """Set stream ``id``'s state (shapes as ``state(id)`` returns)."""
        m = self.module
        i = self._id(id, "set_state")
        h, c = _split_state(m, state, "StreamBank.set_state")
        h = _state_array(m, "h", h, (m.num_layers, m.output_size))[:, None]
        if c is not None:
            c = _state_array(m, "c", c, (m.num_layers, m.hidden_size))[:, None]
        # C-contiguous and aligned: the core reads them in place
        self._bank.set_state(
            i,
            np.require(h, requirements=["C", "A"]),
            None if c is None else np.require(c, requirements=["C", "A"]),
        )

    @property
    def num_free(self) -> int:
        """How many more streams ``add`` can claim."""
        return int(self._bank.num_free)

    @property
    def in_use(self) -> Array:
        """The ids of the streams in use, ascending (int64)."""
        return self._bank.in_use

    def __len__(self) -> int:
        return self.capacity - self.num_free

    def _id(self, id: Any, what: str) -> int:
        if isinstance(id, (bool, np.bool_)) or not isinstance(id, (int, np.integer)):
            raise TypeError(f"[StreamBank.{what}] id must be an int; got {type(id).__name__}")
        if not 0 <= id < self.capacity:
            raise ValueError(
                f"[StreamBank.{what}] id {id} is not a stream id of this bank "
                f"(0..{self.capacity - 1})"
            )
        return int(id)

    def __repr__(self) -> str:
        return f"<StreamBank of {self.module!r}, {len(self)} of {self.capacity} streams in use>"


def _split_state(m: _RNNBase, value: Any, owner: str) -> tuple[Any, Any]:
    if m._cell == "LSTM":
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise TypeError(f"[{owner}] an LSTM state is a tuple (h, c)")
        return value[0], value[1]
    return value, None


def _state_array(m: _RNNBase, name: str, value: Any, shape: tuple[int, ...]) -> Array:
    a = as_float_array(m._cell, name, value, m.dtype)
    if a.shape != shape:
        raise ValueError(
            f"[{m._cell} stream] state {name} has shape {shape_str(a.shape)}; "
            f"expected {shape_str(shape)}"
        )
    return np.require(a, m.dtype, ["C", "A"])
