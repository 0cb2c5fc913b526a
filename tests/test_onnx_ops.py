"""Every op of the rnnkit.onnx interpreter against ONNX Runtime on small graphs, with the
forms that differ across opsets (attributes that became inputs, Softmax's axis)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_util import TensorProto, helper, init, model_of, ort_session, rel_err, tensor_info

from rnnkit.onnx import InferenceSession, supported_ops

rng = np.random.default_rng(0)
A = rng.standard_normal((2, 3, 4)).astype(np.float32)
B4 = rng.standard_normal((4,)).astype(np.float32) + 2.0


def i64(*v):
    return np.array(v, dtype=np.int64)


# (id, opset, op, input arrays (feeds, then constants as initializers), n_const, attrs)
BA = rng.random((2, 3, 4)) < 0.5
BB = rng.random((4,)) < 0.5

CASES = [
    ("Add", 17, "Add", [A, B4], 1, {}),
    ("Less", 17, "Less", [A, B4], 1, {}),
    ("Greater", 17, "Greater", [A, B4], 0, {}),
    ("Equal", 17, "Equal", [i64(1, 2, 3), i64(1, 0, 3)], 0, {}),
    ("LessOrEqual", 17, "LessOrEqual", [i64(1, 2, 3), i64(1, 0, 4)], 1, {}),
    ("GreaterOrEqual", 17, "GreaterOrEqual", [A, A[:, :1]], 0, {}),
    ("And", 17, "And", [BA, BB], 0, {}),
    ("Or", 17, "Or", [BA, BB], 1, {}),
    ("Xor", 17, "Xor", [BA, BB], 0, {}),
    ("Not", 17, "Not", [BA], 0, {}),
    ("Sub", 17, "Sub", [A, B4], 0, {}),
    ("Mul", 17, "Mul", [A, A], 0, {}),
    ("Div", 17, "Div", [A, B4], 1, {}),
    ("Div-int", 17, "Div", [i64(7, -7, 6), i64(2, 2, -4)], 0, {}),
    ("Sigmoid", 17, "Sigmoid", [A * 30], 0, {}),
    ("Tanh", 17, "Tanh", [A], 0, {}),
    ("Relu", 17, "Relu", [A], 0, {}),
    ("Softsign", 17, "Softsign", [A], 0, {}),
    ("Softplus", 17, "Softplus", [A], 0, {}),
    ("HardSigmoid", 17, "HardSigmoid", [A], 0, {"alpha": 0.3, "beta": 0.4}),
    ("LeakyRelu", 17, "LeakyRelu", [A], 0, {"alpha": 0.2}),
    ("Elu", 17, "Elu", [A], 0, {"alpha": 0.7}),
    ("Neg", 17, "Neg", [A], 0, {}),
    ("Exp", 17, "Exp", [A], 0, {}),
    ("Abs", 17, "Abs", [A], 0, {}),
    ("Softmax-13", 13, "Softmax", [A], 0, {"axis": 1}),
    ("Softmax-13-default", 13, "Softmax", [A], 0, {}),
    ("Softmax-11-2d", 11, "Softmax", [A], 0, {"axis": 1}),
    ("Softmax-11-default", 11, "Softmax", [A], 0, {}),
    ("LogSoftmax-13", 13, "LogSoftmax", [A], 0, {"axis": -1}),
    ("LogSoftmax-11", 11, "LogSoftmax", [A], 0, {"axis": 2}),
    ("MatMul", 17, "MatMul", [A, rng.standard_normal((4, 5)).astype(np.float32)], 1, {}),
    ("MatMul-batched", 17, "MatMul", [A, rng.standard_normal((2, 4, 5)).astype(np.float32)], 0, {}),
    (
        "Gemm",
        17,
        "Gemm",
        [A[0], rng.standard_normal((5, 4)).astype(np.float32), B4[:1]],
        2,
        {"transB": 1, "alpha": 0.5, "beta": 2.0},
    ),
    (
        "Gemm-transA",
        17,
        "Gemm",
        [A[0].T.copy(), rng.standard_normal((4, 5)).astype(np.float32)],
        1,
        {"transA": 1},
    ),
    ("Transpose", 17, "Transpose", [A], 0, {"perm": [2, 0, 1]}),
    ("Transpose-default", 17, "Transpose", [A], 0, {}),
    ("Squeeze-13", 13, "Squeeze", [A[:, :1], i64(1)], 1, {}),
    ("Squeeze-13-all", 13, "Squeeze", [A[:1, :1]], 0, {}),
    ("Squeeze-11", 11, "Squeeze", [A[:, :1]], 0, {"axes": [-2]}),
    ("Unsqueeze-13", 13, "Unsqueeze", [A, i64(0, -1)], 1, {}),
    ("Unsqueeze-11", 11, "Unsqueeze", [A], 0, {"axes": [1, 4]}),
    ("Reshape", 17, "Reshape", [A, i64(0, -1)], 1, {}),
    ("Reshape-runtime-shape", 17, "Reshape", [A, i64(4, 0, -1)], 0, {}),
    (
        "Reshape-allowzero",
        17,
        "Reshape",
        [np.zeros((0, 3), np.float32), i64(3, 0)],
        1,
        {"allowzero": 1},
    ),
    ("Flatten", 17, "Flatten", [A], 0, {"axis": 2}),
    ("Flatten-neg", 17, "Flatten", [A], 0, {"axis": -1}),
    ("Shape", 17, "Shape", [A], 0, {}),
    ("Shape-15-slice", 15, "Shape", [A], 0, {"start": 1, "end": -0}),
    ("Shape-15-start", 15, "Shape", [A], 0, {"start": -2}),
    ("Size", 17, "Size", [A], 0, {}),
    ("Concat", 17, "Concat", [A, A[:, :1]], 1, {"axis": 1}),
    ("Concat-neg", 17, "Concat", [A, A], 0, {"axis": -1}),
    ("Split-13-input", 13, "Split", [A, i64(1, 3)], 1, {"axis": 2}),
    ("Split-13-equal", 13, "Split", [A], 0, {"axis": 2}),
    ("Split-11-attr", 11, "Split", [A], 0, {"axis": 1, "split": [2, 1]}),
    ("Split-18-num", 18, "Split", [A], 0, {"axis": 1, "num_outputs": 2}),
    ("Slice-13", 13, "Slice", [A, i64(0, 1), i64(2, 100), i64(0, 2), i64(1, 2)], 4, {}),
    ("Slice-13-neg", 13, "Slice", [A, i64(-1), i64(-(2**63)), i64(1), i64(-1)], 4, {}),
    ("Slice-13-runtime", 13, "Slice", [A, i64(1), i64(-1), i64(2)], 0, {}),
    ("Slice-9-attr", 9, "Slice", [A], 0, {"starts": [1], "ends": [3], "axes": [2]}),
    ("Gather", 17, "Gather", [A, i64(1, -1, 0)], 1, {"axis": 2}),
    ("Gather-scalar", 17, "Gather", [A, np.array(1, np.int64)], 1, {"axis": 1}),
    (
        "Gather-embedding",
        17,
        "Gather",
        [rng.standard_normal((7, 3)).astype(np.float32), i64(0, 6, 2)],
        0,
        {},
    ),
    (
        "ConstantOfShape",
        17,
        "ConstantOfShape",
        [i64(2, 3)],
        0,
        {"value": helper.make_tensor("v", TensorProto.FLOAT, [1], [1.5])},
    ),
    ("ConstantOfShape-default", 17, "ConstantOfShape", [i64(2, 3)], 0, {}),
    ("Cast", 17, "Cast", [A * 3], 0, {"to": TensorProto.INT32}),
    ("Cast-double", 17, "Cast", [A], 0, {"to": TensorProto.DOUBLE}),
    ("CastLike", 17, "CastLike", [A, np.zeros(1, np.float64)], 1, {}),
    ("Expand", 17, "Expand", [A[:, :1], i64(2, 5, 4)], 1, {}),
    ("Expand-rank", 17, "Expand", [B4, i64(3, 1, 1)], 0, {}),
    ("Identity", 17, "Identity", [A], 0, {}),
    ("Dropout", 17, "Dropout", [A], 0, {}),
    (
        "ReverseSequence",
        17,
        "ReverseSequence",
        [A.transpose(1, 0, 2).copy(), i64(2, 1)],
        0,
        {"time_axis": 0, "batch_axis": 1},
    ),
    (
        "ReverseSequence-batch0",
        17,
        "ReverseSequence",
        [A, i64(3, 2)],
        1,
        {"time_axis": 1, "batch_axis": 0},
    ),
]


def _model(opset, op, arrays, n_const, attrs, n_out=1):
    n_feed = len(arrays) - n_const
    names = [f"in{k}" for k in range(len(arrays))]
    inputs = [tensor_info(names[k], arrays[k].dtype, list(arrays[k].shape)) for k in range(n_feed)]
    inits = [init(names[k], arrays[k]) for k in range(n_feed, len(arrays))]
    outs = [f"out{k}" for k in range(n_out)]
    node = helper.make_node(op, names, outs, **attrs)
    model = model_of(
        [node], inputs, [helper.make_empty_tensor_value_info(o) for o in outs], inits, opset=opset
    )
    feeds = {names[k]: arrays[k] for k in range(n_feed)}
    return model, feeds


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_op_vs_onnxruntime(case):
    _, opset, op, arrays, n_const, attrs = case
    n_out = 2 if op == "Split" else 1
    model, feeds = _model(opset, op, arrays, n_const, attrs, n_out)
    want = ort_session(model).run(None, feeds)
    got = InferenceSession(model).run(None, feeds)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype, (g.dtype, w.dtype)
        assert g.shape == w.shape, (g.shape, w.shape)
        assert rel_err(g, w) < 1e-6, rel_err(g, w)


def test_constant_forms():
    t = helper.make_tensor("t", TensorProto.FLOAT, [2], [1.0, 2.0])
    forms = [
        {"value": t},
        {"value_float": 2.5},
        {"value_floats": [1.0, 3.0]},
        {"value_int": 4},
        {"value_ints": [1, 2, 3]},
    ]
    for attrs in forms:
        node = helper.make_node("Constant", [], ["c"], **attrs)
        ident = helper.make_node("Identity", ["c"], ["out"])
        model = model_of([node, ident], [], [helper.make_empty_tensor_value_info("out")], opset=17)
        (want,) = ort_session(model).run(None, {})
        (got,) = InferenceSession(model).run(None, {})
        assert got.dtype == want.dtype and np.array_equal(got, want), attrs
        got[...] = 0  # the caller owns the output: the folded constant is not changed
        (again,) = InferenceSession(model).run(None, {})
        assert np.array_equal(again, want)


def test_every_registered_op_is_tested():
    tested = {c[2] for c in CASES} | {"Constant", "LSTM", "GRU", "RNN", "Log", "Sqrt"}
    tested |= {"Loop"}  # tests/test_onnx_loop.py
    assert set(supported_ops()) <= tested, set(supported_ops()) - tested


def test_log_sqrt():
    x = np.abs(A) + 0.1
    for op in ("Log", "Sqrt"):
        model, feeds = _model(17, op, [x], 0, {})
        assert (
            rel_err(
                InferenceSession(model).run(None, feeds)[0], ort_session(model).run(None, feeds)[0]
            )
            < 1e-6
        )


def test_shape_ops_fold_once_and_run_dynamic():
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape with a dynamic batch (the pattern the
    exporters put around RNN nodes)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
        helper.make_node("Unsqueeze", ["b", "zero1"], ["b1"]),
        helper.make_node("Concat", ["b1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = [init("zero", np.array(0, np.int64)), init("zero1", i64(0)), init("minus1", i64(-1))]
    model = model_of(
        nodes,
        [tensor_info("x", np.float32, ["batch", 3, 4])],
        [tensor_info("y", np.float32, ["batch", 12])],
        inits,
    )
    sess = InferenceSession(model)
    assert [(i.name, i.shape, i.type) for i in sess.get_inputs()] == [
        ("x", ["batch", 3, 4], "tensor(float)")
    ]
    for b in (1, 5):
        x = rng.standard_normal((b, 3, 4)).astype(np.float32)
        (y,) = sess.run(["y"], {"x": x})
        assert np.array_equal(y, x.reshape(b, 12))
