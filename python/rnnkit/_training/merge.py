"""Layers that take several inputs or wrap another layer, for graphs of layers (the
functional API): Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum, Dot,
Attention (Luong), AdditiveAttention (Bahdanau) and TimeDistributed.

Each ``forward`` takes a list of arrays (batch axis first) and each ``_backward`` returns a
list of gradients, one per input, in numpy (the products are small beside the recurrent
layers around them; the batched products go through numpy's matmul).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import check_elements, check_float
from . import initializers
from .base import Array, Layer, OwnWeights, Shape, format_shape
from .random import get_rng

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .base import LayerOptions


class _Merge(Layer):
    """Base of the merge layers: a list of inputs in, one array out."""

    _multi_input = True
    _min_inputs = 2
    _max_inputs: int | None = None

    def _owner(self) -> str:
        return f"{type(self).__name__} {self.name!r}"

    def _check_count(self, shapes: list[Any]) -> None:
        n = len(shapes)
        if n < self._min_inputs or (self._max_inputs is not None and n > self._max_inputs):
            want = (
                f"exactly {self._max_inputs}"
                if self._max_inputs == self._min_inputs
                else f"at least {self._min_inputs}"
            )
            raise ValueError(f"[{self._owner()}] takes {want} inputs; got {n}")

    def build(self, input_shape: Any) -> None:
        if not isinstance(input_shape, (list, tuple)) or not all(
            isinstance(s, (list, tuple)) for s in input_shape
        ):
            raise ValueError(f"[{self._owner()}] expects a list of input shapes")
        shapes = [tuple(s) for s in input_shape]
        self._check_count(shapes)
        self._check_shapes(shapes)
        self._build_input_shape = shapes
        self.built = True

    def _check_shapes(self, shapes: list[Shape]) -> None:
        first = shapes[0]
        for k, s in enumerate(shapes[1:], 1):
            ok = len(s) == len(first) and all(
                a is None or b is None or a == b for a, b in zip(first[1:], s[1:])
            )
            if not ok:
                raise ValueError(
                    f"[{self._owner()}] inputs must have the same shape; input 0 is "
                    f"{format_shape(first)} and input {k} is {format_shape(s)}"
                )

    def _check_input_shape(self, shape: Any, argument: str = "x") -> None:
        shapes = [tuple(s) for s in shape]
        self._check_count(shapes)
        self._check_shapes(shapes)
        expected = self._build_input_shape
        if expected is not None and len(expected) == len(shapes):
            for k, (e, s) in enumerate(zip(expected, shapes)):
                if len(e) != len(s) or any(
                    a is not None and b is not None and a != b for a, b in zip(e[1:], s[1:])
                ):
                    raise ValueError(
                        f"[{self._owner()}] input {k} has shape {format_shape(s)}; the layer "
                        f"was built for {format_shape(e)}"
                    )

    def compute_output_shape(self, input_shape: Any) -> Shape:
        return tuple(input_shape[0])

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        """The steps every input has (Keras: the AND of the inputs' masks; an input without
        one counts as all steps)."""
        masks = [m for m in (mask or []) if m is not None]
        if not masks:
            return None
        out = masks[0]
        for m in masks[1:]:
            out = np.logical_and(out, m)
        return out

    @property
    def output_shape(self) -> Shape:
        if self._build_input_shape is None:
            raise AttributeError(f"[{self.name}] output_shape: the layer is not built")
        return self.compute_output_shape(self._build_input_shape)


class Concatenate(_Merge):
    """Joins its inputs along ``axis`` (default the last); the other axes must agree."""

    def __init__(self, axis: int = -1, **kwargs: Unpack[LayerOptions]) -> None:
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"[{self._owner()}] axis must be an int; got {axis!r}")
        self.axis = int(axis)

    def _check_shapes(self, shapes: list[Shape]) -> None:
        rank = len(shapes[0])
        axis = self.axis % rank if -rank <= self.axis < rank else None
        if axis is None or axis == 0:
            raise ValueError(
                f"[{self._owner()}] axis={self.axis} is not a feature axis of inputs of rank "
                f"{rank} (axis 0 is the batch)"
            )
        for k, s in enumerate(shapes):
            ok = len(s) == rank and all(
                i == axis or a is None or b is None or a == b
                for i, (a, b) in enumerate(zip(shapes[0], s))
                if i > 0
            )
            if not ok:
                raise ValueError(
                    f"[{self._owner()}] inputs must agree on every axis but {self.axis}; input 0 "
                    f"is {format_shape(shapes[0])} and input {k} is {format_shape(s)}"
                )

    def compute_output_shape(self, input_shape: Any) -> Shape:
        shapes = [tuple(s) for s in input_shape]
        axis = self.axis % len(shapes[0])
        sizes = [s[axis] for s in shapes]
        total = None if any(v is None for v in sizes) else sum(sizes)
        out = list(shapes[0])
        out[axis] = total
        return tuple(out)

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        if not mask or all(m is None for m in mask):
            return None
        rank = np.ndim(inputs[0])
        if self.axis % rank == 1:  # joined along time: the masks are joined too
            return np.concatenate(
                [np.ones(np.shape(a)[:2], bool) if m is None else m for a, m in zip(inputs, mask)],
                axis=1,
            )
        return super().compute_mask(inputs, mask)

    def forward(self, x: list[Array], training: bool = False) -> Array:
        self._sizes = [a.shape[self.axis] for a in x]
        return np.concatenate(x, axis=self.axis)

    def _backward(self, dy: Array, need_dx: bool) -> list[Array]:
        cuts = np.cumsum(self._sizes)[:-1]
        return [np.ascontiguousarray(p) for p in np.split(dy, cuts, axis=self.axis)]

    def _config(self) -> dict[str, Any]:
        return {"axis": self.axis}


class Add(_Merge):
    """Elementwise sum of its inputs."""

    def forward(self, x: list[Array], training: bool = False) -> Array:
        self._n = len(x)
        out = x[0].copy()
        for a in x[1:]:
            out += a
        return out

    def _backward(self, dy: Array, need_dx: bool) -> list[Array]:
        return [dy] * self._n


class Subtract(_Merge):
    """``inputs[0] - inputs[1]``."""

    _max_inputs = 2

    def forward(self, x: list[Array], training: bool = False) -> Array:
        return x[0] - x[1]

    def _backward(self, dy: Array, need_dx: bool) -> list[Array]:
        return [dy, -dy]


class Average(_Merge):
    """Elementwise mean of its inputs."""

    def forward(self, x: list[Array], training: bool = False) -> Array:
        self._n = len(x)
        out = x[0].copy()
        for a in x[1:]:
            out += a
        return out / out.dtype.type(self._n)

    def _backward(self, dy: Array, need_dx: bool) -> list[Array]:
        g = dy / dy.dtype.type(self._n)
        return [g] * self._n


class Multiply(_Merge):
    """Elementwise product of its inputs."""

    def forward(self, x: list[Array], training: bool = False) -> Array:
        self._inputs = list(x)
        out = x[0].copy()
        for a in x[1:]:
            out *= a
        return out

    def _backward(self, dy: Array, need_dx: bool) -> list[Array]:
        grads = []
        for k in range(len(self._inputs)):
            g = dy.copy()
            for j, a in enumerate(self._inputs):
                if j != k:
                    g *= a
            grads.append(g)
        return grads


class _Extremum(_Merge):
    _pick: Any = None

    def forward(self, x: list[Array], training: bool = False) -> Array:
        stack = np.stack(x)
        self._which = self._pick(stack, axis=0)  # the first input wins ties, as np.maximum
        self._n = len(x)
        return np.take_along_axis(stack, self._which[None], axis=0)[0]

    def _backward(self, dy: Array, need_dx: bool) -> list[Array]:
        return [np.where(self._which == k, dy, 0).astype(dy.dtype) for k in range(self._n)]


class Maximum(_Extremum):
    """Elementwise maximum of its inputs (the gradient goes to the first largest)."""

    _pick = staticmethod(np.argmax)


class Minimum(_Extremum):
    """Elementwise minimum of its inputs (the gradient goes to the first smallest)."""

    _pick = staticmethod(np.argmin)


def _l2_normalize(a: Array, axis: int) -> tuple[Array, Array]:
    norm = np.sqrt(np.maximum(np.sum(a * a, axis=axis, keepdims=True), 1e-12))
    return a / norm, norm


class Dot(_Merge):
    """Dot products of two inputs along ``axes`` (Keras's ``Dot``): for ``(B, n, d)`` and
    ``(B, m, d)`` with ``axes=2``, ``(B, n, m)``; for ``(B, d)`` and ``(B, d)``, ``(B, 1)``.
    ``normalize=True`` L2-normalizes both along the axes first (cosine similarity)."""

    _max_inputs = 2

    def __init__(self, axes: Any, normalize: bool = False, **kwargs: Unpack[LayerOptions]) -> None:
        super().__init__(**kwargs)
        if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
            pair = (int(axes), int(axes))
        elif (
            isinstance(axes, (list, tuple))
            and len(axes) == 2
            and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes)
        ):
            pair = (int(axes[0]), int(axes[1]))
        else:
            raise TypeError(
                f"[{self._owner()}] axes must be an int or a pair of ints; got {axes!r}"
            )
        self.axes = pair
        self.normalize = bool(normalize)

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        return None

    def _resolved(self, shapes: list[Shape]) -> tuple[int, int]:
        out = []
        for a, s in zip(self.axes, shapes):
            rank = len(s)
            if not -rank <= a < rank or a % rank == 0:
                raise ValueError(
                    f"[{self._owner()}] axes={self.axes} is not a feature axis of an input of "
                    f"shape {format_shape(s)}"
                )
            out.append(a % rank)
        return out[0], out[1]

    def _check_shapes(self, shapes: list[Shape]) -> None:
        for s in shapes:
            if len(s) not in (2, 3):
                raise ValueError(
                    f"[{self._owner()}] takes inputs of rank 2 or 3; got {format_shape(s)}"
                )
        a0, a1 = self._resolved(shapes)
        d0, d1 = shapes[0][a0], shapes[1][a1]
        if d0 is not None and d1 is not None and d0 != d1:
            raise ValueError(
                f"[{self._owner()}] the dotted axes differ in size: {format_shape(shapes[0])} "
                f"axis {a0} is {d0}, {format_shape(shapes[1])} axis {a1} is {d1}"
            )

    def compute_output_shape(self, input_shape: Any) -> Shape:
        s0, s1 = (tuple(s) for s in input_shape)
        a0, a1 = self._resolved([s0, s1])
        rest = [d for i, d in enumerate(s0) if i not in (0, a0)]
        rest += [d for i, d in enumerate(s1) if i not in (0, a1)]
        return (s0[0], *rest) if rest else (s0[0], 1)

    @staticmethod
    def _as_3d(a: Array, axis: int, contracted_last: bool) -> Array:
        """(B, p, k) with the contracted axis last, or (B, k, q) with it in the middle."""
        if a.ndim == 2:
            return a[:, None, :] if contracted_last else a[:, :, None]
        in_place = axis == 2 if contracted_last else axis == 1
        return a if in_place else a.transpose(0, 2, 1)

    def forward(self, x: list[Array], training: bool = False) -> Array:
        a, b = x
        a0, a1 = self._resolved([a.shape, b.shape])
        self._shapes = (a.shape, b.shape, a0, a1)
        if self.normalize:
            a, self._norm_a = _l2_normalize(a, a0)
            b, self._norm_b = _l2_normalize(b, a1)
        self._a, self._b = a, b
        left = self._as_3d(a, a0, True)  # (B, p, k)
        right = self._as_3d(b, a1, False)  # (B, k, q)
        out = np.matmul(left, right)  # (B, p, q)
        if a.ndim == 2 and b.ndim == 2:
            return out.reshape(out.shape[0], 1)
        if a.ndim == 2:
            return out[:, 0, :]
        return out[:, :, 0] if b.ndim == 2 else out

    def _backward(self, dy: Array, need_dx: bool) -> list[Array]:
        sa, sb, a0, a1 = self._shapes
        a, b = self._a, self._b
        left = self._as_3d(a, a0, True)
        right = self._as_3d(b, a1, False)
        if a.ndim == 2 and b.ndim == 2:
            g = dy.reshape(-1, 1, 1)
        elif a.ndim == 2:
            g = dy[:, None, :]
        elif b.ndim == 2:
            g = dy[:, :, None]
        else:
            g = dy
        dleft = np.matmul(g, right.transpose(0, 2, 1))  # (B, p, k)
        dright = np.matmul(left.transpose(0, 2, 1), g)  # (B, k, q)
        if a.ndim == 2:
            da = dleft[:, 0, :]
        else:
            da = dleft if a0 == 2 else dleft.transpose(0, 2, 1)
        if b.ndim == 2:
            db = dright[:, :, 0]
        else:
            db = dright if a1 == 1 else dright.transpose(0, 2, 1)
        if self.normalize:
            da = (da - a * np.sum(da * a, axis=a0, keepdims=True)) / self._norm_a
            db = (db - b * np.sum(db * b, axis=a1, keepdims=True)) / self._norm_b
        return [np.ascontiguousarray(da), np.ascontiguousarray(db)]

    def _config(self) -> dict[str, Any]:
        return {"axes": list(self.axes), "normalize": self.normalize}


def _softmax(s: Array) -> Array:
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Attention(OwnWeights, _Merge):
    """Dot-product attention (Luong), Keras 3's ``Attention``: inputs ``[query (B, Tq, D),
    value (B, Tv, D)]`` or ``[query, value, key]`` (key defaults to value).

    ``scores = query · keyᵀ`` (times a trainable scalar ``scale`` with ``use_scale``), or with
    ``score_mode="concat"`` ``concat_score_weight · Σ tanh(scale·(q + k))``; the weights are
    ``softmax(scores)`` over Tv (dropped out with ``dropout`` in training); the output is
    ``weights · value (B, Tq, D)``. ``return_attention_scores=True`` also returns the
    weights (B, Tq, Tv); ``use_causal_mask=True`` lets query step i see key steps ≤ i.
    """

    _max_inputs = 3
    _value_call_kwargs = ("return_attention_scores", "use_causal_mask")

    def __init__(
        self,
        use_scale: bool = False,
        score_mode: str = "dot",
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Unpack[LayerOptions],
    ) -> None:
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(
                f"[{self._owner()}] score_mode must be 'dot' or 'concat'; got {score_mode!r}"
            )
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = check_float(self._owner(), "dropout", dropout, 0.0, 1.0)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def _check_shapes(self, shapes: list[Shape]) -> None:
        for s in shapes:
            if len(s) != 3:
                raise ValueError(
                    f"[{self._owner()}] takes [query, value(, key)] of shape (batch, time, dim); "
                    f"got {format_shape(s)}"
                )
        q, v = shapes[0], shapes[1]
        k = shapes[2] if len(shapes) > 2 else v
        if q[-1] is not None and k[-1] is not None and q[-1] != k[-1]:
            raise ValueError(
                f"[{self._owner()}] query and key must have the same last dimension; got "
                f"{format_shape(q)} and {format_shape(k)}"
            )
        if v[1] is not None and k[1] is not None and v[1] != k[1]:
            raise ValueError(
                f"[{self._owner()}] value and key must have the same number of steps; got "
                f"{format_shape(v)} and {format_shape(k)}"
            )

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        self._params: list[Array] = []
        names = []
        if self.use_scale:
            self._params.append(self._make_scale(input_shape))
            names.append("scale")
        if self.score_mode == "concat":
            self._params.append(np.ones((1,), dtype=self.dtype))
            names.append("concat_score_weight")
        self.weight_names = tuple(names)
        self._grads = [np.zeros_like(w) for w in self._params]

    def _make_scale(self, input_shape: Any) -> Array:
        # Keras's scalar weights are stored (1,) here (optimizers update 1-d arrays in place)
        # and shown with Keras's shape () by get_weights
        return np.ones((1,), dtype=self.dtype)

    def compute_output_shape(self, input_shape: Any) -> Shape:
        q, v = input_shape[0], input_shape[1]
        return (q[0], q[1], v[2])

    def _output_shapes(self, input_shape: Any, call_kwargs: dict[str, Any]) -> Any:
        out = self.compute_output_shape(input_shape)
        if call_kwargs.get("return_attention_scores"):
            q, v = input_shape[0], input_shape[1]
            return [out, (q[0], q[1], v[1])]
        return out

    # the score function and its gradient (query, key) -> scores, d(scores) -> dq, dk
    def _scores(self, q: Array, k: Array) -> Array:
        if self.score_mode == "dot":
            s = np.matmul(q, k.transpose(0, 2, 1))
            return s * self._params[0] if self.use_scale else s
        pre = q[:, :, None, :] + k[:, None, :, :]  # (B, Tq, Tv, D)
        if self.use_scale:
            pre = pre * self._params[0]
        self._tanh = np.tanh(pre)
        return self._params[-1] * self._tanh.sum(axis=-1)

    def _scores_backward(self, ds: Array, q: Array, k: Array) -> tuple[Array, Array]:
        grads = self._grads
        if self.score_mode == "dot":
            raw = np.matmul(q, k.transpose(0, 2, 1))
            if self.use_scale:
                grads[0] += np.sum(ds * raw)
                ds = ds * self._params[0]
            return np.matmul(ds, k), np.matmul(ds.transpose(0, 2, 1), q)
        t = self._tanh
        w = self._params[-1]
        grads[-1] += np.sum(ds * t.sum(axis=-1))
        dpre = (ds * w)[..., None] * (1.0 - t * t)  # (B, Tq, Tv, D)
        if self.use_scale:
            pre = q[:, :, None, :] + k[:, None, :, :]
            grads[0] += np.sum(dpre * pre)
            dpre = dpre * self._params[0]
        return dpre.sum(axis=2), dpre.sum(axis=1)

    _mask_aware = True

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        """The query's mask (Keras)."""
        if not mask:
            return None
        return mask[0]

    def _output_masks(self, inputs: Any, mask: Any, call_kwargs: dict[str, Any]) -> Any:
        out = self.compute_mask(inputs, mask)
        return [out, None] if call_kwargs.get("return_attention_scores") else out

    def forward(
        self,
        x: list[Array],
        training: bool = False,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
        mask: Any = None,
    ) -> Any:
        q, v = x[0], x[1]
        k = x[2] if len(x) > 2 else v
        self._inputs = (q, v, k, len(x))
        scores = self._scores(q, k)
        q_mask = v_mask = None
        if mask is not None:
            q_mask = mask[0]
            v_mask = mask[1] if len(mask) > 1 else None
        blocked = None
        if use_causal_mask:
            tq, tv = scores.shape[1], scores.shape[2]
            blocked = (np.arange(tv)[None, :] > np.arange(tq)[:, None])[None]
        if v_mask is not None:  # value steps that are padding get no weight
            pad = ~np.asarray(v_mask, bool)[:, None, :]
            blocked = pad if blocked is None else blocked | pad
        if blocked is not None:  # as Keras: scores - 1e9 where blocked
            scores = np.where(blocked, scores - scores.dtype.type(1e9), scores)
        weights = _softmax(scores)
        self._weights = weights
        used = weights
        self._drop = None
        if training and self.dropout > 0.0:
            rng = self._rng if self._rng is not None else get_rng()
            keep = rng.random(weights.shape, dtype=weights.dtype) >= self.dropout
            self._drop = keep * weights.dtype.type(1.0 / (1.0 - self.dropout))
            used = weights * self._drop
        self._used = used
        out = np.matmul(used, v)
        self._q_keep = None
        if q_mask is not None:  # masked query steps output zeros (Keras)
            self._q_keep = np.asarray(q_mask, bool)[..., None].astype(out.dtype)
            out = out * self._q_keep
        return [out, weights] if return_attention_scores else out

    def _backward(self, dy: Any, need_dx: bool) -> list[Array]:
        q, v, k, n = self._inputs
        dweights_extra = None
        if isinstance(dy, (list, tuple)):
            dy, dweights_extra = dy[0], dy[1]
        if self._q_keep is not None:
            dy = dy * self._q_keep
        dv = np.matmul(self._used.transpose(0, 2, 1), dy)
        dused = np.matmul(dy, v.transpose(0, 2, 1))
        dw = dused if self._drop is None else dused * self._drop
        if dweights_extra is not None:
            dw = dw + dweights_extra
        w = self._weights
        ds = w * (dw - np.sum(dw * w, axis=-1, keepdims=True))
        dq, dk = self._scores_backward(ds, q, k)
        if n > 2:
            return [dq, dv, dk]
        return [dq, dv + dk]

    def _keras_weights(self) -> list[Array]:
        return [self._keras_view(w) for w in self._params] if self.built else []

    def _keras_view(self, w: Array) -> Array:
        return w.reshape(()) if w.shape == (1,) and self._scalar_weights else w

    #: Whether the (1,) weights are Keras scalars (Attention's; AdditiveAttention's are (D,)).
    _scalar_weights = True

    def _keras_from_parameters(self, arrays: list[Array]) -> list[Array]:
        return [self._keras_view(a) for a in arrays]

    def _parameters_from_keras(self, weights: list[Array]) -> list[Array]:
        return [np.reshape(w, p.shape) for w, p in zip(weights, self._params)]

    def _config(self) -> dict[str, Any]:
        return {
            "use_scale": self.use_scale,
            "score_mode": self.score_mode,
            "dropout": self.dropout,
            "seed": self.seed,
        }


class AdditiveAttention(Attention):
    """Additive attention (Bahdanau), Keras 3's ``AdditiveAttention``: scores
    ``Σ_d scale_d · tanh(q_d + k_d)`` with a trainable ``scale (D,)`` (glorot-uniform) when
    ``use_scale`` (the default), otherwise ``Σ tanh(q + k)``; then as :class:`Attention`."""

    def __init__(
        self, use_scale: bool = True, dropout: float = 0.0, **kwargs: Unpack[LayerOptions]
    ) -> None:
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    _scalar_weights = False

    def _make_scale(self, input_shape: Any) -> Array:
        dim = input_shape[0][-1]
        if dim is None:
            raise ValueError(f"[{self._owner()}] the query's last dimension must be known")
        check_elements(self._owner(), "scale", (int(dim),), f"query dimension {dim}")
        return initializers.initialize("glorot_uniform", (int(dim),), self.dtype)

    def _scores(self, q: Array, k: Array) -> Array:
        self._tanh = np.tanh(q[:, :, None, :] + k[:, None, :, :])  # (B, Tq, Tv, D)
        if self.use_scale:
            return self._tanh @ self._params[0]
        return self._tanh.sum(axis=-1)

    def _scores_backward(self, ds: Array, q: Array, k: Array) -> tuple[Array, Array]:
        t = self._tanh
        if self.use_scale:
            scale = self._params[0]
            self._grads[0] += np.einsum("bqv,bqvd->d", ds, t)
            dpre = ds[..., None] * scale * (1.0 - t * t)
        else:
            dpre = ds[..., None] * (1.0 - t * t)
        return dpre.sum(axis=2), dpre.sum(axis=1)

    def _config(self) -> dict[str, Any]:
        config = super()._config()
        del config["score_mode"]
        return config


class TimeDistributed(Layer):
    """Applies ``layer`` to every time step: ``(B, T, ...) -> (B, T, ...)``, the wrapped
    layer seeing ``(B·T, ...)``. Its weights are the wrapped layer's (shared by all steps)."""

    def __init__(self, layer: Layer, **kwargs: Unpack[LayerOptions]) -> None:
        if not isinstance(layer, Layer):
            raise TypeError(f"[TimeDistributed] expects a rnnkit layer; got {type(layer).__name__}")
        if layer._multi_input or getattr(layer, "return_state", False):
            raise ValueError(
                f"[TimeDistributed] wraps a layer with one input and one output; "
                f"{layer.name!r} is not"
            )
        kwargs.setdefault("dtype", layer.dtype.name)
        super().__init__(**kwargs)
        self.layer = layer
        self._float_input = layer._float_input

    _passes_mask = True

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) < 3:
            raise ValueError(
                f"[TimeDistributed {self.name!r}] expects inputs (batch, time, ...); got "
                f"{format_shape(input_shape)}"
            )
        inner = (None, *input_shape[2:])
        if not self.layer.built:
            self.layer.build(inner)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        inner = self.layer.compute_output_shape((None, *input_shape[2:]))
        return (input_shape[0], input_shape[1], *inner[1:])

    def _planned_weight_shapes(self, input_shape: Shape) -> list[tuple[int, ...]]:
        from .untrusted import weight_shapes

        return weight_shapes(self.layer, (None, *input_shape[2:]), ValueError)

    def forward(self, x: Array, training: bool = False) -> Array:
        b, t = x.shape[0], x.shape[1]
        y = self.layer.forward(x.reshape(b * t, *x.shape[2:]), training)
        self._bt = (b, t)
        return y.reshape(b, t, *y.shape[1:])

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        b, t = self._bt
        dx = self.layer._backward(dy.reshape(b * t, *dy.shape[2:]), need_dx)
        return None if dx is None else dx.reshape(b, t, *dx.shape[1:])

    def parameters(self) -> list[Array]:
        return self.layer.parameters()

    def gradients(self) -> list[Array]:
        return self.layer.gradients()

    def zero_grad(self) -> None:
        self.layer.zero_grad()

    def _weight_rules(self) -> list[tuple[int, Any, Any]]:
        return self.layer._weight_rules()

    def _penalty(self) -> float:
        return self.layer._penalty() if self.trainable else 0.0

    def _add_penalty_gradients(self) -> None:
        self.layer._add_penalty_gradients()

    def _apply_constraints(self) -> None:
        self.layer._apply_constraints()

    def _weight_labels(self) -> list[str]:
        return self.layer._weight_labels()

    def _keras_weights(self) -> list[Array]:
        return self.layer._keras_weights()

    def _set_keras_weights(self, weights: list[Array]) -> None:
        self.layer._set_keras_weights(weights)

    def _quantize(self, mode: str) -> bool:
        self.layer.quantize(mode)
        return self.layer.quantization_mode is not None

    def get_config(self) -> dict[str, Any]:
        from .. import layers as layers_module

        config = super().get_config()
        config["layer"] = layers_module.serialize(self.layer)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TimeDistributed:
        from .. import layers as layers_module

        config = dict(config)
        inner = layers_module.deserialize(config.pop("layer"))
        return cls(inner, **config)
