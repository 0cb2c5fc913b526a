"""Non-recurrent layers: InputLayer, Dense, Dropout, Embedding, Masking, Flatten, RepeatVector."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _core
from .._checks import check_elements, check_float, numpy_dtype
from . import activations, initializers
from .base import (
    Array,
    Layer,
    SequenceInput,
    Shape,
    expected_shape_text,
    format_shape,
    resolve_rules,
    rules_config,
)
from .random import get_rng

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .base import LayerOptions


class _Accumulator:
    """Gradient buffers that the first backward after ``zero_grad`` overwrites (no memset)."""

    def __init__(self, shapes: list[tuple[int, ...]], dtype: np.dtype) -> None:
        self.arrays = [np.zeros(s, dtype=dtype) for s in shapes]
        self.fresh = True

    def zero(self) -> None:
        if not self.fresh:
            for a in self.arrays:
                a.fill(0)
            self.fresh = True


class InputLayer(Layer):
    """Declares the input shape of a ``Sequential`` model; passes data through unchanged.

    Parameters
    ----------
    shape : tuple
        Shape of one sample without the batch axis, e.g. ``(T, I)``; ``None`` entries
        are free (such as a variable number of time steps).
    batch_size : int, optional
        Fixed batch size (needed only by ``stateful`` recurrent layers in Keras).
    batch_shape : tuple, optional
        Full shape including the batch axis, instead of ``shape``/``batch_size``.
    """

    def __init__(
        self,
        shape: Shape | None = None,
        batch_size: int | None = None,
        dtype: Any = None,
        name: str | None = None,
        batch_shape: Shape | None = None,
        sparse: bool | None = None,
        input_shape: Shape | None = None,
        batch_input_shape: Shape | None = None,
        **kwargs: Any,
    ) -> None:
        if sparse:
            raise NotImplementedError("[InputLayer] sparse inputs are not supported")
        if batch_shape is None:
            batch_shape = batch_input_shape
        if shape is None:
            shape = input_shape
        if batch_shape is None and shape is None:
            raise ValueError("[InputLayer] give shape=(...) (one sample, no batch axis)")
        if batch_shape is None:
            batch_shape = (batch_size, *tuple(shape))
        # Integer inputs (token ids for an Embedding) keep their dtype.
        self._int_input = (
            dtype is not None and numpy_dtype("InputLayer", "dtype", dtype).kind in "iu"
        )
        super().__init__(
            name=name,
            dtype=None if self._int_input else dtype,
            batch_input_shape=batch_shape,
            **kwargs,
        )
        self._float_input = not self._int_input

    def forward(self, x: Array, training: bool = False) -> Array:
        return x

    @property
    def output(self) -> Any:
        """The symbolic tensor of this input (``Input(...)`` made it), for the functional API."""
        if not self._nodes:
            raise AttributeError(f"[InputLayer {self.name!r}] has no symbolic tensor")
        return self._nodes[0].outputs[0]

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        return dy if need_dx else None

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "batch_shape": list(self.input_shape_hint or ()),
            "dtype": "int64" if self._int_input else self.dtype.name,
        }


def Input(  # noqa: N802 - Keras's name
    shape: Shape | None = None,
    batch_size: int | None = None,
    dtype: Any = None,
    name: str | None = None,
    batch_shape: Shape | None = None,
) -> Any:
    """Keras's ``Input(shape)``: a symbolic tensor of one model input, ``(batch, *shape)``.

    Call layers on it to build a graph and give it to ``rnnkit.Model(inputs, outputs)`` (the
    functional API), or put it first in a ``Sequential`` to declare the input shape.
    ``dtype="int32"``/``"int64"`` declares token ids (for an Embedding).
    """
    from .functional import input_node

    layer = InputLayer(
        shape=shape, batch_size=batch_size, dtype=dtype, name=name, batch_shape=batch_shape
    )
    dtype_out = np.int64 if layer._int_input else layer.dtype
    return input_node(layer, layer.input_shape_hint, dtype_out)


class Dense(Layer):
    """Fully connected layer ``y = act(x @ kernel + bias)`` on the last axis.

    Shapes: ``x (B, I) -> y (B, U)``, or per time step ``x (B, T, I) -> y (B, T, U)``;
    ``kernel (I, U)``, ``bias (U,)`` (Keras's layout, also the internal one).

    Parameters
    ----------
    units : int
        Output size U.
    activation : str or None
        ``None``/"linear", "relu", "tanh", "sigmoid", "softmax" (last axis), and
        "hard_sigmoid", "elu", "softplus".
    use_bias : bool
    kernel_initializer, bias_initializer : str
        Keras initializer names ("glorot_uniform", "zeros", ...).
    """

    def __init__(
        self,
        units: int,
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
        owner = f"Dense {self.name!r}"
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"[{owner}] units must be a positive int; got {units!r}")
        self.units = int(units)
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
        self._cache: tuple[Array, Array, Array, tuple[int, ...]] | None = None

    _passes_mask = True

    def build(self, input_shape: Shape) -> None:
        fan_in = input_shape[-1]
        if fan_in is None or len(input_shape) < 2:
            raise ValueError(
                f"[Dense {self.name!r}] cannot build from input shape "
                f"{format_shape(input_shape)}: the last axis (features) must be known"
            )
        check_elements(
            f"Dense {self.name!r}",
            "kernel",
            (fan_in, self.units),
            f"units={self.units} with {fan_in} input features",
        )
        self.kernel = initializers.initialize(
            self.kernel_initializer, (fan_in, self.units), self.dtype
        )
        params = [self.kernel]
        if self.use_bias:
            self.bias = initializers.initialize(self.bias_initializer, (self.units,), self.dtype)
            params.append(self.bias)
        self._params = params
        self._grads = _Accumulator([p.shape for p in params], self.dtype)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*tuple(input_shape[:-1]), self.units)

    def forward(self, x: Array, training: bool = False) -> Array:
        self._refuse_quantized_training(training)
        lead = x.shape[:-1]
        x2 = np.ascontiguousarray(x.reshape(-1, x.shape[-1]), dtype=self.kernel.dtype)
        z = np.empty((x2.shape[0], self.units), self.kernel.dtype)
        _core.matmul(x2, self.kernel, z)
        if self.use_bias:
            z += self.bias
        y = self._act(z)
        self._cache = (x2, z, y, lead) if training else None
        self._z = z
        out = y.reshape(*lead, self.units)
        self._activity_forward(out, training)
        return out

    @property
    def last_logits(self) -> Array:
        """Pre-activation ``z (N, U)`` of the last forward (N = B, or B·T for 3-D input)."""
        z = getattr(self, "_z", None)
        if z is None:
            raise RuntimeError(f"[Dense {self.name!r}] no forward to read logits from")
        return z

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        if self._cache is None:
            raise RuntimeError(
                f"[Dense {self.name!r}] backward needs a forward with training=True first"
            )
        _, z, y, _ = self._cache
        dy = self._activity_backward(dy)
        dz = self._act_grad(z, y, dy.reshape(z.shape))
        return self._backward_logits(dz, need_dx)

    def backward_from_logits(self, dz: Array, need_dx: bool = True) -> Array | None:
        """Backward from ``dL/dz`` (the pre-activation), skipping the activation.

        Used by the fused softmax/sigmoid + cross-entropy gradient. ``dz`` is ``(N, U)``
        with N = product of the leading input dims. An activity regularizer's gradient
        (on the activation's output) is added here.
        """
        if self._cache is None:
            raise RuntimeError(
                f"[Dense {self.name!r}] backward needs a forward with training=True first"
            )
        if self.activity_regularizer is not None:
            _, z, y, _ = self._cache
            extra = self._activity_backward(np.zeros_like(y))
            dz = dz + self._act_grad(z, y, extra.reshape(z.shape))
        return self._backward_logits(dz, need_dx)

    def _backward_logits(self, dz: Array, need_dx: bool) -> Array | None:
        assert self._cache is not None
        x2, _, _, lead = self._cache
        acc = self._grads
        dkernel = acc.arrays[0]
        dz = np.ascontiguousarray(dz, dtype=self.kernel.dtype)
        _core.matmul(x2, dz, dkernel, trans_a=True, accumulate=not acc.fresh)
        if self.use_bias:
            if acc.fresh:
                np.sum(dz, axis=0, out=acc.arrays[1])
            else:
                acc.arrays[1] += dz.sum(axis=0)
        acc.fresh = False
        if not need_dx:
            return None
        dx = np.empty((dz.shape[0], self.kernel.shape[0]), self.kernel.dtype)
        _core.matmul(dz, self.kernel, dx, trans_b=True)
        return dx.reshape(*lead, self.kernel.shape[0])

    def parameters(self) -> list[Array]:
        return list(self._params) if self.built else []

    def gradients(self) -> list[Array]:
        if not self.built:
            return []
        if self._grads.fresh:
            self._grads.zero()  # report zeros, not stale values, after zero_grad
        return list(self._grads.arrays)

    def zero_grad(self) -> None:
        if self.built:
            self._grads.zero()

    def _keras_weights(self) -> list[Array]:
        return list(self._params) if self.built else []

    def _set_keras_weights(self, weights: list[Array]) -> None:
        for p, w in zip(self._params, weights):
            p[...] = w
        if self.quantization_mode == "bfloat16":
            self._quantize("bfloat16")

    def _weight_rules(self) -> list[tuple[int, Any, Any]]:
        return kernel_bias_rules(self)

    def _quantize(self, mode: str) -> bool:
        from .. import _core

        for p in self._params:  # float32 arrays holding bfloat16 values, as the core's modules
            np.copyto(p, _core.round_bf16(p))
        return True

    def _config(self) -> dict[str, Any]:
        return {"units": self.units, **kernel_bias_config(self)}


#: The regularizer/constraint arguments of Dense (and of Conv1D).
_DENSE_RULES = (
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
)


def kernel_bias_options(
    layer: Layer,
    owner: str,
    activation: Any,
    use_bias: Any,
    kernel_initializer: Any,
    bias_initializer: Any,
    **rules: Any,
) -> None:
    """The options a layer with a kernel and a bias (Dense, Conv1D) shares: activation,
    use_bias, initializers, regularizers and constraints, resolved onto ``layer``."""
    resolve_rules(layer, owner, **rules)
    layer.activation = activations.resolve(activation, owner)  # type: ignore[attr-defined]
    layer._act, layer._act_grad = activations.ACTIVATIONS[layer.activation]  # type: ignore[attr-defined]
    layer.use_bias = bool(use_bias)  # type: ignore[attr-defined]
    layer.kernel_initializer = initializers.resolve(  # type: ignore[attr-defined]
        kernel_initializer, owner, "kernel_initializer"
    )
    layer.bias_initializer = initializers.resolve(  # type: ignore[attr-defined]
        bias_initializer, owner, "bias_initializer"
    )
    layer.weight_names = ("kernel", "bias") if layer.use_bias else ("kernel",)  # type: ignore[attr-defined]


def kernel_bias_rules(layer: Any) -> list[tuple[int, Any, Any]]:
    """``_weight_rules`` of a layer whose parameters are [kernel, bias]."""
    rules = [(0, layer.kernel_regularizer, layer.kernel_constraint)]
    if layer.use_bias:
        rules.append((1, layer.bias_regularizer, layer.bias_constraint))
    return [r for r in rules if r[1] is not None or r[2] is not None]


def kernel_bias_config(layer: Any) -> dict[str, Any]:
    """The config entries ``kernel_bias_options`` set."""
    return {
        "activation": layer.activation,
        "use_bias": layer.use_bias,
        "kernel_initializer": layer.kernel_initializer,
        "bias_initializer": layer.bias_initializer,
        **rules_config(layer, _DENSE_RULES),
    }


class Dropout(Layer):
    """Inverted dropout: in training, zero each element with probability ``rate`` and scale
    the rest by ``1 / (1 - rate)``; identity at inference.

    ``noise_shape`` (Keras): shape of the mask, broadcast over axes given as 1, e.g.
    ``(None, 1, F)`` drops the same features at every time step. ``None`` entries take
    the input's size.
    """

    def __init__(
        self,
        rate: float,
        noise_shape: Shape | None = None,
        seed: int | None = None,
        **kwargs: Unpack[LayerOptions],
    ) -> None:
        super().__init__(**kwargs)
        self.rate = check_float(f"Dropout {self.name!r}", "rate", rate, 0.0, 1.0)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._mask: Array | None = None

    _passes_mask = True

    def forward(self, x: Array, training: bool = False) -> Array:
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        shape = x.shape
        if self.noise_shape is not None:
            shape = tuple(s if n is None else n for s, n in zip(x.shape, self.noise_shape))
        rng = self._rng if self._rng is not None else get_rng()
        keep = rng.random(shape, dtype=self.dtype) >= self.rate
        self._mask = keep * self.dtype.type(1.0 / (1.0 - self.rate))
        return x * self._mask

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        if not need_dx:
            return None
        return dy if self._mask is None else dy * self._mask

    def _config(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "noise_shape": None if self.noise_shape is None else list(self.noise_shape),
            "seed": self.seed,
        }


class SpatialDropout1D(SequenceInput, Dropout):
    """Dropout of whole feature channels: one mask per sample and feature, the same at every
    time step (``Dropout(rate, noise_shape=(None, 1, features))``), Keras's
    ``SpatialDropout1D``; inputs ``(batch, time, features)``."""

    def __init__(
        self, rate: float, seed: int | None = None, **kwargs: Unpack[LayerOptions]
    ) -> None:
        super().__init__(rate, noise_shape=(None, 1, None), seed=seed, **kwargs)

    def _config(self) -> dict[str, Any]:
        return {"rate": self.rate, "seed": self.seed}


class GaussianNoise(Layer):
    """Adds zero-mean Gaussian noise of standard deviation ``stddev`` in training (identity
    at inference), Keras's ``GaussianNoise``: a regularizer for real-valued inputs."""

    _passes_mask = True

    def __init__(
        self, stddev: float, seed: int | None = None, **kwargs: Unpack[LayerOptions]
    ) -> None:
        super().__init__(**kwargs)
        self.stddev = check_float(f"GaussianNoise {self.name!r}", "stddev", stddev, 0.0, math.inf)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def forward(self, x: Array, training: bool = False) -> Array:
        if not training or self.stddev == 0.0:
            return x
        rng = self._rng if self._rng is not None else get_rng()
        return x + rng.normal(0.0, self.stddev, x.shape).astype(x.dtype)

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        return dy if need_dx else None

    def _config(self) -> dict[str, Any]:
        return {"stddev": self.stddev, "seed": self.seed}


class Activation(Layer):
    """Applies an activation to its input (softmax over the last axis), Keras's
    ``Activation``; the mask passes through. ``activation``: a name Dense takes."""

    _passes_mask = True

    def __init__(self, activation: str, **kwargs: Unpack[LayerOptions]) -> None:
        super().__init__(**kwargs)
        self.activation = activations.resolve(activation, f"Activation {self.name!r}")
        self._act, self._act_grad = activations.ACTIVATIONS[self.activation]

    def forward(self, x: Array, training: bool = False) -> Array:
        y = self._act(x)
        self._cache = (x, y) if training else None
        return y

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        if self._cache is None:
            raise RuntimeError(
                f"[Activation {self.name!r}] backward needs a forward with training=True"
            )
        if not need_dx:
            return None
        x, y = self._cache
        return self._act_grad(x, y, dy)

    def _config(self) -> dict[str, Any]:
        return {"activation": self.activation}


class Embedding(Layer):
    """Lookup table: integer ids ``x (B, T)`` -> vectors ``y (B, T, D)``.

    ``embeddings (V, D)`` with V = ``input_dim``; ids must lie in ``0..V-1``.
    The input is not differentiable: ``backward`` returns None.
    """

    _float_input = False
    weight_names = ("embeddings",)

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: str = "uniform",
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        input_length: int | None = None,
        activity_regularizer: Any = None,
        **kwargs: Unpack[LayerOptions],
    ) -> None:
        if input_length is not None and "input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,)
        super().__init__(**kwargs)
        owner = f"Embedding {self.name!r}"
        resolve_rules(
            self,
            owner,
            embeddings_regularizer=embeddings_regularizer,
            embeddings_constraint=embeddings_constraint,
            activity_regularizer=activity_regularizer,
        )
        self.mask_zero = bool(mask_zero)
        for arg, v in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"[{owner}] {arg} must be a positive int; got {v!r}")
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.embeddings_initializer = initializers.resolve(
            embeddings_initializer, owner, "embeddings_initializer"
        )
        self._idx: Array | None = None

    def build(self, input_shape: Shape) -> None:
        check_elements(
            f"Embedding {self.name!r}",
            "embeddings",
            (self.input_dim, self.output_dim),
            f"input_dim={self.input_dim}, output_dim={self.output_dim}",
        )
        self.embeddings = initializers.initialize(
            self.embeddings_initializer, (self.input_dim, self.output_dim), self.dtype
        )
        self._grads = _Accumulator([self.embeddings.shape], self.dtype)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*tuple(input_shape), self.output_dim)

    def check_indices(self, idx: Array, argument: str = "x") -> None:
        if idx.size and (idx.min() < 0 or idx.max() >= self.input_dim):
            bad = idx[(idx < 0) | (idx >= self.input_dim)]
            raise ValueError(
                f"[Embedding {self.name!r}] {argument} holds ids outside 0..{self.input_dim - 1} "
                f"(input_dim={self.input_dim}), e.g. {int(bad.flat[0])}"
            )

    def __call__(self, x: Any, training: bool = False, **kwargs: Any) -> Any:
        from .functional import any_symbolic

        if not any_symbolic(x, kwargs):
            x = self._convert_input(x, "x")
            self.check_indices(x)
        return super().__call__(x, training, **kwargs)

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        """With ``mask_zero=True``, id 0 is padding: the mask is ``inputs != 0`` (Keras)."""
        return np.not_equal(inputs, 0) if self.mask_zero else None

    def forward(self, x: Array, training: bool = False) -> Array:
        self._idx = x if training else None
        out = self.embeddings[x]
        self._activity_forward(out, training)
        return out

    def _backward(self, dy: Array, need_dx: bool) -> None:
        if self._idx is None:
            raise RuntimeError(
                f"[Embedding {self.name!r}] backward needs a forward with training=True first"
            )
        dy = self._activity_backward(dy)
        acc = self._grads
        if acc.fresh:
            acc.arrays[0].fill(0)
            acc.fresh = False
        np.add.at(acc.arrays[0], self._idx.ravel(), dy.reshape(-1, self.output_dim))
        return None

    def parameters(self) -> list[Array]:
        return [self.embeddings] if self.built else []

    def gradients(self) -> list[Array]:
        if not self.built:
            return []
        if self._grads.fresh:
            self._grads.zero()
        return list(self._grads.arrays)

    def zero_grad(self) -> None:
        if self.built:
            self._grads.zero()

    def _keras_weights(self) -> list[Array]:
        return [self.embeddings] if self.built else []

    def _set_keras_weights(self, weights: list[Array]) -> None:
        self.embeddings[...] = weights[0]

    def _weight_rules(self) -> list[tuple[int, Any, Any]]:
        reg, con = self.embeddings_regularizer, self.embeddings_constraint
        return [] if reg is None and con is None else [(0, reg, con)]

    def _config(self) -> dict[str, Any]:
        return {
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": self.embeddings_initializer,
            "mask_zero": self.mask_zero,
            **rules_config(
                self, ("embeddings_regularizer", "embeddings_constraint", "activity_regularizer")
            ),
        }


class Masking(Layer):
    """Marks the time steps whose features all equal ``mask_value`` as padding: the output
    is the input with those steps zeroed, and its mask (``any(x != mask_value)`` over the
    features, (batch, time)) tells the layers after it to skip them (Keras's ``Masking``)."""

    _passes_mask = True

    def __init__(self, mask_value: float = 0.0, **kwargs: Unpack[LayerOptions]) -> None:
        super().__init__(**kwargs)
        self.mask_value = check_float(
            f"Masking {self.name!r}", "mask_value", mask_value, -math.inf, math.inf
        )

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        return np.any(np.not_equal(inputs, self.mask_value), axis=-1)

    def forward(self, x: Array, training: bool = False) -> Array:
        self._keep = np.any(x != self.mask_value, axis=-1, keepdims=True).astype(x.dtype)
        return x * self._keep

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        return dy * self._keep if need_dx else None

    def _config(self) -> dict[str, Any]:
        return {"mask_value": self.mask_value}


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (one entry may be -1), Keras's ``Reshape``."""

    def __init__(self, target_shape: Any, **kwargs: Unpack[LayerOptions]) -> None:
        super().__init__(**kwargs)
        owner = f"Reshape {self.name!r}"
        if not isinstance(target_shape, (list, tuple)) or not target_shape:
            raise TypeError(f"[{owner}] target_shape must be a tuple of ints; got {target_shape!r}")
        shape = []
        for d in target_shape:
            if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or (d <= 0 and d != -1):
                raise ValueError(
                    f"[{owner}] target_shape entries must be positive ints or one -1; got "
                    f"{tuple(target_shape)!r}"
                )
            shape.append(int(d))
        if shape.count(-1) > 1:
            raise ValueError(f"[{owner}] target_shape may have one -1; got {tuple(shape)!r}")
        self.target_shape = tuple(shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        rest = input_shape[1:]
        if -1 not in self.target_shape:
            known = None if any(s is None for s in rest) else int(np.prod(rest))
            if known is not None and known != int(np.prod(self.target_shape)):
                raise ValueError(
                    f"[Reshape {self.name!r}] cannot reshape {format_shape(input_shape)} to "
                    f"{format_shape(self.target_shape)}: {known} values per sample against "
                    f"{int(np.prod(self.target_shape))}"
                )
            return (input_shape[0], *self.target_shape)
        if any(s is None for s in rest):
            free = None
        else:
            fixed = int(np.prod([d for d in self.target_shape if d != -1]))
            total = int(np.prod(rest))
            if total % fixed:
                raise ValueError(
                    f"[Reshape {self.name!r}] cannot reshape {format_shape(input_shape)} to "
                    f"{format_shape(self.target_shape)}"
                )
            free = total // fixed
        return (input_shape[0], *(free if d == -1 else d for d in self.target_shape))

    def _check_input_shape(self, shape: Any, argument: str = "x") -> None:
        super()._check_input_shape(shape, argument)
        self.compute_output_shape((None, *shape[1:]))

    def forward(self, x: Array, training: bool = False) -> Array:
        self._shape = x.shape
        return x.reshape(x.shape[0], *self.target_shape)

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        return dy.reshape(self._shape) if need_dx else None

    def _config(self) -> dict[str, Any]:
        return {"target_shape": list(self.target_shape)}


class Permute(Layer):
    """Permutes the axes of each sample, ``dims`` counted from 1 (Keras's ``Permute``):
    ``Permute((2, 1))`` swaps steps and features."""

    def __init__(self, dims: Any, **kwargs: Unpack[LayerOptions]) -> None:
        super().__init__(**kwargs)
        dims = tuple(int(d) for d in dims) if isinstance(dims, (list, tuple)) else None
        if not dims or sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(
                f"[Permute {self.name!r}] dims must be a permutation of 1..n; got {dims!r}"
            )
        self.dims = dims

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) != len(self.dims) + 1:
            raise ValueError(
                f"[Permute {self.name!r}] dims={self.dims} needs inputs of rank "
                f"{len(self.dims) + 1}; got {format_shape(input_shape)}"
            )
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def forward(self, x: Array, training: bool = False) -> Array:
        return np.ascontiguousarray(x.transpose(0, *self.dims))

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        if not need_dx:
            return None
        inverse = np.argsort((0, *self.dims))
        return np.ascontiguousarray(dy.transpose(*inverse))

    def _config(self) -> dict[str, Any]:
        return {"dims": list(self.dims)}


def _int_pair(owner: str, name: str, value: Any) -> tuple[int, int]:
    """An int n (as (n, n)) or a pair of ints, each >= 0: Keras's padding/cropping."""
    pair = (value, value) if not isinstance(value, (list, tuple)) else tuple(value)
    if len(pair) != 2 or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in pair
    ):
        raise ValueError(f"[{owner}] {name} must be an int >= 0 or a pair of them; got {value!r}")
    return int(pair[0]), int(pair[1])


class _TimeAxisLayer(SequenceInput, Layer):
    """A layer of (batch, time, features) inputs that changes only the time axis."""

    def _steps(self, t: int) -> int:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        t = input_shape[1]
        return (input_shape[0], None if t is None else self._steps(int(t)), input_shape[2])


class UpSampling1D(_TimeAxisLayer):
    """Repeats every time step ``size`` times: ``(B, T, F) -> (B, T*size, F)`` (Keras's)."""

    def __init__(self, size: int = 2, **kwargs: Unpack[LayerOptions]) -> None:
        super().__init__(**kwargs)
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(
                f"[UpSampling1D {self.name!r}] size must be a positive int; got {size!r}"
            )
        self.size = int(size)

    def _steps(self, t: int) -> int:
        return t * self.size

    def forward(self, x: Array, training: bool = False) -> Array:
        return np.repeat(x, self.size, axis=1)

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        if not need_dx:
            return None
        b, t, f = dy.shape
        return dy.reshape(b, t // self.size, self.size, f).sum(axis=2)

    def _config(self) -> dict[str, Any]:
        return {"size": self.size}


class ZeroPadding1D(_TimeAxisLayer):
    """Zeros added before and after the time axis: ``padding`` n or (before, after)."""

    def __init__(
        self, padding: Any = 1, data_format: Any = None, **kwargs: Unpack[LayerOptions]
    ) -> None:
        super().__init__(**kwargs)
        owner = f"ZeroPadding1D {self.name!r}"
        if data_format not in (None, "channels_last"):
            raise ValueError(
                f"[{owner}] data_format must be 'channels_last' (or None); got {data_format!r}"
            )
        self.padding = _int_pair(owner, "padding", padding)

    def _steps(self, t: int) -> int:
        return t + sum(self.padding)

    def forward(self, x: Array, training: bool = False) -> Array:
        return np.pad(x, ((0, 0), self.padding, (0, 0)))

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        if not need_dx:
            return None
        return np.ascontiguousarray(dy[:, self.padding[0] : dy.shape[1] - self.padding[1]])

    def _config(self) -> dict[str, Any]:
        return {"padding": list(self.padding), "data_format": "channels_last"}


class Cropping1D(_TimeAxisLayer):
    """Steps removed from the start and end of the time axis: ``cropping`` n or (start,
    end)."""

    def __init__(self, cropping: Any = (1, 1), **kwargs: Unpack[LayerOptions]) -> None:
        super().__init__(**kwargs)
        self.cropping = _int_pair(f"Cropping1D {self.name!r}", "cropping", cropping)

    def _steps(self, t: int) -> int:
        if t - sum(self.cropping) < 1:
            raise ValueError(
                f"[Cropping1D {self.name!r}] cropping {self.cropping} leaves no step of {t}"
            )
        return t - sum(self.cropping)

    def forward(self, x: Array, training: bool = False) -> Array:
        self._steps(x.shape[1])
        self._t = x.shape[1]
        return np.ascontiguousarray(x[:, self.cropping[0] : x.shape[1] - self.cropping[1]])

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        if not need_dx:
            return None
        return np.pad(
            dy, ((0, 0), (self.cropping[0], self._t - dy.shape[1] - self.cropping[0]), (0, 0))
        )

    def _config(self) -> dict[str, Any]:
        return {"cropping": list(self.cropping)}


class Flatten(Layer):
    """``x (B, d1, d2, ...) -> y (B, d1*d2*...)``."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        rest = input_shape[1:]
        n = None if any(s is None for s in rest) else int(np.prod(rest))
        return (input_shape[0], n)

    def _check_input_shape(self, shape: tuple[int, ...], argument: str = "x") -> None:
        expected = self._build_input_shape
        if expected is not None and (
            len(shape) != len(expected)
            or any(e is not None and e != s for e, s in zip(expected[1:], shape[1:]))
        ):
            raise ValueError(
                f"[Flatten {self.name!r}] {argument} has shape {format_shape(shape)}; "
                f"expected {expected_shape_text(expected)}"
            )

    def forward(self, x: Array, training: bool = False) -> Array:
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        return dy.reshape(self._shape) if need_dx else None


class RepeatVector(Layer):
    """``x (B, F) -> y (B, n, F)``: the same vector at each of n steps (seq2seq decoders)."""

    def __init__(self, n: int, **kwargs: Unpack[LayerOptions]) -> None:
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"[RepeatVector {self.name!r}] n must be a positive int; got {n!r}")
        self.n = int(n)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], self.n, *tuple(input_shape[1:]))

    def forward(self, x: Array, training: bool = False) -> Array:
        return np.repeat(x[:, None], self.n, axis=1)

    def _backward(self, dy: Array, need_dx: bool) -> Array | None:
        return dy.sum(axis=1) if need_dx else None

    def _config(self) -> dict[str, Any]:
        return {"n": self.n}
