"""Keras-shaped layers: backward against central finite differences (float64) for every
layer and option, Keras weight layouts against the plain-loop reference and against Keras
itself (when installed), initialisation, config and bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from reference import assert_close, gru_forward, lstm_forward, rnn_forward

from rnnkit import layers
from rnnkit.utils import set_random_seed

EPS = 1e-6
TOL = 1e-7  # relative to the gradient's scale; float64 central differences reach ~1e-9


def _as_list(out):
    return out if isinstance(out, list) else [out]


def gradcheck(layer, x: np.ndarray, *, reseed=None, check_x: bool = True) -> dict[str, float]:
    """Compare backward's dL/dx and dL/dw with central differences for
    L = sum_k sum(out_k * R_k), R fixed random. Returns the relative errors by name."""
    rng = np.random.default_rng(0)

    def forward():
        if reseed is not None:
            reseed()
        return _as_list(layer(x, training=True))

    outs = forward()
    weights = [rng.standard_normal(o.shape) for o in outs]

    def loss():
        return sum(float(np.sum(o * r)) for o, r in zip(forward(), weights))

    forward()
    layer.zero_grad()
    dx = layer.backward(weights if len(outs) > 1 else weights[0])
    analytic = {
        f"w{k}:{p.shape}": g.copy()
        for k, (p, g) in enumerate(zip(layer.parameters(), layer.gradients()))
    }
    targets = {f"w{k}:{p.shape}": p for k, p in enumerate(layer.parameters())}
    if check_x:
        analytic["x"] = dx
        targets["x"] = x
    errors = {}
    for name, arr in targets.items():
        numeric = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + EPS
            lp = loss()
            arr[i] = old - EPS
            lm = loss()
            arr[i] = old
            numeric[i] = (lp - lm) / (2 * EPS)
        a = analytic[name]
        assert a.shape == numeric.shape, f"{name}: gradient shape {a.shape} != {numeric.shape}"
        scale = max(np.abs(numeric).max(), 1e-3)
        errors[name] = float(np.abs(a - numeric).max() / scale)
    bad = {k: v for k, v in errors.items() if not v <= TOL}
    assert not bad, f"{layer.name}: relative gradient errors above {TOL}: {bad}"
    return errors


X = np.random.default_rng(1).standard_normal((2, 5, 3))


# ---------------------------------------------------------------- Dense & friends
@pytest.mark.parametrize(
    "activation", [None, "relu", "tanh", "sigmoid", "softmax", "elu", "softplus", "hard_sigmoid"]
)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 3)])
def test_dense_gradients(activation, shape):
    x = np.random.default_rng(2).standard_normal(shape)
    layer = layers.Dense(4, activation=activation, dtype="float64")
    layer.build((None, *shape[1:]))
    layer.bias[...] = np.linspace(-0.3, 0.3, 4)
    gradcheck(layer, x)


def test_dense_without_bias_and_accumulation():
    x = np.random.default_rng(3).standard_normal((3, 2))
    layer = layers.Dense(2, use_bias=False, dtype="float64")
    errs = gradcheck(layer, x)
    assert len(errs) == 2, f"expected kernel and x only; got {sorted(errs)}"
    layer(x, training=True)
    layer.zero_grad()
    layer.backward(np.ones((3, 2)))
    once = layer.gradients()[0].copy()
    layer.backward(np.ones((3, 2)))
    np.testing.assert_allclose(
        layer.gradients()[0],
        2 * once,
        rtol=1e-12,
        err_msg="a second backward must add to the gradient",
    )


def test_dense_forward_values():
    layer = layers.Dense(2, activation="relu", dtype="float64")
    layer.build((None, 3))
    layer.set_weights([np.array([[1.0, -1.0], [2.0, 0.0], [0.0, 1.0]]), np.array([0.5, -0.5])])
    y = layer(np.array([[1.0, 1.0, 1.0], [-1.0, 0.0, 2.0]]))
    np.testing.assert_array_equal(y, [[3.5, 0.0], [0.0, 2.5]])


def test_dropout_mask_scaling_and_backward():
    set_random_seed(5)
    layer = layers.Dropout(0.25, dtype="float64")
    x = np.ones((400, 50))
    y = layer(x, training=True)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01, f"kept fraction {kept.mean():.4f}, expected 0.75"
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    dy = np.random.default_rng(0).standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(dy), dy * y, "backward must reuse the mask")
    np.testing.assert_array_equal(layer(x, training=False), x)


def test_dropout_noise_shape_shares_mask_over_time():
    set_random_seed(6)
    layer = layers.Dropout(0.5, noise_shape=(None, 1, 4), dtype="float64")
    y = layer(np.ones((8, 6, 4)), training=True)
    assert np.all(y == y[:, :1, :]), "mask must be the same at every time step"


def test_embedding_gradients_with_repeated_ids():
    layer = layers.Embedding(5, 3, dtype="float64")
    ids = np.array([[0, 1, 1], [4, 1, 0]])
    out = layer(ids, training=True)
    np.testing.assert_array_equal(out, layer.get_weights()[0][ids])
    gradcheck(layer, ids, check_x=False)


def test_embedding_rejects_bad_ids():
    layer = layers.Embedding(5, 3)
    with pytest.raises(ValueError, match=r"ids outside 0..4 \(input_dim=5\), e.g. 5"):
        layer(np.array([[0, 5]]))
    with pytest.raises(ValueError, match="integer indices"):
        layer(np.array([[0.5, 1.0]]))


def test_flatten_and_repeat_vector_gradients():
    gradcheck(layers.Flatten(dtype="float64"), X.copy())
    gradcheck(layers.RepeatVector(3, dtype="float64"), X[:, 0, :].copy())


# ------------------------------------------------------------------ recurrent layers
RECURRENT_CASES = [
    ("lstm", lambda: layers.LSTM(4, dtype="float64")),
    (
        "lstm_seq_back",
        lambda: layers.LSTM(4, return_sequences=True, go_backwards=True, dtype="float64"),
    ),
    (
        "lstm_relu_hard",
        lambda: layers.LSTM(
            4,
            activation="relu",
            recurrent_activation="hard_sigmoid",
            return_sequences=True,
            dtype="float64",
        ),
    ),
    ("lstm_nobias", lambda: layers.LSTM(3, use_bias=False, dtype="float64")),
    ("lstm_state", lambda: layers.LSTM(4, return_state=True, dtype="float64")),
    (
        "lstm_seq_state",
        lambda: layers.LSTM(3, return_sequences=True, return_state=True, dtype="float64"),
    ),
    ("gru", lambda: layers.GRU(4, dtype="float64")),
    (
        "gru_before_seq",
        lambda: layers.GRU(4, reset_after=False, return_sequences=True, dtype="float64"),
    ),
    (
        "gru_back_state",
        lambda: layers.GRU(3, go_backwards=True, return_state=True, dtype="float64"),
    ),
    ("gru_linear", lambda: layers.GRU(3, activation="linear", dtype="float64")),
    (
        "bi_lstm_concat",
        lambda: layers.Bidirectional(layers.LSTM(3, return_sequences=True, dtype="float64")),
    ),
    ("bi_lstm_sum", lambda: layers.Bidirectional(layers.LSTM(3, dtype="float64"), "sum")),
    (
        "bi_gru_mul",
        lambda: layers.Bidirectional(layers.GRU(3, return_sequences=True, dtype="float64"), "mul"),
    ),
    (
        "bi_gru_ave",
        lambda: layers.Bidirectional(layers.GRU(3, reset_after=False, dtype="float64"), "ave"),
    ),
    (
        "bi_lstm_state",
        lambda: layers.Bidirectional(layers.LSTM(3, return_state=True, dtype="float64")),
    ),
    ("rnn", lambda: layers.SimpleRNN(4, dtype="float64")),
    (
        "rnn_seq_back_relu",
        lambda: layers.SimpleRNN(
            4, activation="relu", return_sequences=True, go_backwards=True, dtype="float64"
        ),
    ),
    (
        "rnn_state_nobias",
        lambda: layers.SimpleRNN(3, return_state=True, use_bias=False, dtype="float64"),
    ),
    ("bi_rnn_sum", lambda: layers.Bidirectional(layers.SimpleRNN(3, dtype="float64"), "sum")),
    (
        "lstm_softsign_hard",
        lambda: layers.LSTM(
            4, activation="softsign", recurrent_activation="hard_sigmoid", dtype="float64"
        ),
    ),
    (
        "gru_elu_seq",
        lambda: layers.GRU(3, activation="elu", return_sequences=True, dtype="float64"),
    ),
    ("rnn_leaky", lambda: layers.SimpleRNN(3, activation="leaky_relu", dtype="float64")),
]


@pytest.mark.parametrize(
    "make", [c[1] for c in RECURRENT_CASES], ids=[c[0] for c in RECURRENT_CASES]
)
def test_recurrent_gradients(make):
    layer = make()
    layer.build((None, 5, 3))
    # Non-zero biases everywhere, so every bias path is exercised.
    rng = np.random.default_rng(4)
    layer.set_weights([w + 0.1 * rng.standard_normal(w.shape) for w in layer.get_weights()])
    gradcheck(layer, X.copy())


def test_recurrent_input_dropout_gradients():
    layer = layers.LSTM(4, dropout=0.3, seed=11, return_sequences=True, dtype="float64")

    def reseed():
        layer._rng = np.random.default_rng(11)

    gradcheck(layer, X.copy(), reseed=reseed)
    reseed()
    y_train = layer(X, training=True)
    assert not np.allclose(y_train, layer(X, training=False)), "dropout had no effect"


def _keras_to_torch(kind, weights, units, reset_after=True):
    """Keras-layout weights -> PyTorch state dict (written independently of rnnkit)."""
    kernel, rec, bias = weights
    if kind in ("lstm", "rnn"):
        return {
            "weight_ih_l0": kernel.T,
            "weight_hh_l0": rec.T,
            "bias_ih_l0": bias,
            "bias_hh_l0": np.zeros_like(bias),
        }

    def perm(a):  # Keras [z|r|h] -> PyTorch [r|z|n] along the last axis
        u = units
        return np.concatenate([a[..., u : 2 * u], a[..., :u], a[..., 2 * u :]], axis=-1)

    b_ih, b_hh = (bias[0], bias[1]) if reset_after else (bias, np.zeros_like(bias))
    return {
        "weight_ih_l0": perm(kernel).T,
        "weight_hh_l0": perm(rec).T,
        "bias_ih_l0": perm(b_ih),
        "bias_hh_l0": perm(b_hh),
    }


@pytest.mark.parametrize(
    "kind,kwargs",
    [
        ("lstm", {}),
        ("lstm", {"activation": "relu"}),
        ("gru", {}),
        ("gru", {"reset_after": False}),
        ("lstm", {"go_backwards": True}),
        ("rnn", {}),
        ("rnn", {"activation": "softplus", "go_backwards": True}),
    ],
)
def test_keras_layout_matches_reference(kind, kwargs):
    """get_weights() in Keras's layout, mapped by hand to PyTorch's, through the plain-loop
    float64 reference, gives the layer's outputs."""
    units = 4
    cls = {"lstm": layers.LSTM, "gru": layers.GRU, "rnn": layers.SimpleRNN}[kind]
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    layer = cls(units, return_sequences=True, dtype="float64", **kwargs)
    layer.build((None, 5, 3))
    rng = np.random.default_rng(8)
    weights = [w + 0.2 * rng.standard_normal(w.shape) for w in layer.get_weights()]
    layer.set_weights(weights)
    expected_shapes = [(3, gates * units), (units, gates * units)]
    assert [w.shape for w in layer.get_weights()[:2]] == expected_shapes
    state = _keras_to_torch(kind, weights, units, kwargs.get("reset_after", True))
    xt = X.transpose(1, 0, 2)
    if kwargs.get("go_backwards"):
        xt = xt[::-1]
    act = kwargs.get("activation", "tanh")
    if kind == "lstm":
        ref, _, _ = lstm_forward(state, xt, activation=act)
    elif kind == "rnn":
        ref, _ = rnn_forward(state, xt, activation=act)
    else:
        ref, _ = gru_forward(state, xt, reset_after=kwargs.get("reset_after", True))
    assert_close(layer(X), ref.transpose(1, 0, 2), f"{kind}{kwargs}", 1e-10, 1e-12)


def test_initialisation_follows_keras():
    set_random_seed(0)
    layer = layers.LSTM(8, input_shape=(5, 6))
    layer.build((None, 5, 6))
    kernel, rec, bias = layer.get_weights()
    limit = np.sqrt(6 / (6 + 32))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.8 * limit, (
        f"glorot_uniform kernel: max |w| {np.abs(kernel).max():.4f}, limit {limit:.4f}"
    )
    np.testing.assert_allclose(
        rec @ rec.T,
        np.eye(8),
        atol=1e-5,
        err_msg="orthogonal recurrent kernel: rows must be orthonormal",
    )
    expected_bias = np.zeros(32)
    expected_bias[8:16] = 1.0  # unit_forget_bias
    np.testing.assert_array_equal(bias, expected_bias)
    np.testing.assert_array_equal(layer.core.named_parameters()["bias_hh_l0"], 0)
    gru = layers.GRU(5)
    gru.build((None, 2, 3))
    assert gru.get_weights()[2].shape == (2, 15) and not gru.get_weights()[2].any()


def test_weights_round_trip_and_shape_checks():
    layer = layers.GRU(4, reset_after=False)
    layer.build((None, 5, 3))
    new = [np.random.default_rng(3).standard_normal(w.shape) for w in layer.get_weights()]
    layer.set_weights(new)
    for a, b in zip(layer.get_weights(), new):
        np.testing.assert_allclose(a, b.astype(np.float32), rtol=0, atol=0)
    before = layer.get_weights()
    with pytest.raises(
        ValueError,
        match=r"weight recurrent_kernel has shape \(4, 13\); "
        r"expected \(4, 12\)",
    ):
        layer.set_weights([new[0], np.zeros((4, 13)), new[2]])
    for a, b in zip(layer.get_weights(), before):
        np.testing.assert_array_equal(a, b, "a failed set_weights must change nothing")
    assert layer.count_params() == 3 * (3 * 4 + 4 * 4 + 4)


@pytest.mark.parametrize("cls", [layers.LSTM, layers.SimpleRNN])
def test_stateful_halves_equal_one_sequence(cls):
    full = cls(4, return_sequences=True, dtype="float64")
    half = cls(4, return_sequences=True, stateful=True, dtype="float64")
    full.build((None, 6, 3))
    half.build((None, 3, 3))
    half.set_weights(full.get_weights())
    x = np.random.default_rng(9).standard_normal((2, 6, 3))
    joined = np.concatenate([half(x[:, :3]), half(x[:, 3:])], axis=1)
    assert_close(joined, full(x), "stateful halves", 1e-12, 1e-14)
    half.reset_states()
    assert_close(half(x[:, :3]), full(x[:, :3]), "after reset_states", 1e-12, 1e-14)
    with pytest.raises(ValueError, match="stateful layer got a batch of 1"):
        half(x[:1, :3])


def test_bidirectional_equals_forward_and_reversed_layers():
    """concat(forward LSTM, go_backwards LSTM re-reversed) with the same weights."""
    bi = layers.Bidirectional(layers.LSTM(3, return_sequences=True, dtype="float64"))
    bi.build((None, 5, 3))
    w = bi.get_weights()
    fwd = layers.LSTM(3, return_sequences=True, dtype="float64")
    bwd = layers.LSTM(3, return_sequences=True, go_backwards=True, dtype="float64")
    for lay, ws in ((fwd, w[:3]), (bwd, w[3:])):
        lay.build((None, 5, 3))
        lay.set_weights(ws)
    expected = np.concatenate([fwd(X), bwd(X)[:, ::-1]], axis=-1)
    assert_close(bi(X), expected, "Bidirectional concat", 1e-12, 1e-14)


def test_recurrent_bad_options_and_input():
    with pytest.raises(ValueError, match="activation 'softmax' is not available in the core"):
        layers.GRU(4, activation="softmax")
    with pytest.raises(ValueError, match="unknown activation 'tanhh'"):
        layers.LSTM(4, activation="tanhh")
    layer = layers.LSTM(4)
    layer(np.zeros((2, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"x has shape \(2, 5, 2\); expected \(batch, 5, 3\)"):
        layer(np.zeros((2, 5, 2), np.float32))
    with pytest.raises(ValueError, match="expects inputs \\(batch, time, features\\)"):
        layers.LSTM(4)(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="wraps an LSTM, GRU or SimpleRNN"):
        layers.Bidirectional(layers.Dense(3))
    with pytest.raises(ValueError, match="unknown recurrent_activation 'SELU'; expected one of"):
        layers.LSTM(4, recurrent_activation="SELU")
    with pytest.raises(TypeError, match="unexpected keyword argument 'recurrent_activation'"):
        layers.SimpleRNN(4, recurrent_activation="sigmoid")
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        layers.LSTM(4, input_shapes=(3, 2))


@pytest.mark.parametrize(
    "layer",
    [
        layers.Dense(3, activation="softmax", use_bias=False),
        layers.Dropout(0.3, noise_shape=(None, 1, 2)),
        layers.Embedding(7, 2),
        layers.LSTM(
            5,
            activation="relu",
            return_sequences=True,
            unit_forget_bias=False,
            input_shape=(None, 2),
        ),
        layers.GRU(4, reset_after=False, go_backwards=True, dropout=0.1),
        layers.Bidirectional(layers.GRU(3, return_sequences=True), merge_mode="ave"),
        layers.SimpleRNN(4, activation="elu", return_sequences=True, go_backwards=True),
        layers.Bidirectional(layers.SimpleRNN(3, use_bias=False)),
    ],
    ids=lambda lay: type(lay).__name__,
)
def test_config_round_trip_and_pickle(layer):
    again = layers.deserialize(layers.serialize(layer))
    assert type(again) is type(layer)
    assert again.get_config() == layer.get_config(), f"{again.get_config()} != {layer.get_config()}"
    if isinstance(layer, layers.Embedding):
        layer(np.array([[1, 2]]))
    elif not isinstance(layer, layers.Dropout):
        layer.build((None, 4, 2) if not isinstance(layer, layers.Dense) else (None, 2))
    clone = pickle.loads(pickle.dumps(layer))
    for a, b in zip(clone.get_weights(), layer.get_weights()):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- against Keras
@pytest.mark.parametrize(
    "spec",
    [
        "LSTM(6, return_sequences=True)",
        "LSTM(6, go_backwards=True, return_sequences=True)",
        "LSTM(6, activation='relu', recurrent_activation='hard_sigmoid')",
        "LSTM(6, use_bias=False, unit_forget_bias=False)",
        "GRU(6, return_sequences=True)",
        "GRU(6, reset_after=False)",
        "GRU(6, go_backwards=True)",
        "Bidirectional(LSTM(6, return_sequences=True))",
        "Bidirectional(GRU(6), merge_mode='ave')",
        "Bidirectional(LSTM(6), merge_mode='mul')",
        "SimpleRNN(6, return_sequences=True)",
        "SimpleRNN(6, activation='relu', go_backwards=True)",
        "SimpleRNN(6, use_bias=False, activation='softplus', return_sequences=True)",
        "Bidirectional(SimpleRNN(6, return_sequences=True), merge_mode='sum')",
        "LSTM(6, activation='softsign', recurrent_activation='hard_sigmoid')",
        "LSTM(6, activation='leaky_relu', return_sequences=True)",
        "GRU(6, activation='elu', recurrent_activation='softsign')",
        "GRU(6, activation=None, reset_after=False, return_sequences=True)",
    ],
)
def test_keras_layers_with_our_weights_give_our_outputs(spec):
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(0).standard_normal((3, 7, 5)).astype(np.float32)
    ours = eval(spec, {}, vars(layers))  # noqa: S307 - fixed strings above
    theirs = eval(spec, {}, vars(keras.layers))  # noqa: S307
    y = ours(x)
    theirs(x)
    theirs.set_weights(ours.get_weights())
    assert_close(y, np.asarray(theirs(x)), f"keras {spec}", 1e-5, 1e-6)
    # and back: Keras's own initial weights load into rnnkit unchanged
    fresh = eval(spec, {}, vars(keras.layers))  # noqa: S307
    fresh(x)
    ours.set_weights(fresh.get_weights())
    assert_close(ours(x), np.asarray(fresh(x)), f"rnnkit with keras init {spec}", 1e-5, 1e-6)
