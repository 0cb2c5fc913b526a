"""The numpy interpreter: one small kernel factory per ONNX op, registered by op type.

A factory receives an :class:`OpContext` (the node, the model's opset version for its
domain, and the constant value of each input known at session creation) and returns a
kernel: a function of the input arrays (None for a missing optional input) returning a
tuple of outputs. Attributes are read and checked once, in the factory; the kernel does
only the arithmetic. ``REGISTRY`` maps op type to :class:`OpDef`; the session checks every
node against it when it is created (session.py). The recurrent ops register themselves
from recurrent.py.

Opsets: each op lists the opset versions where its definition changed (``versions``, as in
the ONNX operator changelog); rnnkit implements each of those forms, e.g. Squeeze reads
``axes`` from an attribute before opset 13 and from an input from 13 on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .graph import Node, OnnxError, numpy_dtype

Array = np.ndarray
Kernel = Callable[..., tuple]

#: Opsets of the default domain that rnnkit reads.
MIN_OPSET, MAX_OPSET = 7, 28


@dataclass
class OpContext:
    """What a kernel factory may look at: the node, its opset, and constant inputs."""

    node: Node
    version: int
    const: list[Array | None]  # per input: its value if known at creation, else None
    shapes: list[list | None] | None = None  # per input: its declared shape, if any

    def static_dim(self, k: int, axis: int) -> int | None:
        """Input k's size on ``axis`` when the model declares it as a number."""
        shape = self.shapes[k] if self.shapes and k < len(self.shapes) else None
        if shape is None or not -len(shape) <= axis < len(shape):
            return None
        d = shape[axis]
        return d if isinstance(d, int) else None

    @property
    def label(self) -> str:
        return self.node.label()

    def attr(self, name: str, default: Any = None) -> Any:
        return self.node.attrs.get(name, default)

    def fail(self, what: str) -> OnnxError:
        return OnnxError(f"{self.label} (opset {self.version}): {what}")

    def has_input(self, k: int) -> bool:
        return len(self.node.inputs) > k and self.node.inputs[k] != ""

    def constant(self, k: int, what: str) -> Array:
        """Input k's value, which must be known when the session is created."""
        if not self.has_input(k):
            raise self.fail(f"input {k} ({what}) is missing")
        value = self.const[k]
        if value is None:
            raise self.fail(
                f"input {self.node.inputs[k]!r} ({what}) must be a constant (an initializer "
                "or computed from initializers) so that it is read once at session creation"
            )
        return value

    def ints(self, name: str, default: Any = None) -> list[int] | None:
        v = self.attr(name, default)
        return None if v is None else [int(x) for x in v]


@dataclass
class OpDef:
    """A registered op: since which opset it exists, input/output counts, attributes."""

    op_type: str
    since: int
    inputs: tuple[int, int]
    outputs: tuple[int, int]
    attrs: frozenset[str]
    factory: Callable[[OpContext], Kernel]
    versions: tuple[int, ...] = ()

    def check(self, node: Node, version: int) -> None:
        """Raise OnnxError (naming the node) for what this op cannot take, before planning."""
        label = node.label()
        if version < self.since:
            raise OnnxError(
                f"{label}: {self.op_type} exists from opset {self.since}; the model imports "
                f"opset {version}"
            )
        n_in = len(node.inputs)
        while n_in and node.inputs[n_in - 1] == "":
            n_in -= 1
        lo, hi = self.inputs
        if not lo <= n_in <= hi:
            raise OnnxError(f"{label}: takes {lo} to {hi} inputs; got {n_in}")
        empty = [k for k in range(lo) if node.inputs[k] == ""]
        if empty:  # the first `lo` inputs are required: '' may stand only for optional ones
            raise OnnxError(f"{label}: required input {empty[0]} is left empty ('')")
        n_out = len(node.outputs)
        lo, hi = self.outputs
        if not lo <= n_out <= hi:
            raise OnnxError(f"{label}: has {lo} to {hi} outputs; got {n_out}")
        unknown = sorted(set(node.attrs) - self.attrs - set(node.subgraphs))
        if unknown:
            raise OnnxError(
                f"{label}: attribute(s) {', '.join(unknown)} not supported "
                f"(rnnkit reads {', '.join(sorted(self.attrs)) or 'none'})"
            )


REGISTRY: dict[str, OpDef] = {}


def register(
    op_type: str,
    since: int = 1,
    inputs: tuple[int, int] = (1, 1),
    outputs: tuple[int, int] = (1, 1),
    attrs: tuple[str, ...] = (),
    versions: tuple[int, ...] = (),
) -> Callable[[Callable[[OpContext], Kernel]], Callable[[OpContext], Kernel]]:
    """Decorator: register ``factory`` for ``op_type`` in the default domain."""

    def deco(factory: Callable[[OpContext], Kernel]) -> Callable[[OpContext], Kernel]:
        REGISTRY[op_type] = OpDef(
            op_type, since, inputs, outputs, frozenset(attrs), factory, versions
        )
        return factory

    return deco


def _axis(ctx: OpContext, axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise ctx.fail(f"{what} {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _int_list(a: Array | None) -> list[int] | None:
    return None if a is None else [int(v) for v in np.asarray(a).reshape(-1)]


# --------------------------------------------------------------------------- elementwise


def _binary(op_type: str, fn: Callable[[Array, Array], Array]) -> None:
    @register(op_type, since=7, inputs=(2, 2), versions=(7, 13, 14))
    def factory(ctx: OpContext) -> Kernel:
        return lambda a, b: (fn(a, b),)


def _int_aware_div(a: Array, b: Array) -> Array:
    if a.dtype.kind in "iu":
        q = np.floor_divide(a, b)  # ONNX (and C) integer division truncates toward zero
        fix = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
        return (q + fix).astype(a.dtype, copy=False)
    return np.divide(a, b)


_binary("Add", np.add)
_binary("Sub", np.subtract)
_binary("Mul", np.multiply)
_binary("Div", _int_aware_div)


@register("Loop", inputs=(0, 2**31), outputs=(1, 2**31), versions=(1, 11, 13, 16, 19, 21))
def _loop(ctx: OpContext) -> Kernel:
    raise ctx.fail("a Loop is planned by the session, not as a kernel")  # session._plan_loop


# Comparisons and logic (the loop conditions tf2onnx writes around a Loop).
def _compare(
    op_type: str, fn: Callable[[Array, Array], Array], since: int, versions: tuple
) -> None:
    @register(op_type, since=since, inputs=(2, 2), versions=versions)
    def factory(ctx: OpContext) -> Kernel:
        return lambda a, b: (np.asarray(fn(a, b)),)


_compare("Less", np.less, 7, (7, 9, 13))
_compare("Greater", np.greater, 7, (7, 9, 13))
_compare("Equal", np.equal, 7, (7, 11, 13, 19))
_compare("LessOrEqual", np.less_equal, 12, (12, 16))
_compare("GreaterOrEqual", np.greater_equal, 12, (12, 16))


def _logical(op_type: str, fn: Callable[[Array, Array], Array]) -> None:
    @register(op_type, since=7, inputs=(2, 2), versions=(7,))
    def factory(ctx: OpContext) -> Kernel:
        def run(a: Array, b: Array) -> tuple:
            if a.dtype != np.bool_ or b.dtype != np.bool_:
                raise TypeError(f"{op_type} takes bool tensors; got {a.dtype} and {b.dtype}")
            return (np.asarray(fn(a, b)),)

        return run


_logical("And", np.logical_and)
_logical("Or", np.logical_or)
_logical("Xor", np.logical_xor)


@register("Not")
def _not(ctx: OpContext) -> Kernel:
    def run(a: Array) -> tuple:
        if a.dtype != np.bool_:
            raise TypeError(f"Not takes a bool tensor; got {a.dtype}")
        return (np.logical_not(a),)

    return run


def sigmoid(x: Array) -> Array:
    """Logistic function without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _unary(op_type: str, fn: Callable[[Array], Array], versions: tuple[int, ...] = (6, 13)) -> None:
    @register(op_type, since=1, versions=versions)
    def factory(ctx: OpContext) -> Kernel:
        return lambda x: (fn(x),)


_unary("Sigmoid", sigmoid)
_unary("Tanh", np.tanh)
_unary("Relu", lambda x: np.maximum(x, x.dtype.type(0)), (6, 13, 14))
_unary("Neg", np.negative)
_unary("Exp", np.exp)
_unary("Log", np.log)
_unary("Sqrt", np.sqrt)
_unary("Abs", np.abs)
_unary("Softsign", lambda x: x / (1 + np.abs(x)), (1, 22))
_unary("Softplus", lambda x: np.logaddexp(x, x.dtype.type(0)).astype(x.dtype), (1, 22))


@register("HardSigmoid", attrs=("alpha", "beta"), versions=(6, 22))
def _hard_sigmoid(ctx: OpContext) -> Kernel:
    alpha, beta = float(ctx.attr("alpha", 0.2)), float(ctx.attr("beta", 0.5))
    return lambda x: (np.clip(x * x.dtype.type(alpha) + x.dtype.type(beta), 0, 1),)


@register("LeakyRelu", attrs=("alpha",), versions=(6, 16))
def _leaky_relu(ctx: OpContext) -> Kernel:
    alpha = float(ctx.attr("alpha", 0.01))
    return lambda x: (np.where(x >= 0, x, x * x.dtype.type(alpha)),)


@register("Elu", attrs=("alpha",), versions=(6, 22))
def _elu(ctx: OpContext) -> Kernel:
    alpha = float(ctx.attr("alpha", 1.0))
    return lambda x: (
        np.where(x >= 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0))).astype(x.dtype),
    )


def _softmax_factory(log: bool) -> Callable[[OpContext], Kernel]:
    def factory(ctx: OpContext) -> Kernel:
        if ctx.version >= 13:
            axis = int(ctx.attr("axis", -1))

            def run(x: Array) -> tuple:
                ax = _axis(ctx, axis, x.ndim)
                return (_softmax(x, ax, log),)

            return run
        axis = int(ctx.attr("axis", 1))

        def run_2d(x: Array) -> tuple:  # opset < 13: coerce to 2-D at axis
            ax = _axis(ctx, axis, max(x.ndim, 1))
            rows = int(np.prod(x.shape[:ax], dtype=np.int64))
            return (_softmax(x.reshape(rows, -1), 1, log).reshape(x.shape),)

        return run_2d

    return factory


def _softmax(x: Array, axis: int, log: bool) -> Array:
    z = x - x.max(axis=axis, keepdims=True)
    if log:
        return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


register("Softmax", attrs=("axis",), versions=(1, 11, 13))(_softmax_factory(False))
register("LogSoftmax", attrs=("axis",), versions=(1, 11, 13))(_softmax_factory(True))


# --------------------------------------------------------------------------- linear algebra


@register("MatMul", inputs=(2, 2), versions=(1, 9, 13))
def _matmul(ctx: OpContext) -> Kernel:
    return lambda a, b: (np.matmul(a, b),)


@register("Gemm", since=7, inputs=(2, 3), attrs=("alpha", "beta", "transA", "transB"))
def _gemm(ctx: OpContext) -> Kernel:
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    ta, tb = bool(ctx.attr("transA", 0)), bool(ctx.attr("transB", 0))
    if ctx.version < 11 and not ctx.has_input(2):
        raise ctx.fail("input C is required before opset 11")
    b_const = ctx.const[1]
    if b_const is not None and tb:
        b_const = np.ascontiguousarray(b_const.T)  # transposed once, not per run
        tb = False

    def run(a: Array, b: Array, c: Array | None = None) -> tuple:
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"Gemm takes 2-D A and B; got shapes {a.shape} and {b.shape}")
        a2 = a.T if ta else a
        b2 = b_const if b_const is not None else (b.T if tb else b)
        y = a2 @ b2
        if alpha != 1.0:
            y *= y.dtype.type(alpha)
        if c is not None and beta != 0.0:
            y += c * y.dtype.type(beta) if beta != 1.0 else c
        return (y,)

    return run


# --------------------------------------------------------------------------- shapes


@register("Identity", versions=(1, 13, 14, 16, 19, 21))
def _identity(ctx: OpContext) -> Kernel:
    return lambda x: (x,)


@register("Dropout", inputs=(1, 3), outputs=(1, 2), attrs=("ratio", "seed", "is_test"))
def _dropout(ctx: OpContext) -> Kernel:
    if ctx.has_input(2):
        mode = ctx.const[2]
        if mode is None or bool(np.asarray(mode).reshape(-1)[0]):
            raise ctx.fail("training_mode must be a constant False: rnnkit runs inference only")
    want_mask = len(ctx.node.outputs) > 1 and ctx.node.outputs[1] != ""

    def run(x: Array, ratio: Any = None, mode: Any = None) -> tuple:
        if want_mask:
            return (x, np.ones(x.shape, dtype=np.bool_))
        return (x,)

    return run


@register("Transpose", attrs=("perm",), versions=(1, 13, 21))
def _transpose(ctx: OpContext) -> Kernel:
    perm = ctx.ints("perm")
    if perm is None:
        return lambda x: (x.transpose(),)
    if sorted(perm) != list(range(len(perm))):
        raise ctx.fail(f"perm {perm} is not a permutation")

    def run(x: Array) -> tuple:
        if x.ndim != len(perm):
            raise ValueError(f"perm {perm} given for a tensor of rank {x.ndim}")
        return (x.transpose(perm),)

    return run


def _axes_input_or_attr(ctx: OpContext, since_input: int) -> tuple[list[int] | None, bool]:
    """(constant axes or None, whether they come from a runtime input)."""
    if ctx.version < since_input:
        return ctx.ints("axes"), False
    if "axes" in ctx.node.attrs:
        raise ctx.fail(f"'axes' is an input from opset {since_input}, not an attribute")
    if not ctx.has_input(1):
        return None, False
    const = ctx.const[1]
    return (_int_list(const), False) if const is not None else (None, True)


@register("Squeeze", inputs=(1, 2), attrs=("axes",), versions=(1, 11, 13, 21))
def _squeeze(ctx: OpContext) -> Kernel:
    axes, dynamic = _axes_input_or_attr(ctx, 13)

    def run(x: Array, axes_in: Array | None = None) -> tuple:
        ax = _int_list(axes_in) if dynamic else axes
        if ax is None:
            return (np.squeeze(x),)
        ax = [_axis(ctx, a, x.ndim) for a in ax]
        for a in ax:
            if x.shape[a] != 1:
                raise ValueError(f"cannot squeeze axis {a} of size {x.shape[a]} (shape {x.shape})")
        return (np.squeeze(x, axis=tuple(ax)),)

    return run


@register("Unsqueeze", inputs=(1, 2), attrs=("axes",), versions=(1, 11, 13, 21))
def _unsqueeze(ctx: OpContext) -> Kernel:
    axes, dynamic = _axes_input_or_attr(ctx, 13)
    if axes is None and not dynamic:
        raise ctx.fail("axes are required")

    def run(x: Array, axes_in: Array | None = None) -> tuple:
        ax = _int_list(axes_in) if dynamic else axes
        assert ax is not None
        rank = x.ndim + len(ax)
        norm = sorted(_axis(ctx, a, rank) for a in ax)
        if len(set(norm)) != len(norm):
            raise ValueError(f"repeated axes {ax}")
        shape = list(x.shape)
        for a in norm:
            shape.insert(a, 1)
        return (x.reshape(shape),)

    return run


@register("Reshape", since=5, inputs=(2, 2), attrs=("allowzero",), versions=(5, 13, 14, 19, 21))
def _reshape(ctx: OpContext) -> Kernel:
    allowzero = bool(ctx.attr("allowzero", 0)) and ctx.version >= 14
    const = _int_list(ctx.const[1])

    def target(x: Array, shape: list[int]) -> list[int]:
        out = list(shape)
        for k, s in enumerate(out):
            if s == 0 and not allowzero:
                if k >= x.ndim:
                    raise ValueError(f"shape {shape}: 0 at axis {k} beyond the input's rank")
                out[k] = x.shape[k]
        return out

    def run(x: Array, shape: Array) -> tuple:
        return (x.reshape(target(x, const if const is not None else _int_list(shape))),)

    return run


@register("Flatten", attrs=("axis",), versions=(1, 9, 11, 13, 21))
def _flatten(ctx: OpContext) -> Kernel:
    axis = int(ctx.attr("axis", 1))

    def run(x: Array) -> tuple:
        ax = axis + x.ndim if axis < 0 else axis
        if not 0 <= ax <= x.ndim:
            raise ValueError(f"axis {axis} out of range for rank {x.ndim}")
        rows = int(np.prod(x.shape[:ax], dtype=np.int64))
        return (x.reshape(rows, -1) if x.size else x.reshape(rows, int(np.prod(x.shape[ax:]))),)

    return run


@register("Shape", attrs=("start", "end"), versions=(1, 13, 15, 19, 21))
def _shape(ctx: OpContext) -> Kernel:
    start, end = ctx.attr("start", 0), ctx.attr("end", None)
    if ctx.version < 15 and ("start" in ctx.node.attrs or "end" in ctx.node.attrs):
        raise ctx.fail("start/end exist from opset 15")
    return lambda x: (np.array(x.shape[slice(start, end)], dtype=np.int64),)


@register("Size", versions=(1, 13, 19, 21))
def _size(ctx: OpContext) -> Kernel:
    return lambda x: (np.array(x.size, dtype=np.int64),)


@register("Concat", since=4, inputs=(1, 2**31), attrs=("axis",), versions=(4, 11, 13))
def _concat(ctx: OpContext) -> Kernel:
    if "axis" not in ctx.node.attrs:
        raise ctx.fail("attribute 'axis' is required")
    axis = int(ctx.attr("axis"))

    def run(*xs: Array) -> tuple:
        parts = [x for x in xs if x is not None]
        return (np.concatenate(parts, axis=_axis(ctx, axis, parts[0].ndim)),)

    return run


@register(
    "Split",
    inputs=(1, 2),
    outputs=(1, 2**31),
    attrs=("axis", "split", "num_outputs"),
    versions=(2, 11, 13, 18),
)
def _split(ctx: OpContext) -> Kernel:
    axis = int(ctx.attr("axis", 0))
    n_out = len(ctx.node.outputs)
    if ctx.version < 13:
        sizes = ctx.ints("split")
        dynamic = False
    else:
        if "split" in ctx.node.attrs:
            raise ctx.fail("'split' is an input from opset 13, not an attribute")
        sizes = _int_list(ctx.const[1]) if ctx.has_input(1) else None
        dynamic = ctx.has_input(1) and ctx.const[1] is None
    num = ctx.attr("num_outputs")
    if num is not None:
        if ctx.version < 18:
            raise ctx.fail("num_outputs exists from opset 18")
        if ctx.has_input(1):
            raise ctx.fail("give either the 'split' input or num_outputs, not both")
        if int(num) != n_out:
            raise ctx.fail(f"num_outputs={num} but the node has {n_out} outputs")
    if sizes is not None and len(sizes) != n_out:
        raise ctx.fail(f"split has {len(sizes)} sizes for {n_out} outputs")

    def run(x: Array, split: Array | None = None) -> tuple:
        ax = _axis(ctx, axis, x.ndim)
        dim = x.shape[ax]
        parts = _int_list(split) if dynamic else sizes
        if parts is None:
            if num is not None:
                chunk = -(-dim // n_out)
                parts = [min(chunk, max(dim - k * chunk, 0)) for k in range(n_out)]
            else:
                if dim % n_out:
                    raise ValueError(f"axis of size {dim} does not split into {n_out} equal parts")
                parts = [dim // n_out] * n_out
        if sum(parts) != dim or len(parts) != n_out:
            raise ValueError(f"split sizes {parts} do not add up to the axis size {dim}")
        bounds = np.cumsum(parts)[:-1]
        return tuple(np.split(x, bounds, axis=ax))

    return run


def _slice_bounds(dim: int, start: int, end: int, step: int) -> slice:
    """A Python slice with ONNX Slice's clamping of start/end (both signs of step)."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        return slice(start, end, step)
    start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return slice(start, None if end == -1 else end, step)


@register("Slice", inputs=(1, 5), attrs=("starts", "ends", "axes"), versions=(1, 10, 11, 13))
def _slice(ctx: OpContext) -> Kernel:
    if ctx.version < 10:
        const = [ctx.ints("starts"), ctx.ints("ends"), ctx.ints("axes"), None]
        if const[0] is None or const[1] is None:
            raise ctx.fail("attributes starts and ends are required before opset 10")
        dynamic = [False] * 4
    else:
        if {"starts", "ends", "axes"} & set(ctx.node.attrs):
            raise ctx.fail("starts/ends/axes are inputs from opset 10, not attributes")
        const = [_int_list(ctx.const[k]) if ctx.has_input(k) else None for k in (1, 2, 3, 4)]
        dynamic = [ctx.has_input(k) and ctx.const[k] is None for k in (1, 2, 3, 4)]

    def run(x: Array, *args: Array | None) -> tuple:
        starts, ends, axes, steps = (
            _int_list(args[k]) if dynamic[k] else const[k] for k in range(4)
        )
        assert starts is not None and ends is not None
        if axes is None:
            axes = list(range(len(starts)))
        if steps is None:
            steps = [1] * len(starts)
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise ValueError("starts, ends, axes and steps differ in length")
        index: list[slice] = [slice(None)] * x.ndim
        for s, e, a, st in zip(starts, ends, axes, steps):
            if st == 0:
                raise ValueError("a step of 0")
            ax = _axis(ctx, a, x.ndim)
            index[ax] = _slice_bounds(x.shape[ax], s, e, st)
        return (x[tuple(index)],)

    return run


@register("Gather", inputs=(2, 2), attrs=("axis",), versions=(1, 11, 13))
def _gather(ctx: OpContext) -> Kernel:
    axis = int(ctx.attr("axis", 0))

    def run(x: Array, idx: Array) -> tuple:
        ax = _axis(ctx, axis, x.ndim)
        dim = x.shape[ax]
        i = np.asarray(idx).astype(np.int64, copy=False)
        if i.size and (i.min() < -dim or i.max() >= dim):
            raise ValueError(f"indices out of range [-{dim}, {dim - 1}] for axis {ax}")
        i = np.where(i < 0, i + dim, i)
        return (np.take(x, i, axis=ax),)

    return run


@register(
    "Constant",
    inputs=(0, 0),
    attrs=(
        "value",
        "value_float",
        "value_floats",
        "value_int",
        "value_ints",
        "value_string",
        "value_strings",
        "sparse_value",
    ),
)
def _constant(ctx: OpContext) -> Kernel:
    a = ctx.node.attrs
    if len(a) != 1:
        raise ctx.fail("needs exactly one value attribute")
    key, v = next(iter(a.items()))
    if key == "value":
        value = np.asarray(v)
    elif key == "value_float":
        value = np.array(v, dtype=np.float32)
    elif key == "value_floats":
        value = np.array(v, dtype=np.float32)
    elif key == "value_int":
        value = np.array(v, dtype=np.int64)
    elif key == "value_ints":
        value = np.array(v, dtype=np.int64)
    else:
        raise ctx.fail(f"{key} constants are not supported (numeric tensors only)")
    value.flags.writeable = False
    return lambda: (value,)


@register("ConstantOfShape", since=9, attrs=("value",), versions=(9, 20, 21))
def _constant_of_shape(ctx: OpContext) -> Kernel:
    fill = ctx.attr("value")
    fill = np.zeros(1, np.float32) if fill is None else np.asarray(fill).reshape(-1)
    if fill.size != 1:
        raise ctx.fail("value must hold one element")

    def run(shape: Array) -> tuple:
        dims = _int_list(shape)
        assert dims is not None
        if any(d < 0 for d in dims):
            raise ValueError(f"negative dimension in shape {dims}")
        return (np.full(dims, fill[0], dtype=fill.dtype),)

    return run


@register("Cast", attrs=("to", "saturate", "round_mode"), versions=(1, 6, 9, 13, 19, 21))
def _cast(ctx: OpContext) -> Kernel:
    to = ctx.attr("to")
    if to is None:
        raise ctx.fail("attribute 'to' is required")
    dtype = numpy_dtype(int(to), ctx.label)
    return lambda x: (x.astype(dtype, copy=False),)


@register("CastLike", since=15, inputs=(2, 2), attrs=("saturate", "round_mode"))
def _cast_like(ctx: OpContext) -> Kernel:
    return lambda x, like: (x.astype(like.dtype, copy=False),)


@register("Expand", since=8, inputs=(2, 2), versions=(8, 13))
def _expand(ctx: OpContext) -> Kernel:
    def run(x: Array, shape: Array) -> tuple:
        target = np.broadcast_shapes(x.shape, tuple(_int_list(shape) or ()))
        return (np.broadcast_to(x, target),)

    return run


@register("ReverseSequence", since=10, inputs=(2, 2), attrs=("batch_axis", "time_axis"))
def _reverse_sequence(ctx: OpContext) -> Kernel:
    batch_axis, time_axis = int(ctx.attr("batch_axis", 1)), int(ctx.attr("time_axis", 0))
    if {batch_axis, time_axis} != {0, 1}:
        raise ctx.fail("batch_axis and time_axis must be 0 and 1")

    def run(x: Array, lens: Array) -> tuple:
        xt = x if time_axis == 0 else np.swapaxes(x, 0, 1)  # (T, B, ...)
        T, B = xt.shape[0], xt.shape[1]
        n = np.asarray(lens).astype(np.int64).reshape(-1)
        if n.shape != (B,) or (n.size and (n.min() < 0 or n.max() > T)):
            raise ValueError(f"sequence_lens must be {B} values in 0..{T}")
        t = np.arange(T)[:, None]
        src = np.where(t < n[None, :], n[None, :] - 1 - t, t)  # (T, B)
        y = xt[src, np.arange(B)[None, :]]
        return (y if time_axis == 0 else np.swapaxes(y, 0, 1),)

    return run
