"""fit, evaluate and predict on a Python generator or a keras.utils.PyDataset-shaped object
(issue 12): the same batches as arrays give the same weights and history as Keras 3 on the
same PyDataset; on_epoch_end runs after every epoch; steps_per_epoch, validation data and
steps work; a generator that runs dry stops training with a warning; bad batches are
refused by name."""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit.keras as rk
from rnnkit import layers, utils
from rnnkit.models import Sequential


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def _data(n=48, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    w = rng.uniform(0.5, 2.0, n).astype(np.float32)
    return x, y, w


def _model():
    return Sequential([layers.Input((5, 3)), layers.LSTM(6), layers.Dense(3, activation="softmax")])


def _dataset(base, x, y, w, batch):
    class Batches(base):
        def __init__(self):
            super().__init__()
            self.epochs_ended = 0

        def __len__(self):
            return -(-len(x) // batch)

        def __getitem__(self, i):
            s = slice(i * batch, (i + 1) * batch)
            return x[s], y[s], w[s]

        def on_epoch_end(self):
            self.epochs_ended += 1

    return Batches()


def test_pydataset_fit_matches_keras_and_arrays():
    keras = pytest.importorskip("keras")
    x, y, w = _data()
    ours, arrays = _model(), _model()
    arrays.set_weights(ours.get_weights())
    theirs = keras.Sequential(
        [keras.Input((5, 3)), keras.layers.LSTM(6), keras.layers.Dense(3, activation="softmax")]
    )
    theirs.set_weights(ours.get_weights())
    for m in (ours, arrays):
        m.compile(
            optimizer=rk.optimizers.SGD(0.2), loss="categorical_crossentropy", metrics=["accuracy"]
        )
    theirs.compile(
        optimizer=keras.optimizers.SGD(0.2), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    ds = _dataset(utils.PyDataset, x, y, w, 10)
    val = _dataset(utils.PyDataset, x[:20], y[:20], w[:20], 7)
    h1 = ours.fit(ds, epochs=3, verbose=0, validation_data=val, shuffle=False)
    h2 = theirs.fit(
        _dataset(keras.utils.PyDataset, x, y, w, 10),
        epochs=3,
        verbose=0,
        shuffle=False,
        validation_data=_dataset(keras.utils.PyDataset, x[:20], y[:20], w[:20], 7),
    )
    h3 = arrays.fit(
        x,
        y,
        sample_weight=w,
        batch_size=10,
        epochs=3,
        shuffle=False,
        verbose=0,
        validation_data=(x[:20], y[:20], w[:20]),
        validation_batch_size=7,
    )
    assert ds.epochs_ended == 3 and val.epochs_ended == 3
    for key in h2.history:
        assert np.allclose(h1.history[key], h2.history[key], rtol=1e-5, atol=1e-6), (
            f"{key}: rnnkit {h1.history[key]} vs keras {h2.history[key]}"
        )
        assert np.allclose(h1.history[key], h3.history[key], rtol=1e-6, atol=1e-7), key
    for k, (a, b) in enumerate(zip(ours.get_weights(), theirs.get_weights())):
        assert max_diff(a, b) < 1e-5, f"weight {k}: max diff {max_diff(a, b):.3e}"
    e1 = ours.evaluate(ds, verbose=0)
    e2 = arrays.evaluate(x, y, sample_weight=w, batch_size=10, verbose=0)
    assert np.allclose(e1, e2, rtol=1e-6), (e1, e2)
    p1 = ours.predict(ds, verbose=0)
    assert np.array_equal(p1, ours.predict(x, batch_size=10, verbose=0))
    assert ours.predict(ds, steps=2, verbose=0).shape == (20, 3)


def test_shuffled_pydataset_visits_every_batch_once_per_epoch():
    x, y, w = _data()
    seen = []

    class Recorded(utils.PyDataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            seen.append(i)
            return x[i * 8 : (i + 1) * 8], y[i * 8 : (i + 1) * 8]

    model = _model()
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.fit(Recorded(), epochs=3, verbose=0)  # shuffle=True, the default
    epochs = [seen[1 + 5 * e : 1 + 5 * (e + 1)] for e in range(3)]  # seen[0]: the build's peek
    assert all(sorted(e) == list(range(5)) for e in epochs), seen
    assert any(e != list(range(5)) for e in epochs), f"never shuffled: {seen}"


def test_generator_fit_steps_and_running_dry():
    x, y, _ = _data()

    def batches(times):
        for _ in range(times):
            for i in range(0, len(x), 16):
                yield x[i : i + 16], y[i : i + 16]

    ours, arrays = _model(), _model()
    arrays.set_weights(ours.get_weights())
    for m in (ours, arrays):
        m.compile(optimizer=rk.optimizers.SGD(0.1), loss="categorical_crossentropy")
    h = ours.fit(batches(2), steps_per_epoch=3, epochs=2, verbose=0)
    h_arr = arrays.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert np.allclose(h.history["loss"], h_arr.history["loss"], rtol=1e-6)
    for a, b in zip(ours.get_weights(), arrays.get_weights()):
        assert np.array_equal(a, b)
    model = _model()
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    with pytest.warns(UserWarning, match="ran out of data at epoch 2"):
        h = model.fit(batches(1), epochs=3, verbose=0)  # one pass, no steps_per_epoch
    assert len(h.history["loss"]) == 1
    gen = (x[i : i + 8] for i in range(0, 24, 8))
    assert model.predict(gen, verbose=0).shape == (24, 3)
    ev = model.evaluate(((x[i : i + 8], y[i : i + 8]) for i in range(0, 48, 8)), steps=2, verbose=0)
    assert ev == pytest.approx(model.evaluate(x[:16], y[:16], batch_size=8, verbose=0), rel=1e-6)


def test_bad_sources_are_refused():
    x, y, _ = _data()
    model = _model()
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    before = [a.copy() for a in model.get_weights()]

    def gen(items):
        yield from items

    cases = [
        (dict(x=gen([x[:4]])), "x batch 0 is a ndarray; expected a tuple"),
        (dict(x=gen([(x[:4], y[:3])])), "but x batch 0: y has 3"),
        (dict(x=gen([(x[:4], y[:4], np.ones(4), 1)])), "x batch 0 is a tuple of 4"),
        (dict(x=gen([(x[:4], y[:4])]), y=y), "y must be None when x is a generator"),
        (dict(x=gen([(x[:4], y[:4])]), validation_split=0.2), "validation_split needs arrays"),
        (dict(x=x, y=y, steps_per_epoch=2), "steps_per_epoch is for a generator"),
        (
            dict(
                x=gen([]),
            ),
            "yielded no batch",
        ),
        (dict(x=gen([(np.full((4, 5, 3), np.nan, np.float32), y[:4])])), "x batch 0: x holds nan"),
    ]
    for kw, match in cases:
        with pytest.raises((ValueError, TypeError), match=match):
            model.fit(verbose=0, **kw)
    for a, b in zip(before, model.get_weights()):
        assert np.array_equal(a, b), "a refused fit changed the weights"
    assert rk.utils.Sequence is rk.utils.PyDataset
