"""``keras.preprocessing.sequence.pad_sequences`` (the same function as
``rnnkit.utils.pad_sequences``)."""

from __future__ import annotations

from .._namespace import missing_attribute
from ..utils import pad_sequences

__all__ = ["pad_sequences"]
__getattr__ = missing_attribute(__name__, __all__)
