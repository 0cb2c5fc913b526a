"""Layers around recurrent ones in text and forecasting models: Conv1D, MaxPooling1D,
AveragePooling1D, GlobalAveragePooling1D, GlobalMaxPooling1D (channels last, as Keras 3's
default), and the normalizations LayerNormalization and BatchNormalization.

Conv1D is a matrix product over the windows of the input (the windows gathered once per call,
``(B, T_out, kernel_size · C)``, times the kernel ``(kernel_size · C, filters)``) on the core's
GEMM; its backward scatters the windows' gradient back onto the input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _core
from .._checks import check_elements, check_float
from . import initializers
from .base import (
    Array,
    Layer,
    OwnWeights,
    SequenceInput,
    Shape,
    format_shape,
    resolve_rules,
    rules_config,
)
from .core_layers import kernel_bias_config, kernel_bias_options, kernel_bias_rules

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .base import LayerOptions


def _positive(owner: str, name: str, value: Any) -> int:
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"[{owner}] {name} must be a positive int; got {value!r}")
    return int(value)


def _check_data_format(owner: str, data_format: Any) -> None:
    if data_format not in (None, "channels_last"):
        raise NotImplementedError(
            f"[{owner}] data_format={data_format!r} is not supported; rnnkit's layers take "
            "(batch, steps, channels) (channels_last, Keras's default)"
        )


def _out_steps(steps: int | None, span: int, stride: int, padding: str) -> int | None:
    if steps is None:
        return None
    if padding == "valid":
        return max((steps - span) // stride + 1, 0)
    return -(-steps // stride)  # same, causal


def _pads(steps: int, span: int, stride: int, padding: str) -> tuple[int, int]:
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return span - 1, 0
    out = -(-steps // stride)
    total = max((out - 1) * stride + span - steps, 0)
    return total // 2, total - total // 2


class _Windows:
    """The windows of ``(B, T, C)`` for a kernel of ``size`` taps ``dilation`` apart."""

    def __init__(self, steps: int, size: int, stride: int, dilation: int, padding: str) -> None:
        span = dilation * (size - 1) + 1
        self.left, self.right = _pads(steps, span, stride, padding)
        self.padded = steps + self.left + self.right
        self.out = max((self.padded - span) // stride + 1, 0)
        self.size, self.stride, self.dilation = size, stride, dilation

    def taps(self) -> list[slice]:
        last = self.stride * (self.out - 1) + 1
        return [
            slice(j * self.dilation, j * self.dilation + last, self.stride)
            for j in range(self.size)
        ]

    def gather(self, x: Array) -> Array:
        if self.left or self.right:
            x = np.pad(x, ((0, 0), (self.left, self.right), (0, 0)))
        return np.concatenate([x[:, s] for s in self.taps()], axis=-1)  # (B, T_out, size·C)

    def scatter(self, dcols: Array, channels: int) -> Array:
        b = dcols.shape[0]
        dx = np.zeros((b, self.padded, channels), dcols.dtype)
        for j, s in enumerate(self.taps()):
            dx[:, s] += dcols[..., j * channels : (j + 1) * channels]
        return dx[:, self.left : self.padded - self.right]


class Conv1D(OwnWeights, Layer):
    """1-D convolution over steps, Keras 3's ``Conv1D``: ``x (B, T, C) -> (B, T_out,
    filters)`` with ``kernel (kernel_size, C, filters)``; ``padding`` "valid", "same" or
    "causal" (left padding only: step t sees steps ≤ t), ``strides``, ``dilation_rate``."""

    weight_names = ("kernel", "bias")

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: Any = None,
        dilation_rate: Any = 1,
        groups: int = 1,
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Unpack[LayerOptions],
    ) -> None:
        super().__init__(**kwargs)
        owner = f"Conv1D {self.name!r}"
        _check_data_format(owner, data_format)
        self.filters = _positive(owner, "filters", filters)
        self.kernel_size = _positive(owner, "kernel_size", kernel_size)
        self.strides = _positive(owner, "strides", strides)
        self.dilation_rate = _positive(owner, "dilation_rate", dilation_rate)
        if self.strides > 1 and self.dilation_rate > 1:
            raise ValueError(f"[{owner}] strides > 1 and dilation_rate > 1 cannot be combined")
        if groups != 1:
            raise NotImplementedError(f"[{owner}] groups={groups!r} is not supported (only 1)")
        if padding not in ("valid", "same", "causal"):
            raise ValueError(
                f"[{owner}] padding must be 'valid', 'same' or 'causal'; got {padding!r}"
            )
        self.padding = padding
        kernel_bias_options(
            self,
            owner,
            activation,
            use_bias,
            kernel_initializer,
            bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
        )

    def _span(self) -> int:
        return self.dilation_rate * (self.kernel_size - 1) + 1

    def build(self, input_shape: Shape) -> None:
        owner = f"Conv1D {self.name!r}"
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"[{owner}] expects inputs (batch, steps, channels) with known channels; got "
                f"{format_shape(input_shape)}"
            )
        channels = int(input_shape[-1])
        shape = (self.kernel_size, channels, self.filters)
        check_elements(
            owner,
            "kernel",
            shape,
            f"kernel_size={self.kernel_size}, {channels} channels, filters={self.filters}",
        )
        self.kernel = initializers.initialize(self.kernel_initializer, shape, self.dtype)
        params = [self.kernel]
        if self.use_bias:
            self.bias = initializers.initialize(self.bias_initializer, (self.filters,), self.dtype)
            params.append(self.bias)
        self._params = params
        self._grads = [np.zeros_like(p) for p in params]
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        steps = _out_steps(input_shape[1], self._span(), self.strides, self.padding)
        return (input_shape[0], steps, self.filters)

    def _planned_weight_shapes(self, input_shape: Shape) -> list[tuple[int, ...]]:
        if input_shape[-1] is None:
            raise ValueError(f"[Conv1D {self.name!r}] the input channels must be known")
        kernel = (self.kernel_size, int(input_shape[-1]), self.filters)
        return [kernel, (self.filters,)] if self.use_bias else [kernel]

    def forward(self, x: Array, training: bool = False) -> Array:
        self._refuse_quantized_training(training)
        win = _Windows(x.shape[1], self.kernel_size, self.strides, self.dilation_rate, self.padding)
        if win.out <= 0:
            raise ValueError(
                f"[Conv1D {self.name!r}] {x.shape[1]} steps are fewer than the kernel spans "
                f"({self._span()}) with padding='valid'"
            )
        cols = np.ascontiguousarray(win.gather(x).reshape(-1, self.kernel_size * x.shape[2]))
        w = self.kernel.reshape(-1, self.filters)
        z = np.empty((cols.shape[0], self.filters), self.dtype)
        _core.matmul(cols, np.ascontiguousarray(w), z)
        if self.use_bias:
            z += self.bias
        y = self._act(z)
        self._cache = (win, cols, z, y, x.shape) if training else None
        out = y.reshape(x.shape[0], win.out, self.filters)
        self._activity_forward(out, training)
        return out

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        if self._cache is None:
            raise RuntimeError(f"[Conv1D {self.name!r}] backward needs a training forward first")
        win, cols, z, y, shape = self._cache
        dy = self._activity_backward(dy)
        dz = np.ascontiguousarray(self._act_grad(z, y, dy.reshape(z.shape)), dtype=self.dtype)
        dw = np.empty((cols.shape[1], self.filters), self.dtype)
        _core.matmul(cols, dz, dw, trans_a=True)
        self._grads[0] += dw.reshape(self.kernel.shape)
        if self.use_bias:
            self._grads[1] += dz.sum(axis=0)
        if not need_dx:
            return None
        dcols = np.empty_like(cols)
        _core.matmul(
            dz, np.ascontiguousarray(self.kernel.reshape(-1, self.filters)), dcols, trans_b=True
        )
        return win.scatter(dcols.reshape(shape[0], win.out, -1), shape[2])

    def _weight_rules(self) -> list[tuple[int, Any, Any]]:
        return kernel_bias_rules(self)

    def _config(self) -> dict[str, Any]:
        return {
            "filters": self.filters,
            "kernel_size": [self.kernel_size],
            "strides": [self.strides],
            "padding": self.padding,
            "dilation_rate": [self.dilation_rate],
            **kernel_bias_config(self),
        }


class _Pooling1D(SequenceInput, Layer):
    _reduce = ""

    def __init__(
        self,
        pool_size: Any = 2,
        strides: Any = None,
        padding: str = "valid",
        data_format: Any = None,
        **kwargs: Unpack[LayerOptions],
    ) -> None:
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} {self.name!r}"
        _check_data_format(owner, data_format)
        self.pool_size = _positive(owner, "pool_size", pool_size)
        self.strides = self.pool_size if strides is None else _positive(owner, "strides", strides)
        if padding not in ("valid", "same"):
            raise ValueError(f"[{owner}] padding must be 'valid' or 'same'; got {padding!r}")
        self.padding = padding

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        steps = _out_steps(input_shape[1], self.pool_size, self.strides, self.padding)
        return (input_shape[0], steps, input_shape[2])

    def forward(self, x: Array, training: bool = False) -> Array:
        win = _Windows(x.shape[1], self.pool_size, self.strides, 1, self.padding)
        if win.out <= 0:
            raise ValueError(
                f"[{type(self).__name__} {self.name!r}] {x.shape[1]} steps are fewer than "
                f"pool_size={self.pool_size}"
            )
        b, _, c = x.shape
        fill = -np.inf if self._reduce == "max" else 0.0
        xp = np.pad(x, ((0, 0), (win.left, win.right), (0, 0)), constant_values=fill)
        stack = np.stack([xp[:, s] for s in win.taps()], axis=2)  # (B, T_out, pool, C)
        if self._reduce == "max":
            self._arg = stack.argmax(axis=2)
            out = np.take_along_axis(stack, self._arg[:, :, None], axis=2)[:, :, 0]
        else:
            real = np.pad(
                np.ones((1, x.shape[1], 1), x.dtype), ((0, 0), (win.left, win.right), (0, 0))
            )
            counts = np.stack([real[:, s] for s in win.taps()], axis=2).sum(axis=2)  # (1, T_out, 1)
            self._counts = counts
            out = stack.sum(axis=2) / counts  # Keras averages over the real steps only
        self._win, self._shape = win, (b, c)
        return out.astype(x.dtype, copy=False)

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        if not need_dx:
            return None
        win, (b, c) = self._win, self._shape
        if self._reduce == "max":
            parts = np.zeros((*dy.shape[:2], win.size, c), dy.dtype)
            np.put_along_axis(parts, self._arg[:, :, None], dy[:, :, None], axis=2)
        else:
            parts = np.broadcast_to((dy / self._counts)[:, :, None], (*dy.shape[:2], win.size, c))
        dx = np.zeros((b, win.padded, c), dy.dtype)
        for j, s in enumerate(win.taps()):
            dx[:, s] += parts[:, :, j]
        return dx[:, win.left : win.padded - win.right]

    def _config(self) -> dict[str, Any]:
        return {"pool_size": [self.pool_size], "strides": [self.strides], "padding": self.padding}


class MaxPooling1D(_Pooling1D):
    """The largest value of each channel in windows of ``pool_size`` steps."""

    _reduce = "max"


class AveragePooling1D(_Pooling1D):
    """The mean of each channel in windows of ``pool_size`` steps."""

    _reduce = "mean"


class _GlobalPooling1D(SequenceInput, Layer):
    def __init__(self, data_format: Any = None, keepdims: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_data_format(f"{type(self).__name__} {self.name!r}", data_format)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if self.keepdims:
            return (input_shape[0], 1, input_shape[2])
        return (input_shape[0], input_shape[2])

    def _shape_out(self, out: Array) -> Array:
        return out[:, None, :] if self.keepdims else out

    def _config(self) -> dict[str, Any]:
        return {"keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling1D):
    """The mean over steps ``(B, T, C) -> (B, C)``; with a mask, over the unmasked steps
    only (Keras)."""

    _mask_aware = True

    def forward(self, x: Array, training: bool = False, mask: Any = None) -> Array:
        if mask is None:
            self._weights = np.full((x.shape[0], x.shape[1], 1), 1.0 / x.shape[1], x.dtype)
        else:
            m = np.asarray(mask, bool)[..., None].astype(x.dtype)
            self._weights = m / m.sum(
                axis=1, keepdims=True
            )  # a fully masked row gives NaN, as Keras
        return self._shape_out((x * self._weights).sum(axis=1))

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        if not need_dx:
            return None
        dy = dy.reshape(dy.shape[0], -1)
        return dy[:, None, :] * self._weights


class GlobalMaxPooling1D(_GlobalPooling1D):
    """The largest value of each channel over steps ``(B, T, C) -> (B, C)``."""

    def forward(self, x: Array, training: bool = False) -> Array:
        self._arg = x.argmax(axis=1)
        self._steps = x.shape[1]
        return self._shape_out(np.take_along_axis(x, self._arg[:, None], axis=1)[:, 0])

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        if not need_dx:
            return None
        dy = dy.reshape(dy.shape[0], -1)
        dx = np.zeros((dy.shape[0], self._steps, dy.shape[1]), dy.dtype)
        np.put_along_axis(dx, self._arg[:, None], dy[:, None], axis=1)
        return dx


class _Normalization(OwnWeights, Layer):
    """Shared by LayerNormalization and BatchNormalization: gamma/beta on the last axis."""

    _passes_mask = True

    def __init__(
        self,
        axis: Any = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: str = "zeros",
        gamma_initializer: str = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} {self.name!r}"
        if isinstance(axis, (list, tuple)) and len(axis) == 1:
            axis = axis[0]
        if axis != -1:
            raise NotImplementedError(
                f"[{owner}] axis={axis!r} is not supported; rnnkit normalizes the last axis "
                "(the features, Keras's default)"
            )
        self.axis = -1
        self.epsilon = check_float(owner, "epsilon", epsilon, 0.0, 1.0)
        self.center, self.scale = bool(center), bool(scale)
        self.weight_names = (
            *(("gamma",) if self.scale else ()),
            *(("beta",) if self.center else ()),
            *(("moving_mean", "moving_variance") if self._extra_weights else ()),
        )
        self.beta_initializer = initializers.resolve(beta_initializer, owner, "beta_initializer")
        self.gamma_initializer = initializers.resolve(gamma_initializer, owner, "gamma_initializer")
        resolve_rules(
            self,
            owner,
            beta_regularizer=beta_regularizer,
            gamma_regularizer=gamma_regularizer,
            beta_constraint=beta_constraint,
            gamma_constraint=gamma_constraint,
        )

    def _build_affine(self, input_shape: Shape) -> None:
        owner = f"{type(self).__name__} {self.name!r}"
        if input_shape[-1] is None:
            raise ValueError(f"[{owner}] the last axis of the input must be known")
        dim = int(input_shape[-1])
        check_elements(owner, "gamma", (dim,), f"{dim} features")
        self._affine: list[tuple[str, Array]] = []
        if self.scale:
            self._affine.append(
                ("gamma", initializers.initialize(self.gamma_initializer, (dim,), self.dtype))
            )
        if self.center:
            self._affine.append(
                ("beta", initializers.initialize(self.beta_initializer, (dim,), self.dtype))
            )
        self._params = [a for _, a in self._affine]
        self._grads = [np.zeros_like(a) for a in self._params]

    #: Non-trainable per-feature weights after gamma and beta (BatchNormalization's moving
    #: statistics).
    _extra_weights = 0

    def _count_trainable(self) -> int:  # gamma and beta; never the moving statistics
        if not (self.trainable and self.built):
            return 0
        return int(sum(a.size for a in self._params))

    def _planned_weight_shapes(self, input_shape: Shape) -> list[tuple[int, ...]]:
        if input_shape[-1] is None:
            raise ValueError(f"[{type(self).__name__} {self.name!r}] the last axis must be known")
        n = int(self.scale) + int(self.center) + self._extra_weights
        return [(int(input_shape[-1]),)] * n

    def _gamma_beta(self) -> tuple[Any, Any]:
        named = dict(self._affine)
        return named.get("gamma", 1.0), named.get("beta", 0.0)

    def _affine_backward(self, xhat: Array, dy: Array) -> Array:
        """Accumulate dgamma/dbeta; return the gradient of xhat."""
        axes = tuple(range(dy.ndim - 1))
        for k, (name, _) in enumerate(self._affine):
            if name == "gamma":
                self._grads[k] += np.sum(dy * xhat, axis=axes)
            else:
                self._grads[k] += np.sum(dy, axis=axes)
        gamma, _ = self._gamma_beta()
        return dy * gamma

    def _weight_rules(self) -> list[tuple[int, Any, Any]]:
        rules = []
        for k, (name, _) in enumerate(self._affine):
            reg = getattr(self, f"{name}_regularizer")
            con = getattr(self, f"{name}_constraint")
            if reg is not None or con is not None:
                rules.append((k, reg, con))
        return rules

    def _config(self) -> dict[str, Any]:
        return {
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.beta_initializer,
            "gamma_initializer": self.gamma_initializer,
            **rules_config(
                self,
                ("beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"),
            ),
        }


class LayerNormalization(_Normalization):
    """``(x - mean) / sqrt(var + epsilon) · gamma + beta`` over each sample's features (the
    last axis), Keras 3's ``LayerNormalization``; weights ``[gamma, beta]``."""

    def build(self, input_shape: Shape) -> None:
        self._build_affine(input_shape)
        super().build(input_shape)

    def forward(self, x: Array, training: bool = False) -> Array:
        mean = x.mean(axis=-1, keepdims=True)
        centered = x - mean
        inv = 1.0 / np.sqrt((centered * centered).mean(axis=-1, keepdims=True) + self.epsilon)
        xhat = centered * inv
        self._cache = (xhat, inv.astype(x.dtype))
        gamma, beta = self._gamma_beta()
        return (xhat * gamma + beta).astype(x.dtype, copy=False)

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        xhat, inv = self._cache
        g = self._affine_backward(xhat, dy)
        if not need_dx:
            return None
        return inv * (
            g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True)
        )


class BatchNormalization(_Normalization):
    """Keras 3's ``BatchNormalization`` on the last axis: in training, each feature is
    normalized with the batch's mean and (biased) variance over every other axis (the valid
    steps only, with a mask) and the moving statistics follow them with ``momentum``; at
    inference (and when the layer is not trainable, as Keras 3) the moving statistics are
    used. Weights ``[gamma, beta, moving_mean, moving_variance]``."""

    _mask_aware = True
    _extra_weights = 2

    def __init__(
        self,
        axis: Any = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: str = "zeros",
        gamma_initializer: str = "ones",
        moving_mean_initializer: str = "zeros",
        moving_variance_initializer: str = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        synchronized: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            axis=axis,
            epsilon=epsilon,
            center=center,
            scale=scale,
            beta_initializer=beta_initializer,
            gamma_initializer=gamma_initializer,
            beta_regularizer=beta_regularizer,
            gamma_regularizer=gamma_regularizer,
            beta_constraint=beta_constraint,
            gamma_constraint=gamma_constraint,
            **kwargs,
        )
        owner = f"BatchNormalization {self.name!r}"
        self.momentum = check_float(owner, "momentum", momentum, 0.0, 1.0)
        self.moving_mean_initializer = initializers.resolve(
            moving_mean_initializer, owner, "moving_mean_initializer"
        )
        self.moving_variance_initializer = initializers.resolve(
            moving_variance_initializer, owner, "moving_variance_initializer"
        )
        self.synchronized = bool(synchronized)  # one process: nothing to synchronize

    def build(self, input_shape: Shape) -> None:
        self._build_affine(input_shape)
        dim = int(input_shape[-1])
        self.moving_mean = initializers.initialize(self.moving_mean_initializer, (dim,), self.dtype)
        self.moving_variance = initializers.initialize(
            self.moving_variance_initializer, (dim,), self.dtype
        )
        super().build(input_shape)

    def forward(self, x: Array, training: bool = False, mask: Any = None) -> Array:
        gamma, beta = self._gamma_beta()
        axes = tuple(range(x.ndim - 1))
        if training and self.trainable:
            if mask is not None and x.ndim == 3:
                w = np.asarray(mask, bool)[..., None].astype(x.dtype)
                count = w.sum()
            else:
                w, count = None, x.size // x.shape[-1]
            mean = (x if w is None else x * w).sum(axis=axes) / count
            centered = x - mean
            sq = centered * centered
            var = (sq if w is None else sq * w).sum(axis=axes) / count
            m = self.dtype.type(self.momentum)
            self.moving_mean[...] = self.moving_mean * m + mean * (1 - m)
            self.moving_variance[...] = self.moving_variance * m + var * (1 - m)
            inv = 1.0 / np.sqrt(var + self.epsilon)
            xhat = centered * inv
            self._cache = (xhat, inv, w, count, True)
        else:
            inv = 1.0 / np.sqrt(self.moving_variance + self.epsilon)
            xhat = (x - self.moving_mean) * inv
            self._cache = (xhat, inv, None, 0, False)
        return (xhat * gamma + beta).astype(x.dtype, copy=False)

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        xhat, inv, w, count, batch_stats = self._cache
        g = self._affine_backward(xhat, dy)
        if not need_dx:
            return None
        if not batch_stats:
            return g * inv
        # Every position (masked ones too) is normalized with the statistics of the valid
        # ones, so all of them reach the statistics' gradient; only valid ones feed them.
        axes = tuple(range(dy.ndim - 1))
        mean_g = g.sum(axis=axes) / count
        mean_gx = (g * xhat).sum(axis=axes) / count
        through_stats = mean_g + xhat * mean_gx
        return inv * (g - (through_stats if w is None else w * through_stats))

    def _keras_weights(self) -> list[Array]:
        if not self.built:
            return []
        return [*self._params, self.moving_mean, self.moving_variance]

    def _set_keras_weights(self, weights: list[Array]) -> None:
        for a, w in zip([*self._params, self.moving_mean, self.moving_variance], weights):
            a[...] = w

    def _config(self) -> dict[str, Any]:
        config = super()._config()
        config.update(
            momentum=self.momentum,
            moving_mean_initializer=self.moving_mean_initializer,
            moving_variance_initializer=self.moving_variance_initializer,
            synchronized=self.synchronized,
        )
        return config
