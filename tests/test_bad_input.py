"""A bad-input corpus (issue 10): hostile calls on public entry points, each asserting the
exception type, that the message names the argument, and that the object is unchanged.
Calls that would allocate gigabytes before the fix run in a subprocess under RLIMIT_AS, so a
regression is a failure, not an outage."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import rnnkit
from rnnkit import layers, optimizers

X = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)


def _run_limited(code: str, limit_gb: float = 2.0, timeout: float = 60) -> str:
    """Run code in a fresh interpreter with RLIMIT_AS; returns its stdout (fails on a crash)."""
    prog = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, ({int(limit_gb * 2**30)}, {int(limit_gb * 2**30)}))
        """
    ) + textwrap.dedent(code)
    r = subprocess.run(
        [sys.executable, "-c", prog], capture_output=True, text=True, timeout=timeout
    )
    assert r.returncode == 0, f"rc={r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    return r.stdout


# --------------------------------------------------------------- constructors (defect 9)

CONSTRUCTORS = [
    (
        "LSTM dropout str",
        lambda: rnnkit.LSTM(3, 4, dropout="x"),
        TypeError,
        r"\[LSTM\] dropout must be a number in \[0, 1\); got str 'x'",
    ),
    (
        "GRU dropout 1",
        lambda: rnnkit.GRU(3, 4, dropout=1.0),
        ValueError,
        r"\[GRU\] dropout must be in \[0, 1\); got 1.0",
    ),
    (
        "LSTM dropout nan",
        lambda: rnnkit.LSTM(3, 4, dropout=float("nan")),
        ValueError,
        r"dropout must be in",
    ),
    (
        "LSTM dtype bogus",
        lambda: rnnkit.LSTM(3, 4, dtype="bogus"),
        TypeError,
        r"dtype must be 'float32'.*got 'bogus'",
    ),
    ("LSTM dtype int", lambda: rnnkit.LSTM(3, 4, dtype=np.int32), TypeError, r"dtype must be"),
    # found by the fuzzer: numpy compares np.dtype("float64") == None as True, so an unknown
    # dtype name became None and the layer failed later, at build, with AttributeError
    (
        "layers.LSTM dtype unknown",
        lambda: layers.LSTM(4, dtype="x"),
        TypeError,
        r"\[LSTM\] dtype must be 'float32' or 'float64'; got 'x'",
    ),
    (
        "layers.Dense dtype unknown",
        lambda: layers.Dense(4, dtype="floaty"),
        TypeError,
        r"\[Dense\] dtype must be 'float32' or 'float64'; got 'floaty'",
    ),
    (
        "layers.LSTM dropout",
        lambda: layers.LSTM(4, dropout="x"),
        TypeError,
        r"dropout must be a number in \[0, 1\); got str 'x'",
    ),
    (
        "layers.GRU recurrent_dropout",
        lambda: layers.GRU(4, recurrent_dropout="a"),
        TypeError,
        r"recurrent_dropout must be a number",
    ),
    (
        "Dropout str",
        lambda: layers.Dropout("abc"),
        TypeError,
        r"\[Dropout '.*'\] rate must be a number in \[0, 1\); got str 'abc'",
    ),
    ("Dropout 2", lambda: layers.Dropout(2), ValueError, r"rate must be in \[0, 1\); got 2"),
    (
        "Input dtype",
        lambda: layers.Input((3,), dtype="bogus"),
        TypeError,
        r"\[InputLayer\] dtype must be a numpy dtype.*got 'bogus'",
    ),
    (
        "SGD lr str",
        lambda: optimizers.SGD("x"),
        TypeError,
        r"learning_rate must be a finite number >= 0; got str 'x'",
    ),
    (
        "SGD momentum",
        lambda: optimizers.SGD(0.1, momentum="m"),
        TypeError,
        r"momentum must be a number in \[0, 1\]",
    ),
    (
        "Adam beta_1",
        lambda: optimizers.Adam(beta_1=1.5),
        ValueError,
        r"beta_1 must be in \[0, 1\); got 1.5",
    ),
    (
        "Adam epsilon",
        lambda: optimizers.Adam(epsilon="e"),
        TypeError,
        r"epsilon must be a finite number",
    ),
    ("RMSprop rho", lambda: optimizers.RMSprop(rho=None), TypeError, r"rho must be a number"),
    (
        "clipnorm 0",
        lambda: optimizers.SGD(clipnorm=0),
        ValueError,
        r"clipnorm must be a finite number > 0; got 0",
    ),
    (
        "weight_decay str",
        lambda: optimizers.Adam(weight_decay="w"),
        TypeError,
        r"weight_decay must be",
    ),
]


@pytest.mark.parametrize("label,make,exc,message", CONSTRUCTORS, ids=[c[0] for c in CONSTRUCTORS])
def test_constructor_rejects(label, make, exc, message):
    with pytest.raises(exc, match=message):
        make()


def test_absurd_sizes_are_refused_before_allocating():
    out = _run_limited(
        """
        import rnnkit
        from rnnkit import layers
        for make in (
            lambda: rnnkit.LSTM(10**6, 10**6),
            lambda: rnnkit.GRU(10**5, 10**4),
            lambda: rnnkit.RNN(8, 40000, num_layers=2),
            lambda: rnnkit.Sequential([layers.Input((4,)), layers.Dense(10**12)]),
            lambda: rnnkit.Sequential([layers.Input((5, 3)), layers.LSTM(10**6)]),
            lambda: rnnkit.Sequential(
                [layers.Input((5,), dtype="int32"), layers.Embedding(10**7, 10**6)]
            ),
        ):
            try:
                make()
            except ValueError as e:
                assert "MAX_ELEMENTS" in str(e), e
                print("refused")
        """
    )
    assert out.split() == ["refused"] * 6


# ----------------------------------------------------------- forward inputs (defect 12)


def test_broadcast_view_of_absurd_dense_size_is_refused_before_copying():
    out = _run_limited(
        """
        import numpy as np, rnnkit
        m = rnnkit.LSTM(3, 4).eval()
        big = np.broadcast_to(np.zeros((1, 1, 3), np.float32), (10**9, 1, 3))
        try:
            m(big)
        except ValueError as e:
            print(e)
        """
    )
    assert "[LSTM] x has shape (1000000000, 1, 3)" in out and "MAX_ELEMENTS" in out


def test_output_of_absurd_size_is_refused_before_copying():
    m = rnnkit.LSTM(3, 4096).eval()
    x = np.broadcast_to(np.zeros((1, 1, 3), np.float32), (10**6, 1, 3))
    with pytest.raises(ValueError, match=r"x of shape \(1000000, 1, 3\): y would have shape"):
        m(x)


def _module_cases():
    return [
        ("x str", lambda m: m("abc"), TypeError, r"\[LSTM\] x has dtype <U3"),
        ("x float64", lambda m: m(X.astype(np.float64)), TypeError, r"x has dtype float64"),
        ("x 4d", lambda m: m(X[None]), ValueError, r"x has 4 dims"),
        ("x wrong features", lambda m: m(X[..., :2]), ValueError, r"x has shape \(5, 2, 2\)"),
        ("x empty", lambda m: m(X[:0]), ValueError, r"batch and time must be >= 1"),
        ("hx not tuple", lambda m: m(X, 3), TypeError, r"hx must be a tuple"),
        (
            "h0 shape",
            lambda m: m(X, (np.zeros((2, 2, 8), np.float32), None)),
            ValueError,
            r"h0 has shape \(2, 2, 8\)",
        ),
        (
            "lengths float",
            lambda m: m(X, None, np.array([1.0, 2.0])),
            TypeError,
            r"lengths must be integers",
        ),
        (
            "lengths big",
            lambda m: m(X, None, np.array([9, 1])),
            ValueError,
            r"lengths must be in 1..5",
        ),
        (
            "backward no forward",
            lambda m: m.backward(X),
            ValueError,
            r"no forward to differentiate",
        ),
        (
            "lsd not dict",
            lambda m: m.load_state_dict([1]),
            TypeError,
            r"load_state_dict\] expected a dict",
        ),
        ("lsd missing", lambda m: m.load_state_dict({}), ValueError, r"keys do not match: missing"),
        (
            "lsd shape",
            lambda m: m.load_state_dict({**m.state_dict(), "bias_ih_l0": np.zeros(3)}),
            ValueError,
            r"bias_ih_l0 has shape \(3,\); expected \(16,\)",
        ),
        (
            "lsd str",
            lambda m: m.load_state_dict({**m.state_dict(), "bias_ih_l0": "abc"}),
            TypeError,
            r"bias_ih_l0 has dtype <U3",
        ),
        (
            "lsd bool",
            lambda m: m.load_state_dict({**m.state_dict(), "bias_ih_l0": np.ones(16, bool)}),
            TypeError,
            r"bias_ih_l0 has dtype bool",
        ),
        (
            "lsd overflow",
            lambda m: m.load_state_dict(
                {
                    **{k: v.astype(np.float64) for k, v in m.state_dict().items()},
                    "weight_hh_l0": np.full((16, 4), 1e300),
                }
            ),
            ValueError,
            r"weight_hh_l0 holds 1e\+300, outside the range of this module.s (float32|bfloat16)",
        ),
        (
            "lsd overflow last",
            lambda m: m.load_state_dict({**m.state_dict(), "bias_hh_l0": np.full(16, -1e39)}),
            ValueError,
            r"bias_hh_l0 holds -1e\+39",
        ),
        ("stream batch", lambda m: m.stream(0), ValueError, r"batch"),
    ]


@pytest.mark.parametrize("mode", ["train", "eval", "bfloat16"])
@pytest.mark.parametrize(
    "label,call,exc,message", _module_cases(), ids=[c[0] for c in _module_cases()]
)
def test_module_call_rejects_and_changes_nothing(mode, label, call, exc, message):
    m = rnnkit.LSTM(3, 4, seed=1)
    if mode == "eval":
        m.eval()
    elif mode == "bfloat16":
        m.bfloat16()
    if label == "stream batch" and mode == "train":
        m.eval()
    before = {k: v.copy() for k, v in m.state_dict().items()}
    writeable = [p.flags.writeable for p in m.parameters()]
    training = m.training
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(exc, match=message):
            call(m)
    assert m.training == training
    assert [p.flags.writeable for p in m.parameters()] == writeable
    after = m.state_dict()
    for k, v in before.items():
        assert np.array_equal(after[k], v), f"{label}: {k} changed"
    m.eval() if mode != "train" else None
    y0 = rnnkit.LSTM(3, 4, seed=1)
    y0.load_state_dict(before)
    if mode != "train":
        y0.eval()
    if mode == "bfloat16":
        y0.bfloat16()
    assert np.array_equal(m(X)[0], y0(X)[0])


# ------------------------------------------------------------------ fit/evaluate (10)


def _seq():
    m = rnnkit.Sequential([layers.LSTM(4), layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


XB = np.zeros((8, 5, 3), np.float32)
YB = np.zeros((8, 1), np.float32)

FIT_CASES = [
    (
        "y shape",
        lambda m: m.fit(XB, np.zeros((8, 7)), verbose=0),
        ValueError,
        r"y has shape \(8, 7\)",
    ),
    ("y count", lambda m: m.fit(XB, YB[:3], verbose=0), ValueError, r"x has 8 samples but y has 3"),
    (
        "y str",
        lambda m: m.fit(XB, np.array(["a"] * 8)[:, None], verbose=0),
        TypeError,
        r"y must be numeric",
    ),
    (
        "val_data",
        lambda m: m.fit(XB, YB, validation_data=(XB, YB[:3]), verbose=0),
        ValueError,
        r"validation_data\[1\] has 3",
    ),
    (
        "val_data type",
        lambda m: m.fit(XB, YB, validation_data=XB, verbose=0),
        ValueError,
        r"validation_data must be a tuple",
    ),
    (
        "val_split str",
        lambda m: m.fit(XB, YB, validation_split="a", verbose=0),
        TypeError,
        r"validation_split must be a number in \[0, 1\); got str 'a'",
    ),
    (
        "val_split tiny",
        lambda m: m.fit(XB, YB, validation_split=0.01, verbose=0),
        ValueError,
        r"validation_split=0.01 leaves 0",
    ),
    (
        "epochs",
        lambda m: m.fit(XB, YB, epochs="x", verbose=0),
        ValueError,
        r"epochs must be an int",
    ),
    (
        "initial_epoch",
        lambda m: m.fit(XB, YB, initial_epoch=-1, verbose=0),
        ValueError,
        r"initial_epoch must be an int >= 0",
    ),
    (
        "callbacks",
        lambda m: m.fit(XB, YB, callbacks=[1], verbose=0),
        TypeError,
        r"callbacks must be rnnkit.callbacks.Callback",
    ),
    (
        "batch_size",
        lambda m: m.fit(XB, YB, batch_size=0, verbose=0),
        ValueError,
        r"batch_size must be a positive int",
    ),
    ("x str", lambda m: m.fit(np.array([["a"]]), YB, verbose=0), TypeError, r"x must be numeric"),
    ("x 1d", lambda m: m.fit(np.zeros(8), YB, verbose=0), ValueError, r"x has shape \(8,\)"),
    (
        "evaluate y",
        lambda m: m.evaluate(XB, np.zeros((8, 7)), verbose=0),
        ValueError,
        r"y has shape \(8, 7\)",
    ),
    (
        "train_on_batch y",
        lambda m: m.train_on_batch(XB, np.zeros((8, 7))),
        ValueError,
        r"y has shape \(8, 7\)",
    ),
    (
        "test_on_batch y",
        lambda m: m.test_on_batch(XB, np.zeros((8, 7))),
        ValueError,
        r"y has shape \(8, 7\)",
    ),
    (
        "predict batch",
        lambda m: m.predict(XB, batch_size=-1, verbose=0),
        ValueError,
        r"batch_size must be a positive int",
    ),
    ("verbose", lambda m: m.fit(XB, YB, verbose=7), ValueError, r"verbose must be"),
]


@pytest.mark.parametrize("label,call,exc,message", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_rejected_training_call_leaves_an_unbuilt_model_unbuilt(label, call, exc, message):
    m = _seq()
    with pytest.raises(exc, match=message):
        call(m)
    assert not m.built and not any(lay.built for lay in m.layers), label
    m.fit(XB, YB, verbose=0)  # and the model still trains afterwards
    assert m.built


@pytest.mark.parametrize("label,call,exc,message", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_rejected_training_call_leaves_a_built_model_unchanged(label, call, exc, message):
    m = _seq()
    m.build((None, 5, 3))
    before = m.get_weights()
    with pytest.raises(exc, match=message):
        call(m)
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))


# ---------------------------------------------------------------------- pickle (11)


@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
@pytest.mark.parametrize("mode", ["train", "eval", "bfloat16"])
def test_pickle_round_trips_in_every_mode(cls, mode):
    m = cls(3, 16, num_layers=2, bidirectional=True, seed=3)
    if mode == "eval":
        m.eval()
    elif mode == "bfloat16":
        m.bfloat16()
    m2 = pickle.loads(pickle.dumps(m))
    assert (m2.training, m2.weight_dtype) == (m.training, m.weight_dtype)
    for k, v in m.state_dict().items():
        assert np.array_equal(m2.state_dict()[k], v)
    assert np.array_equal(m(X)[0], m2(X)[0])
    if mode != "bfloat16":
        m2.train()
        m2.eval()
        m2.train()
        assert np.array_equal(m2(X)[0], m.train()(X)[0])


def test_pickle_round_trips_a_trained_sequential():
    m = _seq()
    m.fit(XB + 1, YB + 1, verbose=0)
    m2 = pickle.loads(pickle.dumps(m))
    assert np.array_equal(m.predict(XB, verbose=0), m2.predict(XB, verbose=0))
    m2.fit(XB, YB, verbose=0)
