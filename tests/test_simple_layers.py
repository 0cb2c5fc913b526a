"""``Activation``, ``SpatialDropout1D`` and ``GaussianNoise`` (issue 12's list of Keras layers
still missing): against Keras 3 on the same inputs, gradients against central differences,
what each does in training and at inference, and both ways through Keras files."""

from __future__ import annotations

import numpy as np
import pytest
from graph_check import fd_check, max_diff

import rnnkit.keras as rk

ACTIVATIONS = ["relu", "tanh", "sigmoid", "softmax", "elu", "softplus", "hard_sigmoid", "linear"]


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_keras_and_its_gradient_central_differences(name):
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(0).standard_normal((4, 5, 6)).astype(np.float32) * 3
    ours = rk.layers.Activation(name).forward(x)
    theirs = np.asarray(keras.layers.Activation(name)(x))
    assert max_diff(ours, theirs) < 1e-6, f"{name}: {max_diff(ours, theirs):.2e}"
    L = rk.layers
    inp = L.Input((5, 3), dtype="float64")
    out = L.Dense(2, dtype="float64")(
        L.Activation(name, dtype="float64")(L.Dense(6, dtype="float64")(inp))
    )
    fd_check(rk.Model(inp, out), [np.random.default_rng(1).standard_normal((3, 5, 3))])


def test_an_unknown_activation_is_refused():
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'"):
        rk.layers.Activation("gelu")


def test_spatial_dropout_drops_whole_channels_and_is_identity_at_inference():
    layer = rk.layers.SpatialDropout1D(0.4, seed=3)
    x = np.ones((64, 10, 32), np.float32)
    layer.build(x.shape)
    y = layer.forward(x, training=True)
    per_channel = y[:, :1, :]
    assert np.array_equal(y, np.broadcast_to(per_channel, y.shape)), "one mask for every step"
    dropped = float(np.mean(per_channel == 0))
    assert abs(dropped - 0.4) < 0.05, f"dropped {dropped:.3f} of the channels at rate 0.4"
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.6)}
    dy = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    assert max_diff(layer._backward(dy, True), dy * (y != 0) / 0.6) < 1e-6
    assert layer.forward(x, training=False) is x
    with pytest.raises(ValueError, match=r"expects inputs \(batch, steps, features\)"):
        rk.layers.SpatialDropout1D(0.1).build((4, 3))


def test_gaussian_noise_adds_noise_of_its_stddev_in_training_only():
    layer = rk.layers.GaussianNoise(0.5, seed=1)
    x = np.full((200, 50, 4), 2.0, np.float32)
    y = layer.forward(x, training=True)
    noise = (y - x).ravel()
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.5) < 0.01, (noise.mean(), noise.std())
    assert max_diff(layer._backward(y, True), y) == 0.0, "the gradient passes unchanged"
    assert layer.forward(x, training=False) is x
    with pytest.raises(ValueError, match=r"stddev must be"):
        rk.layers.GaussianNoise(-1.0)


def _model(mod):
    L = mod.layers
    return mod.Sequential(
        [
            L.Input((8, 3)),
            L.GaussianNoise(0.1),
            L.Conv1D(6, 3, padding="same"),
            L.Activation("relu"),
            L.SpatialDropout1D(0.2),
            L.LSTM(5),
            L.Dense(3),
            L.Activation("softmax"),
        ]
    )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras's own saving, on numpy 2
def test_the_layers_go_both_ways_through_keras_files(tmp_path):
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(2).standard_normal((4, 8, 3)).astype(np.float32)
    theirs = _model(keras)
    theirs.save(tmp_path / "k.keras")
    ours = rk.models.load_model(tmp_path / "k.keras")
    assert [type(lay).__name__ for lay in ours.layers] == [
        type(lay).__name__ for lay in theirs.layers
    ]
    assert max_diff(ours.predict(x, verbose=0), theirs.predict(x, verbose=0)) < 1e-5
    ours.save(tmp_path / "r.keras")
    back = keras.models.load_model(tmp_path / "r.keras")
    assert back.layers[3].rate == 0.2 and back.layers[0].stddev == 0.1
    assert max_diff(back.predict(x, verbose=0), ours.predict(x, verbose=0)) < 1e-5


def test_a_model_with_them_trains_like_keras_when_the_noise_is_off():
    """With the noise layers at rate/stddev 0 the same model and data give Keras's weights
    after two epochs (the random layers' training draws cannot be shared)."""
    keras = pytest.importorskip("keras")

    def build(mod):
        L = mod.layers
        m = mod.Sequential(
            [
                L.Input((6, 2)),
                L.GaussianNoise(0.0),
                L.LSTM(4, return_sequences=True),
                L.SpatialDropout1D(0.0),
                L.Activation("tanh"),
                L.GlobalAveragePooling1D(),
                L.Dense(1),
            ]
        )
        m.compile(optimizer=mod.optimizers.SGD(0.1), loss="mse")
        return m

    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 6, 2)).astype(np.float32)
    y = rng.standard_normal((32, 1)).astype(np.float32)
    theirs, ours = build(keras), build(rk)
    ours.set_weights(theirs.get_weights())
    theirs.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    ours.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        assert max_diff(a, b) < 1e-5, max_diff(a, b)


TIME_LAYERS = [
    ("UpSampling1D", {"size": 3}),
    ("ZeroPadding1D", {"padding": (2, 1)}),
    ("ZeroPadding1D", {"padding": 2}),
    ("Cropping1D", {"cropping": (1, 2)}),
    ("Cropping1D", {"cropping": 1}),
]


@pytest.mark.parametrize(
    "name,kw", TIME_LAYERS, ids=[f"{n}-{v}" for n, k in TIME_LAYERS for v in k.values()]
)
def test_time_axis_layers_match_keras_and_central_differences(name, kw):
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(4).standard_normal((3, 6, 4)).astype(np.float32)
    ours = getattr(rk.layers, name)(**kw)
    theirs = getattr(keras.layers, name)(**kw)
    got, want = ours.forward(x), np.asarray(theirs(x))
    assert got.shape == want.shape and max_diff(got, want) == 0.0, (got.shape, want.shape)
    L = rk.layers
    inp = L.Input((6, 2), dtype="float64")
    seq = getattr(L, name)(**kw, dtype="float64")(L.Dense(4, dtype="float64")(inp))
    out = L.Dense(2, dtype="float64")(L.LSTM(3, dtype="float64")(seq))
    fd_check(rk.Model(inp, out), [np.random.default_rng(5).standard_normal((2, 6, 2))])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras's own saving, on numpy 2
def test_time_axis_layers_go_both_ways_through_keras_files(tmp_path):
    keras = pytest.importorskip("keras")

    def build(mod):
        L = mod.layers
        return mod.Sequential(
            [
                L.Input((8, 3)),
                L.ZeroPadding1D((1, 2)),
                L.Conv1D(4, 3),
                L.UpSampling1D(2),
                L.Cropping1D((2, 1)),
                L.GRU(3),
            ]
        )

    x = np.random.default_rng(6).standard_normal((2, 8, 3)).astype(np.float32)
    theirs = build(keras)
    theirs.save(tmp_path / "k.keras")
    ours = rk.models.load_model(tmp_path / "k.keras")
    assert max_diff(ours.predict(x, verbose=0), theirs.predict(x, verbose=0)) < 1e-5
    ours.save(tmp_path / "r.keras")
    back = keras.models.load_model(tmp_path / "r.keras")
    assert max_diff(back.predict(x, verbose=0), theirs.predict(x, verbose=0)) < 1e-5


def test_time_axis_layers_refuse_bad_options():
    with pytest.raises(ValueError, match=r"size must be a positive int"):
        rk.layers.UpSampling1D(0)
    with pytest.raises(ValueError, match=r"padding must be an int >= 0 or a pair"):
        rk.layers.ZeroPadding1D((1, -1))
    with pytest.raises(ValueError, match=r"data_format must be 'channels_last'"):
        rk.layers.ZeroPadding1D(1, data_format="channels_first")
    with pytest.raises(ValueError, match=r"cropping \(3, 3\) leaves no step of 5"):
        rk.Sequential([rk.layers.Input((5, 2)), rk.layers.Cropping1D(3)])
