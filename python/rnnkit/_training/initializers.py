"""Keras's weight initializers, drawn from rnnkit's seeded generator.

Shapes are in Keras's layout: a kernel is (fan_in, fan_out), e.g. an LSTM kernel is
(I, 4U) and its recurrent kernel (U, 4U).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .random import get_rng

Array = np.ndarray


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(shape: tuple[int, ...], stddev: float) -> Array:
    """Normal(0, stddev) redrawn outside two standard deviations (Keras TruncatedNormal)."""
    rng = get_rng()
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out * stddev


def glorot_uniform(shape: tuple[int, ...]) -> Array:
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return get_rng().uniform(-limit, limit, shape)


def glorot_normal(shape: tuple[int, ...]) -> Array:
    fan_in, fan_out = _fans(shape)
    # 0.8796... is the std of a unit normal truncated at +-2 (Keras's correction).
    return _truncated_normal(shape, np.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978)


def he_uniform(shape: tuple[int, ...]) -> Array:
    fan_in, _ = _fans(shape)
    limit = np.sqrt(6.0 / fan_in)
    return get_rng().uniform(-limit, limit, shape)


def he_normal(shape: tuple[int, ...]) -> Array:
    fan_in, _ = _fans(shape)
    return _truncated_normal(shape, np.sqrt(2.0 / fan_in) / 0.87962566103423978)


def orthogonal(shape: tuple[int, ...]) -> Array:
    """Keras Orthogonal(gain=1): QR of a normal matrix, sign-corrected.

    For a recurrent kernel (U, 4U) the rows come out orthonormal.
    """
    rows = int(np.prod(shape[:-1]))
    cols = shape[-1]
    a = get_rng().standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return q.reshape(shape)


def zeros(shape: tuple[int, ...]) -> Array:
    return np.zeros(shape)


def ones(shape: tuple[int, ...]) -> Array:
    return np.ones(shape)


def random_uniform(shape: tuple[int, ...]) -> Array:
    """Keras RandomUniform defaults: U(-0.05, 0.05) (Embedding's default init)."""
    return get_rng().uniform(-0.05, 0.05, shape)


def random_normal(shape: tuple[int, ...]) -> Array:
    """Keras RandomNormal defaults: N(0, 0.05)."""
    return get_rng().normal(0.0, 0.05, shape)


INITIALIZERS: dict[str, Callable[[tuple[int, ...]], Array]] = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "orthogonal": orthogonal,
    "zeros": zeros,
    "ones": ones,
    "uniform": random_uniform,
    "random_uniform": random_uniform,
    "normal": random_normal,
    "random_normal": random_normal,
}


def resolve(name: str, owner: str, argument: str) -> str:
    """Canonical initializer name (accepts Keras's CamelCase class names too)."""
    if not isinstance(name, str):
        raise TypeError(
            f"[{owner}] {argument} must be a string naming an initializer; "
            f"got {type(name).__name__}"
        )
    key = name.lower()
    camel = {
        "glorotuniform": "glorot_uniform",
        "glorotnormal": "glorot_normal",
        "heuniform": "he_uniform",
        "henormal": "he_normal",
        "randomuniform": "random_uniform",
        "randomnormal": "random_normal",
    }
    key = camel.get(key, key)
    if key not in INITIALIZERS:
        raise ValueError(
            f"[{owner}] unknown {argument} {name!r}; expected one of "
            f"{', '.join(sorted(INITIALIZERS))}"
        )
    return key


def initialize(name: str, shape: tuple[int, ...], dtype: np.dtype) -> Array:
    """Draw a new array of ``shape`` with initializer ``name`` (already resolved)."""
    return np.ascontiguousarray(INITIALIZERS[name](tuple(shape)), dtype=dtype)
