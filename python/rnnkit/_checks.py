"""Argument checks shared by the public API: each failure names the caller, the argument,
what was expected and what was given."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

# Conversions that lose nothing: the only ones applied to inputs silently.
_EXACT_CASTS = {
    np.dtype(np.float32): (np.dtype(np.float16),),
    np.dtype(np.float64): (np.dtype(np.float16), np.dtype(np.float32)),
}


def is_bfloat16(dtype: Any) -> bool:
    """Whether dtype names bfloat16 (a string, or torch.bfloat16)."""
    return isinstance(dtype, str) and dtype == "bfloat16" or str(dtype) == "torch.bfloat16"


def check_dtype(owner: str, dtype: Any) -> np.dtype:
    """The module dtype: float32 or float64."""
    try:
        dt = np.dtype(dtype) if dtype is not None else None
    except TypeError:
        dt = None
    if dt is None or dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(
            f"[{owner}] dtype must be 'float32', 'float64' or 'bfloat16' (float32 compute "
            f"with bfloat16 weights, inference only); got {dtype!r}"
        )
    return dt


def check_int(owner: str, name: str, value: Any, minimum: int) -> int:
    """An integer >= minimum (bools rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"[{owner}] {name} must be an int; got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"[{owner}] {name} must be >= {minimum}; got {value}")
    return int(value)


def check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    """One of the allowed strings."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"[{owner}] {name} must be one of {allowed}; got {value!r}")
    return value


def as_float_array(owner: str, name: str, value: Any, dtype: np.dtype) -> np.ndarray:
    """``value`` as an array of ``dtype``, converting only when the conversion is exact.

    float16 -> float32/float64 and float32 -> float64 are exact; anything else of another
    dtype (float64 into a float32 module, integers, objects) raises TypeError.
    """
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except (ValueError, TypeError) as e:
            raise TypeError(
                f"[{owner}] {name} must be a numeric array; got {type(value).__name__}"
            ) from e
    if not value.dtype.isnative:  # byte-swapped: converting to native order is exact
        value = value.astype(value.dtype.newbyteorder("="))
    if value.dtype == dtype:
        return value
    if value.dtype in _EXACT_CASTS[dtype]:
        return value.astype(dtype)
    hint = ""
    if value.dtype == np.float64 and dtype == np.float32:
        hint = f"; pass {name}.astype(np.float32) or build the module with dtype='float64'"
    raise TypeError(
        f"[{owner}] {name} has dtype {value.dtype}; this module computes in {dtype}{hint}"
    )


def check_finite(owner: str, name: str, a: np.ndarray) -> None:
    """Reject NaN and infinity."""
    if not np.all(np.isfinite(a)):
        raise ValueError(f"[{owner}] {name} contains NaN or infinity")


def shape_str(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
