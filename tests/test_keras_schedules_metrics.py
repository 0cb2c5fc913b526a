"""Learning-rate schedules and the confusion-matrix metrics against Keras 3: values at many
steps / on many batches, configs through optimizers, and through saved models both ways."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rnnkit import layers, metrics, optimizers
from rnnkit.models import Sequential, load_model
from rnnkit.optimizers import schedules


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras", reason="Keras 3 is not installed")


SCHEDULES = {
    "exponential": (
        "ExponentialDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.6},
    ),
    "exponential_staircase": (
        "ExponentialDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.6, "staircase": True},
    ),
    "cosine": ("CosineDecay", {"initial_learning_rate": 0.05, "decay_steps": 40}),
    "cosine_alpha": (
        "CosineDecay",
        {"initial_learning_rate": 0.05, "decay_steps": 40, "alpha": 0.2},
    ),
    "cosine_warmup": (
        "CosineDecay",
        {
            "initial_learning_rate": 0.001,
            "decay_steps": 30,
            "alpha": 0.1,
            "warmup_target": 0.08,
            "warmup_steps": 12,
        },
    ),
    "piecewise": (
        "PiecewiseConstantDecay",
        {"boundaries": [5, 20, 33], "values": [0.1, 0.05, 0.01, 0.002]},
    ),
}
STEPS = list(range(0, 80)) + [100, 1000, 10**6]


@pytest.mark.parametrize("case", sorted(SCHEDULES))
def test_schedule_values_equal_keras_at_many_steps(keras, case):
    cls, config = SCHEDULES[case]
    ours = getattr(schedules, cls)(**config)
    theirs = getattr(keras.optimizers.schedules, cls)(**config)
    got = np.array([ours(s) for s in STEPS])
    want = np.array([float(theirs(s)) for s in STEPS])
    # Keras computes in float32: compare relative to the schedule's largest value
    worst = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
    assert worst < 1e-6, f"{case}: worst difference {worst:.3g} of the peak rate"


@pytest.mark.parametrize("case", sorted(SCHEDULES))
def test_schedules_serialize_in_optimizer_configs_and_rnnkit_files(tmp_path, case):
    cls, config = SCHEDULES[case]
    schedule = getattr(schedules, cls)(**config)
    opt = optimizers.Adam(schedule)
    again = optimizers.Adam.from_config(opt.get_config())
    assert type(again._schedule) is type(schedule)
    assert again._schedule.get_config() == schedule.get_config()
    model = Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer=optimizers.SGD(schedule), loss="mse")
    x = np.arange(8, dtype=np.float32).reshape(4, 2) / 8
    model.fit(x, x[:, :1], epochs=3, batch_size=2, verbose=0)
    model.save(tmp_path / "m.rnnkit")
    loaded = load_model(tmp_path / "m.rnnkit")
    assert loaded.optimizer._schedule.get_config() == schedule.get_config()
    assert loaded.optimizer.iterations == 6
    assert loaded.optimizer.learning_rate == schedule(6)


@pytest.mark.parametrize("case", ["cosine_warmup", "piecewise"])
@pytest.mark.parametrize("fmt", [".keras", ".h5"])
def test_schedules_cross_keras_files_both_ways(tmp_path, keras, case, fmt):
    pytest.importorskip("h5py")
    cls, config = SCHEDULES[case]
    model = Sequential([layers.LSTM(3, input_shape=(4, 2)), layers.Dense(1)])
    model.compile(optimizer=optimizers.Adam(getattr(schedules, cls)(**config)), loss="mse")
    model.save(tmp_path / f"m{fmt}")
    theirs = keras.models.load_model(tmp_path / f"m{fmt}")
    lr = theirs.optimizer._learning_rate
    assert type(lr).__name__ == cls
    ours = model.optimizer._schedule
    worst = max(abs(float(lr(s)) - ours(s)) for s in range(0, 60, 3))
    assert worst < 1e-8, f"Keras's copy of the schedule differs by {worst:.3g}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras's own h5 writer warns (numpy 2 copy=)
        theirs.save(tmp_path / f"back{fmt}")
    again = load_model(tmp_path / f"back{fmt}")
    assert type(again.optimizer._schedule) is type(ours)
    assert again.optimizer._schedule.get_config() == ours.get_config()


def test_schedule_bad_arguments():
    with pytest.raises(ValueError, match=r"\[CosineDecay\] decay_steps must be >= 1; got 0"):
        schedules.CosineDecay(0.1, 0)
    with pytest.raises(ValueError, match=r"\[CosineDecay\] alpha must be in \[0, 1\]"):
        schedules.CosineDecay(0.1, 10, alpha=1.5)
    with pytest.raises(ValueError, match=r"warmup_target needs warmup_steps > 0"):
        schedules.CosineDecay(0.1, 10, warmup_target=0.2)
    with pytest.raises(ValueError, match=r"one more entry than boundaries; got 2 values for 2"):
        schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"boundaries must be finite and increasing"):
        schedules.PiecewiseConstantDecay([5, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"unknown learning-rate schedule 'InverseTimeDecay'"):
        optimizers.Adam.from_config(
            {"learning_rate": {"class_name": "InverseTimeDecay", "config": {}}}
        )


# ------------------------------------------------------------------------ metrics
def _batches(seed: int, n_batches: int = 4, n: int = 50, shape=()):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        y = (rng.random((n, *shape)) < 0.35).astype(np.float32)
        p = np.clip(0.55 * rng.random((n, *shape)) + 0.4 * y, 0, 1).astype(np.float32)
        out.append((y, p))
    return out


METRIC_CASES = {
    "auc_roc": ("AUC", {}),
    "auc_roc_50": ("AUC", {"num_thresholds": 50}),
    "auc_roc_minoring": ("AUC", {"summation_method": "minoring", "num_thresholds": 33}),
    "auc_roc_majoring": ("AUC", {"summation_method": "majoring"}),
    "auc_pr": ("AUC", {"curve": "PR"}),
    "auc_pr_minoring": ("AUC", {"curve": "PR", "summation_method": "minoring"}),
    "auc_thresholds": ("AUC", {"thresholds": [0.2, 0.5, 0.55, 0.9]}),
    "precision": ("Precision", {}),
    "precision_threshold": ("Precision", {"thresholds": 0.7}),
    "precision_list": ("Precision", {"thresholds": [0.3, 0.5, 0.8]}),
    "recall": ("Recall", {}),
    "recall_list": ("Recall", {"thresholds": [0.3, 0.8]}),
    "rmse": ("RootMeanSquaredError", {}),
}


@pytest.mark.parametrize("case", sorted(METRIC_CASES))
@pytest.mark.parametrize("shape", [(), (1,), (3,)], ids=["N", "N1", "N3"])
def test_metric_running_values_equal_keras(keras, case, shape):
    cls, config = METRIC_CASES[case]
    ours = getattr(metrics, cls)(**config)
    theirs = getattr(keras.metrics, cls)(**config)
    for k, (y, p) in enumerate(_batches(hash((case, shape)) % 2**32, shape=shape)):
        ours.update_state(y, p)
        theirs.update_state(y, p)
        got = np.atleast_1d(ours.result())
        want = np.atleast_1d(np.asarray(theirs.result(), np.float64))
        worst = float(np.max(np.abs(got - want)))
        assert worst < 2e-6, f"{case} after batch {k + 1}: {got} vs Keras {want}"
    ours.reset_state()
    theirs.reset_state()
    y, p = _batches(99, 1, shape=shape)[0]
    single = ours(y, p)  # one batch, running state untouched
    ours.update_state(y, p)
    theirs.update_state(y, p)
    np.testing.assert_allclose(ours.result(), np.asarray(theirs.result()), atol=2e-6)
    np.testing.assert_allclose(single, ours.result(), atol=1e-12)


def test_auc_from_logits_equals_keras(keras):
    rng = np.random.default_rng(5)
    y = (rng.random(200) < 0.5).astype(np.float32)
    z = (rng.standard_normal(200) + 1.5 * y).astype(np.float32)
    ours, theirs = metrics.AUC(from_logits=True), keras.metrics.AUC(from_logits=True)
    ours.update_state(y, z)
    theirs.update_state(y, z)
    assert abs(ours.result() - float(theirs.result())) < 2e-6


def test_auc_approximates_the_exact_rank_statistic():
    """Independent of Keras: with many thresholds the ROC AUC is P(score+ > score-)."""
    rng = np.random.default_rng(8)
    y = rng.random(3000) < 0.4
    p = np.clip(rng.random(3000) * 0.7 + 0.3 * y, 0, 1)
    pos, neg = p[y], p[~y]
    exact = float(np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg))
    auc = metrics.AUC(num_thresholds=5000)
    auc.update_state(y.astype(np.float32), p)
    assert abs(auc.result() - exact) < 2e-3, (auc.result(), exact)


@pytest.mark.parametrize(
    "name, cls",
    [
        ("auc", "AUC"),
        ("AUC", "AUC"),
        ("precision", "Precision"),
        ("Precision", "Precision"),
        ("recall", "Recall"),
        ("root_mean_squared_error", "RootMeanSquaredError"),
        ("RootMeanSquaredError", "RootMeanSquaredError"),
    ],
)
def test_metric_names_keras_accepts_build_the_same_metric(keras, name, cls):
    ours, theirs = metrics.get(name), keras.metrics.get(name)
    assert type(ours).__name__ == type(theirs).__name__ == cls
    expected = {
        "AUC": "auc",
        "Precision": "precision",
        "Recall": "recall",
        "RootMeanSquaredError": "root_mean_squared_error",
    }[cls]
    assert ours.name == expected and theirs.name.startswith(expected), (ours.name, theirs.name)


def test_compile_with_metric_names_and_objects_reports_keras_values(keras):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((120, 5, 3)).astype(np.float32)
    y = (x[:, :, 0].mean(axis=1) > 0).astype(np.float32)
    model = Sequential([layers.GRU(4, input_shape=(5, 3)), layers.Dense(1, activation="sigmoid")])
    model.compile(
        optimizer="adam",
        loss="binary_crossentropy",
        metrics=["auc", "precision", metrics.Recall(thresholds=0.4), "root_mean_squared_error"],
    )
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, validation_split=0.25)
    for key in ("auc", "precision", "recall", "root_mean_squared_error", "val_auc"):
        assert len(history.history[key]) == 2, key
    logs = model.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    for name, ref in (
        ("auc", keras.metrics.AUC()),
        ("precision", keras.metrics.Precision()),
        ("recall", keras.metrics.Recall(thresholds=0.4)),
        ("root_mean_squared_error", keras.metrics.RootMeanSquaredError()),
    ):
        ref.update_state(y, p)
        assert abs(logs[name] - float(ref.result())) < 1e-5, (name, logs[name], ref.result())


def test_metric_bad_arguments():
    with pytest.raises(ValueError, match=r"\[AUC\] curve must be 'ROC' or 'PR'; got 'DET'"):
        metrics.AUC(curve="DET")
    with pytest.raises(ValueError, match=r"num_thresholds must be an int > 1; got 1"):
        metrics.AUC(num_thresholds=1)
    with pytest.raises(NotImplementedError, match=r"multi_label"):
        metrics.AUC(multi_label=True)
    with pytest.raises(NotImplementedError, match=r"top_k and class_id"):
        metrics.Precision(top_k=2)
    with pytest.raises(ValueError, match=r"\[Recall\] thresholds must be in \[0, 1\]"):
        metrics.Recall(thresholds=[0.5, 1.5])
    with pytest.raises(ValueError, match=r"y_true has shape \(4, 1\); y_pred has \(4, 2\)"):
        metrics.Precision().update_state(np.zeros((4, 1)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"unknown metric 'f1'"):
        metrics.get("f1")
