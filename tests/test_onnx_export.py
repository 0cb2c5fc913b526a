"""rnnkit.onnx.export: files ONNX Runtime runs with rnnkit's outputs, and round trips
rnnkit -> ONNX -> rnnkit.onnx.InferenceSession."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_util import core_has, onnx, ort, ort_session, rel_err

import rnnkit
from rnnkit.onnx import InferenceSession, export

TOL = 1e-5
rng = np.random.default_rng(0)


def _run_module(m, lengths, init, B=3, T=7):
    x = rng.standard_normal((B, T, m.input_size) if m.batch_first else (T, B, m.input_size)).astype(
        m.dtype
    )
    feeds, kw, hx = {"x": x}, {}, None
    LD = m.num_layers * m.num_directions
    if lengths:
        feeds["lengths"] = kw["lengths"] = np.array([T, 2, 5][:B], np.int64)
    if init:
        Hout = getattr(m, "proj_size", 0) or m.hidden_size
        feeds["h0"] = rng.standard_normal((LD, B, Hout)).astype(m.dtype)
        hx = feeds["h0"]
        if m._cell == "LSTM":
            feeds["c0"] = rng.standard_normal((LD, B, m.hidden_size)).astype(m.dtype)
            hx = (feeds["h0"], feeds["c0"])
    y, st = m(x, hx, **kw)
    return feeds, [y, *(st if isinstance(st, tuple) else [st])]


def _check(m, lengths=False, init=False, ort_runs=True):
    m.eval()
    proto = export(m, lengths=lengths, initial_states=init)
    for B, T in ((3, 7), (1, 4)):
        feeds, want = _run_module(m, lengths, init, B, T)
        got = InferenceSession(proto.SerializeToString()).run(None, feeds)
        e = max(rel_err(g, w) for g, w in zip(got, want))
        assert e < TOL, f"round trip {m}: {e:.2e}"
        if ort is not None and ort_runs:
            o = ort_session(proto).run(None, feeds)
            e2 = max(rel_err(g, w) for g, w in zip(o, want))
            assert e2 < TOL, f"ONNX Runtime {m}: {e2:.2e}"


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("bi", [False, True])
@pytest.mark.parametrize("bf", [False, True])
def test_core_module(cell, layers, bi, bf):
    m = getattr(rnnkit, cell)(
        4, 5, num_layers=layers, bidirectional=bi, batch_first=bf, seed=layers
    )
    _check(m, lengths=bi, init=layers > 1)


def test_options():
    _check(rnnkit.LSTM(4, 5, peephole=True, bidirectional=True, seed=1), lengths=True, init=True)
    _check(rnnkit.GRU(4, 5, reset_after=False, seed=2), lengths=True, init=True)
    _check(rnnkit.LSTM(4, 5, activation="relu", seed=3))
    _check(rnnkit.GRU(4, 5, activation="sigmoid", seed=3))
    _check(rnnkit.LSTM(4, 5, activation="linear", seed=4))  # ONNX Affine(1, 0)
    _check(rnnkit.LSTM(4, 5, bias=False, num_layers=2, seed=5))
    _check(
        rnnkit.GRU(4, 6, dtype="float64", seed=6), lengths=True, ort_runs=False
    )  # ORT: no double GRU


def test_keras_hard_sigmoid():
    if not core_has("cell_activation"):
        pytest.skip(
            "this rnnkit core lacks (name, alpha, beta) activations (the core half of issue 14)"
        )
    _check(rnnkit.LSTM(4, 5, recurrent_activation="hard_sigmoid", seed=7))


def test_new_core_options():
    if not (core_has("clip") and core_has("reverse") and core_has("RNN")):
        pytest.skip("this rnnkit core lacks clip/reverse/RNN (the core half of issue 14)")
    _check(rnnkit.LSTM(4, 5, clip=0.5, input_forget=True, seed=8), lengths=True)
    _check(rnnkit.GRU(4, 5, reverse=True, seed=8), lengths=True)
    _check(rnnkit.RNN(4, 5, num_layers=2, bidirectional=True, seed=9), lengths=True, init=True)
    _check(rnnkit.RNN(4, 5, nonlinearity="relu", seed=9))
    _check(rnnkit.LSTM(4, 5, activation=("leaky_relu", 0.1), cell_activation="softsign", seed=10))


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bi", [False, True])
def test_proj_size(layers, bi):
    # PyTorch's exporter fails on proj_size; rnnkit writes an LSTM over m with R = U W_hr and
    # MatMuls by W_hr after it (see _recurrent_layers), which ONNX Runtime runs.
    m = rnnkit.LSTM(4, 6, proj_size=3, num_layers=layers, bidirectional=bi, seed=11 + layers)
    _check(m, lengths=bi, init=True)
    _check(m, lengths=True, init=False)
    m = rnnkit.LSTM(4, 6, proj_size=2, peephole=True, batch_first=True, seed=13)
    _check(m, lengths=True, init=True)


def _keras_models():
    from rnnkit import layers as L
    from rnnkit.models import Sequential

    out = {
        "lstm_dense": Sequential(
            [L.LSTM(6, input_shape=(None, 3)), L.Dense(2, activation="softmax")]
        ),
        "stacked_seq": Sequential(
            [
                L.LSTM(5, return_sequences=True, input_shape=(None, 3)),
                L.Dropout(0.3),
                L.GRU(4, return_sequences=True, reset_after=False),
                L.Dense(3, activation="tanh"),
            ]
        ),
        "go_backwards": Sequential(
            [
                L.GRU(5, return_sequences=True, go_backwards=True, input_shape=(None, 3)),
                L.LSTM(4, go_backwards=True),
                L.Dense(1, activation="sigmoid"),
            ]
        ),
        "embedding": Sequential(
            [
                L.Input(shape=(None,), dtype="int64"),
                L.Embedding(11, 4),
                L.LSTM(5),
                L.Dense(2, activation="relu"),
            ]
        ),
        "repeat_flatten": Sequential(
            [
                L.LSTM(4, input_shape=(6, 3)),
                L.RepeatVector(2),
                L.GRU(3, return_sequences=True),
                L.Flatten(),
                L.Dense(2, activation="elu"),
            ]
        ),
    }
    for mode in ("concat", "sum", "mul", "ave"):
        for seq in (True, False):
            out[f"bidir_{mode}_{int(seq)}"] = Sequential(
                [
                    L.Bidirectional(
                        L.LSTM(4, return_sequences=seq), merge_mode=mode, input_shape=(None, 3)
                    ),
                    L.Dense(2, activation="softplus"),
                ]
            )
    return out


KERAS = _keras_models()


@pytest.mark.parametrize("name", list(KERAS))
def test_keras_sequential(name, tmp_path):
    model = KERAS[name]
    path = tmp_path / f"{name}.onnx"
    export(model, path)
    for B, T in ((3, 6), (1, 6)):
        if name == "embedding":
            x = rng.integers(0, 11, (B, T)).astype(np.int64)
        else:
            x = rng.standard_normal((B, T, 3)).astype(np.float32)
        want = model.predict(x, verbose=0)
        (got,) = InferenceSession(path).run(None, {"x": x})
        assert rel_err(got, want) < TOL, f"{name}: {rel_err(got, want):.2e}"
        if ort is not None:
            (o,) = ort_session(onnx.load(path)).run(None, {"x": x})
            assert rel_err(o, want) < TOL, f"{name} ONNX Runtime: {rel_err(o, want):.2e}"


def test_export_arguments():
    m = rnnkit.LSTM(3, 4)
    with pytest.raises(ValueError, match="opset must be an int in 14..22"):
        export(m, opset=9)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        export(m, batch_size=0)
    with pytest.raises(TypeError, match="model must be rnnkit.LSTM"):
        export(object())
    p = export(m, batch_size=2, steps=5, opset=21)
    assert [d.dim_value for d in p.graph.input[0].type.tensor_type.shape.dim] == [5, 2, 3]
    assert p.opset_import[0].version == 21


def test_write_is_atomic(tmp_path):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        export(object(), target)
    assert target.read_bytes() == b"old"
    export(rnnkit.GRU(3, 4), target)
    assert InferenceSession(target).get_inputs()[0].name == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
