"""Utilities: reproducibility, one-hot encoding, padding sequences, session reset."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._namespace import missing_attribute
from ._training.base import clear_session
from ._training.batches import PyDataset
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


def pad_sequences(
    sequences: Any,
    maxlen: int | None = None,
    dtype: Any = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: Any = 0.0,
) -> np.ndarray:
    """Pad (and truncate) ``N`` sequences to one array ``(N, maxlen, ...)``, as Keras's
    ``pad_sequences``.

    Parameters
    ----------
    sequences : list of sequences
        Each a list or array of length ``L_i`` (of scalars, or of arrays all of one shape
        ``S``, giving ``(N, maxlen, *S)``).
    maxlen : int, optional
        Length of the output's time axis; default the longest sequence.
    dtype : default "int32"
        The output's dtype (values are converted to it, as Keras does).
    padding : {"pre", "post"}
        Put the padding before (default) or after each sequence.
    truncating : {"pre", "post"}
        Drop the first (default) or last steps of sequences longer than ``maxlen``.
    value : default 0
        The padding value.
    """
    owner = "pad_sequences"
    if padding not in ("pre", "post"):
        raise ValueError(f"[{owner}] padding must be 'pre' or 'post'; got {padding!r}")
    if truncating not in ("pre", "post"):
        raise ValueError(f"[{owner}] truncating must be 'pre' or 'post'; got {truncating!r}")
    if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__iter__"):
        raise ValueError(f"[{owner}] sequences must be a list of sequences; got {sequences!r:.80}")
    seqs = []
    for k, seq in enumerate(sequences):
        if isinstance(seq, (str, bytes)) or not hasattr(seq, "__len__"):
            raise ValueError(
                f"[{owner}] sequences[{k}] must be a list or array; got {type(seq).__name__}"
            )
        seqs.append(np.asarray(seq))
    if maxlen is None:
        maxlen = max((len(s) for s in seqs), default=0)
    elif isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0:
        raise ValueError(f"[{owner}] maxlen must be an int >= 0 or None; got {maxlen!r}")
    maxlen = int(maxlen)
    sample_shape = next((s.shape[1:] for s in seqs if len(s)), ())
    out_dtype = np.dtype(dtype)
    if out_dtype.kind in "SU" and not isinstance(value, str):
        raise ValueError(
            f"[{owner}] dtype {dtype!r} holds strings; value must be a string, got {value!r}"
        )
    out = np.full((len(seqs), maxlen, *sample_shape), value, dtype=out_dtype)
    for k, seq in enumerate(seqs):
        if not len(seq) or maxlen == 0:
            continue
        if seq.shape[1:] != sample_shape:
            raise ValueError(
                f"[{owner}] sequences[{k}] has steps of shape {seq.shape[1:]}; the first "
                f"non-empty sequence's steps have shape {sample_shape}"
            )
        kept = seq[-maxlen:] if truncating == "pre" else seq[:maxlen]
        if padding == "post":
            out[k, : len(kept)] = kept
        else:
            out[k, maxlen - len(kept) :] = kept
    return out


#: keras.utils.Sequence, the older name of PyDataset.
Sequence = PyDataset

__all__ = [
    "PyDataset",
    "Sequence",
    "clear_session",
    "get_rng",
    "pad_sequences",
    "set_random_seed",
    "to_categorical",
]
__getattr__ = missing_attribute(__name__, __all__)
