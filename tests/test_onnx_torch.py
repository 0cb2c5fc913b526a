"""Models exported by PyTorch's two ONNX exporters, run by rnnkit.onnx.InferenceSession.

``torch.onnx.export(dynamo=False)`` (TorchScript) and ``dynamo=True`` (torch.export +
onnxscript): LSTM, GRU and RNN stacks of several depths, bidirectional, batch_first, with a
Linear head, exported with dynamic batch and time axes; outputs against PyTorch and ONNX
Runtime (relative 1e-5), at the traced sizes and at other batch and time sizes.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from onnx_util import core_has, onnx, ort, ort_session, rel_err

from rnnkit.onnx import InferenceSession

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

TOL = 1e-5


class Net(torch.nn.Module):
    def __init__(self, cell: str, layers: int, bi: bool, bf: bool, head: bool) -> None:
        super().__init__()
        self.rnn = getattr(torch.nn, cell)(
            5, 8, num_layers=layers, bidirectional=bi, batch_first=bf
        )
        self.head = torch.nn.Linear(8 * (2 if bi else 1), 3) if head else None

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y) if self.head is not None else y


def _export(net: Net, x, dynamo: bool, bf: bool) -> onnx.ModelProto:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            pytest.importorskip("onnxscript", reason="the dynamo exporter needs onnxscript")
            b, t = torch.export.Dim("batch", min=1, max=64), torch.export.Dim("time", min=2, max=64)
            ds = {"x": {0: b, 1: t} if bf else {0: t, 1: b}}
            import contextlib
            import os

            with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
                prog = torch.onnx.export(
                    net, (x,), dynamo=True, dynamic_shapes=ds, input_names=["x"]
                )
            return prog.model_proto
        f = io.BytesIO()
        axes = {
            "x": {0: "b", 1: "t"} if bf else {0: "t", 1: "b"},
            "y": {0: "b", 1: "t"} if bf else {0: "t", 1: "b"},
        }
        torch.onnx.export(
            net,
            (x,),
            f,
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes=axes,
            opset_version=17,
        )
        return onnx.load_from_string(f.getvalue())


SHAPES = (
    (1, False, False, False),
    (2, True, True, True),
    (3, False, True, True),
    (2, True, False, False),
)
CASES = [(cell, *s, False) for cell in ("LSTM", "GRU", "RNN") for s in SHAPES]
# the dynamo exporter takes seconds per model: one shape per cell
CASES += [("LSTM", *SHAPES[1], True), ("GRU", *SHAPES[2], True), ("RNN", *SHAPES[1], True)]


@pytest.mark.parametrize(
    "case",
    CASES,
    ids=lambda c: (
        f"{c[0]}-L{c[1]}-bi{int(c[2])}-bf{int(c[3])}-head{int(c[4])}-"
        f"{'dynamo' if c[5] else 'torchscript'}"
    ),
)
def test_torch_export(case):
    cell, layers, bi, bf, head, dynamo = case
    if cell == "RNN" and not dynamo and not core_has("RNN"):
        pytest.skip("this rnnkit core lacks RNN (the core half of issue 14)")
    torch.manual_seed(layers + 10 * bi)
    net = Net(cell, layers, bi, bf, head).eval()
    shape = (2, 6, 5) if bf else (6, 2, 5)
    model = _export(net, torch.randn(*shape), dynamo, bf)
    sess = InferenceSession(model)
    name = sess.get_inputs()[0].name
    rng = np.random.default_rng(1)
    # the traced shape, then other batch and time sizes where the graph left them dynamic
    # (the dynamo exporter fixes T at the traced size for some stacks, and unrolls nn.RNN)
    declared = sess.get_inputs()[0].shape
    b_fixed = isinstance(declared[0 if bf else 1], int)
    t_fixed = isinstance(declared[1 if bf else 0], int)
    assert not b_fixed, declared
    sizes = [(2, 6), (4, 6 if t_fixed else 9), (1, 6 if t_fixed else 3)]
    ort_sess = ort_session(model) if ort is not None else None
    for b, t in sizes:
        x = rng.standard_normal((b, t, 5) if bf else (t, b, 5)).astype(np.float32)
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        (got,) = sess.run(None, {name: x})[:1]
        e = rel_err(got, want)
        assert e < TOL, f"vs PyTorch at B={b} T={t}: {e:.2e}"
        if ort_sess is not None:
            (o,) = ort_sess.run(None, {name: x})[:1]
            e2 = rel_err(got, o)
            assert e2 < TOL, f"vs ONNX Runtime at B={b} T={t}: {e2:.2e}"


def test_torch_lstm_states_and_lengths():
    """A TorchScript-exported LSTM with h0/c0 inputs and all three outputs."""

    class WithState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True)

        def forward(self, x, h0, c0):
            y, (h, c) = self.rnn(x, (h0, c0))
            return y, h, c

    torch.manual_seed(3)
    net = WithState().eval()
    x, h0, c0 = torch.randn(5, 3, 4), torch.randn(4, 3, 6), torch.randn(4, 3, 6)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (x, h0, c0),
            f,
            dynamo=False,
            input_names=["x", "h0", "c0"],
            output_names=["y", "h", "c"],
            opset_version=14,
            dynamic_axes={"x": {0: "t", 1: "b"}, "h0": {1: "b"}, "c0": {1: "b"}},
        )
    sess = InferenceSession(f.getvalue())
    assert [i.name for i in sess.get_inputs()] == ["x", "h0", "c0"]
    assert sess.get_inputs()[0].type == "tensor(float)"
    with torch.no_grad():
        want = [t.numpy() for t in net(x, h0, c0)]
    got = sess.run(None, {"x": x.numpy(), "h0": h0.numpy(), "c0": c0.numpy()})
    for g, w in zip(got, want):
        assert rel_err(g, w) < TOL
