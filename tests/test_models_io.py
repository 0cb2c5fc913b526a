"""Saving and loading: exact round trips (weights, outputs, optimizer state, continued
training), atomic writes, pickling, and clear errors for truncated or tampered files."""

from __future__ import annotations

import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import rnnkit
from rnnkit import layers, optimizers
from rnnkit.models import ModelFileError, Sequential, load_model
from rnnkit.utils import set_random_seed

RNG = np.random.default_rng(0)
X = RNG.standard_normal((40, 6, 2)).astype(np.float32)
Y = RNG.integers(0, 3, 40)


def trained_model() -> Sequential:
    set_random_seed(1)
    model = Sequential(
        [
            layers.Input(shape=(6, 2)),
            layers.Bidirectional(layers.LSTM(5, return_sequences=True), merge_mode="sum"),
            layers.GRU(4, reset_after=False),
            layers.Dropout(0.1),
            layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=optimizers.Adam(0.01, clipnorm=2.0),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    return model


def assert_same_model(a: Sequential, b: Sequential, same_names: bool = True) -> None:
    if same_names:
        assert a.get_config()["layers"] == b.get_config()["layers"]
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for k, (p, q) in enumerate(zip(wa, wb)):
        assert p.dtype == q.dtype and p.shape == q.shape, f"weight {k}: {p.shape} vs {q.shape}"
        np.testing.assert_array_equal(p, q, f"weight {k} differs after the round trip")
    np.testing.assert_array_equal(a.predict(X, verbose=0), b.predict(X, verbose=0))


def test_save_load_round_trips_exactly(tmp_path):
    model = trained_model()
    path = tmp_path / "model.rnnkit"
    model.save(path)
    loaded = load_model(path)
    assert_same_model(model, loaded)
    assert loaded.compiled and isinstance(loaded.optimizer, optimizers.Adam)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 10
    assert loaded.loss.name == "sparse_categorical_crossentropy"
    # Training continues identically from the restored optimizer state.
    set_random_seed(5)
    h1 = model.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    set_random_seed(5)
    h2 = loaded.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert h1.history["loss"] == pytest.approx(h2.history["loss"], rel=1e-6)
    for k, (p, q) in enumerate(zip(model.get_weights(), loaded.get_weights())):
        assert np.abs(p - q).max() < 1e-6, f"weight {k} after one more epoch"


def test_simple_rnn_and_new_activations_round_trip(tmp_path):
    set_random_seed(2)
    model = Sequential(
        [
            layers.Input(shape=(6, 2)),
            layers.Bidirectional(layers.SimpleRNN(5, return_sequences=True, activation="elu")),
            layers.LSTM(4, activation="softsign", recurrent_activation="hard_sigmoid"),
            layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "rnn.keras")
    assert_same_model(model, load_model(tmp_path / "rnn.keras"))


def test_save_is_atomic_and_respects_overwrite(tmp_path, monkeypatch):
    model = trained_model()
    path = tmp_path / "m.rnnkit"
    model.save(path)
    original = path.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["m.rnnkit"], "temporary files were left behind"
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.save(path, overwrite=False)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("simulated crash while writing")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == original, "an interrupted save damaged the existing file"
    assert sorted(os.listdir(tmp_path)) == ["m.rnnkit"], "an interrupted save left a temp file"


def test_unbuilt_and_uncompiled_models_round_trip(tmp_path):
    model = Sequential([layers.LSTM(3), layers.Dense(1)])
    model.save(tmp_path / "unbuilt.rnnkit")
    again = load_model(tmp_path / "unbuilt.rnnkit")
    assert not again.built and len(again.layers) == 2 and not again.compiled
    model.build((None, 4, 2))
    model.save(tmp_path / "built.rnnkit")
    assert_same_model(model, load_model(tmp_path / "built.rnnkit"))


def test_pickle_round_trip():
    model = trained_model()
    clone = pickle.loads(pickle.dumps(model))
    assert_same_model(model, clone)
    assert clone.optimizer.iterations == model.optimizer.iterations


def test_save_weights_and_load_weights(tmp_path):
    model = trained_model()
    model.save_weights(tmp_path / "w.rnnkit")
    other = Sequential(
        [
            layers.Input(shape=(6, 2)),
            layers.Bidirectional(layers.LSTM(5, return_sequences=True), merge_mode="sum"),
            layers.GRU(4, reset_after=False),
            layers.Dropout(0.1),
            layers.Dense(3, activation="softmax"),
        ]
    )
    other.load_weights(tmp_path / "w.rnnkit")
    assert_same_model(model, other, same_names=False)
    wrong = Sequential([layers.Input(shape=(6, 2)), layers.LSTM(7), layers.Dense(3)])
    before = wrong.get_weights()
    with pytest.raises(ModelFileError, match="holds 11 weight arrays; the model has 5"):
        wrong.load_weights(tmp_path / "w.rnnkit")
    with pytest.raises(ModelFileError, match="holds only weights"):
        load_model(tmp_path / "w.rnnkit")
    for a, b in zip(wrong.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_truncated_file_raises_clear_error(tmp_path):
    model = trained_model()
    path = tmp_path / "m.rnnkit"
    model.save(path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 100):
        bad = tmp_path / f"cut{cut}.rnnkit"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="is not a valid rnnkit model file"):
            load_model(bad)


def test_flipped_bytes_raise_clear_error(tmp_path):
    model = trained_model()
    path = tmp_path / "m.rnnkit"
    model.save(path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("weight_00002.npy")
    pos = info.header_offset + 30 + len(info.filename) + 200  # inside the array bytes
    data[pos] ^= 0x40
    bad = tmp_path / "flipped.rnnkit"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="not a valid rnnkit model file"):
        load_model(bad)


def _rewrite(path, out, edit_meta=None, edit_arrays=None, fix_digest=True):
    """Rewrite a saved file with edited meta/arrays, recomputing the digest (a tamperer
    who knows the format)."""
    from rnnkit._training import saving

    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("rnnkit_meta")[()]))
    digest = arrays.pop("rnnkit_digest")
    if edit_meta:
        edit_meta(meta)
    if edit_arrays:
        edit_arrays(arrays)
    meta_json = json.dumps(meta, sort_keys=True)
    if fix_digest:
        digest = np.array(saving._digest(meta_json, arrays))
    with open(out, "wb") as f:
        np.savez(f, rnnkit_meta=np.array(meta_json), rnnkit_digest=digest, **arrays)


def test_tampered_files_raise_clear_errors(tmp_path):
    model = trained_model()
    path = tmp_path / "m.rnnkit"
    model.save(path)

    def grow_dense(meta):
        meta["model"]["layers"][-1]["config"]["units"] = 4

    def swap_kernel(arrays):
        arrays["weight_00000"] = np.zeros((2, 21), np.float32)

    def new_class(meta):
        meta["model"]["layers"][1]["class_name"] = "Lambda"

    def nudge_kernel(arrays):
        arrays["weight_00000"] = arrays["weight_00000"] + np.float32(1e-3)

    def bad_shape_meta(meta):
        meta["weights"][0]["shape"] = [2, 21]

    def object_array(arrays):
        arrays["weight_00000"] = np.array([{"a": 1}], dtype=object)

    cases = [
        (grow_dense, None, True, r"weight dense.*/kernel has shape \(4, 3\); layer 'dense"),
        (None, swap_kernel, True, r"entry 'weight_00000' has shape \(2, 21\)"),
        (new_class, None, True, "unknown layer class 'Lambda'"),
        (bad_shape_meta, None, True, r"entry 'weight_00000' has shape \(2, 20\)"),
        (None, nudge_kernel, False, "do not match the stored digest"),
        (None, swap_kernel, False, r"entry 'weight_00000' has shape \(2, 21\)"),
    ]
    for k, (meta_fn, arr_fn, fix, msg) in enumerate(cases):
        out = tmp_path / f"t{k}.rnnkit"
        _rewrite(path, out, meta_fn, arr_fn, fix)
        with pytest.raises(ModelFileError, match=msg):
            load_model(out)
    out = tmp_path / "obj.rnnkit"
    _rewrite(path, out, None, object_array, True)  # np.savez pickles object arrays
    with pytest.raises(ModelFileError, match="not a valid rnnkit model file"):
        load_model(out)  # ...and load_model never unpickles them


def test_non_model_files(tmp_path):
    (tmp_path / "text.txt").write_text("hello, not a model")
    with pytest.raises(ModelFileError, match="not a valid rnnkit model file"):
        load_model(tmp_path / "text.txt")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ModelFileError, match="rnnkit_meta/rnnkit_digest entries are missing"):
        load_model(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_model(tmp_path / "missing.rnnkit")
    np.save(tmp_path / "pickled.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ModelFileError, match="not a valid rnnkit model file"):
        load_model(tmp_path / "pickled.npy")


def test_top_level_exports():
    assert rnnkit.Sequential is Sequential and rnnkit.load_model is load_model
    assert rnnkit.keras.layers.LSTM is layers.LSTM
