"""Finite-difference gradient checks (float64) for every LSTM/GRU variant and option.

The scalar loss is ``L = sum(y * Ry) + sum(h_n * Rh) (+ sum(c_n * Rc))`` with fixed random
``R*``, so ``m.backward(Ry, (Rh, Rc))`` must return dL/dx, dL/dh0, dL/dc0 and accumulate
dL/dW into ``m.grads``. Every coordinate of every input and parameter is checked against a
central difference with step ``EPS``; sizes are tiny (I=3, H=4, T=5, B=2 or 3).

Kinks (relu at 0, hard_sigmoid at +-3): a coordinate whose perturbation moves some
pre-activation across a kink inside the stencil has no meaningful central difference. For
those variants each coordinate also gets the two second-order one-sided differences
(left: f(0), f(-h), f(-2h); right: f(0), f(h), f(2h)). For a smooth loss all three
estimates agree to O(h^2) plus rounding (~1e-8 here); a kink at offset d in (0, h) leaves
the left estimate exact and moves the central one by exactly its own error, so
``max(|c - l|, |c - r|) <= KINK_TOL`` bounds the central-difference error and any coordinate
above it is skipped (and counted; at most a few percent may be skipped). The one-sided
estimates depend only on the forward pass, so a wrong backward can never cause a skip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import rnnkit

EPS = 1e-6  # central-difference step
RTOL = 1e-6  # max |analytic - numeric| / max(|numeric|, |analytic|, SCALE_FLOOR), per key
SCALE_FLOOR = 1e-3  # keeps the relative error meaningful for keys whose gradient is ~0
KINK_TOL = 1e-7  # bound on the central-difference error a kept coordinate may carry
MAX_SKIPPED = 0.05  # fraction of coordinates per key that may sit on a kink
IN, HID, STEPS = 3, 4, 5  # input size, hidden size, time steps


@dataclass
class Case:
    """One gradcheck configuration."""

    name: str
    cell: str  # "lstm" or "gru"
    kwargs: dict[str, Any] = field(default_factory=dict)
    batch: int = 2
    lengths: tuple[int, ...] | None = None
    states: bool = True  # pass random initial states (else hx=None, checked against zeros)
    x_scale: float = 1.0
    hidden: int = HID

    @property
    def kinks(self) -> bool:
        return (
            self.kwargs.get("activation") == "relu"
            or self.kwargs.get("recurrent_activation") == "hard_sigmoid"
        )


def _activation_cases() -> list[Case]:
    cases = []
    cells = [
        ("lstm", {}),
        ("gru", {"reset_after": True}),
        ("gru", {"reset_after": False}),
    ]
    for cell, extra in cells:
        for act in ("tanh", "relu", "sigmoid", "linear"):
            for ract in ("sigmoid", "hard_sigmoid"):
                tag = cell if cell == "lstm" else f"gru_ra{int(extra['reset_after'])}"
                cases.append(
                    Case(
                        f"{tag}_{act}_{ract}",
                        cell,
                        {**extra, "activation": act, "recurrent_activation": ract},
                        # hard_sigmoid: push some pre-activations past +-3 (saturation)
                        x_scale=3.0 if ract == "hard_sigmoid" else 1.0,
                    )
                )
    return cases


OPTION_CASES = [
    Case("lstm_default_no_state", "lstm", {}, states=False),
    Case("lstm_relu_no_state", "lstm", {"activation": "relu"}, states=False),
    Case("lstm_no_bias", "lstm", {"bias": False}),
    Case("lstm_l2", "lstm", {"num_layers": 2}),
    Case("lstm_bi", "lstm", {"bidirectional": True}),
    Case("lstm_l2_bi", "lstm", {"num_layers": 2, "bidirectional": True}, states=False),
    Case("lstm_proj", "lstm", {"proj_size": 2}),
    Case("lstm_peephole", "lstm", {"peephole": True}),
    Case(
        "lstm_peephole_relu_hard_sigmoid",
        "lstm",
        {"peephole": True, "activation": "relu", "recurrent_activation": "hard_sigmoid"},
        x_scale=3.0,
    ),
    Case("lstm_lengths", "lstm", {}, batch=3, lengths=(5, 1, 3)),
    Case("lstm_bi_lengths", "lstm", {"bidirectional": True}, batch=3, lengths=(2, 5, 1)),
    Case("lstm_batch_first", "lstm", {"batch_first": True}),
    Case(
        "lstm_batch_first_bi_lengths",
        "lstm",
        {"batch_first": True, "bidirectional": True},
        batch=3,
        lengths=(3, 5, 1),
    ),
    Case(
        "lstm_everything",
        "lstm",
        {
            "num_layers": 2,
            "bidirectional": True,
            "proj_size": 3,
            "peephole": True,
            "batch_first": True,
        },
        batch=3,
        lengths=(4, 1, 5),
    ),
    Case("gru_no_bias_ra0", "gru", {"bias": False, "reset_after": False}),
    Case("gru_no_bias_ra1", "gru", {"bias": False, "reset_after": True}),
    Case("gru_default_no_state", "gru", {}, states=False),
    Case("gru_l2_ra1", "gru", {"num_layers": 2, "reset_after": True}),
    Case("gru_l2_ra0", "gru", {"num_layers": 2, "reset_after": False}),
    Case("gru_bi_ra1", "gru", {"bidirectional": True, "reset_after": True}),
    Case("gru_bi_ra0", "gru", {"bidirectional": True, "reset_after": False}),
    Case("gru_lengths_ra0", "gru", {"reset_after": False}, batch=3, lengths=(1, 5, 2)),
    Case(
        "gru_bi_lengths_ra1",
        "gru",
        {"bidirectional": True, "reset_after": True},
        batch=3,
        lengths=(5, 3, 1),
    ),
    Case("gru_batch_first", "gru", {"batch_first": True}),
    Case(
        "gru_everything_ra0",
        "gru",
        {"num_layers": 2, "bidirectional": True, "batch_first": True, "reset_after": False},
        batch=3,
        lengths=(2, 5, 4),
    ),
    Case(
        "gru_everything_ra1_relu_hard_sigmoid",
        "gru",
        {
            "num_layers": 2,
            "bidirectional": True,
            "activation": "relu",
            "recurrent_activation": "hard_sigmoid",
        },
        batch=3,
        lengths=(5, 2, 3),
        x_scale=3.0,
    ),
    # wider hidden sizes: SIMD main loops plus remainders (9 = 8 + 1, 17 = 16 + 1)
    Case(
        "lstm_h9_bi_proj_peephole_lengths",
        "lstm",
        {"bidirectional": True, "proj_size": 5, "peephole": True},
        batch=5,
        lengths=(5, 3, 1, 4, 5),
        hidden=9,
    ),
    Case("lstm_h17", "lstm", {}, batch=4, hidden=17),
    Case("gru_h9_bi_ra0", "gru", {"bidirectional": True, "reset_after": False}, hidden=9),
    Case("gru_h17_ra1_lengths", "gru", {}, batch=5, lengths=(1, 5, 2, 4, 3), hidden=17),
]

ALL_CASES = _activation_cases() + OPTION_CASES


def make_module(cell: str, seed: int = 0, hidden: int = HID, **kwargs: Any) -> Any:
    cls = rnnkit.LSTM if cell == "lstm" else rnnkit.GRU
    return cls(IN, hidden, dtype="float64", seed=seed, **kwargs)


def random_state_dict(m: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Weights drawn here (not the module's init) so biases and peepholes are nonzero."""
    return {k: rng.normal(0.0, 0.5, v.shape) for k, v in m.state_dict().items()}


def state_shapes(m: Any, case: Case) -> tuple[tuple[int, ...], tuple[int, ...]]:
    num_layers = case.kwargs.get("num_layers", 1)
    d = 2 if case.kwargs.get("bidirectional", False) else 1
    hout = case.kwargs.get("proj_size", 0) or case.hidden
    return (num_layers * d, case.batch, hout), (num_layers * d, case.batch, case.hidden)


def run(
    m: Any, cell: str, x: np.ndarray, states: list[np.ndarray] | None, lengths: np.ndarray | None
) -> list[np.ndarray]:
    """Forward; returns [y, h_n] (GRU) or [y, h_n, c_n] (LSTM)."""
    if cell == "lstm":
        hx = None if states is None else (states[0], states[1])
        y, (h_n, c_n) = m(x, hx, lengths=lengths)
        return [y, h_n, c_n]
    y, h_n = m(x, None if states is None else states[0], lengths=lengths)
    return [y, h_n]


def loss_of(outs: list[np.ndarray], rs: list[np.ndarray]) -> float:
    return float(sum(np.sum(o * r) for o, r in zip(outs, rs)))


def backward(m: Any, cell: str, rs: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    if cell == "lstm":
        dx, (dh0, dc0) = m.backward(rs[0], (rs[1], rs[2]))
        return dx, [dh0, dc0]
    dx, dh0 = m.backward(rs[0], rs[1])
    return dx, [dh0]


def numeric_grad(
    f: Callable[[], float], a: np.ndarray, kinks: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of f w.r.t. every coordinate of ``a`` (perturbed in place).

    Returns (gradient, skipped mask); see the module docstring for the kink rule.
    """
    g = np.zeros(a.shape)
    skipped = np.zeros(a.shape, dtype=bool)
    f0 = f() if kinks else 0.0
    steps = (1, -1, 2, -2) if kinks else (1, -1)
    for idx in np.ndindex(a.shape):
        orig = a[idx]
        vals = {}
        for k in steps:
            a[idx] = orig + k * EPS
            vals[k] = f()
        a[idx] = orig
        central = (vals[1] - vals[-1]) / (2 * EPS)
        if kinks:
            right = (-3 * f0 + 4 * vals[1] - vals[2]) / (2 * EPS)
            left = (3 * f0 - 4 * vals[-1] + vals[-2]) / (2 * EPS)
            skipped[idx] = max(abs(central - right), abs(central - left)) > KINK_TOL
        g[idx] = central
    return g, skipped


def rel_error(
    analytic: np.ndarray, numeric: np.ndarray, skipped: np.ndarray
) -> tuple[float, float, tuple[int, ...]]:
    """(relative error, max abs diff, worst index) over the non-skipped coordinates."""
    diff = np.where(skipped, 0.0, np.abs(analytic - numeric))
    keep = ~skipped
    scale = max(
        float(np.max(np.abs(numeric[keep]), initial=0.0)),
        float(np.max(np.abs(analytic[keep]), initial=0.0)),
        SCALE_FLOOR,
    )
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else ()
    max_diff = float(diff.max(initial=0.0))
    return max_diff / scale, max_diff, tuple(int(i) for i in worst)


def assert_grad_close(
    name: str,
    analytic: np.ndarray,
    numeric: np.ndarray,
    skipped: np.ndarray,
    max_skipped: float = MAX_SKIPPED,
) -> float:
    assert analytic.shape == numeric.shape, (
        f"{name}: gradient shape {analytic.shape}, expected {numeric.shape}"
    )
    assert analytic.dtype == np.float64, f"{name}: gradient dtype {analytic.dtype}"
    n_skip = int(skipped.sum())
    assert n_skip <= max_skipped * skipped.size + 1, (
        f"{name}: {n_skip}/{skipped.size} coordinates sit on a kink; forward not smooth?"
    )
    err, max_diff, idx = rel_error(analytic, numeric, skipped)
    assert err < RTOL, (
        f"{name}: relative error {err:.3e} >= {RTOL:g} (max abs diff {max_diff:.3e} at "
        f"{idx}: analytic {analytic[idx]!r}, numeric {numeric[idx]!r}; "
        f"{n_skip} kink coordinates skipped)"
    )
    return err


def gradcheck(case: Case, seed: int = 0) -> dict[str, float]:
    """Check dx, dh0, (dc0) and every m.grads entry; returns {key: relative error}."""
    rng = np.random.default_rng(seed)
    m = make_module(case.cell, seed=seed, hidden=case.hidden, **case.kwargs)
    sd = random_state_dict(m, rng)
    m.load_state_dict(sd)
    shape = (case.batch, STEPS, IN) if case.kwargs.get("batch_first") else (STEPS, case.batch, IN)
    x = rng.normal(0.0, case.x_scale, shape)
    h_shape, c_shape = state_shapes(m, case)
    shapes = [h_shape, c_shape] if case.cell == "lstm" else [h_shape]
    if case.states:
        states = [rng.normal(0.0, 0.5, s) for s in shapes]
    else:
        states = [np.zeros(s) for s in shapes]
    lengths = None if case.lengths is None else np.array(case.lengths, dtype=np.int64)

    outs = run(m, case.cell, x, states if case.states else None, lengths)
    rs = [rng.normal(0.0, 1.0, o.shape) for o in outs]
    m.zero_grad()
    dx, dstates = backward(m, case.cell, rs)
    grads = {k: np.array(v, copy=True) for k, v in m.grads.items()}
    assert set(grads) == set(sd), f"m.grads keys {sorted(grads)} != state_dict keys {sorted(sd)}"

    def f() -> float:
        return loss_of(run(m, case.cell, x, states, lengths), rs)

    errors: dict[str, float] = {}
    names = ["x", "h0", "c0"]
    for name, analytic, arr in zip(names, [dx, *dstates], [x, *states]):
        numeric, skipped = numeric_grad(f, arr, case.kinks)
        # A zero initial state sits exactly on relu's kink (c1 = f*c0 + i*relu(.) = 0
        # wherever relu(.) = 0), so any number of its coordinates may be skipped.
        max_skipped = 1.0 if name != "x" and not case.states else MAX_SKIPPED
        errors[name] = assert_grad_close(
            f"[{case.name}] d{name}", analytic, numeric, skipped, max_skipped
        )

    for key in sorted(sd):

        def f_param() -> float:
            m.load_state_dict(sd)
            return f()

        numeric, skipped = numeric_grad(f_param, sd[key], case.kinks)
        errors[key] = assert_grad_close(
            f"[{case.name}] grads[{key!r}]", grads[key], numeric, skipped
        )
    return errors


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
def test_gradcheck(case: Case) -> None:
    gradcheck(case)


@pytest.mark.parametrize(
    ("cell", "kwargs"),
    [
        ("lstm", {"num_layers": 2, "bidirectional": True, "proj_size": 2, "peephole": True}),
        ("gru", {"num_layers": 2, "bidirectional": True, "reset_after": False}),
    ],
    ids=["lstm", "gru"],
)
def test_grads_accumulate_and_zero_grad(cell: str, kwargs: dict[str, Any]) -> None:
    case = Case("acc", cell, kwargs, batch=3, lengths=(5, 2, 3))
    rng = np.random.default_rng(7)
    m = make_module(cell, seed=7, **kwargs)
    m.load_state_dict(random_state_dict(m, rng))
    x = rng.normal(size=(STEPS, case.batch, IN))
    lengths = np.array(case.lengths)
    h_shape, c_shape = state_shapes(m, case)
    states = [rng.normal(size=h_shape), rng.normal(size=c_shape)][: 2 if cell == "lstm" else 1]

    m.zero_grad()
    outs = run(m, cell, x, states, lengths)
    rs = [rng.normal(size=o.shape) for o in outs]
    dx1, ds1 = backward(m, cell, rs)
    g1 = {k: np.array(v, copy=True) for k, v in m.grads.items()}
    assert all(np.any(g != 0) for g in g1.values()), (
        f"some gradients are all zero: {[k for k, g in g1.items() if not np.any(g)]}"
    )

    run(m, cell, x, states, lengths)
    dx2, ds2 = backward(m, cell, rs)
    for name, a, b in zip(["dx", "dh0", "dc0"], [dx1, *ds1], [dx2, *ds2]):
        diff = float(np.max(np.abs(a - b)))
        assert diff == 0.0, f"{name} differs between two identical backward calls: {diff:.3e}"
    for k, g in g1.items():
        diff = float(np.max(np.abs(m.grads[k] - 2 * g)))
        assert diff <= 1e-12 * max(1.0, float(np.max(np.abs(g)))), (
            f"grads[{k!r}] after two backward calls is not 2x one call: max diff {diff:.3e}"
        )

    m.zero_grad()
    for k, g in m.grads.items():
        assert not np.any(g), f"grads[{k!r}] not zero after zero_grad: max {np.max(np.abs(g))}"

    run(m, cell, x, states, lengths)
    backward(m, cell, rs)
    for k, g in g1.items():
        diff = float(np.max(np.abs(m.grads[k] - g)))
        assert diff <= 1e-13 * max(1.0, float(np.max(np.abs(g)))), (
            f"grads[{k!r}] after zero_grad + backward != single gradient: max diff {diff:.3e}"
        )


DROPOUT_CASES = [
    ("lstm", {"num_layers": 2, "bidirectional": True, "dropout": 0.5}),
    ("lstm", {"num_layers": 3, "proj_size": 2, "dropout": 0.3}),
    ("gru", {"num_layers": 2, "bidirectional": True, "dropout": 0.5, "reset_after": False}),
    ("gru", {"num_layers": 3, "dropout": 0.4}),
]


@pytest.mark.parametrize(
    ("cell", "kwargs"), DROPOUT_CASES, ids=[f"{c}_{i}" for i, (c, _) in enumerate(DROPOUT_CASES)]
)
def test_dropout_gradcheck_fixed_seed(cell: str, kwargs: dict[str, Any]) -> None:
    """Train-mode dropout between layers: a module built with ``seed=s`` must draw the same
    masks on its first forward every time, so each loss evaluation uses a fresh module."""
    seed = 1234
    rng = np.random.default_rng(3)
    proto = make_module(cell, seed=seed, **kwargs)
    sd = random_state_dict(proto, rng)
    batch = 2
    x = rng.normal(size=(STEPS, batch, IN))
    case = Case("dropout", cell, kwargs, batch=batch)
    h_shape, c_shape = state_shapes(proto, case)
    states = [rng.normal(size=h_shape), rng.normal(size=c_shape)][: 2 if cell == "lstm" else 1]

    def fresh() -> Any:
        m = make_module(cell, seed=seed, **kwargs)
        m.load_state_dict(sd)
        return m

    outs = run(fresh(), cell, x, states, None)
    again = run(fresh(), cell, x, states, None)
    for name, a, b in zip(["y", "h_n", "c_n"], outs, again):
        diff = float(np.max(np.abs(a - b)))
        assert diff == 0.0, (
            f"two modules built with seed={seed} gave different train-mode {name} "
            f"(max diff {diff:.3e}): dropout masks are not reproducible from the seed"
        )
    m_eval = fresh()
    m_eval.eval()
    y_eval = run(m_eval, cell, x, states, None)[0]
    assert float(np.max(np.abs(y_eval - outs[0]))) > 1e-3, (
        "train-mode output equals eval-mode output: dropout between layers is not applied"
    )

    rs = [rng.normal(size=o.shape) for o in outs]
    m = fresh()
    run(m, cell, x, states, None)
    m.zero_grad()
    dx, dstates = backward(m, cell, rs)

    def f() -> float:
        return loss_of(run(fresh(), cell, x, states, None), rs)

    for name, analytic, arr in zip(["x", "h0", "c0"], [dx, *dstates], [x, *states]):
        numeric, skipped = numeric_grad(f, arr, False)
        assert_grad_close(f"[dropout {cell}] d{name}", analytic, numeric, skipped)
    for key in sorted(sd):
        numeric, skipped = numeric_grad(f, sd[key], False)
        assert_grad_close(f"[dropout {cell}] grads[{key!r}]", m.grads[key], numeric, skipped)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_dropout_eval_mode_equals_no_dropout(cell: str) -> None:
    """In eval mode a dropout module is exactly the dropout=0 module with the same weights."""
    rng = np.random.default_rng(11)
    kwargs = {"num_layers": 2, "bidirectional": True}
    m_drop = make_module(cell, seed=1, dropout=0.5, **kwargs)
    m_plain = make_module(cell, seed=2, **kwargs)
    sd = random_state_dict(m_drop, rng)
    m_drop.load_state_dict(sd)
    m_plain.load_state_dict(sd)
    m_drop.eval()
    m_plain.eval()
    x = rng.normal(size=(STEPS, 2, IN))
    for name, a, b in zip(
        ["y", "h_n", "c_n"], run(m_drop, cell, x, None, None), run(m_plain, cell, x, None, None)
    ):
        diff = float(np.max(np.abs(a - b)))
        assert diff == 0.0, f"eval-mode dropout module differs in {name}: max diff {diff:.3e}"


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_none_state_gradients_mean_zero(cell: str) -> None:
    """``m.backward(dy, None)`` (and a None inside the LSTM pair) equals passing zeros."""
    kwargs = {"num_layers": 2, "bidirectional": True}
    rng = np.random.default_rng(5)
    m = make_module(cell, seed=5, **kwargs)
    m.load_state_dict(random_state_dict(m, rng))
    x = rng.normal(size=(STEPS, 3, IN))
    lengths = np.array([5, 1, 3])
    outs = run(m, cell, x, None, lengths)
    dy = rng.normal(size=outs[0].shape)
    rs = [rng.normal(size=o.shape) for o in outs]

    def grads_of(dstate: Any) -> list[np.ndarray]:
        run(m, cell, x, None, lengths)
        m.zero_grad()
        dx, ds = m.backward(dy, dstate)
        ds = list(ds) if cell == "lstm" else [ds]
        return [dx, *ds] + [np.array(m.grads[k], copy=True) for k in sorted(m.grads)]

    zeros = [np.zeros_like(o) for o in outs[1:]]
    variants: dict[str, tuple[Any, Any]] = {
        "None": (None, tuple(zeros) if cell == "lstm" else zeros[0]),
    }
    if cell == "lstm":
        variants["(None, dc_n)"] = ((None, rs[2]), (zeros[0], rs[2]))
        variants["(dh_n, None)"] = ((rs[1], None), (rs[1], zeros[1]))
    for label, (with_none, with_zeros) in variants.items():
        for i, (a, b) in enumerate(zip(grads_of(with_none), grads_of(with_zeros))):
            diff = float(np.max(np.abs(a - b)))
            assert diff == 0.0, (
                f"backward(dy, {label}) differs from explicit zeros in output {i}: "
                f"max abs diff {diff:.3e}"
            )
