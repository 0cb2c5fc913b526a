"""Elementwise activations for Dense layers: forward and the matching backward.

Each activation is a pair ``forward(z) -> y`` and ``backward(z, y, dy) -> dz``, with
``z`` the pre-activation, ``y = forward(z)`` and ``dy = dL/dy``; all arrays have one shape
``(..., U)``. ``softmax`` normalises over the last axis. Recurrent layers pass their
activations to the C++ core instead (see ``RECURRENT_ACTIVATIONS``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Array = np.ndarray


def _linear(z: Array) -> Array:
    return z


def _linear_grad(z: Array, y: Array, dy: Array) -> Array:
    return dy


def _relu(z: Array) -> Array:
    return np.maximum(z, 0)


def _relu_grad(z: Array, y: Array, dy: Array) -> Array:
    return dy * (z > 0)


def _tanh(z: Array) -> Array:
    return np.tanh(z)


def _tanh_grad(z: Array, y: Array, dy: Array) -> Array:
    return dy * (1 - y * y)


def sigmoid(z: Array) -> Array:
    """Numerically stable logistic function (no overflow for large |z|)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def _sigmoid_grad(z: Array, y: Array, dy: Array) -> Array:
    return dy * y * (1 - y)


def softmax(z: Array) -> Array:
    """Softmax over the last axis, shifted by the row maximum for stability."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def _softmax_grad(z: Array, y: Array, dy: Array) -> Array:
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def _hard_sigmoid(z: Array) -> Array:
    return np.clip(z / 6 + 0.5, 0, 1)


def _hard_sigmoid_grad(z: Array, y: Array, dy: Array) -> Array:
    return dy * ((z > -3) & (z < 3)) / 6


def _elu(z: Array) -> Array:
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


def _elu_grad(z: Array, y: Array, dy: Array) -> Array:
    return dy * np.where(z > 0, 1, y + 1)


def _softplus(z: Array) -> Array:
    return np.logaddexp(z, 0).astype(z.dtype, copy=False)


def _softplus_grad(z: Array, y: Array, dy: Array) -> Array:
    return dy * sigmoid(z)


Forward = Callable[[Array], Array]
Backward = Callable[[Array, Array, Array], Array]

ACTIVATIONS: dict[str, tuple[Forward, Backward]] = {
    "linear": (_linear, _linear_grad),
    "relu": (_relu, _relu_grad),
    "tanh": (_tanh, _tanh_grad),
    "sigmoid": (sigmoid, _sigmoid_grad),
    "softmax": (softmax, _softmax_grad),
    "hard_sigmoid": (_hard_sigmoid, _hard_sigmoid_grad),
    "elu": (_elu, _elu_grad),
    "softplus": (_softplus, _softplus_grad),
}

#: The Keras names recurrent layers accept in any activation slot, and the core activation
#: each means (Keras 3's parameters: ``leaky_relu`` has negative_slope 0.2, ``elu`` alpha 1).
RECURRENT_ACTIVATIONS: dict[str, Any] = {
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "relu": "relu",
    "linear": "linear",
    "hard_sigmoid": "hard_sigmoid",
    "elu": ("elu", 1.0),
    "softsign": "softsign",
    "softplus": "softplus",
    "leaky_relu": ("leaky_relu", 0.2),
}


def resolve_recurrent(name: str | None, owner: str, argument: str) -> str:
    """The Keras name of a recurrent layer's activation (None means linear); names the core
    lacks and unknown names raise ValueError."""
    if name is None:
        return "linear"
    if not isinstance(name, str):
        raise TypeError(
            f"[{owner}] {argument} must be a string naming an activation "
            f"({', '.join(RECURRENT_ACTIVATIONS)}) or None; got {type(name).__name__}"
        )
    key = name.lower()
    if key in RECURRENT_ACTIVATIONS:
        return key
    if key in ACTIVATIONS:
        raise ValueError(
            f"[{owner}] {argument} {name!r} is not available in the core; expected one of "
            f"{', '.join(RECURRENT_ACTIVATIONS)}"
        )
    raise ValueError(
        f"[{owner}] unknown {argument} {name!r}; expected one of {', '.join(RECURRENT_ACTIVATIONS)}"
    )


def resolve(name: str | None, owner: str, argument: str = "activation") -> str:
    """Canonical activation name; ``None`` means linear. Unknown names raise ValueError."""
    if name is None:
        return "linear"
    if not isinstance(name, str):
        raise TypeError(
            f"[{owner}] {argument} must be a string naming an activation "
            f"({', '.join(sorted(ACTIVATIONS))}) or None; got {type(name).__name__}"
        )
    key = name.lower()
    if key not in ACTIVATIONS:
        raise ValueError(
            f"[{owner}] unknown {argument} {name!r}; expected one of "
            f"{', '.join(sorted(ACTIVATIONS))}"
        )
    return key
