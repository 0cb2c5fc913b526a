"""``compile(weighted_metrics=...)`` and ``Metric.update_state(..., sample_weight)``: metrics
weighted by the samples' ``sample_weight`` (with ``class_weight`` and sequence masks folded
in) while plain ``metrics`` stay unweighted, named as Keras 3 names them. Against Keras 3 on
the same weights and data: the histories of ``fit`` with validation, ``evaluate``, and each
metric class on weighted batches."""

from __future__ import annotations

import numpy as np
import pytest
from graph_check import max_diff

import rnnkit.keras as rk


def _keras():
    return pytest.importorskip("keras")


def _histories(build, x, y, **fit_kw):
    keras = _keras()
    theirs, ours = build(keras), build(rk)
    ours.set_weights(theirs.get_weights())
    hk = theirs.fit(x, y, verbose=0, shuffle=False, **fit_kw).history
    hr = ours.fit(x, y, verbose=0, shuffle=False, **fit_kw).history
    return theirs, ours, hk, hr


def _same_history(hk, hr, what, tol=1e-5):
    assert sorted(hk) == sorted(hr), f"{what}: Keras logs {sorted(hk)}, rnnkit {sorted(hr)}"
    for key in hk:
        d = max_diff(hk[key], hr[key])
        assert d < tol, f"{what}: {key} Keras {hk[key]} rnnkit {hr[key]} ({d:.2e})"


def test_fit_and_evaluate_with_sample_weights_match_keras():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6, 3)).astype(np.float32)
    y = (rng.random((64, 1)) > 0.5).astype(np.float32)
    sw = (2 * rng.random(64)).astype(np.float32)

    def build(mod):
        L = mod.layers
        m = mod.Sequential([L.Input((6, 3)), L.LSTM(4), L.Dense(1, activation="sigmoid")])
        m.compile(
            optimizer=mod.optimizers.SGD(0.1),
            loss="binary_crossentropy",
            metrics=["accuracy", "mae"],
            weighted_metrics=["accuracy", "mse"],
        )
        return m

    theirs, ours, hk, hr = _histories(
        build, x, y, sample_weight=sw, epochs=2, batch_size=16,
        validation_data=(x[:20], y[:20], sw[:20]),
    )  # fmt: skip
    assert "weighted_accuracy" in hr and "mse" in hr, sorted(hr)
    _same_history(hk, hr, "binary")
    ek = theirs.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True)
    er = ours.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True)
    assert sorted(ek) == sorted(er) and all(abs(ek[k] - er[k]) < 1e-5 for k in ek), (ek, er)
    # the weighted metric differs from the plain one: the weights are really applied
    assert abs(er["weighted_accuracy"] - er["accuracy"]) > 1e-3, er


def test_class_weight_reaches_the_weighted_metrics_as_keras():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 5, 2)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 60)]

    def build(mod):
        L = mod.layers
        m = mod.Sequential([L.Input((5, 2)), L.GRU(4), L.Dense(3, activation="softmax")])
        m.compile(
            optimizer=mod.optimizers.SGD(0.1),
            loss="categorical_crossentropy",
            weighted_metrics=["categorical_accuracy"],
        )
        return m

    _, _, hk, hr = _histories(
        build, x, y, class_weight={0: 0.2, 1: 1.0, 2: 3.0}, epochs=2, batch_size=20
    )
    _same_history(hk, hr, "class_weight")


def test_two_outputs_with_weighted_metrics_by_output_name():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((48, 6, 3)).astype(np.float32)
    ya = rng.standard_normal((48, 2)).astype(np.float32)
    yb = (rng.random((48, 1)) > 0.5).astype(np.float32)
    sw = (0.5 + rng.random(48)).astype(np.float32)

    def build(mod):
        L = mod.layers
        inp = mod.Input((6, 3))
        h = L.LSTM(5)(inp)
        m = mod.Model(
            inp, [L.Dense(2, name="level")(h), L.Dense(1, activation="sigmoid", name="peak")(h)]
        )
        m.compile(
            optimizer=mod.optimizers.SGD(0.05),
            loss=["mse", "binary_crossentropy"],
            metrics={"level": ["mae"]},
            weighted_metrics={"level": ["mae"], "peak": ["accuracy"]},
        )
        return m

    _, _, hk, hr = _histories(build, x, [ya, yb], sample_weight=sw, epochs=2, batch_size=16)
    assert "level_weighted_mae" in hr and "peak_accuracy" in hr, sorted(hr)
    _same_history(hk, hr, "two outputs")


def test_a_masked_tagger_weights_only_its_valid_steps():
    """Sample weights (per step, as Keras needs them for a sequence output) with the output's
    mask: the weighted metric counts each valid step with its weight (Keras folds the mask
    into the weights)."""
    rng = np.random.default_rng(3)
    ids = rng.integers(1, 12, (40, 7))
    ids[::3, 5:] = 0
    ids[1::4, :2] = 0
    tags = rng.integers(0, 2, (40, 7))
    sw = np.repeat(0.5 + rng.random((40, 1)), 7, axis=1).astype(np.float32)  # per step

    def build(mod):
        L = mod.layers
        m = mod.Sequential(
            [
                L.Input((7,), dtype="int32"),
                L.Embedding(12, 4, mask_zero=True),
                L.LSTM(4, return_sequences=True),
                L.Dense(2, activation="softmax"),
            ]
        )
        m.compile(
            optimizer=mod.optimizers.SGD(0.1),
            loss="sparse_categorical_crossentropy",
            metrics=["sparse_categorical_accuracy"],
            weighted_metrics=["sparse_categorical_accuracy"],
        )
        return m

    _, _, hk, hr = _histories(build, ids, tags, sample_weight=sw, epochs=2, batch_size=10)
    _same_history(hk, hr, "masked tagger")


METRICS = [
    ("BinaryAccuracy", "binary"),
    ("CategoricalAccuracy", "onehot"),
    ("SparseCategoricalAccuracy", "sparse"),
    ("MeanAbsoluteError", "regression"),
    ("MeanSquaredError", "regression"),
    ("RootMeanSquaredError", "regression"),
    ("Precision", "binary"),
    ("Recall", "binary"),
    ("AUC", "binary"),
]


def _batch(kind, rng, shape):
    n = shape[0]
    if kind == "binary":
        return (rng.random((*shape, 1)) > 0.5).astype(np.float32), rng.random((*shape, 1)).astype(
            np.float32
        )
    if kind == "onehot":
        p = rng.random((*shape, 4)).astype(np.float32)
        return np.eye(4, dtype=np.float32)[rng.integers(0, 4, shape)], p / p.sum(-1, keepdims=True)
    if kind == "sparse":
        p = rng.random((*shape, 4)).astype(np.float32)
        return rng.integers(0, 4, (*shape, 1)).astype(np.float32), p / p.sum(-1, keepdims=True)
    del n
    return rng.standard_normal((*shape, 3)).astype(np.float32), rng.standard_normal(
        (*shape, 3)
    ).astype(np.float32)


@pytest.mark.parametrize("name,kind", METRICS, ids=[m for m, _ in METRICS])
@pytest.mark.parametrize("steps", [None, 5], ids=["per_sample", "per_step"])
def test_each_metric_with_sample_weights_matches_keras(name, kind, steps):
    keras = _keras()
    rng = np.random.default_rng(4)
    ours, theirs = getattr(rk.metrics, name)(), getattr(keras.metrics, name)()
    for _ in range(3):  # running state over batches
        shape = (6,) if steps is None else (6, steps)
        yt, yp = _batch(kind, rng, shape)
        w = rng.random(shape).astype(np.float32)
        ours.update_state(yt, yp, sample_weight=w)
        theirs.update_state(yt, yp, sample_weight=w)
    got, want = ours.result(), float(theirs.result())
    assert abs(got - want) < 1e-5, f"{name} {steps}: rnnkit {got}, Keras {want}"


def test_a_sample_weight_that_does_not_fit_is_refused_and_changes_nothing():
    m = rk.metrics.MeanAbsoluteError()
    m.update_state(np.zeros((4, 2)), np.ones((4, 2)))
    before = m.result()
    with pytest.raises(ValueError, match=r"sample_weight has shape \(3,\); expected \(4,\)"):
        m.update_state(np.zeros((4, 2)), np.ones((4, 2)), sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="sample_weight must be finite"):
        m.update_state(np.zeros((4, 2)), np.ones((4, 2)), sample_weight=np.array([1, np.nan, 1, 1]))
    assert m.result() == before
    with pytest.raises(TypeError, match="weighted_metrics must be names"):
        rk.Sequential([rk.layers.Input((2,)), rk.layers.Dense(1)]).compile(
            loss="mse", weighted_metrics=[3]
        )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras's own loading, on numpy 2
def test_weighted_metrics_are_saved_and_read_by_keras_and_rnnkit(tmp_path):
    keras = _keras()
    model = rk.Sequential([rk.layers.Input((3,)), rk.layers.Dense(1, activation="sigmoid")])
    model.compile(
        loss="binary_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy", "mae"]
    )
    for name in ("m.keras", "m.rnnkit"):
        back = (
            rk.models.load_model(tmp_path / name) if model.save(tmp_path / name) is None else None
        )
        assert back._weighted_metric_ids == [["accuracy", "mae"]], (name, back._weighted_metric_ids)
    theirs = keras.models.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    w = np.linspace(0.1, 2, 8).astype(np.float32)
    ek = theirs.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    er = model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    assert set(ek) == set(er) == {"loss", "accuracy", "weighted_accuracy", "mae"}, (ek, er)
    assert all(abs(ek[k] - er[k]) < 1e-5 for k in ek), (ek, er)
    theirs.save(tmp_path / "k.keras")
    again = rk.models.load_model(tmp_path / "k.keras")
    assert again._weighted_metric_ids == [["accuracy", "mae"]]


def test_train_and_test_on_batch_take_sample_weight_and_return_dict_as_keras():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((16, 4, 3)).astype(np.float32)
    y = (rng.random((16, 1)) > 0.5).astype(np.float32)
    w = (0.2 + rng.random(16)).astype(np.float32)

    def build(mod):
        L = mod.layers
        m = mod.Sequential([L.Input((4, 3)), L.LSTM(3), L.Dense(1, activation="sigmoid")])
        m.compile(
            optimizer=mod.optimizers.SGD(0.1),
            loss="binary_crossentropy",
            metrics=["accuracy"],
            weighted_metrics=["accuracy"],
        )
        return m

    keras = _keras()
    theirs, ours = build(keras), build(rk)
    ours.set_weights(theirs.get_weights())
    for step in range(2):
        tk = theirs.train_on_batch(x, y, sample_weight=w, return_dict=True)
        tr = ours.train_on_batch(x, y, sample_weight=w, return_dict=True)
        assert set(tk) == set(tr) and all(abs(tk[k] - tr[k]) < 1e-5 for k in tk), (step, tk, tr)
    ek = theirs.test_on_batch(x, y, sample_weight=w, return_dict=True)
    er = ours.test_on_batch(x, y, sample_weight=w, return_dict=True)
    assert set(ek) == set(er) and all(abs(ek[k] - er[k]) < 1e-5 for k in ek), (ek, er)
    plain = ours.test_on_batch(x, y)
    assert isinstance(plain, list) and abs(plain[0] - ours.evaluate(x, y, verbose=0)[0]) < 1e-6
