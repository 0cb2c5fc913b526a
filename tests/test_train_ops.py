"""The training loop's helpers in the core, under every kernel build: ``_core.matmul`` (the
Dense layers' products) against float64 numpy products, and ``_core.update`` (the optimizers'
steps) element for element against the update equations written out here in numpy, one
operation at a time in the order rnnkit.optimizers documents. Bad arguments raise and change
nothing."""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from rnnkit import _core, optimizers

DTYPES = [np.float32, np.float64]


@pytest.fixture(autouse=True)
def _restore_threads():
    before = rnnkit.get_num_threads()
    yield
    rnnkit.set_num_threads(before)


def _rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------------------ matmul
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 5, 3), (130, 61, 96), (300, 257, 40), (4, 0, 6)])
def test_matmul_matches_float64_products(kernel_isa, dtype, trans_a, trans_b, accumulate, shape):
    M, K, N = shape
    rng = np.random.default_rng(M * 1000 + K + N)
    a = _rand(rng, (K, M) if trans_a else (M, K), dtype)
    b = _rand(rng, (N, K) if trans_b else (K, N), dtype)
    out = _rand(rng, (M, N), dtype)
    start = out.astype(np.float64)
    ref = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)
    if accumulate:
        ref += start
    for threads in (1, 2):
        rnnkit.set_num_threads(threads)
        got = out.copy()
        _core.matmul(a, b, got, trans_a=trans_a, trans_b=trans_b, accumulate=accumulate)
        eps = np.finfo(dtype).eps
        err = np.abs(got - ref).max() if got.size else 0.0
        bound = 4 * eps * (K + 2) * max(1.0, np.abs(ref).max() if ref.size else 1.0)
        assert err <= bound, f"{kernel_isa} {threads} threads: max error {err:.3e} > {bound:.3e}"


def test_matmul_splits_big_products_across_threads_with_the_same_rows():
    rng = np.random.default_rng(3)
    a, b = _rand(rng, (512, 300), np.float32), _rand(rng, (300, 256), np.float32)
    outs = []
    for threads in (1, 2):
        rnnkit.set_num_threads(threads)
        out = np.empty((512, 256), np.float32)
        _core.matmul(a, b, out)
        outs.append(out)
    err = np.abs(outs[0] - a.astype(np.float64) @ b.astype(np.float64)).max()
    assert err < 1e-3, f"max error {err:.3e}"
    assert np.abs(outs[1] - outs[0]).max() < 1e-4


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda a, b, o: (a.astype(np.float16), b, o), "float32 or float64"),
        (lambda a, b, o: (a, b.astype(np.float64), o), "C-contiguous float32"),
        (lambda a, b, o: (a, b, o[:, ::2]), "C-contiguous float32"),
        (lambda a, b, o: (a, b[:2], o), "inner sizes differ"),
        (lambda a, b, o: (a, b, o[:2]), r"out has shape \(2, 4\); expected \(5, 4\)"),
        (lambda a, b, o: (a[None], b, o), "must be 2-D"),
        (lambda a, b, o: (a, b, np.frombuffer(o.tobytes(), np.float32).reshape(5, 4)), "writeable"),
    ],
)
def test_matmul_refuses_bad_arguments_and_writes_nothing(make, match):
    rng = np.random.default_rng(0)
    a, b, o = (
        _rand(rng, (5, 3), np.float32),
        _rand(rng, (3, 4), np.float32),
        np.zeros((5, 4), np.float32),
    )
    a2, b2, o2 = make(a, b, o)
    with pytest.raises((TypeError, ValueError), match=match):
        _core.matmul(a2, b2, o2)
    assert not o.any()


def test_matmul_refuses_an_out_that_overlaps_an_input():
    buf = np.zeros(64, np.float32)
    a, out = buf[:16].reshape(4, 4), buf[8:24].reshape(4, 4)
    with pytest.raises(ValueError, match="overlaps"):
        _core.matmul(a, np.eye(4, dtype=np.float32), out)
    assert not buf.any()


# ------------------------------------------------------------------------------ update
# The equations of rnnkit.optimizers, one numpy operation per line, Python scalars as numpy
# rounds them: the reference the core must equal element for element.
def ref_sgd(p, g, s, lr, momentum, nesterov):
    if not momentum:
        p -= g * lr
        return
    m = s["momentum"]
    step = g * lr
    m *= momentum
    m -= step
    if nesterov:
        p -= step
        p += m * momentum
    else:
        p += m


def ref_adam(p, g, s, alpha, one_minus_b1, one_minus_b2, epsilon):
    m, v = s["m"], s["v"]
    m += (g - m) * one_minus_b1
    v += (g * g - v) * one_minus_b2
    if "v_hat" in s:
        np.maximum(s["v_hat"], v, out=s["v_hat"])
        v = s["v_hat"]
    p -= m / (np.sqrt(v) + epsilon) * alpha


def ref_rmsprop(p, g, s, lr, rho, one_minus_rho, momentum, epsilon):
    v = s["velocity"]
    v *= rho
    v += g * g * one_minus_rho
    if "average_gradient" in s:
        a = s["average_gradient"]
        a *= rho
        a += one_minus_rho * g
        d = v - a * a
    else:
        d = v.copy()
    inc = g / np.sqrt(d + epsilon) * lr
    if "momentum" in s:
        s["momentum"] *= momentum
        s["momentum"] += inc
        p -= s["momentum"]
    else:
        p -= inc


CASES = [
    ("sgd", {"momentum": 0.0, "nesterov": False}, ()),
    ("sgd", {"momentum": 0.9, "nesterov": False}, ("momentum",)),
    ("sgd", {"momentum": 0.9, "nesterov": True}, ("momentum",)),
    ("adam", {"alpha": 3e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}, ("m", "v")),
    ("adam", {"alpha": 3e-3, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-4}, ("m", "v", "v_hat")),
    ("rmsprop", {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7}, ("velocity",)),
    ("rmsprop", {"rho": 0.8, "momentum": 0.5, "epsilon": 1e-7}, ("velocity", "momentum")),
    (
        "rmsprop",
        {"rho": 0.9, "momentum": 0.5, "epsilon": 1e-3},
        ("velocity", "momentum", "average_gradient"),
    ),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decay", [1.0, 0.996])
@pytest.mark.parametrize("rule, scalars, slot_names", CASES)
def test_update_equals_the_equations_element_for_element(
    kernel_isa, dtype, decay, rule, scalars, slot_names
):
    rng = np.random.default_rng(len(slot_names) * 7 + int(decay * 10))
    shapes = [(37, 5), (1,), (1000,)]  # odd sizes: the SIMD loops' tails
    params = [_rand(rng, s, dtype) for s in shapes]

    # second moments positive, the centered average small beside them (v - a^2 > 0)
    def slot(n, s):
        return (
            _rand(rng, s, dtype) * 0.01
            if n == "average_gradient"
            else (0.05 + np.abs(_rand(rng, s, dtype)) * 0.1).astype(dtype)
        )

    slots = [{n: slot(n, s) for n in slot_names} for s in shapes]
    expect_p = [p.copy() for p in params]
    expect_s = [{n: a.copy() for n, a in s.items()} for s in slots]
    lr = 0.01
    for _ in range(3):
        grads = [_rand(rng, s, dtype) for s in shapes]
        grads[2][:3] = [0.0, 1e-30, 5e3]
        _core.update(rule, params, grads, slots, lr=lr, decay=decay, **scalars)
        for p, g, s in zip(expect_p, grads, expect_s):
            # numpy rounds each Python scalar to the arrays' dtype
            c = {k: (dtype(v) if isinstance(v, float) else v) for k, v in scalars.items()}
            if decay != 1.0:
                p *= dtype(decay)
            if rule == "sgd":
                ref_sgd(p, g, s, dtype(lr), c["momentum"], c["nesterov"])
            elif rule == "adam":
                c1, c2 = dtype(1.0 - scalars["beta_1"]), dtype(1.0 - scalars["beta_2"])
                ref_adam(p, g, s, c["alpha"], c1, c2, c["epsilon"])
            else:
                c1 = dtype(1.0 - scalars["rho"])
                ref_rmsprop(p, g, s, dtype(lr), c["rho"], c1, c["momentum"], c["epsilon"])
    for k, (p, e) in enumerate(zip(params, expect_p)):
        diff = np.flatnonzero(p != e)
        assert not diff.size, (
            f"{kernel_isa} {rule} param {k}: {diff.size} elements differ, first at {diff[0]}: "
            f"{p.flat[diff[0]]!r} vs {e.flat[diff[0]]!r}"
        )
        for n in slot_names:
            assert np.array_equal(slots[k][n], expect_s[k][n]), f"{rule} slot {n} of param {k}"


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda p, g, s: ("adagrad", p, g, s), "rule must be 'sgd', 'adam' or 'rmsprop'"),
        (lambda p, g, s: ("adam", p, g[:1], s), "same length"),
        (lambda p, g, s: ("adam", p, [g[0], g[1][:-1]], s), r"grads\[1\] has shape \(4,\)"),
        (lambda p, g, s: ("adam", p, [g[0], g[1].astype(np.float64)], s), "C-contiguous float32"),
        (lambda p, g, s: ("adam", p, g, [s[0], {"m": s[1]["m"]}]), r"slots\[1\] lacks 'v'"),
        (lambda p, g, s: ("adam", p, g, [s[0], {**s[1], "velocity": s[1]["m"]}]), "unknown"),
        (lambda p, g, s: ("adam", p, g, [s[0], {"m": s[1]["m"], "v": p[1]}]), "shares memory"),
        (lambda p, g, s: ("adam", [p[0], p[1][::2]], g, s), "C-contiguous float32"),
        (lambda p, g, s: ("adam", p, g, [s[0], None]), "must be a dict"),
    ],
)
def test_update_refuses_bad_arguments_and_changes_no_parameter(edit, match):
    rng = np.random.default_rng(1)
    params = [_rand(rng, (3,), np.float32), _rand(rng, (5,), np.float32)]
    grads = [_rand(rng, (3,), np.float32), _rand(rng, (5,), np.float32)]
    slots = [
        {"m": np.zeros(3, np.float32), "v": np.zeros(3, np.float32)},
        {"m": np.zeros(5, np.float32), "v": np.zeros(5, np.float32)},
    ]
    before = [p.copy() for p in params]
    args = edit(params, grads, slots)
    with pytest.raises((TypeError, ValueError), match=match):
        _core.update(*args, lr=0.1, alpha=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
    for p, b in zip(params, before):
        assert np.array_equal(p, b), "a parameter changed before the error"
    for s in slots:
        assert not any(a.any() for a in s.values()), "a slot changed before the error"


def test_optimizers_step_in_the_core(monkeypatch):
    # The built-in optimizers make one core call per step for all their parameters.
    calls = []
    real = _core.update
    monkeypatch.setattr(_core, "update", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    params = [np.ones(4, np.float32), np.ones((2, 3), np.float32)]
    grads = [np.full(4, 0.5, np.float32), np.full((2, 3), -0.5, np.float32)]
    for opt in (
        optimizers.SGD(0.1, momentum=0.5),
        optimizers.Adam(),
        optimizers.AdamW(),
        optimizers.RMSprop(centered=True),
    ):
        opt.apply(grads, params)
    assert calls == ["sgd", "adam", "adam", "rmsprop"]


def test_a_custom_optimizer_with_a_numpy_update_still_works():
    class HalfStep(optimizers.Optimizer):
        def _update(self, p, g, slots, lr):
            p -= 0.5 * lr * g

    p = np.ones(3)
    HalfStep(learning_rate=0.2, weight_decay=0.5).apply([np.array([1.0, 2.0, 3.0])], [p])
    expected = np.ones(3) * (1 - 0.2 * 0.5) - 0.5 * 0.2 * np.array([1.0, 2.0, 3.0])
    assert np.allclose(p, expected, rtol=0, atol=1e-15), p
