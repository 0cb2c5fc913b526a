"""The kernels' vectorized float32 sigmoid and tanh (cpp/src/kernels/vmath.hpp), on every ISA:
within 1e-6 relative of float64 numpy over the whole float range, exact at the limits, NaN
kept NaN, and the same value whatever the position of an element in the call."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit import _core


def sigmoid64(v: np.ndarray) -> np.ndarray:
    """float64 logistic without overflow: exp of a non-positive number only."""
    e = np.exp(-np.abs(v))
    return np.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


REFERENCE = {"tanh": np.tanh, "sigmoid": sigmoid64}
TINY = np.finfo(np.float32).tiny  # below the normal range only an absolute bound makes sense


def grid() -> np.ndarray:
    """Every float32 in [-2, 2] at a stride, plus a log-spaced sweep out to +-1e30."""
    bits = np.arange(0, 0x40000000, 997, dtype=np.uint32)
    near = bits.view(np.float32)
    sweep = np.geomspace(1e-30, 1e30, 200_001, dtype=np.float64).astype(np.float32)
    edges = np.array(
        [0.25, np.nextafter(np.float32(0.25), np.float32(0)), 9.0, 20.0, 87.0, 88.8, 89.0]
    )
    pos = np.concatenate([near, sweep, edges.astype(np.float32)])
    return np.concatenate([pos, -pos])


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_relative_error_below_1e6(name: str, kernel_isa: str) -> None:
    x = grid()
    got = _core.activate(name, x).astype(np.float64)
    want = REFERENCE[name](x.astype(np.float64))
    normal = np.abs(want) >= TINY
    rel = np.abs(got[normal] - want[normal]) / np.abs(want[normal])
    worst = int(np.argmax(rel))
    assert rel[worst] < 1e-6, (
        f"{kernel_isa} {name}: relative error {rel[worst]:.2e} at x={x[normal][worst]!r} "
        f"(got {got[normal][worst]!r}, want {want[normal][worst]!r})"
    )
    assert np.all(np.abs(got[~normal] - want[~normal]) < TINY), f"{kernel_isa} {name}: tiny outputs"


def test_limits_and_nan(kernel_isa: str) -> None:
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e30, -1e30], np.float32)
    t = _core.activate("tanh", x)
    s = _core.activate("sigmoid", x)
    assert list(t[[0, 1, 5, 6]]) == [1.0, -1.0, 1.0, -1.0], f"{kernel_isa}: tanh limits {t}"
    assert list(s[[0, 5]]) == [1.0, 1.0] and np.all(s[[1, 6]] < 1e-37), f"{kernel_isa}: {s}"
    assert np.isnan(t[2]) and np.isnan(s[2]), f"{kernel_isa}: NaN must stay NaN: {t[2]}, {s[2]}"
    assert t[3] == 0.0 and np.signbit(t[4]) and s[3] == 0.5, f"{kernel_isa}: zeros {t}, {s}"


def test_result_does_not_depend_on_position(kernel_isa: str) -> None:
    """The remainder of a call runs through the vector code too: an element's value is the
    same at any offset and in calls of any length."""
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32) * 4
    for name in ("tanh", "sigmoid"):
        whole = _core.activate(name, x)
        for n in (1, 5, 13, 17, 31):
            for start in (0, 3, 16):
                part = _core.activate(name, x[start : start + n])
                assert np.array_equal(part, whole[start : start + n]), (
                    f"{kernel_isa} {name}: x[{start}:{start + n}] differs from the whole call"
                )


def test_bad_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="tanh"):
        _core.activate("relu6", np.zeros(3, np.float32))
