"""Argument checks shared by the public API: each failure names the caller, the argument,
what was expected and what was given."""

from __future__ import annotations

import math
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
    except (TypeError, ValueError):
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


#: The largest array, in elements, that rnnkit allocates for a weight or accepts as one dense
#: input or output: 2**31 - 1 (8 GiB of float32, and the range of the 32-bit indices the core's
#: kernels use). Larger sizes are refused up front with a message naming the argument, before
#: any memory is allocated or any view is copied.
MAX_ELEMENTS = 2**31 - 1


def check_float(
    owner: str,
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    high_open: bool = True,
    low_open: bool = False,
) -> float:
    """A real number in [low, high) (the ends open or closed as asked; an infinite ``high``
    means any finite number); bools and strings rejected (no ``float('0.5')``)."""
    if math.isinf(high):
        kind = range_ = f"a finite number {'>' if low_open else '>='} {low:g}"
    else:
        range_ = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        kind = f"a number in {range_}"
        range_ = f"in {range_}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"[{owner}] {name} must be {kind}; got {type(value).__name__} {value!r}")
    v = float(value)
    above = low < v if low_open else low <= v
    below = v < high if high_open else v <= high
    if not (above and below and math.isfinite(v)):
        raise ValueError(f"[{owner}] {name} must be {range_}; got {value!r}")
    return v


def check_elements(owner: str, what: str, shape: tuple[int, ...], given: str) -> None:
    """Refuse an array of ``shape`` larger than MAX_ELEMENTS before it is allocated or copied.

    ``what`` names the array ("weight_ih_l0", "x"), ``given`` the arguments that made it
    ("input_size=10, hidden_size=1000000").
    """
    n = math.prod(int(s) for s in shape)
    if n > MAX_ELEMENTS:
        raise ValueError(
            f"[{owner}] {given}: {what} would have shape {shape_str(tuple(shape))} = {n:.3g} "
            f"elements; rnnkit refuses arrays over rnnkit.MAX_ELEMENTS = {MAX_ELEMENTS} "
            "(8 GiB of float32)"
        )


def check_input_size(owner: str, name: str, value: np.ndarray) -> None:
    """Refuse an input whose dense size exceeds MAX_ELEMENTS (a broadcast view of 10**9 steps
    holds a few bytes but would be copied to gigabytes), before anything is copied."""
    if value.size > MAX_ELEMENTS:
        gib = value.size * value.dtype.itemsize / 2**30
        raise ValueError(
            f"[{owner}] {name} has shape {shape_str(value.shape)} = {value.size:.3g} elements "
            f"({gib:.3g} GiB dense); rnnkit refuses inputs over rnnkit.MAX_ELEMENTS = "
            f"{MAX_ELEMENTS} elements"
        )


def numpy_dtype(owner: str, name: str, value: Any) -> np.dtype:
    """``np.dtype(value)`` with rnnkit's message when numpy does not know the name."""
    try:
        return np.dtype(value)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"[{owner}] {name} must be a numpy dtype such as 'float32', 'float64' or 'int32'; "
            f"got {value!r}"
        ) from e


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
    check_input_size(owner, name, value)
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
