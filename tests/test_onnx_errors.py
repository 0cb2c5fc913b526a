"""Bad models and bad feeds: clear errors at session creation (or run), never a crash."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from onnx_util import helper, init, model_of, onnx, tensor_info

import rnnkit
from rnnkit.onnx import InferenceSession, OnnxError


def _lstm_model(H=3, I=2, W_shape=None, opset=17):
    rng = np.random.default_rng(0)
    W = rng.standard_normal(W_shape or (1, 4 * H, I)).astype(np.float32)
    R = rng.standard_normal((1, 4 * H, H)).astype(np.float32)
    node = helper.make_node("LSTM", ["x", "W", "R"], ["Y", "Y_h"], hidden_size=H, name="lstm0")
    return model_of(
        [node],
        [tensor_info("x", np.float32, ["t", "b", I])],
        [tensor_info("Y", np.float32), tensor_info("Y_h", np.float32)],
        [init("W", W), init("R", R)],
        opset=opset,
    )


def test_good_model_runs():
    sess = InferenceSession(_lstm_model().SerializeToString())
    y, yh = sess.run(None, {"x": np.zeros((4, 2, 2), np.float32)})
    assert y.shape == (4, 1, 2, 3) and yh.shape == (1, 2, 3)


def test_truncated_and_garbage_bytes():
    data = _lstm_model().SerializeToString()
    for cut in (1, 7, len(data) // 3, len(data) // 2, len(data) - 5):
        with pytest.raises(OnnxError):
            InferenceSession(data[:cut])
    with pytest.raises(OnnxError, match="not a valid ONNX model"):
        InferenceSession(b"\xff\xfe garbage \x00\x01" * 10)
    with pytest.raises(OnnxError, match="no graph"):
        InferenceSession(b"")


@pytest.mark.parametrize(
    "text, field",
    [
        (b"hidden_size", "model.graph.node.attribute.name"),
        (b"lstm0", "model.graph.node.name"),
        (b"Y_h", "model.graph"),
    ],
)
def test_strings_that_are_not_utf8(tmp_path, text, field):
    # Found by tools/fuzz/fuzz_readers.py: protobuf returns bytes for a string field that is
    # not valid UTF-8, and building the error message for it raised TypeError.
    data = _lstm_model().SerializeToString()
    assert data.count(text) >= 1
    bad = data.replace(text, text[:-1] + b"\xff")
    for source in (bad, tmp_path / "bad.onnx"):
        if not isinstance(source, bytes):
            source.write_bytes(bad)
        with pytest.raises(OnnxError, match=rf"{field}.* is not valid UTF-8 text"):
            InferenceSession(source)


@pytest.mark.parametrize("k", [1, 2])
def test_required_inputs_left_empty(k):
    # Found by the fuzzer: a node naming a required input '' (an LSTM's W or R with later
    # inputs given, a Reshape's shape) passed creation and failed with AttributeError.
    model = _lstm_model()
    node = model.graph.node[0]
    node.input[k] = ""
    node.input.append("")  # B
    node.input.append("")  # sequence_lens
    node.input.append("h0")
    model.graph.input.append(tensor_info("h0", np.float32, [1, 2, 3]))
    with pytest.raises(OnnxError, match=rf"LSTM node 'lstm0'.*required input {k} is left empty"):
        InferenceSession(model.SerializeToString())
    reshape = helper.make_node("Reshape", ["", "s"], ["y"], name="r")
    bad = model_of(
        [reshape],
        [tensor_info("x", np.float32, [2, 3])],
        [tensor_info("y", np.float32)],
        [init("s", np.array([3, 2], np.int64))],
    )
    with pytest.raises(OnnxError, match=r"Reshape node 'r'.*required input 0 is left empty"):
        InferenceSession(bad)


def test_bad_paths_and_types(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        InferenceSession(str(tmp_path / "missing.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07\x12\x04junk")
    with pytest.raises(OnnxError):
        InferenceSession(bad)
    with pytest.raises(TypeError, match="path, bytes or an onnx.ModelProto"):
        InferenceSession(12)


def test_wrong_initializer_shapes():
    with pytest.raises(
        OnnxError, match=r"LSTM node 'lstm0'.*W has shape \[1, 12, 5\]; expected \[1, 12, 2\]"
    ):
        InferenceSession(_lstm_model(W_shape=(1, 12, 5)))
    with pytest.raises(OnnxError, match=r"W has shape \[1, 8, 2\]; expected \[1, 12, 2\]"):
        InferenceSession(_lstm_model(W_shape=(1, 8, 2)))
    m = _lstm_model()
    t = m.graph.initializer[0]
    t.dims[1] = 100  # the raw data no longer fits the declared shape
    with pytest.raises(OnnxError, match="initializer 'W'"):
        InferenceSession(m.SerializeToString())


def test_missing_inputs_unknown_ops_and_cycles():
    m = _lstm_model()
    m.graph.node[0].input[1] = "nowhere"
    with pytest.raises(OnnxError, match=r"LSTM node 'lstm0': input 'nowhere' is not a graph input"):
        InferenceSession(m)
    node = helper.make_node("FancyOp", ["x"], ["y"], name="f1")
    bad = model_of([node], [tensor_info("x", np.float32, [2])], [tensor_info("y", np.float32)])
    with pytest.raises(OnnxError, match=r"FancyOp node 'f1': op 'FancyOp' is not supported"):
        InferenceSession(bad)
    node = helper.make_node("Relu", ["x"], ["y"], name="r1", domain="com.microsoft")
    bad = model_of([node], [tensor_info("x", np.float32, [2])], [tensor_info("y", np.float32)])
    bad.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(OnnxError, match="domain 'com.microsoft' is not supported"):
        InferenceSession(bad)
    cyc = [
        helper.make_node("Relu", ["b"], ["a"], name="n1"),
        helper.make_node("Relu", ["a"], ["b"], name="n2"),
    ]
    bad = model_of(cyc, [tensor_info("x", np.float32, [2])], [tensor_info("a", np.float32)])
    with pytest.raises(OnnxError, match="cycle"):
        InferenceSession(bad)
    dup = [
        helper.make_node("Relu", ["x"], ["a"], name="n1"),
        helper.make_node("Tanh", ["x"], ["a"], name="n2"),
    ]
    bad = model_of(dup, [tensor_info("x", np.float32, [2])], [tensor_info("a", np.float32)])
    with pytest.raises(OnnxError, match="defined twice"):
        InferenceSession(bad)


def test_unsupported_attributes_versions_and_opsets():
    m = _lstm_model()
    m.graph.node[0].attribute.append(helper.make_attribute("direction", "sideways"))
    with pytest.raises(OnnxError, match="direction must be forward, reverse or bidirectional"):
        InferenceSession(m)
    m = _lstm_model()
    m.graph.node[0].attribute.append(
        helper.make_attribute("activations", ["Sigmoid", "Tanh", "Swish"])
    )
    with pytest.raises(OnnxError, match="activation 'Swish' is not one of the spec's"):
        InferenceSession(m)
    m = _lstm_model()
    m.graph.node[0].attribute.append(helper.make_attribute("colour", 3))
    with pytest.raises(OnnxError, match=r"LSTM node 'lstm0': attribute\(s\) colour not supported"):
        InferenceSession(m)
    with pytest.raises(OnnxError, match="opset 30 of ai.onnx; rnnkit.onnx reads opsets 7 to 28"):
        InferenceSession(_lstm_model(opset=30))
    m = _lstm_model(opset=13)
    m.graph.node[0].attribute.append(helper.make_attribute("layout", 1))
    with pytest.raises(OnnxError, match="layout attribute exists from opset 14"):
        InferenceSession(m)
    node = helper.make_node("Squeeze", ["x"], ["y"], axes=[0], name="sq")
    bad = model_of(
        [node], [tensor_info("x", np.float32, [1, 2])], [tensor_info("y", np.float32)], opset=13
    )
    with pytest.raises(OnnxError, match="'axes' is an input from opset 13"):
        InferenceSession(bad)
    node = helper.make_node("Expand", ["x", "s"], ["y"], name="e")
    bad = model_of(
        [node],
        [tensor_info("x", np.float32, [2])],
        [tensor_info("y", np.float32)],
        [init("s", np.array([2], np.int64))],
        opset=7,
    )
    with pytest.raises(OnnxError, match="Expand exists from opset 8"):
        InferenceSession(bad)


def test_feed_errors_name_the_input():
    sess = InferenceSession(_lstm_model())
    x = np.zeros((4, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"missing input\(s\) \['x'\]"):
        sess.run(None, {})
    with pytest.raises(ValueError, match="'y' is not an input of the model"):
        sess.run(None, {"x": x, "y": x})
    with pytest.raises(TypeError, match="input 'x' has dtype float64; the model expects float32"):
        sess.run(None, {"x": x.astype(np.float64)})
    with pytest.raises(ValueError, match="input 'x' has 2 dims"):
        sess.run(None, {"x": x[0]})
    with pytest.raises(ValueError, match=r"axis 2 must be 2"):
        sess.run(None, {"x": np.zeros((4, 2, 3), np.float32)})
    with pytest.raises(ValueError, match=r"unknown output name\(s\) \['nope'\]"):
        sess.run(["nope"], {"x": x})
    (yh,) = sess.run(["Y_h"], {"x": x})
    assert yh.shape == (1, 2, 3)


def test_runtime_errors_name_the_node():
    node = helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")
    m = model_of(
        [node],
        [tensor_info("x", np.float32, ["n"])],
        [tensor_info("y", np.float32)],
        [init("s", np.array([2, 3], np.int64))],
    )
    sess = InferenceSession(m)
    assert sess.run(None, {"x": np.arange(6, dtype=np.float32)})[0].shape == (2, 3)
    with pytest.raises(ValueError, match="Reshape node 'rs' failed"):
        sess.run(None, {"x": np.arange(5, dtype=np.float32)})


def test_sequence_lens_out_of_range():
    H, I = 3, 2
    rng = np.random.default_rng(1)
    node = helper.make_node("GRU", ["x", "W", "R", "", "seq"], ["Y"], hidden_size=H, name="g")
    m = model_of(
        [node],
        [tensor_info("x", np.float32, ["t", "b", I]), tensor_info("seq", np.int32, ["b"])],
        [tensor_info("Y", np.float32)],
        [
            init("W", rng.standard_normal((1, 3 * H, I)).astype(np.float32)),
            init("R", rng.standard_normal((1, 3 * H, H)).astype(np.float32)),
        ],
    )
    sess = InferenceSession(m)
    x = np.zeros((4, 2, I), np.float32)
    with pytest.raises(ValueError, match=r"GRU node 'g' failed: sequence_lens must lie in 0\.\.4"):
        sess.run(None, {"x": x, "seq": np.array([5, 1], np.int32)})


def test_missing_onnx_package_message():
    """Without the onnx package: a clear ImportError naming the extra; rnnkit still imports."""
    code = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "onnx" or name.startswith("onnx."):
                    raise ImportError("blocked for the test")
        sys.meta_path.insert(0, Block())
        import numpy as np
        import rnnkit, rnnkit.onnx
        m = rnnkit.LSTM(2, 3)
        y, _ = m(np.zeros((2, 1, 2), np.float32))
        for call in (lambda: rnnkit.onnx.InferenceSession(b"x"), lambda: rnnkit.onnx.export(m)):
            try:
                call()
            except ImportError as e:
                print("MSG:", e)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    msgs = [line for line in out.stdout.splitlines() if line.startswith("MSG:")]
    assert len(msgs) == 2, out.stdout
    for m in msgs:
        assert "pip install rnnkit[onnx]" in m and "'onnx' package" in m


def test_protobuf_model_proto_is_accepted_and_not_changed():
    m = _lstm_model()
    before = m.SerializeToString()
    sess = InferenceSession(m)
    sess.run(None, {"x": np.ones((2, 1, 2), np.float32)})
    assert m.SerializeToString() == before
    assert isinstance(rnnkit.onnx.supported_ops(), list) and "LSTM" in rnnkit.onnx.supported_ops()
    assert isinstance(m, onnx.ModelProto)
