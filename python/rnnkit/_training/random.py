"""The one random generator behind weight init, shuffling and dropout.

rnnkit keeps a single package-wide generator (``rnnkit._random``, shared with the core
modules). ``rnnkit.utils.set_random_seed(seed)`` reseeds it, and Python's and numpy's
global generators as Keras does, which makes a training run reproducible.
"""

from __future__ import annotations

import random as _pyrandom

import numpy as np

from .. import _random as _package_random


def get_rng() -> np.random.Generator:
    """The generator that layers, initializers and ``fit`` draw from."""
    return _package_random.rng()


def set_random_seed(seed: int) -> None:
    """Seed rnnkit's generator, Python's ``random`` and numpy's legacy global generator.

    Parameters
    ----------
    seed : int
        Non-negative integer. Two runs that build and fit the same model after the
        same ``set_random_seed(seed)`` produce identical weights and losses.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"[set_random_seed] seed must be a non-negative int; got {seed!r}")
    seed = int(seed)
    _pyrandom.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - Keras seeds the legacy generator too
    _package_random.seed(seed)
