"""Weight and activity regularizers and weight constraints (issue 12's training features):
the same model, weights and batches through rnnkit and Keras 3 give the same history (the
loss Keras reports includes the penalties) and the same weights after two epochs; the
penalties' gradients against finite differences; configs survive save/load; bad arguments
are refused by name."""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit.keras as rk
from rnnkit import constraints, layers, regularizers
from rnnkit.models import Sequential


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def _rules(mod):
    """The same regularizer/constraint arguments, from rnnkit's modules or Keras's."""
    return {
        "lstm": dict(
            kernel_regularizer=mod.regularizers.L2(1e-2),
            recurrent_regularizer=mod.regularizers.L1(1e-3),
            bias_regularizer=mod.regularizers.L1L2(l1=1e-3, l2=1e-2),
            activity_regularizer=mod.regularizers.L2(1e-3),
            kernel_constraint=mod.constraints.MaxNorm(0.6),
            recurrent_constraint=mod.constraints.UnitNorm(axis=0),
            bias_constraint=mod.constraints.NonNeg(),
        ),
        "gru": dict(
            kernel_regularizer=mod.regularizers.L1(1e-3),
            recurrent_constraint=mod.constraints.MinMaxNorm(0.2, 0.8, rate=0.5),
        ),
        "dense": dict(
            kernel_regularizer=mod.regularizers.L1L2(l1=1e-3, l2=1e-3),
            bias_regularizer=mod.regularizers.L2(1e-2),
            activity_regularizer=mod.regularizers.L1(1e-3),
            kernel_constraint=mod.constraints.MaxNorm(1.0, axis=0),
        ),
        "embedding": dict(
            embeddings_regularizer=mod.regularizers.L2(1e-3),
            embeddings_constraint=mod.constraints.UnitNorm(axis=1),
        ),
    }


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fit_with_rules_matches_keras(optimizer):
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(4)
    N, T, V, C = 60, 7, 11, 3
    x = rng.integers(0, V, (N, T))
    y = np.eye(C, dtype=np.float32)[rng.integers(0, C, N)]

    def build(mod, L, extra_input):
        r = _rules(mod)
        return mod.Sequential(
            [
                *extra_input,
                L.Embedding(V, 6, **r["embedding"]),
                L.LSTM(8, return_sequences=True, **r["lstm"]),
                L.Bidirectional(L.GRU(5, **r["gru"])),
                L.Dense(C, activation="softmax", **r["dense"]),
            ]
        )

    ours = build(rk, layers, [layers.Input((T,))])
    theirs = build(keras, keras.layers, [keras.Input((T,))])
    theirs.set_weights(ours.get_weights())
    for m in (ours, theirs):
        opt = (rk if m is ours else keras).optimizers.SGD(0.3) if optimizer == "sgd" else "adam"
        m.compile(optimizer=opt, loss="categorical_crossentropy", metrics=["accuracy"])
    h1 = ours.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    h2 = theirs.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for key in h2.history:
        assert np.allclose(h1.history[key], h2.history[key], rtol=1e-5, atol=1e-6), (
            f"{key}: rnnkit {h1.history[key]} vs keras {h2.history[key]}"
        )
    for k, (a, b) in enumerate(zip(ours.get_weights(), theirs.get_weights())):
        assert max_diff(a, b) < 1e-5, f"weight {k} {a.shape}: max diff {max_diff(a, b):.3e}"
    e1 = ours.evaluate(x, y, verbose=0)
    e2 = theirs.evaluate(x, y, verbose=0)
    assert np.allclose(e1, e2, rtol=1e-5, atol=1e-6), f"evaluate: {e1} vs keras {e2}"


@pytest.mark.parametrize(
    "reg",
    [regularizers.L1(0.03), regularizers.L2(0.05), regularizers.L1L2(0.02, 0.04)],
    ids=repr,
)
def test_penalty_gradient_against_finite_differences(reg):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 4))
    w[np.abs(w) < 1e-3] = 0.5  # away from L1's kink
    g = reg.gradient(w)
    eps = 1e-6
    for idx in [(0, 0), (2, 3), (4, 1)]:
        d = np.zeros_like(w)
        d[idx] = eps
        fd = (reg(w + d) - reg(w - d)) / (2 * eps)
        assert abs(fd - g[idx]) < 1e-6, f"{reg} at {idx}: gradient {g[idx]} vs fd {fd}"


def test_penalty_values_are_keras_formulas():
    keras = pytest.importorskip("keras")
    w = np.random.default_rng(1).standard_normal((6, 3)).astype(np.float32)
    for ours, theirs in [
        (regularizers.L1(0.01), keras.regularizers.L1(0.01)),
        (regularizers.L2(0.02), keras.regularizers.L2(0.02)),
        (regularizers.L1L2(0.01, 0.03), keras.regularizers.L1L2(0.01, 0.03)),
    ]:
        assert ours(w) == pytest.approx(float(theirs(w)), rel=1e-6), repr(ours)
    for ours, theirs in [
        (constraints.MaxNorm(1.1), keras.constraints.MaxNorm(1.1)),
        (constraints.UnitNorm(axis=1), keras.constraints.UnitNorm(axis=1)),
        (constraints.NonNeg(), keras.constraints.NonNeg()),
        (constraints.MinMaxNorm(0.5, 1.5, 0.7), keras.constraints.MinMaxNorm(0.5, 1.5, 0.7)),
    ]:
        got, want = ours(w), np.asarray(theirs(w))
        assert max_diff(got, want) < 1e-6, f"{ours}: max diff {max_diff(got, want):.2e}"


def test_rules_survive_config_and_save(tmp_path):
    r = _rules(rk)
    model = Sequential(
        [layers.Input((4, 3)), layers.LSTM(5, **r["lstm"]), layers.Dense(2, **r["dense"])]
    )
    path = tmp_path / "m.rnnkit"
    model.save(path)
    back = rk.models.load_model(path)
    for a, b in zip(model.layers, back.layers):
        ca, cb = a.get_config(), b.get_config()
        for key in ca:
            if key.endswith(("_regularizer", "_constraint")):
                assert ca[key] == cb[key], f"{a.name}.{key}: {ca[key]} vs {cb[key]}"
    assert model.layers[0].get_config()["kernel_constraint"]["class_name"] == "MaxNorm"


def test_names_and_bad_arguments():
    assert isinstance(layers.Dense(2, kernel_regularizer="l2").kernel_regularizer, regularizers.L2)
    assert layers.Dense(2, kernel_regularizer="l2").kernel_regularizer.l2 == 0.01
    assert isinstance(
        layers.LSTM(2, kernel_constraint="max_norm").kernel_constraint, constraints.MaxNorm
    )
    with pytest.raises(ValueError, match="kernel_regularizer='l3'"):
        layers.Dense(2, kernel_regularizer="l3")
    with pytest.raises(ValueError, match="l2 must be a non-negative float"):
        regularizers.L2(-1.0)
    with pytest.raises(TypeError, match="plain function has no gradient"):
        layers.Dense(2, kernel_regularizer=lambda w: 0.0)
    with pytest.raises(ValueError, match="max_value=.* is below min_value"):
        constraints.MinMaxNorm(2.0, 1.0)
    with pytest.raises(TypeError, match="recurrent_constraint must be None"):
        layers.GRU(2, recurrent_constraint=3)


# Keras's own saving under numpy 2 warns (its variables' __array__ takes no copy keyword)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_keras_files_carry_the_rules(tmp_path):
    """A Keras model with regularizers and constraints loads into rnnkit with them (and its
    training continues as Keras's would); rnnkit's .keras file gives Keras the same rules."""
    keras = pytest.importorskip("keras")
    r = _rules(keras)
    theirs = keras.Sequential(
        [keras.Input((5, 3)), keras.layers.GRU(4, **r["gru"]), keras.layers.Dense(2, **r["dense"])]
    )
    src = tmp_path / "theirs.keras"
    theirs.save(src)
    ours = rk.models.load_model(src)
    for a, b in zip(theirs.layers, ours.layers):
        for key, value in a.get_config().items():
            if key.endswith(("_regularizer", "_constraint")):
                got = b.get_config()[key]
                want = keras.saving.serialize_keras_object(value) if value is not None else None
                assert (got is None) == (want is None), f"{a.name}.{key}: {got} vs {want}"
                if want is not None:
                    assert got["class_name"] == want["class_name"], f"{key}: {got} vs {want}"
                    assert got["config"] == pytest.approx(want["config"]), f"{key}: {got} vs {want}"
    x = np.random.default_rng(2).standard_normal((12, 5, 3)).astype(np.float32)
    y = np.random.default_rng(3).standard_normal((12, 2)).astype(np.float32)
    for m in (ours, theirs):
        m.compile(optimizer=(rk if m is ours else keras).optimizers.SGD(0.1), loss="mse")
    l1 = ours.train_on_batch(x, y)
    l2 = theirs.train_on_batch(x, y)
    assert float(np.ravel(l1)[0]) == pytest.approx(float(np.ravel(l2)[0]), rel=1e-5)
    for k, (a, b) in enumerate(zip(ours.get_weights(), theirs.get_weights())):
        assert max_diff(a, b) < 1e-5, f"weight {k}: max diff {max_diff(a, b):.3e}"
    back = tmp_path / "ours.keras"
    ours.save(back)
    again = keras.models.load_model(back)
    assert type(again.layers[0].recurrent_constraint).__name__ == "MinMaxNorm"
    assert again.layers[1].kernel_regularizer.get_config() == pytest.approx(
        {"l1": 1e-3, "l2": 1e-3}
    )
