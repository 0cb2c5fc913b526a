"""``tf.random.set_seed`` / ``keras.random.set_seed`` for programs written against them.

rnnkit has one package-wide generator; ``set_seed`` is
:func:`rnnkit.utils.set_random_seed` (which also seeds Python's and numpy's generators,
as ``keras.utils.set_random_seed`` does).
"""

from __future__ import annotations

from ._namespace import missing_attribute
from ._training.random import set_random_seed

set_seed = set_random_seed

__all__ = ["set_seed"]
__getattr__ = missing_attribute(__name__, __all__)
