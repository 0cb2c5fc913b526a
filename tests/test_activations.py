"""The kernels' vectorized float32 sigmoid and tanh (cpp/src/kernels/vmath.hpp), on every ISA:
within 1e-6 relative of float64 numpy over the whole float range, exact at the limits, NaN
kept NaN, and the same value whatever the position of an element in the call. The other
activations (ONNX's list), with parameters, against tests/reference.py in float64."""

from __future__ import annotations

import numpy as np
import pytest
import reference

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


# (name, alpha, beta) as the core takes them; defaults and values off them
PARAMETRIZED = [
    ("relu", 0.0, 0.0),
    ("linear", 0.0, 0.0),
    ("softsign", 0.0, 0.0),
    ("softplus", 0.0, 0.0),
    ("hard_sigmoid", 1 / 6, 0.5),
    ("hard_sigmoid", 0.2, 0.5),
    ("affine", 0.7, -0.3),
    ("leaky_relu", 0.01, 0.0),
    ("leaky_relu", -0.5, 0.0),
    ("thresholded_relu", 1.0, 0.0),
    ("thresholded_relu", -0.25, 0.0),
    ("scaled_tanh", 1.7, 0.6),
    ("scaled_tanh", 0.0, 2.0),
    ("elu", 1.0, 0.0),
    ("elu", 0.4, 0.0),
]


@pytest.mark.parametrize(("name", "alpha", "beta"), PARAMETRIZED)
def test_every_activation_matches_the_reference(
    name: str, alpha: float, beta: float, kernel_isa: str
) -> None:
    """|error| <= 1e-6 (|ref| + 1e-30) + 1e-37 over [-100, 100] with the kinks and their
    neighbours included (softplus: stable at both ends; elu: expm1 keeps small |x| exact);
    position in the call changes nothing."""
    x = np.concatenate(
        [
            np.linspace(-100, 100, 20_001, dtype=np.float32),
            np.geomspace(1e-30, 1e3, 2001, dtype=np.float32),
            -np.geomspace(1e-30, 1e3, 2001, dtype=np.float32),
            np.array(
                [0.0, -0.0, alpha, np.nextafter(np.float32(alpha), np.float32(9))], np.float32
            ),
        ]
    )
    got = _core.activate(name, x, alpha, beta).astype(np.float64)
    want = reference.activation_fn((name, alpha, beta))(x.astype(np.float32).astype(np.float64))
    bound = 1e-6 * np.abs(want) + 1e-37
    if name in ("affine", "hard_sigmoid", "scaled_tanh"):  # the float32 product alpha * x
        bound += 1e-7 * np.abs(alpha * x.astype(np.float64))
    err = np.abs(got - want)
    worst = int(np.argmax(err - bound))
    assert np.all(err <= bound), (
        f"{kernel_isa} {name}({alpha}, {beta}): error {err[worst]:.2e} at x={x[worst]!r} "
        f"(got {got[worst]!r}, want {want[worst]!r})"
    )
    whole = _core.activate(name, x[:1000], alpha, beta)
    for start, n in ((3, 17), (16, 5), (100, 31)):
        part = _core.activate(name, x[start : start + n], alpha, beta)
        assert np.array_equal(part, whole[start : start + n]), f"{kernel_isa} {name}: position"


def test_bad_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="tanh"):
        _core.activate("relu6", np.zeros(3, np.float32))
