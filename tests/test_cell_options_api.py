"""The API of the ONNX options and of rnnkit.RNN: activation arguments and their normal form,
clip / input_forget / reverse, pickling, the state dict, and every bad argument's error.

The numbers these options compute are tested against the numpy reference
(test_reference_options.py), finite differences, PyTorch (test_golden.py,
test_torch_live.py) and ONNX Runtime (test_onnxruntime_cells.py).
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

import rnnkit

I, H, T, B = 4, 6, 5, 3


def x32(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("tanh", "tanh"),
        (("softplus",), "softplus"),
        (["relu", 0.0], "relu"),
        ("hard_sigmoid", ("hard_sigmoid", 1 / 6, 0.5)),
        (("hard_sigmoid", 0.2), ("hard_sigmoid", 0.2, 0.5)),
        ("leaky_relu", ("leaky_relu", 0.01, 0.0)),
        (("leaky_relu", 0.1), ("leaky_relu", 0.1, 0.0)),
        (("leaky_relu", 0.1, 0.0), ("leaky_relu", 0.1, 0.0)),
        ("affine", ("affine", 1.0, 0.0)),
        (["affine", 2, -1], ("affine", 2.0, -1.0)),
        ("thresholded_relu", ("thresholded_relu", 1.0, 0.0)),
        ("scaled_tanh", ("scaled_tanh", 1.0, 1.0)),
        (("scaled_tanh", np.float32(0.5), 2), ("scaled_tanh", 0.5, 2.0)),
        ("elu", ("elu", 1.0, 0.0)),
    ],
)
def test_activation_normal_form(given: Any, normal: Any) -> None:
    m = rnnkit.LSTM(I, H, activation=given, recurrent_activation=given, cell_activation=given)
    for slot in ("activation", "recurrent_activation", "cell_activation"):
        got = getattr(m, slot)
        assert got == normal and type(got) is type(normal), f"{slot}: {got!r} != {normal!r}"
        if isinstance(got, tuple):
            assert all(type(v) is float for v in got[1:]), f"{slot}: {got!r} holds non-floats"
    again = rnnkit.LSTM(I, H, activation=m.activation, cell_activation=m.cell_activation)
    assert again.activation == normal and again.cell_activation == normal, "not a fixed point"


def test_equivalent_specs_compute_the_same_and_defaults_apply() -> None:
    x = x32(T, B, I)
    ys = []
    for spec in ("leaky_relu", ("leaky_relu", 0.01), ["leaky_relu", 0.01, 0.0]):
        m = rnnkit.GRU(I, H, seed=3, activation=spec).eval()
        ys.append(m(x)[0])
    assert np.array_equal(ys[0], ys[1]) and np.array_equal(ys[0], ys[2])
    other = rnnkit.GRU(I, H, seed=3, activation=("leaky_relu", 0.3)).eval()(x)[0]
    assert np.abs(other - ys[0]).max() > 1e-4, "alpha has no effect"
    # cell_activation None means the same as activation
    a = rnnkit.LSTM(I, H, seed=2, activation="softsign").eval()
    b = rnnkit.LSTM(I, H, seed=2, activation="softsign", cell_activation="softsign").eval()
    c = rnnkit.LSTM(I, H, seed=2, activation="softsign", cell_activation="tanh").eval()
    assert a.cell_activation is None
    assert np.array_equal(a(x)[0], b(x)[0])
    assert np.abs(a(x)[0] - c(x)[0]).max() > 1e-4, "cell_activation has no effect"


@pytest.mark.parametrize("slot", ["activation", "recurrent_activation", "cell_activation"])
@pytest.mark.parametrize(
    ("value", "exc", "pattern"),
    [
        ("gelu", ValueError, r"must be one of 'tanh', .*'elu'; got 'gelu'"),
        ("Tanh", ValueError, r"got 'Tanh'"),
        (3, TypeError, r"must be an activation name or a tuple \(name, alpha\[, beta\]\); got 3"),
        ((), TypeError, r"must be an activation name or a tuple"),
        (("elu", 1.0, 0.0, 0.0), TypeError, r"must be an activation name or a tuple"),
        ((0.1, "elu"), TypeError, r"must be an activation name or a tuple"),
        (("tanh", 1.0), ValueError, r"'tanh' takes no parameters; got alpha = 1.0"),
        (("elu", 1.0, 0.5), ValueError, r"'elu' takes only alpha; got beta = 0.5"),
        (("elu", "1"), TypeError, r"'elu': alpha must be a number; got '1'"),
        (("elu", True), TypeError, r"'elu': alpha must be a number; got True"),
        (("affine", 1.0, float("nan")), ValueError, r"'affine': beta must be finite; got nan"),
        (("hard_sigmoid", float("inf")), ValueError, r"alpha must be finite; got inf"),
    ],
)
def test_bad_activation_arguments(slot: str, value: Any, exc: type, pattern: str) -> None:
    with pytest.raises(exc, match=rf"\[LSTM\] {slot} .*{pattern}|\[LSTM\] {slot} {pattern}"):
        rnnkit.LSTM(I, H, **{slot: value})


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        ({"clip": 0}, ValueError, r"clip must be None or a positive number; got 0"),
        ({"clip": -1.5}, ValueError, r"clip must be None or a positive number; got -1.5"),
        ({"clip": float("inf")}, ValueError, r"clip must be None or a positive number; got inf"),
        ({"clip": float("nan")}, ValueError, r"clip must be None or a positive number; got nan"),
        ({"clip": "1"}, TypeError, r"clip must be None or a positive number; got '1'"),
        ({"clip": True}, TypeError, r"clip must be None or a positive number; got True"),
        ({"reverse": 1}, TypeError, r"reverse must be a bool; got 1"),
        (
            {"reverse": True, "bidirectional": True},
            ValueError,
            r"reverse=True runs one direction backwards in time; bidirectional=True",
        ),
    ],
)
def test_bad_option_arguments(cell: str, kwargs: dict[str, Any], exc: type, pattern: str) -> None:
    with pytest.raises(exc, match=rf"\[{cell}\] {pattern}"):
        getattr(rnnkit, cell)(I, H, **kwargs)


def test_input_forget_is_lstm_only_and_a_bool() -> None:
    with pytest.raises(TypeError, match=r"\[LSTM\] input_forget must be a bool; got 'yes'"):
        rnnkit.LSTM(I, H, input_forget="yes")
    with pytest.raises(TypeError, match="input_forget"):
        rnnkit.GRU(I, H, input_forget=True)  # type: ignore[call-arg]


def test_rnn_module_errors() -> None:
    with pytest.raises(ValueError, match=r"\[RNN\] nonlinearity must be 'tanh' or 'relu'.*'gelu'"):
        rnnkit.RNN(I, H, nonlinearity="gelu")
    m = rnnkit.RNN(I, H, seed=0)
    x = x32(T, B, I)
    with pytest.raises(ValueError, match=r"\[RNN\] h0 has shape \(1, 3, 5\); expected \(1, 3, 6\)"):
        m(x, np.zeros((1, B, H - 1), np.float32))
    with pytest.raises(TypeError, match="recurrent_activation"):
        rnnkit.RNN(I, H, recurrent_activation="sigmoid")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=r"\[RNN.backward\] no forward to differentiate"):
        m.backward(np.zeros((T, B, H), np.float32))


def test_rnn_state_dict_matches_torch_layout_and_loads_torch_weights() -> None:
    torch = pytest.importorskip("torch")
    t = torch.nn.RNN(I, H, num_layers=2, nonlinearity="relu", bidirectional=True)
    m = rnnkit.RNN(I, H, num_layers=2, nonlinearity="relu", bidirectional=True)
    want = {k: tuple(v.shape) for k, v in t.state_dict().items()}
    got = {k: v.shape for k, v in m.state_dict().items()}
    assert got == want, f"state_dict layout {got} != torch's {want}"
    assert list(got) == list(want), "state_dict key order differs from torch's"
    m.load_state_dict(t.state_dict())
    x = torch.randn(T, B, I)
    with torch.no_grad():
        ty, th = t(x)
    y, h = m.eval()(x.numpy())
    err = max(np.abs(y - ty.numpy()).max(), np.abs(h - th.numpy()).max())
    assert err < 1e-5, f"vs torch.nn.RNN after load_state_dict: {err:.2e}"


@pytest.mark.parametrize(
    ("cell", "kw"),
    [
        ("RNN", {"nonlinearity": "relu", "num_layers": 2, "clip": 0.5}),
        ("RNN", {"activation": ("elu", 0.5), "reverse": True}),
        (
            "LSTM",
            {
                "activation": ("scaled_tanh", 0.9, 1.1),
                "recurrent_activation": "hard_sigmoid",
                "cell_activation": "softsign",
                "clip": 2.5,
                "input_forget": True,
                "peephole": True,
                "reverse": True,
            },
        ),
        ("GRU", {"clip": 1.5, "reverse": True, "activation": ("leaky_relu", 0.2)}),
    ],
)
def test_pickle_round_trip_keeps_options_and_results(cell: str, kw: dict[str, Any]) -> None:
    m = getattr(rnnkit, cell)(I, H, seed=4, **kw).eval()
    m2 = pickle.loads(pickle.dumps(m))
    for attr in ("activation", "recurrent_activation", "cell_activation", "clip", "reverse"):
        assert getattr(m2, attr) == getattr(m, attr), f"{attr} lost in the pickle"
    x = x32(T, B, I)
    assert np.array_equal(m(x)[0], m2(x)[0]), "pickled module computes differently"
    assert repr(m2) == repr(m)


def test_repr_shows_the_options() -> None:
    assert repr(rnnkit.RNN(I, H)) == "RNN(4, 6)"
    assert repr(rnnkit.RNN(I, H, nonlinearity="relu")) == "RNN(4, 6, nonlinearity='relu')"
    assert (
        repr(rnnkit.RNN(I, H, activation=("elu", 0.5), clip=1.0))
        == "RNN(4, 6, clip=1.0, activation=('elu', 0.5, 0.0))"
    )
    assert (
        repr(rnnkit.LSTM(I, H, input_forget=True, reverse=True))
        == "LSTM(4, 6, input_forget=True, reverse=True)"
    )


def test_input_forget_leaves_the_forget_rows_unused_with_zero_gradients() -> None:
    """ONNX weights load unchanged (the f rows stay in the state dict); they change nothing
    and get zero gradients, and so do the f peepholes."""
    m = rnnkit.LSTM(I, H, num_layers=2, seed=1, input_forget=True, peephole=True, dtype="float64")
    x = np.random.default_rng(0).standard_normal((T, B, I))
    y, (h, c) = m(x)
    m.zero_grad()
    m.backward(np.cos(y), (np.sin(h), np.cos(c)))
    f = slice(H, 2 * H)  # rows of gate f (i, f, g, o), and peepholes i, f, o
    for k, g in m.grads.items():
        assert np.abs(g).max() > 0, f"{k}: no gradient at all"
        assert np.all(g[f] == 0), f"{k}: the unused f rows got gradient {np.abs(g[f]).max():.2e}"
        others = np.delete(g, np.s_[H : 2 * H], axis=0)
        assert np.abs(others).max() > 0, f"{k}: the used rows got no gradient"
    m.eval()
    sd = m.state_dict()
    for k in sd:
        sd[k][f] = 123.0
    m.load_state_dict(sd)
    y2, (h2, c2) = m(x)
    assert np.array_equal(y, y2) and np.array_equal(c, c2), "the f rows changed the outputs"


def test_reverse_is_the_time_flipped_forward_run() -> None:
    """Without lengths a reverse layer equals the forward layer on x[::-1], flipped back (to
    rounding: the input projection's GEMM may sum a row differently at another position)."""
    x = x32(T, B, I)
    for cell in ("LSTM", "GRU", "RNN"):
        fwd = getattr(rnnkit, cell)(I, H, seed=6).eval()
        rev = getattr(rnnkit, cell)(I, H, seed=6, reverse=True).eval()
        y_f, s_f = fwd(np.ascontiguousarray(x[::-1]))
        y_r, s_r = rev(x)
        h_f = s_f[0] if cell == "LSTM" else s_f
        h_r = s_r[0] if cell == "LSTM" else s_r
        err = max(np.abs(y_r - y_f[::-1]).max(), np.abs(h_r - h_f).max())
        assert err < 1e-6, f"{cell}: reverse differs from the flipped forward run by {err:.2e}"
        other = np.abs(fwd(x)[0] - y_r).max()
        assert other > 1e-3, f"{cell}: reverse equals the forward run ({other:.2e})"
