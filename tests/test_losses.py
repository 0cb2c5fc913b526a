"""Losses: values against their formulas (and Keras when installed), gradients against
central finite differences in float64, the logits paths, stability and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit import losses

RNG = np.random.default_rng(1234)
EPS = 1e-6


def numeric_grad(f, x: np.ndarray) -> np.ndarray:
    """Central differences of the scalar f at x, coordinate by coordinate."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + EPS
        fp = f(x)
        x[i] = old - EPS
        fm = f(x)
        x[i] = old
        g[i] = (fp - fm) / (2 * EPS)
    return g


def check_grad(
    loss: losses.Loss,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    logits: bool = False,
    tol: float = 1e-7,
) -> None:
    if logits:
        _, analytic = loss.value_and_grad_from_logits(y_true, y_pred)

        def f(p):
            return loss.value_and_grad_from_logits(y_true, p, need_grad=False)[0]
    else:
        _, analytic = loss.value_and_grad(y_true, y_pred)

        def f(p):
            return loss(y_true, p)

    numeric = numeric_grad(f, y_pred.copy())
    err = np.abs(analytic - numeric).max()
    scale = max(np.abs(numeric).max(), 1e-3)
    assert analytic.shape == y_pred.shape and analytic.dtype == y_pred.dtype
    assert err <= tol * scale + 1e-9, (
        f"{type(loss).__name__} (logits={logits}): max |analytic - numeric| = {err:.3e} "
        f"(gradient scale {scale:.3e})"
    )


def probs(shape):
    z = RNG.standard_normal(shape)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ------------------------------------------------------------------ values (formulas)
def test_regression_values_match_formulas():
    y = RNG.standard_normal((6, 3))
    p = RNG.standard_normal((6, 3))
    d = p - y
    assert losses.MeanSquaredError()(y, p) == pytest.approx(np.mean(d**2), rel=1e-12)
    assert losses.MeanAbsoluteError()(y, p) == pytest.approx(np.mean(np.abs(d)), rel=1e-12)
    delta = 0.7
    a = np.abs(d)
    huber = np.where(a <= delta, 0.5 * d**2, delta * (a - 0.5 * delta))
    assert losses.Huber(delta=delta)(y, p) == pytest.approx(huber.mean(), rel=1e-12)


def test_target_without_unit_axis_is_not_broadcast():
    """(B,) targets against (B, 1) outputs compare row by row, as in Keras (not (B, B))."""
    y = np.arange(5.0)
    p = (np.arange(5.0) + np.array([0.1, -0.2, 0.3, 0.0, 0.5]))[:, None]
    expected = np.mean((p[:, 0] - y) ** 2)
    value, grad = losses.get("mse").value_and_grad(y, p)
    assert value == pytest.approx(expected, rel=1e-12), f"{value} != {expected}"
    np.testing.assert_allclose(grad[:, 0], 2 * (p[:, 0] - y) / 5, rtol=1e-12)


def test_crossentropy_values_match_formulas():
    eps = losses.EPSILON
    y = RNG.integers(0, 2, (5, 3)).astype(float)
    p = RNG.uniform(0.01, 0.99, (5, 3))
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert losses.BinaryCrossentropy()(y, p) == pytest.approx(bce.mean(), rel=1e-12)
    q = probs((4, 5))
    labels = RNG.integers(0, 5, 4)
    onehot = np.eye(5)[labels]
    cce = -np.log(np.clip(q[np.arange(4), labels], eps, 1 - eps)).mean()
    assert losses.CategoricalCrossentropy()(onehot, q) == pytest.approx(cce, rel=1e-12)
    assert losses.SparseCategoricalCrossentropy()(labels, q) == pytest.approx(cce, rel=1e-12)
    # unnormalised probabilities are renormalised (Keras)
    assert losses.CategoricalCrossentropy()(onehot, 3 * q) == pytest.approx(cce, rel=1e-12)


def test_logits_paths_equal_probability_paths():
    z = RNG.standard_normal((4, 6))
    labels = RNG.integers(0, 6, 4)
    onehot = np.eye(6)[labels]
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    for loss, target in (
        (losses.CategoricalCrossentropy(), onehot),
        (losses.SparseCategoricalCrossentropy(), labels),
    ):
        v_logits, g_logits = loss.value_and_grad_from_logits(target, z)
        assert v_logits == pytest.approx(loss(target, p), rel=1e-12)
        np.testing.assert_allclose(g_logits, (p - onehot) / 4, rtol=1e-12, atol=1e-15)
    zb = RNG.standard_normal((5, 1))
    yb = RNG.integers(0, 2, (5, 1)).astype(float)
    sb = 1 / (1 + np.exp(-zb))
    v, g = losses.BinaryCrossentropy().value_and_grad_from_logits(yb, zb)
    assert v == pytest.approx(losses.BinaryCrossentropy()(yb, sb), rel=1e-10)
    np.testing.assert_allclose(g, (sb - yb) / 5, rtol=1e-12)


def test_fused_crossentropy_is_stable_for_saturated_logits():
    z = np.array([[1e4, -1e4, 0.0], [-5e3, 5e3, 5e3]])
    labels = np.array([1, 0])
    v, g = losses.SparseCategoricalCrossentropy().value_and_grad_from_logits(labels, z)
    assert np.isfinite(v) and np.all(np.isfinite(g)), f"value {v}, grad {g}"
    assert v == pytest.approx((2e4 + (5e3 + 5e3 + np.log(2))) / 2, rel=1e-12)
    vb, gb = losses.BinaryCrossentropy().value_and_grad_from_logits(
        np.array([[0.0], [1.0]]), np.array([[800.0], [-800.0]])
    )
    assert vb == pytest.approx(800.0, rel=1e-12) and np.all(np.isfinite(gb))


# ---------------------------------------------------------- gradients vs differences
@pytest.mark.parametrize("shape", [(5, 1), (4, 3), (2, 3, 2)])
@pytest.mark.parametrize("name", ["mse", "mae", "huber"])
def test_regression_gradients(name, shape):
    y = RNG.standard_normal(shape)
    p = RNG.standard_normal(shape)
    loss = losses.get(name)
    if name == "huber":
        loss = losses.Huber(delta=0.5)
    check_grad(loss, y, p)


@pytest.mark.parametrize("shape", [(6, 1), (3, 4), (2, 3, 2)])
def test_binary_crossentropy_gradients(shape):
    y = RNG.integers(0, 2, shape).astype(float)
    check_grad(losses.BinaryCrossentropy(), y, RNG.uniform(0.05, 0.95, shape))
    check_grad(losses.BinaryCrossentropy(label_smoothing=0.1), y, RNG.uniform(0.05, 0.95, shape))
    check_grad(losses.BinaryCrossentropy(), y, 3 * RNG.standard_normal(shape), logits=True)
    check_grad(losses.BinaryCrossentropy(from_logits=True), y, RNG.standard_normal(shape))


@pytest.mark.parametrize("lead", [(4,), (2, 3)])
def test_categorical_crossentropy_gradients(lead):
    c = 5
    labels = RNG.integers(0, c, lead)
    onehot = np.eye(c)[labels]
    check_grad(losses.CategoricalCrossentropy(), onehot, probs((*lead, c)))
    check_grad(losses.CategoricalCrossentropy(label_smoothing=0.2), onehot, probs((*lead, c)))
    check_grad(
        losses.CategoricalCrossentropy(), onehot, 2 * RNG.standard_normal((*lead, c)), logits=True
    )
    check_grad(losses.SparseCategoricalCrossentropy(), labels, probs((*lead, c)))
    check_grad(
        losses.SparseCategoricalCrossentropy(),
        labels,
        2 * RNG.standard_normal((*lead, c)),
        logits=True,
    )
    check_grad(
        losses.SparseCategoricalCrossentropy(from_logits=True),
        labels,
        RNG.standard_normal((*lead, c)),
    )


def test_float32_gradients_keep_dtype():
    p = RNG.standard_normal((4, 2)).astype(np.float32)
    y = RNG.standard_normal((4, 2)).astype(np.float32)
    for name in ("mse", "mae", "huber"):
        _, g = losses.get(name).value_and_grad(y, p)
        assert g.dtype == np.float32, f"{name}: gradient dtype {g.dtype}"


# ----------------------------------------------------------------------- bad input
def test_sparse_labels_out_of_range_raise():
    q = probs((3, 4))
    with pytest.raises(ValueError, match="class id 4, outside 0..3"):
        losses.SparseCategoricalCrossentropy()(np.array([0, 4, 1]), q)
    with pytest.raises(ValueError, match="class id -1"):
        losses.SparseCategoricalCrossentropy().value_and_grad_from_logits(np.array([0, -1, 1]), q)
    with pytest.raises(ValueError, match="integer class ids"):
        losses.SparseCategoricalCrossentropy()(np.array([0.5, 1, 2]), q)


def test_shape_mismatch_and_unknown_names():
    with pytest.raises(ValueError, match=r"y_true has shape \(4, 2\) but y_pred has shape"):
        losses.get("mse")(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="unknown loss 'mean_sqared_error'"):
        losses.get("mean_sqared_error")
    with pytest.raises(TypeError, match="loss must be a name"):
        losses.get(3.0)


def test_names_and_serialization():
    for name, cls in [
        ("mse", losses.MeanSquaredError),
        ("mean_absolute_error", losses.MeanAbsoluteError),
        ("huber", losses.Huber),
        ("binary_crossentropy", losses.BinaryCrossentropy),
        ("CategoricalCrossentropy", losses.CategoricalCrossentropy),
        ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
    ]:
        obj = losses.get(name)
        assert isinstance(obj, cls), f"{name} -> {type(obj).__name__}"
        again = losses.deserialize(losses.serialize(obj))
        assert type(again) is cls and again.get_config() == obj.get_config()
    assert isinstance(losses.get(losses.mean_squared_error), losses.MeanSquaredError)


# ------------------------------------------------------------------ against Keras
def test_values_match_keras():
    keras = pytest.importorskip("keras")
    y = RNG.standard_normal((6, 3)).astype(np.float32)
    p = RNG.standard_normal((6, 3)).astype(np.float32)
    yb = RNG.integers(0, 2, (6, 3)).astype(np.float32)
    pb = RNG.uniform(0.02, 0.98, (6, 3)).astype(np.float32)
    q = probs((6, 3)).astype(np.float32)
    labels = RNG.integers(0, 3, 6)
    onehot = np.eye(3, dtype=np.float32)[labels]
    cases = [
        (losses.MeanSquaredError(), keras.losses.MeanSquaredError(), y, p),
        (losses.MeanAbsoluteError(), keras.losses.MeanAbsoluteError(), y, p),
        (losses.Huber(0.8), keras.losses.Huber(0.8), y, p),
        (losses.BinaryCrossentropy(), keras.losses.BinaryCrossentropy(), yb, pb),
        (losses.CategoricalCrossentropy(), keras.losses.CategoricalCrossentropy(), onehot, q),
        (
            losses.SparseCategoricalCrossentropy(),
            keras.losses.SparseCategoricalCrossentropy(),
            labels,
            q,
        ),
        (
            losses.CategoricalCrossentropy(from_logits=True),
            keras.losses.CategoricalCrossentropy(from_logits=True),
            onehot,
            p,
        ),
    ]
    for ours, theirs, t, pred in cases:
        a, b = ours(t, pred), float(theirs(t, pred))
        assert a == pytest.approx(b, rel=2e-6, abs=1e-7), (
            f"{type(ours).__name__}: rnnkit {a!r} vs keras {b!r}"
        )
