"""Utilities: reproducibility, one-hot encoding, session reset."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._training.base import clear_session
from ._training.random import get_rng, set_random_seed


def to_categorical(y: Any, num_classes: int | None = None, dtype: Any = "float32") -> np.ndarray:
    """One-hot encode integer class ids: ``y (N, ...)`` -> ``(N, ..., C)``.

    A trailing axis of size 1 on ``y`` is dropped first, as Keras does. ``num_classes``
    defaults to ``max(y) + 1``; ids outside ``0..num_classes-1`` raise ValueError.
    """
    ids = np.asarray(y)
    if ids.dtype.kind == "f":
        if np.any(ids != np.round(ids)):
            raise ValueError("[to_categorical] y must hold integer class ids")
        ids = ids.astype(np.int64)
    elif ids.dtype.kind not in "iub":
        raise TypeError(f"[to_categorical] y must hold integer class ids; got dtype {ids.dtype}")
    if ids.ndim > 1 and ids.shape[-1] == 1:
        ids = ids[..., 0]
    if num_classes is None:
        num_classes = int(ids.max()) + 1 if ids.size else 0
    if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
        raise ValueError(f"[to_categorical] y holds ids outside 0..{num_classes - 1}")
    out = np.zeros((*ids.shape, num_classes), dtype=dtype)
    np.put_along_axis(out, ids[..., None].astype(np.intp), 1, axis=-1)
    return out


__all__ = ["clear_session", "get_rng", "set_random_seed", "to_categorical"]
