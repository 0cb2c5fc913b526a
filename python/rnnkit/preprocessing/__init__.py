"""Keras's ``preprocessing`` namespace: ``preprocessing.sequence.pad_sequences``."""

from __future__ import annotations

from .._namespace import missing_attribute
from . import sequence

__all__ = ["sequence"]
__getattr__ = missing_attribute(__name__, __all__)
