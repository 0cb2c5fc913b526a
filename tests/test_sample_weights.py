"""sample_weight and class_weight in fit, evaluate and train_on_batch (issue 12): the same
model, weights and batches through rnnkit and Keras 3 give the same history and weights;
the weighted loss and its gradient against a direct computation; bad weights refused by name
before anything changes."""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit.keras as rk
from rnnkit import layers, losses
from rnnkit.models import Sequential


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def _pair(keras, out_units, out_act, seq=False):
    def build(mod, L):
        return mod.Sequential(
            [
                (layers.Input if mod is rk else keras.Input)((6, 3)),
                L.LSTM(7, return_sequences=seq),
                L.Dense(out_units, activation=out_act),
            ]
        )

    ours, theirs = build(rk, layers), build(keras, keras.layers)
    theirs.set_weights(ours.get_weights())
    return ours, theirs


@pytest.mark.parametrize(
    "loss,kind",
    [
        ("mse", "sample"),
        ("categorical_crossentropy", "sample"),
        ("sparse_categorical_crossentropy", "class"),
        ("categorical_crossentropy", "class"),
        ("binary_crossentropy", "class"),
        ("mse", "temporal"),
    ],
)
def test_weighted_fit_and_evaluate_match_keras(loss, kind):
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(7)
    N, C = 50, 3
    x = rng.standard_normal((N, 6, 3)).astype(np.float32)
    seq = kind == "temporal"
    if loss == "mse":
        y = rng.standard_normal((N, 6, 2) if seq else (N, 2)).astype(np.float32)
        units, act = 2, None
    elif loss == "binary_crossentropy":
        y = rng.integers(0, 2, (N, 1)).astype(np.float32)
        units, act = 1, "sigmoid"
    else:
        ids = rng.integers(0, C, N)
        y = ids if loss.startswith("sparse") else np.eye(C, dtype=np.float32)[ids]
        units, act = C, "softmax"
    ours, theirs = _pair(keras, units, act, seq)
    kw = {}
    if kind == "sample":
        kw["sample_weight"] = rng.uniform(0.1, 3.0, N)
    elif kind == "temporal":
        kw["sample_weight"] = rng.uniform(0.1, 3.0, (N, 6))
    else:
        kw["class_weight"] = {0: 0.5, 1: 2.5} if units == 1 else {0: 0.3, 1: 1.0, 2: 4.0}
    for m in (ours, theirs):
        opt = (rk if m is ours else keras).optimizers.SGD(0.2)
        metrics = ["mae"] if loss == "mse" else ["accuracy"]
        m.compile(optimizer=opt, loss=loss, metrics=metrics)
    h1 = ours.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, **kw)
    h2 = theirs.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, **kw)
    for key in h2.history:
        assert np.allclose(h1.history[key], h2.history[key], rtol=1e-5, atol=1e-6), (
            f"{key}: rnnkit {h1.history[key]} vs keras {h2.history[key]}"
        )
    for k, (a, b) in enumerate(zip(ours.get_weights(), theirs.get_weights())):
        assert max_diff(a, b) < 1e-5, f"weight {k}: max diff {max_diff(a, b):.3e}"
    if "sample_weight" in kw:
        e1 = ours.evaluate(x, y, sample_weight=kw["sample_weight"], verbose=0)
        e2 = theirs.evaluate(x, y, sample_weight=kw["sample_weight"], verbose=0)
        assert np.allclose(e1, e2, rtol=1e-5, atol=1e-6), f"evaluate: {e1} vs keras {e2}"
        t1 = ours.train_on_batch(x[:10], y[:10], sample_weight=kw["sample_weight"][:10])
        t2 = theirs.train_on_batch(x[:10], y[:10], sample_weight=kw["sample_weight"][:10])
        assert np.allclose(t1, t2, rtol=1e-5, atol=1e-6), f"train_on_batch: {t1} vs {t2}"


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "binary_crossentropy"])
def test_weighted_loss_is_the_weighted_mean_with_its_gradient(name):
    rng = np.random.default_rng(0)
    y_pred = rng.uniform(0.05, 0.95, (5, 4))
    y_true = rng.integers(0, 2, (5, 4)).astype(np.float64)
    w = rng.uniform(0, 2, 5)
    loss = losses.get(name)
    per_sample = np.array([loss(y_true[i : i + 1], y_pred[i : i + 1]) for i in range(5)])
    value, grad = loss.value_and_grad(y_true, y_pred, sample_weight=w)
    assert value == pytest.approx(float(np.mean(per_sample * w)), rel=1e-12)
    eps = 1e-7
    for idx in [(0, 0), (3, 2), (4, 3)]:
        d = np.zeros_like(y_pred)
        d[idx] = eps
        fd = (loss(y_true, y_pred + d, w) - loss(y_true, y_pred - d, w)) / (2 * eps)
        assert abs(fd - grad[idx]) < 1e-6, f"{name} at {idx}: gradient {grad[idx]} vs fd {fd}"


def test_validation_split_and_data_carry_weights():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 6, 3)).astype(np.float32)
    y = rng.standard_normal((40, 2)).astype(np.float32)
    w = rng.uniform(0.5, 2.0, 40)
    model = Sequential([layers.Input((6, 3)), layers.LSTM(4), layers.Dense(2)])
    model.compile(optimizer=rk.optimizers.SGD(0.0), loss="mse")
    h = model.fit(x, y, sample_weight=w, validation_split=0.25, epochs=1, verbose=0)
    expected = model.evaluate(x[30:], y[30:], sample_weight=w[30:], verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(expected, rel=1e-6)
    h = model.fit(x[:30], y[:30], validation_data=(x[30:], y[30:], w[30:]), epochs=1, verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(expected, rel=1e-6)


def test_bad_weights_are_refused_and_change_nothing():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((12, 6, 3)).astype(np.float32)
    y = rng.standard_normal((12, 2)).astype(np.float32)
    model = Sequential([layers.Input((6, 3)), layers.LSTM(4), layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    before = [a.copy() for a in model.get_weights()]
    cases = [
        (
            dict(sample_weight=np.ones(11)),
            ValueError,
            r"sample_weight has shape \(11,\); expected \(12,\)",
        ),
        (dict(sample_weight=np.ones((12, 6))), ValueError, r"sample_weight has shape \(12, 6\)"),
        (dict(sample_weight=np.full(12, np.nan)), ValueError, "sample_weight holds nan"),
        (dict(sample_weight=["a"] * 12), TypeError, "sample_weight must be numeric"),
        (dict(class_weight=[1, 2]), TypeError, "class_weight must be a non-empty dict"),
        (dict(class_weight={-1: 2.0}), ValueError, "class_weight keys must be class ids"),
        (dict(class_weight={0: -2.0}), ValueError, r"class_weight\[0\]"),
        (dict(sample_weight=np.ones(12), class_weight={0: 1.0}), ValueError, "not both"),
    ]
    for kw, err, match in cases:
        with pytest.raises(err, match=match):
            model.fit(x, y, epochs=1, verbose=0, **kw)
    for a, b in zip(before, model.get_weights()):
        assert np.array_equal(a, b), "a refused fit changed the weights"
    seq = Sequential([layers.Input((6, 3)), layers.LSTM(4, return_sequences=True), layers.Dense(3)])
    seq.compile(optimizer="sgd", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="class_weight is for outputs"):
        seq.fit(x, np.eye(3, dtype=np.float32)[rng.integers(0, 3, (12, 6))], class_weight={0: 1.0})
