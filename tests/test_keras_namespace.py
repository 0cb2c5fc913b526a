"""The Keras-shaped namespace past the model API: ``keras.utils.pad_sequences`` (against
Keras), seeding, dotted imports, what a missing name says, ``keras.Model`` (the functional
API), and misspelled keyword arguments (at run time and for a type checker)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rnnkit
import rnnkit.keras as keras_ns
from rnnkit import callbacks, layers, losses, metrics, optimizers, utils


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras", reason="Keras 3 is not installed")


# ------------------------------------------------------------------ pad_sequences
RAGGED = [[1, 2, 3, 4, 5], [6], [], [7, 8, 9], [10, 11, 12, 13, 14, 15, 16]]
OPTIONS = [
    {},
    {"maxlen": 3},
    {"maxlen": 4, "padding": "post"},
    {"maxlen": 4, "truncating": "post"},
    {"maxlen": 2, "padding": "post", "truncating": "post"},
    {"maxlen": 9, "value": -1},
    {"dtype": "float32", "value": 0.5},
    {"dtype": "int64", "maxlen": 1},
]


@pytest.mark.parametrize(
    "options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items())
)
def test_pad_sequences_equals_keras(keras, options):
    ours = keras_ns.utils.pad_sequences(RAGGED, **options)
    theirs = keras.utils.pad_sequences(RAGGED, **options)
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    np.testing.assert_array_equal(ours, theirs, err_msg=str(options))


def test_pad_sequences_of_vectors_and_arrays_equals_keras(keras):
    rng = np.random.default_rng(3)
    seqs = [rng.standard_normal((n, 2)).astype(np.float32) for n in (4, 1, 6, 0, 3)]
    for options in ({"dtype": "float32"}, {"dtype": "float32", "maxlen": 3, "padding": "post"}):
        ours = utils.pad_sequences(seqs, **options)
        theirs = keras.utils.pad_sequences(seqs, **options)
        assert ours.shape == theirs.shape
        np.testing.assert_array_equal(ours, theirs, err_msg=str(options))
    ids = [np.arange(n) for n in (3, 5)]  # numpy rows, the usual tokenizer output
    np.testing.assert_array_equal(utils.pad_sequences(ids), keras.utils.pad_sequences(ids))


def test_pad_sequences_every_spelling_is_one_function():
    import rnnkit as tf
    from rnnkit.keras.preprocessing.sequence import pad_sequences

    assert pad_sequences is utils.pad_sequences
    assert tf.keras.preprocessing.sequence.pad_sequences is utils.pad_sequences
    assert keras_ns.utils.pad_sequences is utils.pad_sequences


def test_pad_sequences_bad_input():
    with pytest.raises(ValueError, match=r"padding must be 'pre' or 'post'; got 'middle'"):
        utils.pad_sequences(RAGGED, padding="middle")
    with pytest.raises(ValueError, match=r"truncating must be 'pre' or 'post'"):
        utils.pad_sequences(RAGGED, truncating="both")
    with pytest.raises(ValueError, match=r"maxlen must be an int >= 0 or None; got -1"):
        utils.pad_sequences(RAGGED, maxlen=-1)
    with pytest.raises(ValueError, match=r"sequences\[1\] must be a list or array; got int"):
        utils.pad_sequences([[1, 2], 3])
    with pytest.raises(ValueError, match=r"sequences\[1\] has steps of shape \(3,\); the first"):
        utils.pad_sequences([np.zeros((2, 2)), np.zeros((2, 3))], dtype="float32")
    assert utils.pad_sequences(RAGGED, maxlen=0).shape == (len(RAGGED), 0)


# ------------------------------------------------------------------------- seeds
def _fit_once(seed_fn) -> list[np.ndarray]:
    seed_fn(7)
    x = np.random.default_rng(0).standard_normal((16, 4, 2)).astype(np.float32)
    model = keras_ns.Sequential(
        [keras_ns.layers.LSTM(3, input_shape=(4, 2)), keras_ns.layers.Dropout(0.3)]
    )
    model.add(keras_ns.layers.Dense(1))
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, x[:, -1, :1], epochs=2, batch_size=4, verbose=0)
    return model.get_weights()


@pytest.mark.parametrize(
    "seed_fn",
    [rnnkit.random.set_seed, keras_ns.random.set_seed, keras_ns.utils.set_random_seed],
    ids=["tf.random.set_seed", "keras.random.set_seed", "keras.utils.set_random_seed"],
)
def test_every_seed_function_makes_training_reproducible(seed_fn):
    first, second = _fit_once(seed_fn), _fit_once(seed_fn)
    other = _fit_once(lambda s: seed_fn(s + 1))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other)), "seed had no effect"
    with pytest.raises(ValueError, match=r"seed must be a non-negative int; got -3"):
        seed_fn(-3)


def test_to_categorical_equals_keras(keras):
    y = np.array([[0], [2], [1], [2]])
    for n in (None, 5):
        np.testing.assert_array_equal(
            keras_ns.utils.to_categorical(y, n), keras.utils.to_categorical(y, n)
        )


# ------------------------------------------------------------------ dotted imports
def test_dotted_imports_name_the_same_modules():
    from rnnkit.keras.callbacks import EarlyStopping
    from rnnkit.keras.layers import LSTM
    from rnnkit.keras.optimizers.schedules import CosineDecay
    from rnnkit.optimizers.schedules import PiecewiseConstantDecay

    assert LSTM is layers.LSTM and EarlyStopping is callbacks.EarlyStopping
    assert CosineDecay is optimizers.schedules.CosineDecay
    assert PiecewiseConstantDecay is keras_ns.optimizers.schedules.PiecewiseConstantDecay
    from rnnkit import keras as k2

    assert k2 is keras_ns and rnnkit.keras.utils is utils


# --------------------------------------------------------------- missing names
MISSING = [
    (keras_ns, "ops", "keras.ops"),
    (keras_ns.layers, "ConvLSTM1D", "layers.ConvLSTM1D"),
    (keras_ns.utils, "plot_model", "utils.plot_model"),
    (keras_ns.metrics, "F1Score", "metrics.F1Score"),
    (keras_ns.optimizers, "Nadam", "optimizers.Nadam"),
    (keras_ns.optimizers.schedules, "InverseTimeDecay", "optimizers.schedules.InverseTimeDecay"),
    (keras_ns.callbacks, "TensorBoard", "callbacks.TensorBoard"),
    (keras_ns.losses, "KLDivergence", "losses.KLDivergence"),
    (keras_ns.models, "clone_model", "models.clone_model"),
    (keras_ns.preprocessing, "text", "preprocessing.text"),
    (keras_ns.random, "normal", "random.normal"),
    (rnnkit, "distribute", "rnnkit.distribute"),
]


@pytest.mark.parametrize("module, name, shown", MISSING, ids=[m[2] for m in MISSING])
def test_a_missing_name_says_rnnkit_does_not_provide_it(module, name, shown):
    with pytest.raises(AttributeError) as info:
        getattr(module, name)
    message = str(info.value)
    assert f"has no attribute {name!r}: rnnkit does not provide {shown}." in message, message
    assert "It has: " in message
    assert not hasattr(module, name)  # hasattr and getattr(default) keep working
    assert getattr(module, name, None) is None


def test_the_message_lists_what_the_module_has():
    with pytest.raises(AttributeError, match=r"It has: .*\bGRU\b.*\bLSTM\b"):
        keras_ns.layers.ConvLSTM2D  # noqa: B018


def test_a_lazy_submodule_is_named_as_such():
    code = "import rnnkit\ntry:\n    rnnkit.onnx\nexcept AttributeError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "rnnkit.onnx is imported on request" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize(
    "where", ["rnnkit.Model", "rnnkit.keras.Model", "rnnkit.keras.models.Model"]
)
def test_model_is_the_functional_api(where):
    module, _, name = where.rpartition(".")
    obj = {"rnnkit": rnnkit, "rnnkit.keras": keras_ns, "rnnkit.keras.models": keras_ns.models}[
        module
    ]
    cls = getattr(obj, name)
    assert cls is rnnkit.models.Model
    inp = keras_ns.Input(shape=(3,))
    model = cls(inputs=inp, outputs=keras_ns.layers.Dense(2)(inp))
    assert isinstance(model, rnnkit.models.Model) and model.output_shape == (None, 2)
    with pytest.raises(TypeError, match=r"subclassing Model .* not supported"):
        cls()


# -------------------------------------------------------- misspelled keywords
def _layer_calls():
    lstm = layers.LSTM(2)
    return {
        "Dense": lambda **kw: layers.Dense(3, **kw),
        "Dropout": lambda **kw: layers.Dropout(0.2, **kw),
        "Embedding": lambda **kw: layers.Embedding(10, 3, **kw),
        "Flatten": lambda **kw: layers.Flatten(**kw),
        "RepeatVector": lambda **kw: layers.RepeatVector(2, **kw),
        "LSTM": lambda **kw: layers.LSTM(3, **kw),
        "GRU": lambda **kw: layers.GRU(3, **kw),
        "SimpleRNN": lambda **kw: layers.SimpleRNN(3, **kw),
        "Bidirectional": lambda **kw: layers.Bidirectional(lstm, **kw),
        "Sequential": lambda **kw: keras_ns.Sequential(**kw),
        "Adam": lambda **kw: optimizers.Adam(**kw),
        "SGD": lambda **kw: optimizers.SGD(**kw),
        "AdamW": lambda **kw: optimizers.AdamW(**kw),
        "RMSprop": lambda **kw: optimizers.RMSprop(**kw),
        "EarlyStopping": lambda **kw: callbacks.EarlyStopping(**kw),
        "ReduceLROnPlateau": lambda **kw: callbacks.ReduceLROnPlateau(**kw),
        "LambdaCallback": lambda **kw: callbacks.LambdaCallback(**kw),
        "Huber": lambda **kw: losses.Huber(**kw),
        "BinaryCrossentropy": lambda **kw: losses.BinaryCrossentropy(**kw),
        "AUC": lambda **kw: metrics.AUC(**kw),
        "CosineDecay": lambda **kw: optimizers.schedules.CosineDecay(0.1, 10, **kw),
    }


@pytest.mark.parametrize("what", sorted(_layer_calls()))
def test_a_misspelled_keyword_raises_type_error_naming_it(what):
    make = _layer_calls()[what]
    with pytest.raises(TypeError, match=r"retrun_sequences"):
        make(retrun_sequences=True)


def test_the_keras_keywords_layers_ignore_or_handle_are_accepted():
    dense = layers.Dense(3, name="d", dtype="float64", trainable=False, input_shape=(4,))
    assert (dense.name, dense.dtype, dense.trainable, dense.input_shape_hint) == (
        "d",
        np.float64,
        False,
        (None, 4),
    )
    lstm = layers.LSTM(2, input_dim=5, batch_size=8, unroll=False, use_cudnn="auto", seed=1)
    assert lstm.input_shape_hint == (8, 5)
    adam = optimizers.Adam(0.01, use_ema=False, name="opt", global_clipnorm=1.0)
    assert adam.name == "opt" and adam.global_clipnorm == 1.0


def test_a_type_checker_sees_the_real_keyword_parameters(tmp_path):
    mypy_api = pytest.importorskip("mypy.api", reason="mypy is not installed")
    source = textwrap.dedent(
        """
        from rnnkit.keras import callbacks, layers, losses, optimizers

        layers.Dense(3, activaton="relu")
        layers.LSTM(3, return_sequence=True)
        layers.Bidirectional(layers.GRU(2), merge_mod="sum")
        optimizers.Adam(learning_rat=0.1)
        callbacks.EarlyStopping(patiense=3)
        losses.Huber(delt=2.0)
        layers.Dense(3, name="ok", input_shape=(3,), dtype="float32", trainable=False)
        layers.GRU(3, return_sequences=True, dropout=0.1, input_shape=(None, 2))
        optimizers.AdamW(0.01, weight_decay=0.1, clipnorm=1.0)
        """
    )
    path = tmp_path / "user_code.py"
    path.write_text(source)
    out, err, status = mypy_api.run(
        [str(path), "--no-incremental", "--cache-dir", str(tmp_path / "cache")]
    )
    flagged = sorted(
        word
        for word in (
            "activaton",
            "return_sequence",
            "merge_mod",
            "learning_rat",
            "patiense",
            "delt",
        )
        if f'Unexpected keyword argument "{word}"' in out
    )
    assert flagged == sorted(
        ["activaton", "return_sequence", "merge_mod", "learning_rat", "patiense", "delt"]
    ), out + err
    assert out.count("error:") == 6, out  # the correct calls raise nothing
