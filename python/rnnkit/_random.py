"""The package-wide random generator behind initialization and dropout.

``rnnkit.utils.set_random_seed(seed)`` reseeds it; a module built with its own ``seed=``
uses a private generator instead.
"""

from __future__ import annotations

import numpy as np

_rng = np.random.default_rng()


def seed(value: int | None) -> None:
    """Reseed the package-wide generator."""
    global _rng
    _rng = np.random.default_rng(value)


def rng() -> np.random.Generator:
    """The package-wide generator."""
    return _rng


def make(seed_value: int | None) -> np.random.Generator:
    """A generator: private when ``seed_value`` is given, else a child of the package one."""
    if seed_value is not None:
        return np.random.default_rng(seed_value)
    return np.random.default_rng(_rng.integers(0, 2**63))
