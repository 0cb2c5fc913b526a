"""ONNX LSTM, GRU and RNN nodes on rnnkit's core modules.

Each node becomes one ``rnnkit.LSTM``/``GRU``/``RNN`` in eval mode (or two single-direction
modules when the two directions of a bidirectional node use different activations), built
when the session is created: the weights are reordered from ONNX's gate order (LSTM
i,o,f,c; GRU z,r,h) to rnnkit's (PyTorch's: i,f,g,o; r,z,n) once, never per run. The kernel
then only maps ONNX's layouts to the module's call and back (views, no copies where numpy
allows):

    X (T, N, I) [layout 0] or (N, T, I) [layout 1]
    Y (T, D, N, H) [layout 0] or (N, T, D, H) [layout 1];  Y_h, Y_c (D, N, H) or (N, D, H)

Attributes: direction, activations with activation_alpha/activation_beta (consumed in
order by the activations that take them, defaults those of the ONNX operators: LeakyRelu
0.01, ThresholdedRelu 1.0, HardSigmoid 0.2/0.5, Elu 1.0, Affine 1.0/0.0, ScaledTanh
1.0/1.0), clip, input_forget (LSTM), layout, linear_before_reset (GRU; rnnkit's
reset_after), hidden_size; inputs sequence_lens (rnnkit lengths; a length of 0 gives
zeros in Y, Y_h and Y_c for that sequence, as ONNX Runtime does), initial_h, initial_c, P.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .graph import OnnxError
from .ops import Array, Kernel, OpContext, register

_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
#: ONNX gate blocks listed in rnnkit's order: LSTM i,o,f,c -> i,f,g,o; GRU z,r,h -> r,z,n
_ORDER = {"LSTM": (0, 2, 3, 1), "GRU": (1, 0, 2), "RNN": (0,)}
_DEFAULT_ACTIVATIONS = {
    "LSTM": ("Sigmoid", "Tanh", "Tanh"),
    "GRU": ("Sigmoid", "Tanh"),
    "RNN": ("Tanh",),
}
#: ONNX name (lower case) -> (rnnkit name, defaults of the alpha/beta it takes)
ACTIVATIONS: dict[str, tuple[str, tuple[float, ...]]] = {
    "relu": ("relu", ()),
    "tanh": ("tanh", ()),
    "sigmoid": ("sigmoid", ()),
    "affine": ("affine", (1.0, 0.0)),
    "leakyrelu": ("leaky_relu", (0.01,)),
    "thresholdedrelu": ("thresholded_relu", (1.0,)),
    "scaledtanh": ("scaled_tanh", (1.0, 1.0)),
    "hardsigmoid": ("hard_sigmoid", (0.2, 0.5)),
    "elu": ("elu", (1.0,)),
    "softsign": ("softsign", ()),
    "softplus": ("softplus", ()),
}

_COMMON_ATTRS = (
    "activation_alpha",
    "activation_beta",
    "activations",
    "clip",
    "direction",
    "hidden_size",
    "layout",
)

ActSpec = Any  # a name, or (name, alpha) / (name, alpha, beta)


def activation_specs(ctx: OpContext, cell: str, directions: int) -> list[list[ActSpec]]:
    """Per direction, the rnnkit activation specs of the node's activation list."""
    per = len(_DEFAULT_ACTIVATIONS[cell])
    names = ctx.attr("activations")
    if names is None:
        names = list(_DEFAULT_ACTIVATIONS[cell]) * directions
    names = list(names)
    if len(names) != per * directions:
        raise ctx.fail(
            f"activations lists {len(names)} functions; expected {per * directions} "
            f"({per} per direction)"
        )
    alphas = [float(a) for a in ctx.attr("activation_alpha", [])]
    betas = [float(b) for b in ctx.attr("activation_beta", [])]
    specs: list[ActSpec] = []
    for name in names:
        key = str(name).lower()
        if key not in ACTIVATIONS:
            raise ctx.fail(
                f"activation {name!r} is not one of the spec's: Relu, Tanh, Sigmoid, Affine, "
                "LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus"
            )
        rk, defaults = ACTIVATIONS[key]
        params = []
        for k, default in enumerate(defaults):
            pool = alphas if k == 0 else betas
            params.append(pool.pop(0) if pool else default)
        if rk == "affine" and params == [1.0, 0.0]:
            specs.append("linear")  # the identity: rnnkit's own name for it
        else:
            specs.append((rk, *params) if params else rk)
    if alphas or betas:
        raise ctx.fail(
            f"{len(alphas)} activation_alpha and {len(betas)} activation_beta values are left "
            "over after the activations took theirs"
        )
    return [specs[d * per : (d + 1) * per] for d in range(directions)]


def _reorder(a: Array, cell: str, hidden: int) -> Array:
    """Gate blocks on axis 0 from ONNX order to rnnkit order."""
    return np.concatenate([a[g * hidden : (g + 1) * hidden] for g in _ORDER[cell]], axis=0)


def _module_kwargs(cell: str, specs: list[ActSpec]) -> dict[str, Any]:
    """rnnkit constructor options for one direction's activations (defaults left out)."""
    kw: dict[str, Any] = {}
    if cell == "RNN":
        if specs[0] != "tanh":
            kw["activation"] = specs[0]
        return kw
    if specs[0] != "sigmoid":
        kw["recurrent_activation"] = specs[0]
    if specs[1] != "tanh":
        kw["activation"] = specs[1]
    if cell == "LSTM" and specs[2] != specs[1]:
        kw["cell_activation"] = specs[2]
    return kw


class _Recurrent:
    """A planned recurrent node: its modules and the layout mapping of its kernel."""

    def __init__(self, ctx: OpContext, cell: str) -> None:
        self.cell = cell
        node = ctx.node
        G = _GATES[cell]
        direction = str(ctx.attr("direction", "forward"))
        if direction not in ("forward", "reverse", "bidirectional"):
            raise ctx.fail(
                f"direction must be forward, reverse or bidirectional; got {direction!r}"
            )
        D = 2 if direction == "bidirectional" else 1
        self.layout = int(ctx.attr("layout", 0))
        if "layout" in node.attrs and ctx.version < 14:
            raise ctx.fail("the layout attribute exists from opset 14")
        if self.layout not in (0, 1):
            raise ctx.fail(f"layout must be 0 or 1; got {self.layout}")
        clip = ctx.attr("clip")
        if clip is not None:
            clip = float(clip)
            if not clip > 0:
                raise ctx.fail(f"clip must be positive; got {clip}")
        opts: dict[str, Any] = {}
        if clip is not None:
            opts["clip"] = clip
        if cell == "LSTM" and int(ctx.attr("input_forget", 0)):
            opts["input_forget"] = True
        if cell == "GRU":
            lbr = int(ctx.attr("linear_before_reset", 0))
            if lbr and ctx.version < 3:
                raise ctx.fail("linear_before_reset exists from opset 3")
            opts["reset_after"] = bool(lbr)
        specs = activation_specs(ctx, cell, D)
        # One module per group of directions sharing activations.
        if D == 2 and specs[0] == specs[1]:
            self.groups = [([0, 1], {"bidirectional": True})]
        elif D == 2:
            self.groups = [([0], {}), ([1], {"reverse": True})]
        else:
            self.groups = [([0], {"reverse": True} if direction == "reverse" else {})]
        self.groups = [
            (d, {**opts, **extra, **_module_kwargs(cell, specs[d[0]])}) for d, extra in self.groups
        ]
        self.D, self.G = D, G
        self.H = ctx.attr("hidden_size")
        if self.H is not None and int(self.H) <= 0:
            raise ctx.fail(f"hidden_size must be positive; got {self.H}")
        self.ctx = ctx
        self.n_out = len(node.outputs)
        self.has_b = ctx.has_input(3)
        self.has_p = cell == "LSTM" and ctx.has_input(7)
        weights = [ctx.const[k] if ctx.has_input(k) else None for k in (1, 2, 3, 7)]
        needed = [True, True, self.has_b, self.has_p]
        self.dynamic = any(n and w is None for n, w in zip(needed, weights))
        self._key: list[Array] | None = None
        if not self.dynamic:
            self._configure(*weights)
        else:  # check the options now on a tiny module; the real one is built at the first run
            import rnnkit

            for _, kw in self.groups:
                self._build(rnnkit, ctx, 1, 1, "float32", True, kw)

    def _configure(self, W: Array, R: Array, B: Array | None, P: Array | None) -> None:
        """Check the weights and (re)build the modules holding them in rnnkit's layout."""
        import rnnkit

        ctx, cell, D, G = self.ctx, self.cell, self.D, self.G
        for label, arr in (("W", W), ("R", R), ("B", B), ("P", P)):
            if arr is not None and not isinstance(arr, np.ndarray):
                raise ctx.fail(f"{label} is not a tensor")
        if W.dtype not in (np.float32, np.float64):
            raise ctx.fail(f"W has dtype {W.dtype}; rnnkit runs float and double")
        dtype = W.dtype
        if W.ndim != 3 or R.ndim != 3:
            raise ctx.fail(f"W and R must be 3-D; got shapes {list(W.shape)} and {list(R.shape)}")
        H = int(R.shape[2]) if self.H is None else int(self.H)
        I = ctx.static_dim(0, -1) or int(W.shape[2])  # X's declared input size, if any
        for label, arr, shape in (
            ("W", W, (D, G * H, I)),
            ("R", R, (D, G * H, H)),
            ("B", B, (D, 2 * G * H)),
            ("P", P, (D, 3 * H)),
        ):
            if arr is None:
                continue
            if arr.shape != shape:
                raise ctx.fail(
                    f"{label} has shape {list(arr.shape)}; expected {list(shape)} "
                    f"(num_directions={D}, hidden_size={H}, input_size={I})"
                )
            if arr.dtype != dtype:
                raise ctx.fail(f"{label} has dtype {arr.dtype}; W has {dtype}")
        modules = []
        for dirs, kw in self.groups:
            if P is not None:
                kw = {**kw, "peephole": True}
            module = self._build(rnnkit, ctx, I, H, dtype, B is not None, kw)
            state = {}
            for k, d in enumerate(dirs):
                sfx = "_l0" + ("_reverse" if k == 1 else "")
                state["weight_ih" + sfx] = _reorder(W[d], cell, H)
                state["weight_hh" + sfx] = _reorder(R[d], cell, H)
                if B is not None:
                    state["bias_ih" + sfx] = _reorder(B[d, : G * H], cell, H)
                    state["bias_hh" + sfx] = _reorder(B[d, G * H :], cell, H)
                if P is not None:  # ONNX i, o, f -> rnnkit i, f, o
                    state["weight_peephole" + sfx] = np.concatenate(
                        [P[d, :H], P[d, 2 * H :], P[d, H : 2 * H]]
                    )
            module.load_state_dict(state)
            module.eval()
            modules.append((dirs, module))
        self.modules = modules
        self.I, self.Hs, self.dtype = I, H, dtype

    def _build(
        self, rnnkit: Any, ctx: OpContext, I: int, H: int, dtype: Any, bias: bool, kw: dict
    ) -> Any:
        cls = getattr(rnnkit, self.cell, None)
        if cls is None:
            raise ctx.fail(f"this rnnkit build has no {self.cell} module")
        try:
            return cls(I, H, bias=bias, batch_first=self.layout == 1, dtype=str(dtype), **kw)
        except TypeError as e:
            raise ctx.fail(f"rnnkit's {self.cell} cannot take {sorted(kw)}: {e}") from None
        except ValueError as e:
            raise ctx.fail(f"rnnkit's {self.cell} rejects the node's options: {e}") from None

    # ------------------------------------------------------------------ run

    def __call__(
        self,
        X: Array,
        W: Any = None,
        R: Any = None,
        B: Any = None,
        seq: Array | None = None,
        h0: Array | None = None,
        c0: Array | None = None,
        P: Any = None,
    ) -> tuple:
        if self.dynamic:  # weights fed at run time: converted when they change
            key = [W, R, B, P]
            if self._key is None or not all(
                (a is None and b is None)
                or (a is not None and b is not None and np.array_equal(a, b))
                for a, b in zip(key, self._key)
            ):
                self._configure(W, R, B, P)
                self._key = [None if a is None else np.array(a) for a in key]
        D, H, layout = self.D, self.Hs, self.layout
        if X.ndim != 3 or X.shape[2] != self.I:
            raise ValueError(f"X has shape {list(X.shape)}; expected 3-D with input_size {self.I}")
        T, N = (X.shape[0], X.shape[1]) if layout == 0 else (X.shape[1], X.shape[0])
        lengths = zero = None
        if seq is not None:
            lens = np.asarray(seq)
            if lens.shape != (N,) or lens.dtype.kind not in "iu":
                raise ValueError(
                    f"sequence_lens must be {N} integers; got {lens.dtype} {list(lens.shape)}"
                )
            if N and (lens.min() < 0 or lens.max() > T):
                raise ValueError(f"sequence_lens must lie in 0..{T} (seq_length)")
            if not (lens == T).all():
                zero = lens == 0
                if not zero.any():
                    zero = None
                lengths = np.maximum(lens, 1).astype(np.int32)
        states = []
        for label, s in (("initial_h", h0), ("initial_c", c0)):
            if s is None:
                states.append(None)
                continue
            if layout == 1:
                s = s.transpose(1, 0, 2)
            if s.shape != (D, N, H):
                raise ValueError(
                    f"{label} has shape {list(s.shape)}; expected "
                    f"num_directions={D}, batch={N}, hidden={H}"
                )
            states.append(s)
        ys, hs, cs = [], [], []
        for dirs, module in self.modules:
            sl = slice(dirs[0], dirs[-1] + 1)
            h = None if states[0] is None else states[0][sl]
            if self.cell == "LSTM":
                c = None if states[1] is None else states[1][sl]
                if h is None and c is not None:
                    h = np.zeros_like(c)
                elif c is None and h is not None:
                    c = np.zeros_like(h)
                y, (hn, cn) = module(X, None if h is None else (h, c), lengths)
                cs.append(cn)
            else:
                y, hn = module(X, h, lengths)
            ys.append(y)
            hs.append(hn)
        y = ys[0] if len(ys) == 1 else np.concatenate(ys, axis=-1)
        hn = hs[0] if len(hs) == 1 else np.concatenate(hs, axis=0)
        cn = None if not cs else (cs[0] if len(cs) == 1 else np.concatenate(cs, axis=0))
        if zero is not None:
            y[(slice(None), zero) if layout == 0 else zero] = 0
            hn[:, zero] = 0
            if cn is not None:
                cn[:, zero] = 0
        if layout == 0:
            Y = y.reshape(T, N, D, H).transpose(0, 2, 1, 3)
        else:
            Y = y.reshape(N, T, D, H)
            hn = hn.transpose(1, 0, 2)
            cn = None if cn is None else cn.transpose(1, 0, 2)
        return (Y, hn, cn)[: self.n_out]


def _factory(cell: str) -> Any:
    def factory(ctx: OpContext) -> Kernel:
        # opset 1's output_sequence flag is accepted: Y is produced when it is named.
        return _Recurrent(ctx, cell)

    return factory


register(
    "LSTM",
    inputs=(3, 8),
    outputs=(0, 3),
    attrs=(*_COMMON_ATTRS, "input_forget", "output_sequence"),
    versions=(1, 7, 14, 22),
)(_factory("LSTM"))
register(
    "GRU",
    inputs=(3, 6),
    outputs=(0, 2),
    attrs=(*_COMMON_ATTRS, "linear_before_reset", "output_sequence"),
    versions=(1, 3, 7, 14, 22),
)(_factory("GRU"))
register(
    "RNN",
    inputs=(3, 6),
    outputs=(0, 2),
    attrs=(*_COMMON_ATTRS, "output_sequence"),
    versions=(1, 7, 14, 22),
)(_factory("RNN"))

__all__ = ["ACTIVATIONS", "OnnxError", "activation_specs"]
