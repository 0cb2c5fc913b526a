"""Keras-shaped recurrent layers over the core modules: LSTM, GRU, SimpleRNN, Bidirectional.

Each layer owns one ``rnnkit.LSTM``/``rnnkit.GRU``/``rnnkit.RNN`` core module
(``batch_first=True``, one layer, one or two directions) and never computes a cell itself:
forward and backward are single core calls over the whole sequence.

Weight layouts. Internally the core keeps PyTorch's layout (gate rows LSTM i,f,g,o; GRU
r,z,n). ``get_weights``/``set_weights`` speak Keras's: ``kernel (I, G·U)``,
``recurrent_kernel (U, G·U)``, LSTM ``bias (4U,)`` with blocks [i|f|c|o]; GRU blocks
[z|r|h] with ``bias (3U,)`` (``reset_after=False``) or ``(2, 3U)`` (``reset_after=True``:
row 0 input bias, row 1 recurrent bias); SimpleRNN ``kernel (I, U)``, ``recurrent_kernel
(U, U)``, ``bias (U,)``. Keras has one bias where PyTorch has two, so the
core's ``bias_hh`` is held at zero and left out of training, except for the GRU
``reset_after=True`` case, whose recurrent bias sits inside ``r ⊙ (U_h h + b_hh)`` and is
Keras's bias row 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import check_elements, check_float
from . import activations, initializers
from .base import Array, Layer, Shape, format_shape, resolve_rules, rules_config
from .random import get_rng

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .base import LayerOptions, RecurrentOptions


def _swap_first_blocks(a: Array, units: int) -> Array:
    """Reorder gate blocks on axis 0 between PyTorch r,z,n and Keras z,r,h (an involution)."""
    return np.concatenate([a[units : 2 * units], a[:units], a[2 * units :]], axis=0)


class _MaskPlan:
    """A Keras time-step mask ``(B, T)`` as the core's ``lengths``: each row's unmasked
    steps moved to the front (a no-op for right-padded rows), run as a sequence of their
    count, and the outputs put back where Keras has them. Masked steps leave the state as it
    was (Keras's semantics); their output is the last valid step's output, or zeros with
    ``zero_masked`` (Keras's ``zero_output_for_mask``, which Bidirectional forces). Rows with
    no valid step keep their initial state and output zeros."""

    def __init__(self, mask: Array) -> None:
        b, t = mask.shape
        self.mask = mask
        self.counts = mask.sum(axis=1)
        self.cum = np.cumsum(mask, axis=1) - 1  # compact index of the latest valid step
        prefix = np.array_equal(mask, np.arange(t)[None, :] < self.counts[:, None])
        self.order = None if prefix else np.argsort(~mask, axis=1, kind="stable")
        self.lengths = np.maximum(self.counts, 1).astype(np.int64)
        self.empty = self.counts == 0
        self.rows = np.arange(b)[:, None]

    def gather(self, x: Array) -> Array:
        if self.order is None:
            return x
        return np.ascontiguousarray(np.take_along_axis(x, self.order[..., None], axis=1))

    def scatter_inputs(self, dxc: Array) -> Array:
        if self.order is None:
            return dxc
        dx = np.empty_like(dxc)
        np.put_along_axis(dx, self.order[..., None], dxc, axis=1)
        return dx

    def outputs(self, yc: Array, zero_masked: bool) -> Array:
        y = np.take_along_axis(yc, np.maximum(self.cum, 0)[..., None], axis=1)
        keep = self.mask if zero_masked else self.cum >= 0
        return y * keep[..., None].astype(y.dtype)

    def outputs_backward(self, dy: Array, zero_masked: bool) -> Array:
        keep = self.mask if zero_masked else self.cum >= 0
        dy = dy * keep[..., None].astype(dy.dtype)
        dyc = np.zeros_like(dy)
        np.add.at(dyc, (np.broadcast_to(self.rows, self.cum.shape), np.maximum(self.cum, 0)), dy)
        return dyc


class _RNN(Layer):
    """Shared machinery of LSTM and GRU (see the module docstring for layouts).

    Shapes, D = 2 inside Bidirectional else 1: ``x (B, T, I)`` -> ``y (B, T, D·U)`` with
    ``return_sequences`` else ``(B, D·U)`` (the last step). With ``return_state`` the
    output is ``[y, *states]``, states ``(B, U)`` each: LSTM h, c; GRU h (per direction).
    """

    _cell = ""
    _gates = 0
    weight_names = ("kernel", "recurrent_kernel", "bias")

    def __init__(
        self,
        units: int,
        activation: str | None = "tanh",
        recurrent_activation: str = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        recurrent_initializer: str = "orthogonal",
        bias_initializer: str = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        use_cudnn: Any = "auto",
        **kwargs: Unpack[LayerOptions],
    ) -> None:
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} {self.name!r}"
        resolve_rules(
            self,
            owner,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
        )
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"[{owner}] units must be a positive int; got {units!r}")
        self.units = int(units)
        self.activation = activations.resolve_recurrent(activation, owner, "activation")
        self.recurrent_activation = activations.resolve_recurrent(
            recurrent_activation, owner, "recurrent_activation"
        )
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.resolve(
            kernel_initializer, owner, "kernel_initializer"
        )
        self.recurrent_initializer = initializers.resolve(
            recurrent_initializer, owner, "recurrent_initializer"
        )
        self.bias_initializer = initializers.resolve(bias_initializer, owner, "bias_initializer")
        dropout = check_float(owner, "dropout", dropout, 0.0, 1.0)
        recurrent_dropout = check_float(owner, "recurrent_dropout", recurrent_dropout, 0.0, 1.0)
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)  # accepted for compatibility; no effect on results
        self._directions = 1
        self._core: Any = None
        self._states: tuple[Array, ...] | None = None
        self._mask: Array | None = None
        self._steps = 0

    # ---------------------------------------------------------------- core set-up
    def _core_kwargs(self) -> dict[str, Any]:
        table = activations.RECURRENT_ACTIVATIONS
        return {
            "activation": table[self.activation],
            "recurrent_activation": table[self.recurrent_activation],
        }

    def _core_class(self) -> Any:
        import rnnkit

        return getattr(rnnkit, self._cell)

    def _suffixes(self) -> list[str]:
        return ["_l0", "_l0_reverse"][: self._directions]

    def _trainable_keys(self) -> list[str]:
        keys = []
        for s in self._suffixes():
            keys += ["weight_ih" + s, "weight_hh" + s]
            if self.use_bias:
                keys.append("bias_ih" + s)
                if self._trains_bias_hh():
                    keys.append("bias_hh" + s)
        return keys

    def _trains_bias_hh(self) -> bool:
        return False

    def build(self, input_shape: Shape) -> None:
        owner = f"{type(self).__name__} {self.name!r}"
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"[{owner}] expects inputs (batch, time, features) with a known "
                f"feature size; got input shape {format_shape(input_shape)}"
            )
        features = int(input_shape[-1])
        g, u = self._gates, self.units
        given = f"units={u} with {features} input features"
        check_elements(owner, "kernel", (features, g * u), given)
        check_elements(owner, "recurrent_kernel", (u, g * u), given)
        self._core = self._core_class()(
            features,
            self.units,
            num_layers=1,
            bias=self.use_bias,
            batch_first=True,
            bidirectional=self._directions == 2,
            dtype=self.dtype.name,
            **self._core_kwargs(),
        )
        self._keys = self._trainable_keys()
        super().build(input_shape)
        weights = []
        for _ in self._suffixes():
            weights += self._initial_keras_weights(features)
        self._set_keras_weights(weights)

    def _initial_keras_weights(self, features: int) -> list[Array]:
        g, u = self._gates, self.units
        out = [
            initializers.initialize(self.kernel_initializer, (features, g * u), self.dtype),
            initializers.initialize(self.recurrent_initializer, (u, g * u), self.dtype),
        ]
        if self.use_bias:
            out.append(self._initial_bias())
        return out

    def _initial_bias(self) -> Array:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        b, t = input_shape[0], input_shape[1]
        width = self._directions * self.units
        return (b, t, width) if self.return_sequences else (b, width)

    # ------------------------------------------------------------- forward/backward
    def _run_core(
        self,
        x: Array,
        hx: Any,
        lengths: Any = None,
        h_masks: Array | None = None,
        x_masks: Array | None = None,
    ) -> tuple[Array, list[Array]]:
        """Core call: returns y (B, T, D·U) and the final states, each (D, B, U)."""
        h0 = None if hx is None else hx[0]
        c0 = None if hx is None or len(hx) < 2 else hx[1]
        y, h, c = self._core._run(x, h0, c0, lengths, h_masks, x_masks)
        return y, [h] if c is None else [h, c]

    #: The core's gate order as indices into Keras's (GRU: Keras z, r, h; the core r, z, n).
    _core_gates: tuple[int, ...] = (0, 1, 2, 3)

    def _recurrent_masks(self, batch: int) -> Array:
        """Recurrent-dropout scales (directions, gates, batch, units) in Keras's gate order:
        0 with probability ``recurrent_dropout``, else 1/(1 - rate); one mask per gate, fixed
        over the sequence and drawn anew each call, as Keras 3's cells draw them (with
        ``recurrent_dropout`` they run ``implementation=1``, one mask per gate)."""
        return self._gate_masks(
            (self._directions, self._gates, batch, self.units), self.recurrent_dropout
        )

    def _input_masks(self, batch: int, features: int) -> Array:
        """Input-dropout scales (directions, gates, batch, features) in Keras's gate order,
        used when ``recurrent_dropout`` is set too (then Keras drops each gate's input on its
        own; without it, one mask for every gate, applied before the core)."""
        return self._gate_masks((self._directions, self._gates, batch, features), self.dropout)

    def _gate_masks(self, shape: tuple[int, ...], rate: float) -> Array:
        rng = self._rng if self._rng is not None else get_rng()
        keep = rng.random(shape, dtype=self.dtype) >= rate
        return keep * self.dtype.type(1.0 / (1.0 - rate))

    def _run_core_backward(
        self, dy: Array, dstates: list[Array | None], need_dx: bool
    ) -> Array | None:
        dc = dstates[1] if len(dstates) > 1 else None
        dx, dh0, dc0 = self._core._backward(dy, dstates[0], dc, need_dx=need_dx)
        # the initial states' gradients, (B, U) each: read by a graph node whose call gave
        # initial_state (an encoder's states into a decoder)
        self._dinitial = [dh0[0]] if dc0 is None else [dh0[0], dc0[0]]
        return dx

    def _check_input_shape(self, shape: tuple[int, ...], argument: str = "x") -> None:
        super()._check_input_shape(shape, argument)
        if len(shape) == 3 and shape[1] == 0:
            raise ValueError(f"[{type(self).__name__} {self.name!r}] {argument} has no time steps")

    _tensor_call_kwargs = ("initial_state",)

    def _output_shapes(self, input_shape: Any, call_kwargs: dict[str, Any]) -> Any:
        out = self.compute_output_shape(input_shape)
        if not self.return_state:
            return out
        state = (input_shape[0], self.units)
        return [out, *([state] * (self._n_states() * self._directions))]

    def _check_call_tensors(self, key: str, shapes: list[Shape], input_shape: Any) -> None:
        self._check_initial_state([tuple(s) for s in shapes], None)

    def _check_initial_state(self, shapes: list[tuple[Any, ...]], batch: int | None) -> None:
        owner = f"{type(self).__name__} {self.name!r}"
        n = self._n_states()
        names = ["h", "c"][:n] if n == 2 else ["h"]
        if len(shapes) != n:
            raise ValueError(
                f"[{owner}] initial_state takes {n} array{'s' if n > 1 else ''} "
                f"[{', '.join(names)}], each (batch, {self.units}); got {len(shapes)}"
            )
        for name, shape in zip(names, shapes):
            ok = len(shape) == 2 and shape[1] == self.units
            if ok and batch is not None and shape[0] is not None:
                ok = shape[0] == batch
            if not ok:
                want = f"({batch if batch is not None else 'batch'}, {self.units})"
                raise ValueError(
                    f"[{owner}] initial_state {name} has shape {format_shape(shape)}; "
                    f"expected {want}"
                )

    def _node_backward(
        self, douts: list[Array | None], need_dx: bool, node: Any
    ) -> list[Array | None]:
        outs = node.output_arrays
        if self.return_state:
            dy: Any = [np.zeros_like(outs[0]) if douts[0] is None else douts[0], *douts[1:]]
        else:
            dy = np.zeros_like(outs[0]) if douts[0] is None else douts[0]
        dx = self._backward(dy, need_dx)
        if node.n_inputs == 1:
            return [dx]
        return [dx, *self._dinitial]

    _mask_aware = True
    #: Keras's zero_output_for_mask: zeros at masked steps instead of the last valid output
    #: (Bidirectional sets it when it returns sequences, as Keras does).
    _zero_masked = False

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        out = mask if self.return_sequences else None
        if self.return_state:
            return [out, *([None] * (self._n_states() * self._directions))]
        return out

    def forward(
        self, x: Array, training: bool = False, initial_state: Any = None, mask: Any = None
    ) -> Any:
        self._refuse_quantized_training(training)
        core = self._core
        if core.training != training:
            if training:
                core.train()
            else:
                core.eval()
        self._mask = None
        x_masks = None
        order = self._core_gates[: self._gates]
        if training and self.dropout > 0.0 and self.recurrent_dropout > 0.0:
            # one input mask per gate and direction, applied in the core (Keras's cells run
            # implementation=1 whenever recurrent_dropout is set)
            x_masks = np.ascontiguousarray(self._input_masks(x.shape[0], x.shape[2])[:, order])
        elif training and self.dropout > 0.0:  # one mask for every gate and step
            self._mask = self._gate_masks((x.shape[0], 1, x.shape[2]), self.dropout)
            x = x * self._mask
        if self.go_backwards:
            x = x[:, ::-1]
        self._plan = None
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != x.shape[:2]:
                raise ValueError(
                    f"[{type(self).__name__} {self.name!r}] mask has shape {mask.shape}; "
                    f"expected (batch, time) = {x.shape[:2]}"
                )
            if self.go_backwards:
                mask = mask[:, ::-1]
            if not mask.all():
                self._plan = _MaskPlan(mask)
                x = self._plan.gather(x)
        hx = None
        self._has_initial = initial_state is not None
        if initial_state is not None:
            states = [np.asarray(a) for a in initial_state]
            self._check_initial_state([a.shape for a in states], x.shape[0])
            hx = tuple(np.ascontiguousarray(a, dtype=self.dtype)[None] for a in states)
        elif self.stateful and self._states is not None:
            if self._states[0].shape[1] != x.shape[0]:
                raise ValueError(
                    f"[{type(self).__name__} {self.name!r}] stateful layer got a batch of "
                    f"{x.shape[0]} after batches of {self._states[0].shape[1]}; use one batch "
                    "size (drop the remainder) or call reset_states()"
                )
            hx = self._states
        plan = self._plan
        h_masks = None
        if training and self.recurrent_dropout > 0.0:
            h_masks = np.ascontiguousarray(self._recurrent_masks(x.shape[0])[:, order])
        y, states = self._run_core(x, hx, None if plan is None else plan.lengths, h_masks, x_masks)
        if plan is not None:
            y = plan.outputs(y, self._zero_masked)
            if plan.empty.any():  # rows with no valid step keep their initial state
                states = [np.array(st, copy=True) for st in states]
                for k, st in enumerate(states):
                    st[:, plan.empty] = 0 if hx is None else hx[k][:, plan.empty]
        if self.stateful:
            self._states = tuple(np.array(s, copy=True) for s in states)
        self._shape = (x.shape[0], x.shape[1])
        if self.return_sequences:
            out = y
        elif self._directions == 1:
            out = states[0][0]
        else:
            out = np.concatenate([states[0][0], states[0][1]], axis=-1)
        if not self.return_state:
            self._activity_forward(out, training)
            return out
        per_dir = [s[d] for d in range(self._directions) for s in states]
        result = [out, *per_dir]
        self._activity_forward(result, training)
        return result

    def _backward(self, dy: Any, need_dx: bool) -> Array | None:
        if not self._core.training:
            raise RuntimeError(
                f"[{type(self).__name__} {self.name!r}] backward needs a "
                "forward with training=True first"
            )
        dy = self._activity_backward(dy)
        n_states = self._n_states()
        d = self._directions
        dstate_list: list[Array | None] = [None] * n_states
        if self.return_state:
            if not isinstance(dy, (list, tuple)) or len(dy) != 1 + n_states * d:
                raise ValueError(
                    f"[{type(self).__name__} {self.name!r}] with return_state, "
                    f"backward takes [dy, {n_states * d} state gradients]"
                )
            dy, *dstates = dy
            for k in range(n_states):
                parts = [dstates[di * n_states + k] for di in range(d)]
                if any(p is not None for p in parts):
                    dstate_list[k] = np.stack(
                        [
                            np.zeros((self._shape[0], self.units), self.dtype) if p is None else p
                            for p in parts
                        ]
                    )
        b, t = self._shape
        plan = self._plan
        if self.return_sequences:
            dy_seq = np.ascontiguousarray(dy, dtype=self.dtype)
            if plan is not None:
                dy_seq = plan.outputs_backward(dy_seq, self._zero_masked)
        else:
            dy_seq = np.zeros((b, t, d * self.units), dtype=self.dtype)
            dh = np.ascontiguousarray(
                np.asarray(dy, dtype=self.dtype).reshape(b, d, self.units).transpose(1, 0, 2)
            )
            dstate_list[0] = dh if dstate_list[0] is None else dstate_list[0] + dh
        passed: list[Array | None] = []
        if plan is not None and plan.empty.any():
            # an empty row's final states are its initial states: their gradients pass
            # straight through, and nothing reaches the core for that row
            for k, ds in enumerate(dstate_list):
                passed.append(None if ds is None else ds[0, plan.empty].copy())
                if ds is not None:
                    ds = ds.copy()
                    ds[:, plan.empty] = 0
                    dstate_list[k] = ds
        dx = self._run_core_backward(dy_seq, dstate_list, need_dx)
        if passed:
            for k, g in enumerate(passed):
                if g is not None and k < len(self._dinitial):
                    self._dinitial[k][plan.empty] += g
        if dx is None:
            return None
        if plan is not None:
            dx = plan.scatter_inputs(dx)
        if self.go_backwards:
            dx = dx[:, ::-1]
        if self._mask is not None:
            dx = dx * self._mask
        return dx

    def _n_states(self) -> int:
        return 1

    # ------------------------------------------------- regularizers and constraints
    def _weight_rules(self) -> list[tuple[int, Any, Any]]:
        # Penalties are elementwise sums, the same on the core's layout as on Keras's (a
        # permutation/transpose); constraints need Keras's layout: _apply_constraints.
        rules = []
        for i, key in enumerate(self._keys if self.built else []):
            if key.startswith("weight_ih"):
                reg = self.kernel_regularizer
            elif key.startswith("weight_hh"):
                reg = self.recurrent_regularizer
            else:
                reg = self.bias_regularizer
            if reg is not None:
                rules.append((i, reg, None))
        return rules

    def _apply_constraints(self) -> None:
        if not (self.trainable and self.built):
            return
        cons = [self.kernel_constraint, self.recurrent_constraint]
        if self.use_bias:
            cons.append(self.bias_constraint)
        if all(c is None for c in cons):
            return
        weights = self._keras_weights()
        per = len(cons)
        self._set_keras_weights(
            [a if cons[j % per] is None else cons[j % per](a) for j, a in enumerate(weights)]
        )

    # ------------------------------------------------------------------ parameters
    def parameters(self) -> list[Array]:
        if not self.built:
            return []
        named = self._core.named_parameters()
        return [named[k] for k in self._keys]

    def gradients(self) -> list[Array]:
        if not self.built:
            return []
        grads = self._core.grads
        return [grads[k] for k in self._keys]

    def zero_grad(self) -> None:
        if self.built:
            self._core.zero_grad()

    def reset_states(self, states: Any = None) -> None:
        """Forget the kept state of a ``stateful`` layer (or set it: arrays (B, U))."""
        if states is None:
            self._states = None
            return
        states = [
            np.asarray(s, dtype=self.dtype)
            for s in (states if isinstance(states, (list, tuple)) else [states])
        ]
        n = self._n_states()
        if len(states) != n * self._directions:
            raise ValueError(
                f"[{type(self).__name__} {self.name!r}] reset_states expects "
                f"{n * self._directions} arrays"
            )
        self._states = tuple(
            np.ascontiguousarray(np.stack([states[di * n + k] for di in range(self._directions)]))
            for k in range(n)
        )

    @property
    def core(self) -> Any:
        """The underlying ``rnnkit.LSTM``/``GRU``/``RNN`` module (PyTorch layout)."""
        return self._core

    # ------------------------------------------------------------ Keras weights I/O
    def _weight_labels(self) -> list[str]:
        names = list(self.weight_names[: 3 if self.use_bias else 2])
        if self._directions == 1:
            return names
        return [f"forward_{n}" for n in names] + [f"backward_{n}" for n in names]

    def _keras_weights(self) -> list[Array]:
        if not self.built:
            return []
        return self._keras_from_named(self._core.named_parameters())

    def _keras_from_named(self, named: dict[str, Array]) -> list[Array]:
        """Keras-layout weights from core-layout arrays keyed like ``state_dict`` (a missing
        ``bias_hh`` counts as zeros: it is held at zero unless trained)."""
        out = []
        for s in self._suffixes():
            out.append(self._to_keras(named["weight_ih" + s]).T)
            out.append(self._to_keras(named["weight_hh" + s]).T)
            if self.use_bias:
                b_ih = named["bias_ih" + s]
                b_hh = named.get("bias_hh" + s)
                out.append(self._keras_bias(b_ih, np.zeros_like(b_ih) if b_hh is None else b_hh))
        return out

    def _named_from_keras(self, weights: list[Array]) -> dict[str, Array]:
        """The inverse of ``_keras_from_named``: core-layout arrays keyed like ``state_dict``."""
        state: dict[str, Array] = {}
        per = 3 if self.use_bias else 2
        for k, s in enumerate(self._suffixes()):
            w = weights[k * per : (k + 1) * per]
            state["weight_ih" + s] = self._to_keras(w[0].T)
            state["weight_hh" + s] = self._to_keras(w[1].T)
            if self.use_bias:
                state["bias_ih" + s], state["bias_hh" + s] = self._core_bias(w[2])
        return state

    def _set_keras_weights(self, weights: list[Array]) -> None:
        # Through load_state_dict: the core re-packs its inference weights after a change
        # (a bfloat16 core rounds them first).
        self._core.load_state_dict(self._named_from_keras(weights), strict=True)

    def _quantize(self, mode: str) -> bool:
        self._core.bfloat16()  # rounds the weights; the core module is inference-only now
        return True

    def _keras_from_parameters(self, arrays: list[Array]) -> list[Array]:
        return self._keras_from_named(dict(zip(self._keys, arrays)))

    def _parameters_from_keras(self, weights: list[Array]) -> list[Array]:
        named = self._named_from_keras(weights)
        return [np.ascontiguousarray(named[k]) for k in self._keys]

    def _to_keras(self, a: Array) -> Array:
        """Gate reorder on axis 0 between core and Keras order (identity for LSTM)."""
        return a

    def _keras_bias(self, b_ih: Array, b_hh: Array) -> Array:
        return self._to_keras(b_ih + b_hh)

    def _core_bias(self, bias: Array) -> tuple[Array, Array]:
        return self._to_keras(bias), np.zeros(bias.shape[-1], dtype=self.dtype)

    def _config(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "activation": self.activation,
            "recurrent_activation": self.recurrent_activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "recurrent_initializer": self.recurrent_initializer,
            "bias_initializer": self.bias_initializer,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            **rules_config(self, RECURRENT_RULES),
        }


#: The regularizer/constraint arguments of LSTM, GRU and SimpleRNN.
RECURRENT_RULES = (
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
)


class LSTM(_RNN):
    """Keras's LSTM layer on the rnnkit core.

    ``i = σ(x W_i + h U_i + b_i)``, ``f = σ(x W_f + h U_f + b_f)``,
    ``c̃ = act(x W_c + h U_c + b_c)``, ``o = σ(x W_o + h U_o + b_o)``,
    ``c' = f ⊙ c + i ⊙ c̃``, ``h' = o ⊙ act(c')``; σ = ``recurrent_activation``.

    Shapes: ``x (B, T, I)`` -> ``(B, T, U)`` with ``return_sequences`` else ``(B, U)``;
    with ``return_state`` the output is ``[y, h (B, U), c (B, U)]``.

    Parameters
    ----------
    units : int
    activation, recurrent_activation : str or None
        Keras names, any in either slot: "tanh", "sigmoid", "relu", "linear" (None),
        "hard_sigmoid", "elu", "softsign", "softplus", "leaky_relu" (slope 0.2, Keras 3).
    use_bias, unit_forget_bias : bool
        ``unit_forget_bias`` initialises the forget-gate bias to 1 (Keras default).
    dropout : float
        Input dropout in training; one mask per sequence, shared by all time steps (and,
        with ``recurrent_dropout`` too, one per gate, as Keras).
    recurrent_dropout : float
        Dropout on h where it enters the recurrent products, in training: one mask per gate,
        fixed over the sequence (Keras 3's semantics); the state itself is not dropped.
    return_sequences, return_state, go_backwards, stateful : bool
        Keras semantics; with ``go_backwards`` the output sequence stays reversed.
    input_shape : tuple, optional
        ``(T, I)``; T may be None.
    """

    _cell = "LSTM"
    _gates = 4

    def __init__(
        self,
        units: int,
        activation: str | None = "tanh",
        recurrent_activation: str = "sigmoid",
        use_bias: bool = True,
        unit_forget_bias: bool = True,
        **kwargs: Unpack[RecurrentOptions],
    ) -> None:
        self.unit_forget_bias = bool(unit_forget_bias)
        super().__init__(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            **kwargs,
        )

    def _initial_bias(self) -> Array:
        u = self.units
        if self.unit_forget_bias:
            parts = [
                initializers.initialize(self.bias_initializer, (u,), self.dtype),
                np.ones(u, dtype=self.dtype),
                initializers.initialize(self.bias_initializer, (2 * u,), self.dtype),
            ]
            return np.concatenate(parts)
        return initializers.initialize(self.bias_initializer, (4 * u,), self.dtype)

    def _n_states(self) -> int:
        return 2

    def _config(self):
        config = super()._config()
        config["unit_forget_bias"] = self.unit_forget_bias
        return config


class GRU(_RNN):
    """Keras's GRU layer on the rnnkit core.

    ``z = σ(x W_z + h U_z + b_z)``, ``r = σ(x W_r + h U_r + b_r)``;
    ``reset_after=True`` (Keras default): ``h̃ = act(x W_h + b_h + r ⊙ (h U_h + b_rh))``;
    ``reset_after=False``: ``h̃ = act(x W_h + (r ⊙ h) U_h + b_h)``;
    ``h' = z ⊙ h + (1 - z) ⊙ h̃``.

    Shapes as :class:`LSTM`; with ``return_state`` the output is ``[y, h (B, U)]``.
    ``bias`` is ``(2, 3U)`` when ``reset_after`` (input row, recurrent row) else ``(3U,)``.
    """

    _cell = "GRU"
    _gates = 3

    def __init__(
        self,
        units: int,
        activation: str | None = "tanh",
        recurrent_activation: str = "sigmoid",
        use_bias: bool = True,
        reset_after: bool = True,
        **kwargs: Unpack[RecurrentOptions],
    ) -> None:
        self.reset_after = bool(reset_after)
        super().__init__(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            **kwargs,
        )

    def _core_kwargs(self) -> dict[str, Any]:
        kw = super()._core_kwargs()
        kw["reset_after"] = self.reset_after
        return kw

    def _trains_bias_hh(self) -> bool:
        return self.reset_after

    def _initial_bias(self) -> Array:
        shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        return initializers.initialize(self.bias_initializer, shape, self.dtype)

    _core_gates = (1, 0, 2)

    def _to_keras(self, a: Array) -> Array:
        return _swap_first_blocks(a, self.units)

    def _keras_bias(self, b_ih, b_hh):
        if self.reset_after:
            return np.stack([self._to_keras(b_ih), self._to_keras(b_hh)])
        return self._to_keras(b_ih + b_hh)

    def _core_bias(self, bias):
        if self.reset_after:
            return self._to_keras(bias[0]), self._to_keras(bias[1])
        return self._to_keras(bias), np.zeros(bias.shape[-1], dtype=self.dtype)

    def _config(self):
        config = super()._config()
        config["reset_after"] = self.reset_after
        return config


class SimpleRNN(_RNN):
    """Keras's SimpleRNN layer on the rnnkit core: ``h' = act(x W + h U + b)``.

    Shapes as :class:`LSTM`; with ``return_state`` the output is ``[y, h (B, U)]``.
    Weights (Keras layout): ``kernel (I, U)``, ``recurrent_kernel (U, U)``, ``bias (U,)``.
    ``activation`` as :class:`LSTM`'s; there is no ``recurrent_activation``.
    """

    _cell = "RNN"
    _gates = 1

    def __init__(
        self,
        units: int,
        activation: str | None = "tanh",
        use_bias: bool = True,
        **kwargs: Unpack[RecurrentOptions],
    ) -> None:
        if "recurrent_activation" in kwargs:
            raise TypeError(
                "[SimpleRNN] got an unexpected keyword argument 'recurrent_activation' "
                "(a SimpleRNN has no gates)"
            )
        super().__init__(units, activation=activation, use_bias=use_bias, **kwargs)

    def _core_kwargs(self) -> dict[str, Any]:
        return {"activation": activations.RECURRENT_ACTIVATIONS[self.activation]}

    def _initial_bias(self) -> Array:
        return initializers.initialize(self.bias_initializer, (self.units,), self.dtype)

    def _config(self):
        config = super()._config()
        del config["recurrent_activation"]
        return config


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and backwards in time and merges the two outputs.

    Both directions run in one bidirectional core call. The backward direction's output
    sequence is re-aligned to the input's time order (Keras semantics); without
    ``return_sequences`` each direction contributes its final state.

    Shapes: ``x (B, T, I)`` -> ``(B, T, 2U)`` ("concat") or ``(B, T, U)`` ("sum", "mul",
    "ave"), without the T axis unless ``return_sequences``. With ``return_state`` the
    output is ``[y, *forward_states, *backward_states]``.

    Weights (Keras order): the forward layer's ``kernel, recurrent_kernel, bias`` then the
    backward layer's. With ``dropout`` both directions share one input mask (each its own
    per gate when ``recurrent_dropout`` is set too, as Keras's two layers).
    """

    def __init__(
        self,
        layer: _RNN,
        merge_mode: str | None = "concat",
        weights: Any = None,
        backward_layer: Any = None,
        **kwargs: Unpack[LayerOptions],
    ) -> None:
        if not isinstance(layer, _RNN):
            raise TypeError(
                f"[Bidirectional] wraps an LSTM, GRU or SimpleRNN layer; got {type(layer).__name__}"
            )
        if backward_layer is not None:
            raise NotImplementedError(
                "[Bidirectional] backward_layer= is not supported; the "
                "backward direction mirrors the wrapped layer"
            )
        if layer.go_backwards:
            raise NotImplementedError(
                "[Bidirectional] the wrapped layer must have go_backwards=False"
            )
        if merge_mode not in ("concat", "sum", "mul", "ave"):
            raise ValueError(
                f"[Bidirectional] merge_mode must be 'concat', 'sum', 'mul' or "
                f"'ave'; got {merge_mode!r}"
            )
        if layer.input_shape_hint is not None and not any(
            k in kwargs for k in ("input_shape", "batch_input_shape", "input_dim")
        ):
            kwargs["batch_input_shape"] = layer.input_shape_hint
        kwargs.setdefault("dtype", layer.dtype.name)
        super().__init__(**kwargs)
        config = layer.get_config()
        config.pop("batch_input_shape", None)
        config["name"] = f"{self.name}_{layer.name}"
        inner = type(layer).from_config(config)
        inner._directions = 2
        self.layer = inner
        self.merge_mode = merge_mode
        self.return_sequences = inner.return_sequences
        self.return_state = inner.return_state
        self._halves: tuple[Array, Array] | None = None
        if weights is not None:
            self._pending_weights = list(weights)

    @property
    def units(self) -> int:
        return self.layer.units

    def build(self, input_shape: Shape) -> None:
        self.layer.build(input_shape)
        super().build(input_shape)
        pending = getattr(self, "_pending_weights", None)
        if pending is not None:
            self.set_weights(pending)
            del self._pending_weights

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = self.layer.compute_output_shape(input_shape)
        if self.merge_mode == "concat":
            return shape
        return (*shape[:-1], self.layer.units)

    _mask_aware = True

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        return self.layer.compute_mask(inputs, mask)

    def _output_shapes(self, input_shape: Any, call_kwargs: dict[str, Any]) -> Any:
        out = self.compute_output_shape(input_shape)
        if not self.return_state:
            return out
        state = (input_shape[0], self.layer.units)
        return [out, *([state] * (self.layer._n_states() * 2))]

    def forward(self, x: Array, training: bool = False, mask: Any = None) -> Any:
        self._refuse_quantized_training(training)
        # Keras's Bidirectional zeroes the outputs of masked steps when it returns sequences
        self.layer._zero_masked = self.return_sequences
        out = self.layer.forward(x, training, mask=mask)
        states = None
        if self.return_state:
            out, *states = out
        u = self.layer.units
        if self.merge_mode == "concat":
            merged = out
        else:
            f, b = out[..., :u], out[..., u:]
            if self.merge_mode == "sum":
                merged = f + b
            elif self.merge_mode == "ave":
                merged = (f + b) * self.dtype.type(0.5)
            else:
                merged = f * b
                self._halves = (f, b)
        return merged if states is None else [merged, *states]

    def _backward(self, dy: Any, need_dx: bool) -> Array | None:
        rest = None
        if self.return_state:
            dy, *rest = dy
        if self.merge_mode == "concat":
            d = dy
        elif self.merge_mode == "sum":
            d = np.concatenate([dy, dy], axis=-1)
        elif self.merge_mode == "ave":
            half = dy * self.dtype.type(0.5)
            d = np.concatenate([half, half], axis=-1)
        else:
            assert self._halves is not None
            f, b = self._halves
            d = np.concatenate([dy * b, dy * f], axis=-1)
        return self.layer._backward(d if rest is None else [d, *rest], need_dx)

    def parameters(self) -> list[Array]:
        return self.layer.parameters()

    def gradients(self) -> list[Array]:
        return self.layer.gradients()

    def zero_grad(self) -> None:
        self.layer.zero_grad()

    def _weight_rules(self) -> list[tuple[int, Any, Any]]:
        return self.layer._weight_rules()

    @property  # type: ignore[override]
    def _activity_loss(self) -> float:  # the wrapped layer regularizes both directions
        return self.layer._activity_loss

    def _apply_constraints(self) -> None:
        if self.trainable:
            self.layer._apply_constraints()

    def reset_states(self, states: Any = None) -> None:
        self.layer.reset_states(states)

    def _weight_labels(self) -> list[str]:
        return self.layer._weight_labels()

    def _keras_weights(self) -> list[Array]:
        return self.layer._keras_weights()

    def _set_keras_weights(self, weights: list[Array]) -> None:
        self.layer._set_keras_weights(weights)

    def _quantize(self, mode: str) -> bool:
        self.layer.quantize(mode)
        return True

    def _keras_from_parameters(self, arrays: list[Array]) -> list[Array]:
        return self.layer._keras_from_parameters(arrays)

    def _parameters_from_keras(self, weights: list[Array]) -> list[Array]:
        return self.layer._parameters_from_keras(weights)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        inner = self.layer.get_config()
        inner["name"] = inner["name"].removeprefix(f"{self.name}_")
        config["layer"] = {"class_name": type(self.layer).__name__, "config": inner}
        config["merge_mode"] = self.merge_mode
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Bidirectional:
        config = dict(config)
        entry = config.pop("layer")
        layer_cls = {"LSTM": LSTM, "GRU": GRU, "SimpleRNN": SimpleRNN}.get(entry.get("class_name"))
        if layer_cls is None:
            raise ValueError(f"[Bidirectional] cannot wrap {entry.get('class_name')!r}")
        return cls(layer_cls.from_config(dict(entry["config"])), **config)
