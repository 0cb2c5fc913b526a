"""PyTorch-shaped recurrent modules on numpy arrays: ``rnnkit.LSTM``, ``rnnkit.GRU`` and
``rnnkit.RNN``."""

from __future__ import annotations

import math
from typing import Any, TypeVar, Union

import numpy as np

from . import _core, _random
from ._activations import ActivationSpec, activation_params, normalize_activation
from ._checks import (
    MAX_ELEMENTS,
    as_float_array,
    check_dtype,
    check_elements,
    check_float,
    check_int,
    is_bfloat16,
    shape_str,
)
from .streams import Stream, StreamBank

Array = np.ndarray
LSTMState = tuple[Array, Array]
_Module = TypeVar("_Module", bound="_RNNBase")


class _RNNBase:
    """What LSTM, GRU and RNN share: parameters, checks, forward, backward and state dicts."""

    _cell = ""
    _gates = 0

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        dtype: Any = "float32",
        *,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        cell_activation: Any = None,
        peephole: bool = False,
        reset_after: bool = True,
        clip: float | None = None,
        input_forget: bool = False,
        reverse: bool = False,
        seed: int | None = None,
    ) -> None:
        name = self._cell
        self.input_size = check_int(name, "input_size", input_size, 1)
        self.hidden_size = check_int(name, "hidden_size", hidden_size, 1)
        self.num_layers = check_int(name, "num_layers", num_layers, 1)
        self.proj_size = check_int(name, "proj_size", proj_size, 0)
        if self.proj_size >= self.hidden_size:
            raise ValueError(
                f"[{name}] proj_size must be smaller than hidden_size ({self.hidden_size}); "
                f"got {self.proj_size}"
            )
        for flag, value in (
            ("bias", bias),
            ("batch_first", batch_first),
            ("bidirectional", bidirectional),
            ("peephole", peephole),
            ("reset_after", reset_after),
            ("input_forget", input_forget),
            ("reverse", reverse),
        ):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"[{name}] {flag} must be a bool; got {value!r}")
        dropout = check_float(name, "dropout", dropout, 0.0, 1.0)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        if reverse and bidirectional:
            raise ValueError(
                f"[{name}] reverse=True runs one direction backwards in time; "
                "bidirectional=True already runs both (pass one of them)"
            )
        if clip is not None:
            if isinstance(clip, (bool, np.bool_)) or not isinstance(clip, (int, float)):
                raise TypeError(f"[{name}] clip must be None or a positive number; got {clip!r}")
            if not (math.isfinite(clip) and clip > 0):
                raise ValueError(f"[{name}] clip must be None or a positive number; got {clip}")
        self.peephole = bool(peephole)
        self.reset_after = bool(reset_after)
        self.input_forget = bool(input_forget)
        self.reverse = bool(reverse)
        self.clip: float | None = None if clip is None else float(clip)
        self.activation: ActivationSpec = normalize_activation(name, "activation", activation)
        self.recurrent_activation: ActivationSpec = normalize_activation(
            name, "recurrent_activation", recurrent_activation
        )
        self.cell_activation: ActivationSpec | None = (
            None
            if cell_activation is None
            else normalize_activation(name, "cell_activation", cell_activation)
        )
        bf16 = is_bfloat16(dtype)
        self.dtype = check_dtype(name, "float32" if bf16 else dtype)
        self.weight_dtype = "bfloat16" if bf16 else str(self.dtype)
        self.training = not bf16
        self._rng = _random.make(seed)
        self._params: dict[str, Array] = {}
        sizes = (
            f"input_size={self.input_size}, hidden_size={self.hidden_size}"
            + (f", proj_size={self.proj_size}" if self.proj_size else "")
            + (f", num_layers={self.num_layers}" if self.num_layers > 1 else "")
        )
        shapes = self._param_shapes()
        for key, shape in shapes:
            check_elements(name, key, shape, sizes)
        total = sum(math.prod(s) for _, s in shapes)
        if total > MAX_ELEMENTS:
            raise ValueError(
                f"[{name}] {sizes}: the parameters would hold {total:.3g} elements; rnnkit "
                f"refuses modules over rnnkit.MAX_ELEMENTS = {MAX_ELEMENTS} parameters"
            )
        try:
            for key, shape in shapes:
                k = 1.0 / math.sqrt(self.hidden_size)
                self._params[key] = self._rng.uniform(-k, k, size=shape).astype(self.dtype)
                if bf16:
                    self._params[key] = _core.round_bf16(self._params[key])
            self._grads = {k: np.zeros_like(v) for k, v in self._params.items()}
        except MemoryError:
            raise MemoryError(
                f"[{name}] {sizes}: not enough memory for {total:.3g} parameters "
                f"({2 * total * self.dtype.itemsize / 2**30:.3g} GiB with their gradients)"
            ) from None
        self._cache: tuple[Any, dict[str, Any]] | None = None
        self._build_core()
        if bf16:
            self._set_frozen(True)

    # ----------------------------------------------------------------- structure

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Hout: proj_size if set, else hidden_size."""
        return self.proj_size or self.hidden_size

    def _param_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """State-dict keys and shapes in PyTorch's order."""
        G, H, Ho = self._gates * self.hidden_size, self.hidden_size, self.output_size
        out: list[tuple[str, tuple[int, ...]]] = []
        for layer in range(self.num_layers):
            fan_in = self.input_size if layer == 0 else self.num_directions * Ho
            for d in range(self.num_directions):
                sfx = f"l{layer}" + ("_reverse" if d else "")
                out += [(f"weight_ih_{sfx}", (G, fan_in)), (f"weight_hh_{sfx}", (G, Ho))]
                if self.bias:
                    out += [(f"bias_ih_{sfx}", (G,)), (f"bias_hh_{sfx}", (G,))]
                if self.proj_size:
                    out += [(f"weight_hr_{sfx}", (Ho, H))]
                if self.peephole:
                    out += [(f"weight_peephole_{sfx}", (3 * H,))]
        return out

    def _build_core(self) -> None:
        cls = _core.RNNf32 if self.dtype == np.float32 else _core.RNNf64
        self._core = cls(
            self._cell,
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.bidirectional,
            self.proj_size,
            self.bias,
            self.reset_after,
            self.peephole,
            activation_params(self._cell, "activation", self.activation),
            activation_params(self._cell, "recurrent_activation", self.recurrent_activation),
            list(self._params.values()),
            cell_activation=None
            if self.cell_activation is None
            else activation_params(self._cell, "cell_activation", self.cell_activation),
            clip=self.clip or 0.0,
            input_forget=self.input_forget,
            reverse=self.reverse,
        )

    # ----------------------------------------------------------------- modes, params

    def train(self, mode: bool = True) -> _RNNBase:
        """Training mode: forward keeps what backward needs; dropout between layers is on.

        ``train(False)`` is ``eval()``. A module with bfloat16 weights is inference-only:
        ``train()`` raises until ``float()``.
        """
        if mode and self.weight_dtype == "bfloat16":
            raise RuntimeError(
                f"[{self._cell}.train] bfloat16 weights are for inference only; "
                "call .float() first to train in float32"
            )
        self.training = bool(mode)
        self._set_frozen(not self.training)
        return self

    def bfloat16(self) -> _RNNBase:
        """Switch to bfloat16 weights for inference, in place; returns the module.

        Every parameter is rounded to the nearest bfloat16 (ties to even, as
        ``torch.Tensor.bfloat16``) and kept as float32 arrays holding those values; the
        module goes to eval mode. Activations, states and accumulation stay float32; the
        recurrent weights are streamed from a bfloat16 copy at half the bytes, giving the
        same outputs, bit for bit, as a float32 module holding the rounded weights.
        ``float()`` switches back (the weights stay rounded).
        """
        if self.dtype != np.float32:
            raise TypeError(
                f"[{self._cell}.bfloat16] needs a float32 module; this one is {self.dtype}"
            )
        self.weight_dtype = "bfloat16"
        self.training = False
        for p in self._params.values():
            p.flags.writeable = True
            np.copyto(p, _core.round_bf16(p))
        self._set_frozen(True)
        return self

    def float(self) -> _RNNBase:
        """Back to float32 weights (after ``bfloat16()``), in place; returns the module.

        The values stay as they are; the module keeps its mode. Raises for a float64 module.
        """
        if self.dtype != np.float32:
            raise TypeError(f"[{self._cell}.float] this module is {self.dtype}, not float32")
        self.weight_dtype = "float32"
        self._set_frozen(not self.training)
        return self

    def eval(self) -> _RNNBase:
        """Inference mode: no cache, no dropout, and the fast path.

        The recurrent weights are repacked once for the SIMD kernels, and the parameter
        arrays become read-only until ``train()``, so that the packs can never go stale.
        """
        return self.train(False)

    def _set_frozen(self, frozen: bool) -> None:
        for p in self._params.values():
            p.flags.writeable = not frozen
        if frozen:
            self._cache = None
            self.__dict__.pop("_spare_cache", None)
            # whether the active kernels stream packed weights (not on the baseline build)
            self._packed = self._core.freeze(self.weight_dtype == "bfloat16")
        else:
            self._core.thaw()
            self._packed = False

    def named_parameters(self) -> dict[str, Array]:
        """The live parameter arrays, keyed like ``state_dict``; update them in place only.

        They are read-only in eval mode (see ``eval``).
        """
        return dict(self._params)

    def parameters(self) -> list[Array]:
        return list(self._params.values())

    @property
    def grads(self) -> dict[str, Array]:
        """Accumulated parameter gradients, keyed like ``state_dict``."""
        return dict(self._grads)

    def zero_grad(self) -> None:
        for g in self._grads.values():
            g.fill(0)

    def num_parameters(self) -> int:
        return sum(p.size for p in self._params.values())

    def state_dict(self) -> dict[str, Array]:
        """Copies of the parameters with PyTorch's keys and shapes."""
        return {k: v.copy() for k, v in self._params.items()}

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> None:
        """Copy parameters in. Every key and shape is checked before anything changes.

        Values are cast to the module's dtype (as ``torch.Tensor.copy_`` does); torch tensors
        are accepted. With ``strict=False`` missing keys keep their values and extra keys
        are ignored; mis-shaped keys always raise. Everything is validated and converted
        before the first weight changes, so a rejected call changes nothing.

        In eval and bfloat16 modes it may run while other threads call the module: the new
        weights are swapped in as one snapshot, and each running call uses the old or the new
        weights, never a mix. In training mode, serialize it with the module's calls.
        """
        name = self._cell
        if not isinstance(state_dict, dict):
            raise TypeError(
                f"[{name}.load_state_dict] expected a dict; got {type(state_dict).__name__}"
            )
        missing = [k for k in self._params if k not in state_dict]
        extra = [k for k in state_dict if k not in self._params]
        if strict and (missing or extra):
            raise ValueError(
                f"[{name}.load_state_dict] keys do not match: missing {missing}, unexpected {extra}"
            )
        # Validate and convert every value first; only then write (nothing else can fail), so a
        # rejected call leaves the module bitwise unchanged, in its mode.
        staged = {}
        for key, target in self._params.items():
            if key not in state_dict:
                continue
            staged[key] = self._convert_param(key, state_dict[key], target.shape)
        for key, arr in staged.items():
            target = self._params[key]
            target.flags.writeable = True
            np.copyto(target, arr)
        self._set_frozen(not self.training)

    def _convert_param(self, key: str, value: Any, shape: tuple[int, ...]) -> Array:
        """A state-dict value as a new array of the module's dtype and ``shape`` (rounded to
        bfloat16 for a bfloat16 module), or TypeError/ValueError naming the key."""
        owner = f"{self._cell}.load_state_dict"
        if hasattr(value, "detach") and hasattr(value, "numpy"):
            if str(value.dtype) == "torch.bfloat16":  # numpy has no bfloat16
                value = value.float()
            value = value.detach().cpu().numpy()
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as e:
            raise TypeError(f"[{owner}] {key} must be an array; got {type(value).__name__}") from e
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"[{owner}] {key} has dtype {arr.dtype}; expected floats")
        if arr.shape != shape:
            raise ValueError(
                f"[{owner}] {key} has shape {shape_str(arr.shape)}; expected {shape_str(shape)}"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            out = arr.astype(self.dtype)  # always a copy: the caller's array is not kept
            if self.weight_dtype == "bfloat16":
                out = _core.round_bf16(out)
            grew = ~np.isfinite(out) & np.isfinite(arr)
        if grew.any():
            bad = float(arr[grew].flat[0])
            raise ValueError(
                f"[{owner}] {key} holds {bad!r}, outside the range of this module's "
                f"{self.weight_dtype} weights (|x| <= {float(np.finfo(self.dtype).max):.4g}); "
                "nothing was loaded"
            )
        return out

    # ----------------------------------------------------------------- checks

    def _check_x(self, x: Any) -> tuple[Array, bool]:
        """x as a time-major C-contiguous (T, B, I) array, and whether it was unbatched."""
        name = self._cell
        x = as_float_array(name, "x", x, self.dtype)
        I = self.input_size
        if x.ndim == 2:
            if x.shape[1] != I or x.shape[0] < 1:
                raise ValueError(
                    f"[{name}] x has shape {shape_str(x.shape)}; expected unbatched (time, {I})"
                )
            self._check_output_size(x.shape[0], 1, x.shape)
            return np.ascontiguousarray(x[:, None, :]), True
        layout = f"(batch, time, {I})" if self.batch_first else f"(time, batch, {I})"
        if x.ndim != 3:
            raise ValueError(
                f"[{name}] x has {x.ndim} dims; expected {layout} or unbatched (time, {I})"
            )
        if x.shape[2] != I:
            raise ValueError(f"[{name}] x has shape {shape_str(x.shape)}; expected {layout}")
        if 0 in x.shape:
            raise ValueError(
                f"[{name}] x has shape {shape_str(x.shape)}; batch and time must be >= 1"
            )
        if self.batch_first:
            x = x.transpose(1, 0, 2)
        self._check_output_size(x.shape[0], x.shape[1], x.shape)
        return np.ascontiguousarray(x), False

    def _check_output_size(self, T: int, B: int, x_shape: tuple[int, ...]) -> None:
        """Refuse, before the input is copied, a call whose output y would be absurd."""
        check_elements(
            self._cell,
            "y",
            (T, B, self.num_directions * self.output_size),
            f"x of shape {shape_str(x_shape)}",
        )

    def _check_state(
        self, name: str, value: Any, width: int, B: int, unbatched: bool
    ) -> Array | None:
        if value is None:
            return None
        a = as_float_array(self._cell, name, value, self.dtype)
        LD = self.num_layers * self.num_directions
        expected = (LD, width) if unbatched else (LD, B, width)
        if a.shape != expected:
            batch = "" if unbatched else "batch, "
            size = "hidden_size" if width == self.hidden_size else "proj_size"
            raise ValueError(
                f"[{self._cell}] {name} has shape {shape_str(a.shape)}; "
                f"expected {shape_str(expected)} (num_layers*num_directions, {batch}{size})"
            )
        return np.ascontiguousarray(a.reshape(LD, B, width))

    def _check_lengths(self, lengths: Any, T: int, B: int, unbatched: bool) -> Array | None:
        if lengths is None:
            return None
        name = self._cell
        if hasattr(lengths, "detach") and hasattr(lengths, "numpy"):
            lengths = lengths.detach().cpu().numpy()
        a = np.asarray(lengths)
        if unbatched and a.ndim == 0:
            a = a.reshape(1)
        if a.dtype.kind not in "iu":
            raise TypeError(f"[{name}] lengths must be integers; got dtype {a.dtype}")
        if a.shape != (B,):
            raise ValueError(
                f"[{name}] lengths has shape {shape_str(a.shape)}; "
                f"expected ({B},), one per sequence"
            )
        if a.min() < 1 or a.max() > T:
            raise ValueError(
                f"[{name}] lengths must be in 1..{T} (the time steps of x); "
                f"got min {a.min()}, max {a.max()}"
            )
        return np.ascontiguousarray(a, dtype=np.int32)

    def _from_time_major(self, y: Array, unbatched: bool) -> Array:
        if unbatched:
            return y[:, 0, :]
        if self.batch_first:
            return np.ascontiguousarray(y.transpose(1, 0, 2))
        return y

    def _to_time_major(self, name: str, dy: Any, meta: dict[str, Any]) -> Array:
        a = as_float_array(self._cell, name, dy, self.dtype)
        if a.shape != meta["y_shape"]:
            raise ValueError(
                f"[{self._cell}.backward] {name} has shape {shape_str(a.shape)}; expected "
                f"{shape_str(meta['y_shape'])}, the shape of the forward's output"
            )
        if meta["unbatched"]:
            a = a[:, None, :]
        elif self.batch_first:
            a = a.transpose(1, 0, 2)
        return np.ascontiguousarray(a)

    # ----------------------------------------------------------------- compute

    def _run(
        self,
        x: Any,
        h0: Any,
        c0: Any,
        lengths: Any,
        h_masks: Array | None = None,
        x_masks: Array | None = None,
    ) -> tuple[Array, Array, Array | None]:
        """The forward of every call. Training only, the Keras layers' dropout: ``h_masks``
        (num_layers*num_directions, gates, B, Hout), gate q's recurrent product reading
        ``h * h_masks[ld, q]`` (``recurrent_dropout``); ``x_masks`` (num_directions, gates,
        B, input_size), gate q's input projection in the first layer reading
        ``x * x_masks[d, q]`` (``dropout`` beside ``recurrent_dropout``). Time-major order
        of B as x's."""
        xt, unbatched = self._check_x(x)
        T, B = xt.shape[0], xt.shape[1]
        h0a = self._check_state("h0", h0, self.output_size, B, unbatched)
        c0a = (
            self._check_state("c0", c0, self.hidden_size, B, unbatched)
            if self._cell == "LSTM"
            else None
        )
        lens = self._check_lengths(lengths, T, B, unbatched)
        masks = None
        if self.training and self.dropout > 0 and self.num_layers > 1:
            keep = 1.0 - self.dropout
            shape = (self.num_layers - 1, T, B, self.num_directions * self.output_size)
            masks = (self._rng.random(shape) < keep).astype(self.dtype) / self.dtype.type(keep)
        # A training forward reuses the memory of the last finished (or abandoned) cache.
        spare = self.__dict__.pop("_spare_cache", None)
        if self.training and spare is None and self._cache is not None:
            spare = self._cache[0]
        self._cache = None
        y, hn, cn, cache = self._core.forward(
            xt, h0a, c0a, lens, masks, self.training, spare, h_masks=h_masks, x_masks=x_masks
        )
        y = self._from_time_major(y, unbatched)
        if unbatched:
            hn = hn[:, 0, :]
            cn = cn[:, 0, :] if cn is not None else None
        if self.training:
            meta = {
                "unbatched": unbatched,
                "y_shape": y.shape,
                "h_shape": hn.shape,
                "c_shape": None if cn is None else cn.shape,
            }
            self._cache = (cache, meta)
        return y, hn, cn

    def _backward(
        self, dy: Any, dhn: Any, dcn: Any, need_dx: bool = True
    ) -> tuple[Array | None, Array, Array | None]:
        """Backward through the last training forward; with ``need_dx=False`` the input
        gradient is neither computed nor returned (None): the first layer of a model."""
        name = self._cell
        if self._cache is None:
            raise ValueError(
                f"[{name}.backward] no forward to differentiate: call the module in training mode "
                "(m.train()) before backward; each forward supports one backward"
            )
        cache, meta = self._cache
        dyt = self._to_time_major("dy", dy, meta)
        unbatched = meta["unbatched"]
        B = dyt.shape[1]

        def state_grad(label: str, value: Any, shape: tuple[int, ...], width: int) -> Array | None:
            if value is None:
                return None
            a = as_float_array(name, label, value, self.dtype)
            if a.shape != shape:
                raise ValueError(
                    f"[{name}.backward] {label} has shape {shape_str(a.shape)}; "
                    f"expected {shape_str(shape)}"
                )
            return np.ascontiguousarray(a.reshape(-1, B, width))

        dh = state_grad("dh_n", dhn, meta["h_shape"], self.output_size)
        dc = state_grad("dc_n", dcn, meta["c_shape"], self.hidden_size) if dcn is not None else None
        dx, dh0, dc0 = self._core.backward(
            cache, dyt, dh, dc, list(self._grads.values()), need_dx=need_dx
        )
        self._cache = None
        self._spare_cache = cache
        if dx is not None:
            dx = self._from_time_major(dx, unbatched)
        if unbatched:
            dh0 = dh0[:, 0, :]
            dc0 = dc0[:, 0, :] if dc0 is not None else None
        return dx, dh0, dc0

    # ----------------------------------------------------------------- streams

    def stream(self, batch: int = 1) -> Stream:
        """A :class:`rnnkit.Stream` of ``batch`` sequences: ``s.step(x_t)`` one step at a time,
        the state kept in the core. Needs eval mode and a module that reads time forwards.

        T steps equal one call ``m(x)`` over the T steps, bit for bit.
        """
        return Stream(self, batch)

    def streams(self, capacity: int) -> StreamBank:
        """A :class:`rnnkit.StreamBank` of up to ``capacity`` independent streams, stepped any
        subset at a time: ``bank.step(ids, x)``. Needs eval mode and a module that reads time
        forwards."""
        return StreamBank(self, capacity)

    # ----------------------------------------------------------------- PyTorch modules

    @classmethod
    def from_torch(cls: type[_Module], module: Any) -> _Module:
        """The rnnkit module equal to a live ``torch.nn.LSTM``/``GRU`` (``RNN``): one line.

        Copies every constructor option (num_layers, bias, batch_first, dropout,
        bidirectional, proj_size, nonlinearity), the dtype (float32, float64, or bfloat16
        weights for inference), the weights and the train/eval mode. The module may live on
        any device; its weights are copied to numpy.
        """
        from ._torch import from_torch

        return from_torch(cls, module)

    def to_torch(self) -> Any:
        """The equal ``torch.nn`` module (same options, weights and mode); needs torch.

        Options torch lacks (activations other than PyTorch's, peepholes, GRU
        ``reset_after=False``) raise ValueError naming them.
        """
        from ._torch import to_torch

        return to_torch(self)

    # ----------------------------------------------------------------- pickling, repr

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_core"]
        state["_cache"] = None
        state.pop("_spare_cache", None)
        if not self.training:  # inference: gradients are not part of the model (zeros on load)
            state["_grads"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("weight_dtype", str(state["dtype"]))
        # Unpickled arrays may be read-only views of the pickle's bytes: own them, so that
        # training mode can make them writeable.
        state["_params"] = {k: np.array(v, copy=True) for k, v in state["_params"].items()}
        grads = state.get("_grads") or {}
        state["_grads"] = {
            k: np.array(grads[k], copy=True) if k in grads else np.zeros_like(v)
            for k, v in state["_params"].items()
        }
        for key, default in (
            ("cell_activation", None),
            ("clip", None),
            ("input_forget", False),
            ("reverse", False),
        ):
            state.setdefault(key, default)
        self.__dict__.update(state)
        self._build_core()
        self._set_frozen(not self.training)

    def __repr__(self) -> str:
        opts = [f"{self.input_size}", f"{self.hidden_size}"]
        if self.num_layers != 1:
            opts.append(f"num_layers={self.num_layers}")
        if not self.bias:
            opts.append("bias=False")
        if self.batch_first:
            opts.append("batch_first=True")
        if self.dropout:
            opts.append(f"dropout={self.dropout}")
        if self.bidirectional:
            opts.append("bidirectional=True")
        if self.proj_size:
            opts.append(f"proj_size={self.proj_size}")
        if self.clip is not None:
            opts.append(f"clip={self.clip}")
        if self.input_forget:
            opts.append("input_forget=True")
        if self.reverse:
            opts.append("reverse=True")
        if self.weight_dtype != "float32":
            opts.append(f"dtype='{self.weight_dtype}'")
        return f"{self._cell}({', '.join(opts)})"


class LSTM(_RNNBase):
    r"""A multi-layer LSTM over numpy arrays, with PyTorch's constructor, call and state dict.

    For each layer, direction and step (gate rows i, f, g, o)::

        i = ract(W_i x + b_ii + U_i h + b_hi)     f = ract(W_f x + b_if + U_f h + b_hf)
        g = act(W_g x + b_ig + U_g h + b_hg)      o = ract(W_o x + b_io + U_o h + b_ho)
        c' = f * c + i * g                        h' = o * cact(c')
        (with proj_size: h' = W_hr (o * cact(c')))

    with ``act = activation`` (tanh), ``ract = recurrent_activation`` (sigmoid) and ``cact =
    cell_activation`` (None: the same as ``activation``); ONNX calls them g, f and h. With
    ``peephole=True`` (ONNX), i and f also see ``p * c`` and o sees ``p * c'``.

    Parameters
    ----------
    input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size
        As ``torch.nn.LSTM``. Dropout applies between layers, in training mode only.
    dtype : {"float32", "float64", "bfloat16"}
        Precision of parameters and computation. Inputs are converted only when exact
        (float16 -> float32/64, float32 -> float64); float64 input into a float32 module
        raises TypeError, as PyTorch does. ``"bfloat16"``: weights rounded to bfloat16,
        float32 activations and accumulation, inference only (see ``bfloat16()``).
    activation, recurrent_activation, cell_activation : str or tuple
        Any of rnnkit's activations in any slot: a name (``"tanh"``, ``"relu"``,
        ``"sigmoid"``, ``"linear"``, ``"hard_sigmoid"``, ``"affine"``, ``"leaky_relu"``,
        ``"thresholded_relu"``, ``"scaled_tanh"``, ``"elu"``, ``"softsign"``,
        ``"softplus"``) or ``(name, alpha[, beta])``; see docs/api.md for the formulas and
        defaults. ``hard_sigmoid(x) = clip(x / 6 + 1/2, 0, 1)`` by default (Keras 3). The
        attributes keep the normal form: the name, or ``(name, alpha, beta)``.
    peephole : bool
        Adds ``weight_peephole_l{k}`` (3H,), order i, f, o.
    clip : float, optional
        ONNX ``clip``: every gate pre-activation (the input of ract and act) is clipped to
        [-clip, clip] before its activation, as ONNX Runtime does (c' is not clipped).
    input_forget : bool
        ONNX ``input_forget``: couples the gates, f = 1 - i. The f rows of the weights,
        biases and peepholes stay in the state dict (so ONNX weights load unchanged) but are
        unused; their gradients are zero.
    reverse : bool
        Run each sequence from its last step (its own, with ``lengths``) to its first: ONNX
        ``direction="reverse"``. y stays in the original time order (y[t] is the state after
        x[t..len-1]). Only with ``bidirectional=False``.
    seed : int, optional
        Seeds initialization (uniform in ±1/sqrt(H), as PyTorch) and dropout.

    Shapes (L layers, D directions, Hout = proj_size or H)::

        x: (T, B, I) or (B, T, I) if batch_first, or unbatched (T, I)
        y: (T, B, D*Hout) / (B, T, D*Hout);   h_n: (L*D, B, Hout);   c_n: (L*D, B, H)

    Examples
    --------
    >>> m = LSTM(32, 128, num_layers=2, batch_first=True).eval()
    >>> y, (h_n, c_n) = m(np.zeros((4, 100, 32), np.float32))
    """

    _cell = "LSTM"
    _gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        dtype: Any = "float32",
        *,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        cell_activation: Any = None,
        peephole: bool = False,
        clip: float | None = None,
        input_forget: bool = False,
        reverse: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            dtype,
            activation=activation,
            recurrent_activation=recurrent_activation,
            cell_activation=cell_activation,
            peephole=peephole,
            clip=clip,
            input_forget=input_forget,
            reverse=reverse,
            seed=seed,
        )

    def forward(
        self, x: Any, hx: tuple[Any, Any] | None = None, lengths: Any = None
    ) -> tuple[Array, LSTMState]:
        """Run the stack. ``hx = (h0, c0)``, either may be None (zeros).

        ``lengths`` (B,) in 1..T gives each sequence's length: outputs past it are zero, its
        final state is taken at its last step, and the reverse direction starts there.
        Returns ``y, (h_n, c_n)``.
        """
        h0 = c0 = None
        if hx is not None:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("[LSTM] hx must be a tuple (h0, c0)")
            h0, c0 = hx
        y, hn, cn = self._run(x, h0, c0, lengths)
        assert cn is not None
        return y, (hn, cn)

    __call__ = forward

    def backward(
        self, dy: Any, dstate: tuple[Any, Any] | None = None
    ) -> tuple[Array, tuple[Array, Array]]:
        """Backpropagate through the last training-mode forward.

        ``dy`` has y's shape; ``dstate = (dh_n, dc_n)``, either may be None (zeros).
        Adds the parameter gradients into ``grads`` and returns ``dx, (dh0, dc0)``.
        """
        dhn = dcn = None
        if dstate is not None:
            if not isinstance(dstate, (tuple, list)) or len(dstate) != 2:
                raise TypeError("[LSTM.backward] dstate must be a tuple (dh_n, dc_n)")
            dhn, dcn = dstate
        dx, dh0, dc0 = self._backward(dy, dhn, dcn)
        assert dx is not None and dc0 is not None
        return dx, (dh0, dc0)


class _HiddenStateRNN(_RNNBase):
    """The call and backward of the cells whose only state is h (GRU, RNN)."""

    def forward(self, x: Any, h0: Any = None, lengths: Any = None) -> tuple[Array, Array]:
        """Run the stack from ``h0`` (None: zeros). Returns ``y, h_n``. ``lengths`` as LSTM."""
        y, hn, _ = self._run(x, h0, None, lengths)
        return y, hn

    __call__ = forward

    def backward(self, dy: Any, dh_n: Any = None) -> tuple[Array, Array]:
        """Backpropagate through the last training-mode forward; returns ``dx, dh0``."""
        dx, dh0, _ = self._backward(dy, dh_n, None)
        assert dx is not None
        return dx, dh0


class GRU(_HiddenStateRNN):
    r"""A multi-layer GRU over numpy arrays, with PyTorch's constructor, call and state dict.

    For each layer, direction and step (gate rows r, z, n)::

        r = ract(W_r x + b_ir + U_r h + b_hr)     z = ract(W_z x + b_iz + U_z h + b_hz)
        n = act(W_n x + b_in + r * (U_n h + b_hn))      reset_after=True (PyTorch, Keras default)
        n = act(W_n x + b_in + U_n (r * h) + b_hn)      reset_after=False (Cho et al., ONNX default)
        h' = (1 - z) * n + z * h

    Cho et al. write the update as ``h' = (1 - z) * h + z * n``: the same cell with z
    replaced by 1 - z (swap the sign of the z rows of W, U and both z biases).

    Parameters are as :class:`LSTM` without ``proj_size``, ``peephole``, ``cell_activation``
    and ``input_forget``, plus ``reset_after``; ``clip`` bounds the inputs of ract and act
    (all of n's, ``r * (...)`` included). Shapes: x as LSTM; y (T, B, D*H); h_n (L*D, B, H).
    """

    _cell = "GRU"
    _gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = "float32",
        *,
        reset_after: bool = True,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        clip: float | None = None,
        reverse: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            dtype,
            activation=activation,
            recurrent_activation=recurrent_activation,
            reset_after=reset_after,
            clip=clip,
            reverse=reverse,
            seed=seed,
        )

    def __repr__(self) -> str:
        base = super().__repr__()
        return base if self.reset_after else base[:-1] + ", reset_after=False)"


class RNN(_HiddenStateRNN):
    r"""A multi-layer Elman RNN over numpy arrays, shaped like ``torch.nn.RNN``.

    For each layer, direction and step: ``h' = act(W x + b_ih + U h + b_hh)``, with ``act``
    the ``nonlinearity`` ("tanh" or "relu", as PyTorch), or ``activation`` when given (any
    of rnnkit's activations, as :class:`LSTM`; ONNX RNN's f), which overrides it.

    State dict as PyTorch: ``weight_ih_l{k}`` (H, in), ``weight_hh_l{k}`` (H, H),
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (H,), ``_reverse`` suffixes for the second
    direction. ``clip`` bounds act's input (ONNX), ``reverse`` as :class:`LSTM`. Call
    ``y, h_n = m(x, h0=None, lengths=None)``; shapes as :class:`GRU`.
    """

    _cell = "RNN"
    _gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = "float32",
        *,
        activation: Any = None,
        clip: float | None = None,
        reverse: bool = False,
        seed: int | None = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"[RNN] nonlinearity must be 'tanh' or 'relu' (or pass activation=); "
                f"got {nonlinearity!r}"
            )
        self.nonlinearity = nonlinearity
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            dtype,
            activation=nonlinearity if activation is None else activation,
            clip=clip,
            reverse=reverse,
            seed=seed,
        )

    def __repr__(self) -> str:
        base = super().__repr__()
        if self.activation != self.nonlinearity:
            return base[:-1] + f", activation={self.activation!r})"
        return base if self.nonlinearity == "tanh" else base[:-1] + ", nonlinearity='relu')"


RNNModule = Union[LSTM, GRU, RNN]
