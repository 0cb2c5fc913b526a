"""Conv1D, pooling, LayerNormalization, BatchNormalization, Reshape and Permute (issue 12):
outputs against Keras 3 on the same weights, two epochs of ``fit`` of a CNN-LSTM against
Keras, gradients against central differences (float64), masks through the pooling and
normalization layers, and bad arguments refused by name."""

from __future__ import annotations

import numpy as np
import pytest
from graph_check import fd_check, max_diff

import rnnkit.keras as rk
from rnnkit import layers
from rnnkit.models import Model, Sequential


def _keras():
    return pytest.importorskip("keras")


CASES = {
    "conv_valid": lambda L: L.Conv1D(4, 3, activation="relu"),
    "conv_same_stride": lambda L: L.Conv1D(3, 4, strides=2, padding="same"),
    "conv_causal_dilated": lambda L: L.Conv1D(3, 2, padding="causal", dilation_rate=2),
    "conv_nobias_tanh": lambda L: L.Conv1D(2, 1, use_bias=False, activation="tanh"),
    "maxpool": lambda L: L.MaxPooling1D(2),
    "maxpool_same": lambda L: L.MaxPooling1D(3, strides=2, padding="same"),
    "avgpool": lambda L: L.AveragePooling1D(2, strides=1),
    "avgpool_same": lambda L: L.AveragePooling1D(3, strides=2, padding="same"),
    "gap": lambda L: L.GlobalAveragePooling1D(),
    "gap_keepdims": lambda L: L.GlobalAveragePooling1D(keepdims=True),
    "gmp": lambda L: L.GlobalMaxPooling1D(),
    "layernorm": lambda L: L.LayerNormalization(),
    "layernorm_noscale": lambda L: L.LayerNormalization(scale=False, epsilon=1e-5),
    "batchnorm": lambda L: L.BatchNormalization(),
    "reshape": lambda L: L.Reshape((3, -1)),
    "permute": lambda L: L.Permute((2, 1)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_layer_matches_keras(name):
    keras = _keras()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 9, 6)).astype(np.float32)
    theirs = CASES[name](keras.layers)
    ours = CASES[name](layers)
    want = np.asarray(theirs(x))
    if theirs.weights:
        weights = [
            np.abs(w) + 0.5 if "variance" in v.name else w
            for w, v in zip(
                [rng.standard_normal(tuple(v.shape)).astype(np.float32) for v in theirs.weights],
                theirs.weights,
            )
        ]
        theirs.set_weights(weights)
        want = np.asarray(theirs(x))
        ours(x)  # build
        ours.set_weights(weights)
    got = ours(x)
    assert got.shape == want.shape, f"{name}: {got.shape} vs Keras {want.shape}"
    assert max_diff(got, want) < 1e-5, f"{name}: {max_diff(got, want):.3e}"
    # training-mode outputs too (BatchNormalization uses the batch's statistics)
    got_t = ours(x, training=True)
    want_t = np.asarray(theirs(x, training=True))
    assert max_diff(got_t, want_t) < 1e-5, f"{name} training: {max_diff(got_t, want_t):.3e}"
    if name == "batchnorm":
        for a, b in zip(ours.get_weights()[2:], theirs.get_weights()[2:]):
            assert max_diff(a, b) < 1e-6, "moving statistics after one training call"


def _cnn_lstm(mod):
    L = mod.layers
    inp = mod.Input(shape=(12, 3), name="series")
    x = L.Conv1D(8, 3, padding="causal", activation="relu", name="conv")(inp)
    x = L.MaxPooling1D(2, name="pool")(x)
    x = L.LayerNormalization(name="ln")(x)
    seq = L.LSTM(6, return_sequences=True, name="lstm")(x)
    x = L.BatchNormalization(name="bn")(seq)
    avg = L.GlobalAveragePooling1D(name="gap")(x)
    top = L.GlobalMaxPooling1D(name="gmp")(x)
    both = L.Concatenate(name="cat")([avg, top])
    steps = L.Dense(4, name="steps")(both)
    flat = L.Reshape((2, 2), name="reshape")(steps)
    flat = L.Permute((2, 1), name="permute")(flat)
    level = L.Dense(1, name="level")(L.Flatten(name="flat")(flat))
    return mod.Model(inp, [steps, level])


def test_cnn_lstm_two_outputs_fit_matches_keras():
    keras = _keras()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((24, 12, 3)).astype(np.float32)
    y = [
        rng.standard_normal((24, 4)).astype(np.float32),
        rng.standard_normal((24, 1)).astype(np.float32),
    ]
    ours, theirs = _cnn_lstm(rk), _cnn_lstm(keras)
    ours.set_weights(theirs.get_weights())
    p1, p2 = ours.predict(x, verbose=0), theirs.predict(x, verbose=0)
    for a, b in zip(p1, p2):
        assert max_diff(a, b) < 1e-5, f"predict: {max_diff(a, b):.3e}"
    for m, mod in ((ours, rk), (theirs, keras)):
        m.compile(optimizer=mod.optimizers.Adam(0.01), loss=["mse", "mae"], loss_weights=[1.0, 0.5])
    h1 = ours.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    h2 = theirs.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    for key in h2:
        assert np.allclose(h1[key], h2[key], rtol=1e-4, atol=1e-5), f"{key}: {h1[key]} vs {h2[key]}"
    for k, (a, b) in enumerate(zip(ours.get_weights(), theirs.get_weights())):
        assert max_diff(a, b) < 1e-4, f"weight {k} {a.shape}: {max_diff(a, b):.3e}"


@pytest.mark.parametrize("name", list(CASES))
def test_layer_gradients_against_finite_differences(name):
    """A Dense before the layer (so the input gradient is checked too) and one after."""
    f64 = {"dtype": "float64"}
    inp = layers.Input(shape=(9, 6), dtype="float64")
    x = layers.Dense(6, activation="tanh", **f64)(inp)
    layer = CASES[name](layers)
    layer.dtype = np.dtype(np.float64)
    out = layer(x)
    out = layers.Dense(2, **f64)(out)
    model = Model(inp, out)
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((3, 9, 6))]
    if name == "maxpool" or name == "gmp" or name.startswith("maxpool"):
        xs = [rng.permutation(np.linspace(-2, 2, 3 * 9 * 6)).reshape(3, 9, 6)]  # no ties
    fd_check(model, xs)


def test_masks_through_pooling_and_batch_normalization():
    """GlobalAveragePooling1D averages the valid steps only and BatchNormalization takes
    its statistics from them (as Keras); gradients against central differences."""
    keras = _keras()

    def build(mod, dtype=None):
        L = mod.layers
        kw = {} if dtype is None else {"dtype": dtype}
        inp = mod.Input(shape=(None,), dtype="int32")
        x = L.Embedding(12, 4, mask_zero=True, **kw)(inp)
        x = L.BatchNormalization(**kw)(x)
        x = L.GRU(3, return_sequences=True, **kw)(x)
        return mod.Model(inp, L.Dense(2, **kw)(L.GlobalAveragePooling1D(**kw)(x)))

    rng = np.random.default_rng(3)
    ids = rng.integers(1, 12, (6, 7))
    ids[0, 4:] = 0
    ids[1, :2] = 0
    ids[2, 3] = 0
    ours, theirs = build(rk), build(keras)
    ours.set_weights(theirs.get_weights())
    assert max_diff(ours.predict(ids, verbose=0), theirs.predict(ids, verbose=0)) < 1e-5
    for m, mod in ((ours, rk), (theirs, keras)):
        m.compile(optimizer=mod.optimizers.SGD(0.2), loss="mse")
    y = rng.standard_normal((6, 2)).astype(np.float32)
    h1 = ours.fit(ids, y, batch_size=3, epochs=2, shuffle=False, verbose=0).history
    h2 = theirs.fit(ids, y, batch_size=3, epochs=2, shuffle=False, verbose=0).history
    assert np.allclose(h1["loss"], h2["loss"], rtol=1e-5), (h1, h2)
    for k, (a, b) in enumerate(zip(ours.get_weights(), theirs.get_weights())):
        assert max_diff(a, b) < 1e-5, f"weight {k}: {max_diff(a, b):.3e}"
    fd_check(build(rk, "float64"), [ids])


def test_sequential_cnn_lstm_saves_and_loads(tmp_path):
    from rnnkit.models import load_model

    model = Sequential(
        [
            layers.Input(shape=(10, 2)),
            layers.Conv1D(4, 3, padding="same", activation="relu"),
            layers.AveragePooling1D(2),
            layers.LSTM(3, return_sequences=True),
            layers.LayerNormalization(),
            layers.GlobalMaxPooling1D(),
            layers.Dense(1),
        ]
    )
    x = np.random.default_rng(4).standard_normal((5, 10, 2)).astype(np.float32)
    path = tmp_path / "cnn.rnnkit"
    model.save(path)
    assert max_diff(load_model(path).predict(x, verbose=0), model.predict(x, verbose=0)) == 0.0


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="padding must be 'valid', 'same' or 'causal'"):
        layers.Conv1D(2, 3, padding="full")
    with pytest.raises(NotImplementedError, match="data_format='channels_first'"):
        layers.Conv1D(2, 3, data_format="channels_first")
    with pytest.raises(ValueError, match="kernel_size must be a positive int"):
        layers.Conv1D(2, 0)
    with pytest.raises(NotImplementedError, match="axis=1 is not supported"):
        layers.LayerNormalization(axis=1)
    with pytest.raises(ValueError, match="fewer than the kernel"):
        layers.Conv1D(2, 5)(np.zeros((1, 3, 2)))
    with pytest.raises(ValueError, match="cannot reshape"):
        layers.Reshape((4, 4))(np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="permutation of 1..n"):
        layers.Permute((1, 1))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_keras_files_both_ways(tmp_path, ext):
    """rnnkit writes these layers into Keras files that Keras opens with the same outputs,
    and opens Keras's own files of them."""
    keras = _keras()
    pytest.importorskip("h5py")
    from rnnkit.models import load_model

    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 10, 2)).astype(np.float32)
    ours = Sequential(
        [
            layers.Input(shape=(10, 2)),
            layers.Conv1D(4, 3, padding="same", activation="relu"),
            layers.MaxPooling1D(2),
            layers.BatchNormalization(),
            layers.LSTM(3, return_sequences=True),
            layers.LayerNormalization(),
            layers.Permute((2, 1)),
            layers.Reshape((3, 5)),
            layers.GlobalAveragePooling1D(),
            layers.Dense(1),
        ]
    )
    ours.compile(optimizer="adam", loss="mse")
    ours.fit(x, rng.standard_normal((4, 1)), epochs=1, verbose=0)  # moving statistics move
    path = tmp_path / f"ours{ext}"
    ours.save(path)
    want = ours.predict(x, verbose=0)
    assert max_diff(load_model(path).predict(x, verbose=0), want) == 0.0
    assert max_diff(keras.models.load_model(path).predict(x, verbose=0), want) < 1e-6
    theirs = keras.Sequential(
        [
            keras.Input(shape=(10, 2)),
            keras.layers.Conv1D(4, 3, padding="causal", dilation_rate=2),
            keras.layers.AveragePooling1D(2),
            keras.layers.LayerNormalization(),
            keras.layers.GRU(3, return_sequences=True),
            keras.layers.BatchNormalization(),
            keras.layers.GlobalMaxPooling1D(),
            keras.layers.Dense(1),
        ]
    )
    path = tmp_path / f"theirs{ext}"
    theirs.save(path)
    got = load_model(path).predict(x, verbose=0)
    assert max_diff(got, theirs.predict(x, verbose=0)) < 1e-6


@pytest.mark.parametrize("frozen", [False, True], ids=["trainable", "frozen_bn"])
def test_summary_counts_the_moving_statistics_as_non_trainable_as_keras(frozen, capsys):
    keras = pytest.importorskip("keras")

    def build(mod):
        L = mod.layers
        m = mod.Sequential(
            [L.Input((7, 3)), L.Conv1D(4, 3), L.BatchNormalization(), L.LSTM(5), L.Dense(2)]
        )
        m.layers[1].trainable = not frozen
        return m

    def counts(text):
        found = {}
        for line in text.splitlines():
            for key in ("Total params", "Trainable params", "Non-trainable params"):
                if line.strip().startswith(key + ":"):
                    found[key] = int(line.split(":")[1].split("(")[0].replace(",", ""))
        return found

    build(keras).summary(print_fn=print)
    theirs = counts(capsys.readouterr().out)
    build(rk).summary(print_fn=print)
    ours = counts(capsys.readouterr().out)
    assert len(theirs) == 3 and ours == theirs, f"Keras {theirs}, rnnkit {ours}"
