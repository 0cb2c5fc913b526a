"""ONNX Loop in rnnkit.onnx: trip counts, conditions, loop-carried values, scan outputs,
bodies that read the enclosing graph, nested loops (against ONNX Runtime), the errors at
creation; and the graphs tf2onnx writes for Keras 3's recurrent layers (a GRU becomes a Loop)
against Keras itself."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_util import TensorProto, helper, init, model_of, ort_session, rel_err, tensor_info

from rnnkit.onnx import InferenceSession, OnnxError

rng = np.random.default_rng(0)


def _body(name, nodes, carried, scans, extra_inputs=()):
    """A Loop body: inputs (i, cond_in, *carried), outputs (cond_out, *carried_out, *scans)."""
    inputs = [
        tensor_info(f"{name}_i", np.int64, []),
        tensor_info(f"{name}_cond_in", np.bool_, []),
        *[tensor_info(f"{name}_{c}_in", np.float32, None) for c in carried],
        *extra_inputs,
    ]
    outputs = [
        tensor_info(f"{name}_cond_out", np.bool_, []),
        *[tensor_info(f"{name}_{c}_out", np.float32, None) for c in carried],
        *[tensor_info(s, np.float32, None) for s in scans],
    ]
    return helper.make_graph(nodes, name, inputs, outputs)


def _accumulate_model(trip=True, cond=True, threshold=None):
    """acc += x * w_outer each step; scan output: acc after the step; stops at trip count M
    and, with a threshold, once sum(acc) >= threshold."""
    nodes = [
        helper.make_node("Mul", ["x", "w"], ["b_xw"]),
        helper.make_node("Add", ["b_acc_in", "b_xw"], ["b_acc_out"]),
        helper.make_node("Identity", ["b_acc_out"], ["b_scan"]),
    ]
    if threshold is None:
        nodes.append(helper.make_node("Identity", ["b_cond_in"], ["b_cond_out"]))
    else:  # continue while acc[0, 0] < limit
        nodes += [
            helper.make_node("Gather", ["b_acc_out", "zero0"], ["b_col"], axis=1),
            helper.make_node("Gather", ["b_col", "zero0"], ["b_v"], axis=0),
            helper.make_node("Less", ["b_v", "limit"], ["b_cond_out"]),
        ]
    body = _body("b", nodes, ["acc"], ["b_scan"])
    loop = helper.make_node(
        "Loop", ["M" if trip else "", "c" if cond else "", "acc0"], ["acc_n", "accs"], body=body
    )
    inputs = [tensor_info("x", np.float32, [1, 3]), tensor_info("acc0", np.float32, [1, 3])]
    if trip:
        inputs.append(tensor_info("M", np.int64, []))
    if cond:
        inputs.append(tensor_info("c", np.bool_, []))
    inits = [init("w", np.array([[1.0, 2.0, -1.0]], np.float32))]
    if threshold is not None:
        inits += [
            init("zero0", np.array(0, np.int64)),
            init("limit", np.array(threshold, np.float32)),
        ]
    outputs = [tensor_info("acc_n", np.float32, None), tensor_info("accs", np.float32, None)]
    return model_of([loop], inputs, outputs, inits, opset=17)


def _feeds(trip, cond, m=5, c=True):
    feeds = {
        "x": rng.standard_normal((1, 3)).astype(np.float32),
        "acc0": rng.standard_normal((1, 3)).astype(np.float32),
    }
    if trip:
        feeds["M"] = np.array(m, np.int64)
    if cond:
        feeds["c"] = np.array(c)
    return feeds


def _same_as_ort(model, feeds):
    want = ort_session(model).run(None, feeds)
    got = InferenceSession(model.SerializeToString()).run(None, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
        assert rel_err(g, w) < 1e-6, rel_err(g, w)
    return got


@pytest.mark.parametrize("m", [0, 1, 5])
def test_trip_count_carried_and_scan_outputs(m):
    model = _accumulate_model(trip=True, cond=False)
    feeds = _feeds(True, False, m=m)
    acc_n, accs = _same_as_ort(model, feeds) if m else InferenceSession(model).run(None, feeds)
    expected = feeds["acc0"] + m * feeds["x"] * np.array([[1.0, 2.0, -1.0]], np.float32)
    np.testing.assert_allclose(acc_n, expected, rtol=1e-6, atol=1e-6)
    assert accs.shape[0] == m


def test_condition_false_at_entry_runs_no_step():
    model = _accumulate_model(trip=True, cond=True)
    feeds = _feeds(True, True, m=4, c=False)
    acc_n, accs = InferenceSession(model).run(None, feeds)
    np.testing.assert_array_equal(acc_n, feeds["acc0"])
    assert accs.shape[0] == 0


def test_condition_from_the_body_stops_the_loop():
    model = _accumulate_model(trip=True, cond=True, threshold=3.0)
    feeds = _feeds(True, True, m=100)
    feeds["x"] = np.array([[0.5, 0.0, 0.0]], np.float32)
    feeds["acc0"] = np.zeros((1, 3), np.float32)
    acc_n, accs = _same_as_ort(model, feeds)
    assert accs.shape[0] == 6 and acc_n[0, 0] == 3.0  # 0.5 per step until 3.0 >= limit


def test_nested_loops_and_iteration_numbers():
    # outer: 3 steps; inner: i_outer + 1 steps adding the inner iteration number to a total
    inner_body = helper.make_graph(
        [
            helper.make_node("Cast", ["j"], ["j_f"], to=TensorProto.FLOAT),
            helper.make_node("Add", ["t_in", "j_f"], ["t_out"]),
            helper.make_node("Identity", ["j_cond_in"], ["j_cond_out"]),
        ],
        "inner",
        [
            tensor_info("j", np.int64, []),
            tensor_info("j_cond_in", np.bool_, []),
            tensor_info("t_in", np.float32, []),
        ],
        [tensor_info("j_cond_out", np.bool_, []), tensor_info("t_out", np.float32, [])],
    )
    outer_body = helper.make_graph(
        [
            helper.make_node("Add", ["i", "one"], ["i_plus"]),
            helper.make_node("Loop", ["i_plus", "", "total_in"], ["total_out"], body=inner_body),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Identity", ["total_out"], ["trace"]),
        ],
        "outer",
        [
            tensor_info("i", np.int64, []),
            tensor_info("cond_in", np.bool_, []),
            tensor_info("total_in", np.float32, []),
        ],
        [
            tensor_info("cond_out", np.bool_, []),
            tensor_info("total_out", np.float32, []),
            tensor_info("trace", np.float32, []),
        ],
    )
    loop = helper.make_node("Loop", ["M", "", "t0"], ["t_n", "traces"], body=outer_body)
    model = model_of(
        [loop],
        [tensor_info("t0", np.float32, [])],
        [tensor_info("t_n", np.float32, None), tensor_info("traces", np.float32, None)],
        [init("M", np.array(3, np.int64)), init("one", np.array(1, np.int64))],
    )
    t_n, traces = _same_as_ort(model, {"t0": np.array(0.0, np.float32)})
    # inner sums: 0; 0+1; 0+1+2  -> running totals 0, 1, 4
    np.testing.assert_array_equal(traces, [0.0, 1.0, 4.0])
    assert t_n == 4.0


def test_loop_errors_at_creation():
    body = _body("b", [helper.make_node("Identity", ["b_cond_in"], ["b_cond_out"])], [], [])
    loop = helper.make_node("Loop", ["M", "", "acc0"], ["acc_n"], body=body)
    model = model_of(
        [loop],
        [tensor_info("acc0", np.float32, [2])],
        [tensor_info("acc_n", np.float32, None)],
        [init("M", np.array(2, np.int64))],
    )
    with pytest.raises(
        OnnxError, match=r"Loop node .*: its body takes 2 inputs and gives 1 outputs"
    ):
        InferenceSession(model)
    shadow = _body(
        "b",
        [
            helper.make_node("Identity", ["b_cond_in"], ["b_cond_out"]),
            helper.make_node("Identity", ["b_acc_in"], ["acc0"]),
            helper.make_node("Identity", ["acc0"], ["b_acc_out"]),
        ],
        ["acc"],
        [],
    )
    loop = helper.make_node("Loop", ["M", "", "acc0"], ["acc_n"], body=shadow)
    model = model_of(
        [loop],
        [tensor_info("acc0", np.float32, [2])],
        [tensor_info("acc_n", np.float32, None)],
        [init("M", np.array(2, np.int64))],
    )
    with pytest.raises(OnnxError, match=r"its body redefines \['acc0'\]"):
        InferenceSession(model)
    no_body = helper.make_node("Loop", ["M", "", "acc0"], ["acc_n"])
    model = model_of(
        [no_body],
        [tensor_info("acc0", np.float32, [2])],
        [tensor_info("acc_n", np.float32, None)],
        [init("M", np.array(2, np.int64))],
    )
    with pytest.raises(OnnxError, match=r"has no body graph"):
        InferenceSession(model)


def test_run_errors_inside_a_body_name_the_body_node():
    body = _body(
        "b",
        [
            helper.make_node("Identity", ["b_cond_in"], ["b_cond_out"]),
            helper.make_node("MatMul", ["b_acc_in", "w"], ["b_acc_out"], name="body_matmul"),
        ],
        ["acc"],
        [],
    )
    loop = helper.make_node("Loop", ["M", "", "acc0"], ["acc_n"], body=body)
    model = model_of(
        [loop],
        [tensor_info("acc0", np.float32, None)],
        [tensor_info("acc_n", np.float32, None)],
        [init("M", np.array(2, np.int64)), init("w", np.ones((3, 3), np.float32))],
    )
    sess = InferenceSession(model)
    np.testing.assert_array_equal(
        sess.run(None, {"acc0": np.ones((1, 3), np.float32)})[0], [[9.0] * 3]
    )
    with pytest.raises(ValueError, match=r"MatMul node 'body_matmul' failed"):
        sess.run(None, {"acc0": np.ones((1, 4), np.float32)})


# ------------------------------------------------------------------------------ tf2onnx


def _tf2onnx_model(keras_layers, features=3):
    try:  # tf2onnx follows TensorFlow's releases with a delay: it may fail to import
        import keras
        import tensorflow as tf
        import tf2onnx
    except Exception as e:  # noqa: BLE001 - any failure to import means: skip
        pytest.skip(f"tensorflow, keras and tf2onnx are needed: {type(e).__name__}: {e}")
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((None, features)), *keras_layers(keras.layers)])
    spec = (tf.TensorSpec((None, None, features), tf.float32, name="x"),)
    fn = tf.function(lambda x: model(x), input_signature=spec)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=17)
    return model, proto


TF2ONNX = {
    # Keras 3's GRU: tf2onnx writes a Loop around the cell's ops
    "gru": lambda L: [L.GRU(4, return_sequences=True), L.GRU(4, reset_after=False), L.Dense(2)],
    # LSTM becomes an ONNX LSTM node; the Bidirectional GRU two Loops and a ReverseSequence
    "lstm_bigru": lambda L: [
        L.LSTM(5, return_sequences=True),
        L.Bidirectional(L.GRU(3)),
        L.Dense(2),
    ],
    "simplernn_backwards_lstm": lambda L: [
        L.SimpleRNN(4, return_sequences=True),
        L.LSTM(3, go_backwards=True),
    ],
}


@pytest.mark.parametrize("name", sorted(TF2ONNX))
def test_tf2onnx_keras_models(name):
    model, proto = _tf2onnx_model(TF2ONNX[name])
    sess = InferenceSession(proto.SerializeToString())
    for B, T in ((2, 6), (1, 1), (3, 11)):
        x = rng.standard_normal((B, T, 3)).astype(np.float32)
        want = model.predict(x, verbose=0)
        (got,) = sess.run(None, {"x": x})
        assert rel_err(got, want) < 1e-5, f"{name} B={B} T={T}: {rel_err(got, want):.2e}"
