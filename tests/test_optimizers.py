"""Optimizers: a few steps against hand-written update equations (plain Python floats),
clipping, weight decay, state I/O, and against Keras 3 when installed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnkit import optimizers

GRADS = [np.array([0.5, -1.0, 2.0]), np.array([0.1, 0.3, -4.0]), np.array([-0.2, 0.0, 1.0])]
START = np.array([1.0, -2.0, 0.5])


def run(opt: optimizers.Optimizer, grads=GRADS, start=START) -> np.ndarray:
    p = start.astype(np.float64).copy()
    for g in grads:
        opt.apply([g.copy()], [p])
    return p


def close(actual, expected, what, tol=1e-12):
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    err = np.abs(actual - expected).max()
    assert err <= tol * max(1.0, np.abs(expected).max()), (
        f"{what}: max abs error {err:.3e}\n actual   {actual}\n expected {expected}"
    )


# ---------------------------------------------------------------- hand-computed steps
def test_sgd_plain_and_momentum_and_nesterov():
    lr, mom = 0.1, 0.9
    close(run(optimizers.SGD(lr)), START - lr * sum(GRADS), "SGD")
    # momentum: m = mom*m - lr*g; w += m
    w, m = START.copy(), np.zeros(3)
    for g in GRADS:
        m = mom * m - lr * g
        w = w + m
    close(run(optimizers.SGD(lr, momentum=mom)), w, "SGD momentum")
    # nesterov: m = mom*m - lr*g; w += mom*m - lr*g
    w, m = START.copy(), np.zeros(3)
    for g in GRADS:
        m = mom * m - lr * g
        w = w + mom * m - lr * g
    close(run(optimizers.SGD(lr, momentum=mom, nesterov=True)), w, "SGD nesterov")


def test_adam_first_step_by_hand():
    """Step 1: m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(0.001)/0.1,
    w -= alpha m / (sqrt(v) + 1e-7) = lr g / (|g| + 1e-7/sqrt(0.001))."""
    lr = 0.01
    p = run(optimizers.Adam(lr), grads=GRADS[:1])
    g = GRADS[0]
    expected = START - lr * g / (np.abs(g) + 1e-7 / math.sqrt(0.001))
    close(p, expected, "Adam step 1")


def test_adam_three_steps_elementwise():
    lr, b1, b2, eps = 0.02, 0.8, 0.95, 1e-3
    expected = []
    for k in range(3):
        w, m, v = START[k], 0.0, 0.0
        for t, g in enumerate(GRADS, start=1):
            m = m + (g[k] - m) * (1 - b1)
            v = v + (g[k] ** 2 - v) * (1 - b2)
            alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
            w = w - alpha * m / (math.sqrt(v) + eps)
        expected.append(w)
    close(run(optimizers.Adam(lr, beta_1=b1, beta_2=b2, epsilon=eps)), expected, "Adam")


def test_adam_amsgrad():
    lr, b1, b2, eps = 0.05, 0.9, 0.5, 1e-7
    w, m, v, vhat = START.copy(), np.zeros(3), np.zeros(3), np.zeros(3)
    for t, g in enumerate(GRADS, start=1):
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        vhat = np.maximum(vhat, v)
        w = w - lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(vhat) + eps)
    close(run(optimizers.Adam(lr, beta_2=b2, amsgrad=True)), w, "Adam amsgrad")


def test_adamw_decays_before_the_adam_step():
    lr, wd = 0.01, 0.1
    w, m, v = START.copy(), np.zeros(3), np.zeros(3)
    for t, g in enumerate(GRADS, start=1):
        w = w - w * wd * lr
        m = m + (g - m) * 0.1
        v = v + (g * g - v) * 0.001
        w = w - lr * math.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-7)
    close(run(optimizers.AdamW(lr, weight_decay=wd)), w, "AdamW")


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_rmsprop(centered, momentum):
    lr, rho, eps = 0.01, 0.9, 1e-7
    w, v, a, mom = START.copy(), np.zeros(3), np.zeros(3), np.zeros(3)
    for g in GRADS:
        v = rho * v + (1 - rho) * g * g
        if centered:
            a = rho * a + (1 - rho) * g
            denom = v - a * a + eps
        else:
            denom = v + eps
        inc = lr * g / np.sqrt(denom)
        if momentum:
            mom = momentum * mom + inc
            w = w - mom
        else:
            w = w - inc
    opt = optimizers.RMSprop(lr, rho=rho, momentum=momentum, centered=centered)
    close(run(opt), w, f"RMSprop centered={centered} momentum={momentum}")


def test_defaults_match_keras_3():
    adam = optimizers.get("adam")
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert optimizers.get("sgd").learning_rate == 0.01
    rms = optimizers.get("rmsprop")
    assert (rms.learning_rate, rms.rho, rms.epsilon) == (0.001, 0.9, 1e-7)
    assert optimizers.get("adamw").weight_decay == 0.004


# ---------------------------------------------------------------------- clipping
def test_clipnorm_clips_each_array_by_its_norm():
    g1, g2 = np.array([3.0, 4.0]), np.array([0.3, 0.4])  # norms 5 and 0.5
    p1, p2 = np.zeros(2), np.zeros(2)
    optimizers.SGD(1.0, clipnorm=1.0).apply([g1, g2], [p1, p2])
    close(p1, -g1 / 5, "clipnorm (clipped)")
    close(p2, -g2, "clipnorm (untouched)")


def test_global_clipnorm_scales_all_arrays_together():
    g1, g2 = np.array([3.0, 0.0]), np.array([0.0, 4.0])  # global norm 5
    p1, p2 = np.zeros(2), np.zeros(2)
    optimizers.SGD(1.0, global_clipnorm=2.5).apply([g1, g2], [p1, p2])
    close(np.concatenate([p1, p2]), -np.concatenate([g1, g2]) / 2, "global_clipnorm")


def test_clipvalue():
    p = np.zeros(3)
    optimizers.SGD(1.0, clipvalue=0.5).apply([np.array([2.0, -0.1, -3.0])], [p])
    close(p, [-0.5, 0.1, 0.5], "clipvalue")


def test_only_one_clipping_option():
    with pytest.raises(ValueError, match="at most one of clipnorm, clipvalue, global_clipnorm"):
        optimizers.Adam(clipnorm=1.0, clipvalue=1.0)


# ------------------------------------------------------------- learning rate & state
def test_learning_rate_setter_and_schedule():
    opt = optimizers.SGD(0.1)
    opt.learning_rate = 0.5
    p = np.zeros(1)
    opt.apply([np.ones(1)], [p])
    close(p, [-0.5], "SGD after setting learning_rate")
    sched = optimizers.ExponentialDecay(1.0, decay_steps=2, decay_rate=0.5)
    opt = optimizers.SGD(sched)
    p = np.zeros(1)
    for _ in range(3):
        opt.apply([np.ones(1)], [p])
    close(p, [-(1.0 + 0.5**0.5 + 0.5)], "SGD with ExponentialDecay")
    with pytest.raises(ValueError, match="learning_rate must be a finite number"):
        opt.learning_rate = float("nan")


def test_in_place_update_and_state_round_trip():
    p = START.copy()
    alias = p
    opt = optimizers.Adam(0.01)
    opt.apply([GRADS[0]], [p])
    assert alias is p and not np.array_equal(p, START), "parameters must update in place"
    state = opt.get_state()
    q = p.copy()
    other = optimizers.Adam(0.01)
    other.set_state(state, [q])
    opt.apply([GRADS[1]], [p])
    other.apply([GRADS[1]], [q])
    close(q, p, "Adam continued from a restored state", tol=0)
    with pytest.raises(ValueError, match="do not match its shape"):
        optimizers.Adam().set_state(state, [np.zeros(4)])


def test_unknown_names_and_arguments():
    with pytest.raises(ValueError, match="unknown optimizer 'adma'"):
        optimizers.get("adma")
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        optimizers.Adam(lr=0.1)
    with pytest.raises(ValueError, match="momentum must be in"):
        optimizers.SGD(momentum=1.5)


def test_config_round_trip():
    for opt in (
        optimizers.SGD(0.2, momentum=0.5, nesterov=True),
        optimizers.Adam(0.003, amsgrad=True, clipnorm=1.0),
        optimizers.AdamW(weight_decay=0.01),
        optimizers.RMSprop(centered=True, global_clipnorm=2.0),
    ):
        again = optimizers.deserialize(optimizers.serialize(opt))
        assert type(again) is type(opt) and again.get_config() == opt.get_config(), (
            f"{opt!r}: {again.get_config()} != {opt.get_config()}"
        )


# ----------------------------------------------------------------------- vs Keras
@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
        ("Adam", {"learning_rate": 0.01}),
        ("Adam", {"learning_rate": 0.01, "amsgrad": True, "clipnorm": 1.5}),
        ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.05}),
        ("RMSprop", {"learning_rate": 0.01, "momentum": 0.3, "centered": True}),
        ("SGD", {"learning_rate": 0.1, "global_clipnorm": 1.0}),
        ("RMSprop", {"learning_rate": 0.01, "clipvalue": 0.5}),
    ],
)
def test_matches_keras(name, kwargs):
    keras = pytest.importorskip("keras")
    ours = getattr(optimizers, name)(**kwargs)
    theirs = getattr(keras.optimizers, name)(**kwargs)
    rng = np.random.default_rng(7)
    shapes = [(3, 4), (4,)]
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    params = [s.copy() for s in start]
    variables = [keras.Variable(s.copy()) for s in start]
    for _ in range(5):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        ours.apply([g.copy() for g in grads], params)
        theirs.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads], variables))
    for k, (p, v) in enumerate(zip(params, variables)):
        close(p, np.asarray(v), f"{name}{kwargs} parameter {k} after 5 steps", tol=2e-6)
