"""Custom loss and metric functions (issue 12): ``compile(loss=fn, metrics=[fn])`` with
``fn(y_true, y_pred)`` in numpy returning per-sample values, as Keras takes them; the loss's
gradient from ``rnnkit.losses.custom(fn, gradient=...)`` or, without one, from central
differences. Checked against Keras 3 running the same functions written in keras.ops."""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit.keras as rk
from rnnkit import layers, losses
from rnnkit.models import Sequential


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


W = np.array([1.0, 3.0], dtype=np.float32)  # a per-output weighting Keras has no built-in for


def weighted_log_cosh(y_true, y_pred):
    d = y_pred - y_true
    return np.mean(W * np.log(np.cosh(d)), axis=-1)


def weighted_log_cosh_grad(y_true, y_pred):
    return W * np.tanh(y_pred - y_true) / y_pred.shape[-1]


def max_error(y_true, y_pred):
    return np.max(np.abs(y_pred - y_true), axis=-1)


@pytest.mark.parametrize("gradient", ["given", "numeric"])
def test_custom_loss_and_metric_match_keras(gradient):
    keras = pytest.importorskip("keras")
    ops = keras.ops

    def keras_loss(y_true, y_pred):
        return ops.mean(W * ops.log(ops.cosh(y_pred - y_true)), axis=-1)

    def keras_metric(y_true, y_pred):
        return ops.max(ops.abs(y_pred - y_true), axis=-1)

    keras_loss.__name__ = "weighted_log_cosh"
    keras_metric.__name__ = "max_error"
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 5, 3)).astype(np.float32)
    y = rng.standard_normal((40, 2)).astype(np.float32)
    ours = Sequential([layers.Input((5, 3)), layers.GRU(6), layers.Dense(2)])
    theirs = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(6), keras.layers.Dense(2)])
    theirs.set_weights(ours.get_weights())
    loss = (
        losses.custom(weighted_log_cosh, weighted_log_cosh_grad)
        if gradient == "given"
        else weighted_log_cosh
    )
    ours.compile(optimizer=rk.optimizers.SGD(0.3), loss=loss, metrics=[max_error])
    theirs.compile(optimizer=keras.optimizers.SGD(0.3), loss=keras_loss, metrics=[keras_metric])
    h1 = ours.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0)
    h2 = theirs.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0)
    assert sorted(h1.history) == sorted(h2.history), (h1.history.keys(), h2.history.keys())
    tol = 1e-5 if gradient == "given" else 1e-4
    for key in h2.history:
        assert np.allclose(h1.history[key], h2.history[key], rtol=tol, atol=1e-6), (
            f"{key}: rnnkit {h1.history[key]} vs keras {h2.history[key]}"
        )
    for k, (a, b) in enumerate(zip(ours.get_weights(), theirs.get_weights())):
        assert max_diff(a, b) < tol, f"weight {k}: max diff {max_diff(a, b):.3e}"


def test_numeric_gradient_of_a_sequence_loss():
    """Per-(sample, step) losses of a (B, T, U) output: the central differences agree with
    the analytic gradient of the same loss."""
    rng = np.random.default_rng(0)
    y_true = rng.standard_normal((4, 3, 2))
    y_pred = rng.standard_normal((4, 3, 2)).astype(np.float32)
    numeric = losses.custom(weighted_log_cosh)
    exact = losses.custom(weighted_log_cosh, weighted_log_cosh_grad)
    v1, g1 = numeric.value_and_grad(y_true, y_pred)
    v2, g2 = exact.value_and_grad(y_true, y_pred)
    assert v1 == pytest.approx(v2, rel=1e-12)
    assert max_diff(g1, g2) < 1e-7, f"numeric vs exact gradient: {max_diff(g1, g2):.2e}"
    w = rng.uniform(0, 2, (4, 3))
    v3, g3 = numeric.value_and_grad(y_true, y_pred, sample_weight=w)
    assert v3 == pytest.approx(float(np.mean(weighted_log_cosh(y_true, y_pred) * w)), rel=1e-6)
    assert max_diff(g3, g2 * w[..., None]) < 1e-7


def test_custom_loss_errors_and_saving(tmp_path):
    model = Sequential([layers.Input((4,)), layers.Dense(2)])
    with pytest.raises(TypeError, match="gradient must be callable"):
        losses.custom(weighted_log_cosh, gradient=3)
    model.compile(optimizer="sgd", loss=lambda t, p: np.mean((p - t) ** 2))
    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="must return the per-sample losses"):
        model.fit(x, np.ones((3, 2), np.float32), verbose=0)
    model.compile(optimizer="sgd", loss=weighted_log_cosh, metrics=max_error)
    model.fit(x, np.ones((3, 2), np.float32), verbose=0)
    model.save(tmp_path / "m.rnnkit")
    with pytest.raises(Exception, match="custom loss function 'weighted_log_cosh'.*compile=False"):
        rk.models.load_model(tmp_path / "m.rnnkit")
    back = rk.models.load_model(tmp_path / "m.rnnkit", compile=False)
    assert np.array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
