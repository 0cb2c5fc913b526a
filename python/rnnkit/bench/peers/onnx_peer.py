"""ONNX Runtime peer: an ONNX ``LSTM``/``GRU`` graph built with ``onnx.helper``.

The graph is made directly from the PyTorch-layout weights, one ONNX RNN node per layer
(chained), gates reordered to ONNX's order (LSTM i, o, f, c; GRU z, r, h) and GRU nodes
with ``linear_before_reset=1`` (PyTorch's reset-after candidate). Each node's
``Y: (T, D, B, H)`` is reshaped to ``(T, B, D·H)`` inside the graph, so the graph output
matches PyTorch's ``y``. Threads: ``intra_op_num_threads = n``, ``inter_op_num_threads = 1``,
sequential execution. ONNX Runtime ships no training here, so only inference is timed.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from ..cases import Case, flat_weights
from . import Peer

OPSET = 17
IR_VERSION = 8


def _gate_order(case: Case) -> list[int]:
    """PyTorch gate blocks listed in ONNX order (LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h)."""
    return [0, 3, 1, 2] if case.cell == "lstm" else [1, 0, 2]


def _reorder(a: np.ndarray, order: list[int], hidden: int) -> np.ndarray:
    """Reorder gate blocks of ``hidden`` rows along axis 0."""
    return np.concatenate([a[g * hidden : (g + 1) * hidden] for g in order], axis=0)


def onnx_weights(
    case: Case, weights: dict[str, np.ndarray], layer: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX ``W`` (D, G·H, in), ``R`` (D, G·H, H), ``B`` (D, 2·G·H) for one layer."""
    order, h = _gate_order(case), case.hidden_size
    w, r, b = [], [], []
    for d in range(case.directions):
        w_ih, w_hh, b_ih, b_hh = flat_weights(case, weights, layer, d)
        w.append(_reorder(w_ih, order, h))
        r.append(_reorder(w_hh, order, h))
        b.append(np.concatenate([_reorder(b_ih, order, h), _reorder(b_hh, order, h)]))
    return (
        np.stack(w).astype(np.float32),
        np.stack(r).astype(np.float32),
        np.stack(b).astype(np.float32),
    )


def build_model(
    case: Case, weights: dict[str, np.ndarray], steps: int, batch: int, with_state: bool = False
) -> onnx.ModelProto:
    """ONNX model computing ``y: (T, B, D·H)`` from ``x: (T, B, I)``.

    Parameters
    ----------
    case : Case
        The shape (cell, sizes, layers, directions).
    weights : dict of str to ndarray
        PyTorch ``state_dict`` layout.
    steps, batch : int
        Static T and B of the graph.
    with_state : bool
        Single-layer streaming graph: also take ``h0`` (and ``c0``) of shape (D, B, H) as
        inputs and return ``h_n`` (and ``c_n``), so a caller can carry the state.

    Returns
    -------
    onnx.ModelProto
        A checked model.
    """
    h, dirs = case.hidden_size, case.directions
    op = "LSTM" if case.cell == "lstm" else "GRU"
    nodes, inits = [], []
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [steps, batch, case.input_size])
    ]
    outputs = []
    if with_state and case.num_layers != 1:
        raise ValueError("with_state graphs support one layer only")
    if dirs == 1:
        inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"))
    else:
        inits.append(numpy_helper.from_array(np.array([0, 0, -1], dtype=np.int64), "shape_tbx"))
    prev = "x"
    for layer in range(case.num_layers):
        w, r, b = onnx_weights(case, weights, layer)
        names = [f"W{layer}", f"R{layer}", f"B{layer}"]
        for name, arr in zip(names, (w, r, b)):
            inits.append(numpy_helper.from_array(arr, name))
        node_in = [prev, *names, ""]  # sequence_lens omitted
        node_out = [f"Y{layer}", "", ""]
        if with_state:
            state_shape = [dirs, batch, h]
            inputs.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, state_shape))
            outputs.append(helper.make_tensor_value_info("h_n", TensorProto.FLOAT, state_shape))
            node_in.append("h0")
            node_out[1] = "h_n"
            if case.cell == "lstm":
                inputs.append(helper.make_tensor_value_info("c0", TensorProto.FLOAT, state_shape))
                outputs.append(helper.make_tensor_value_info("c_n", TensorProto.FLOAT, state_shape))
                node_in.append("c0")
                node_out[2] = "c_n"
        if case.cell == "gru":
            node_out = node_out[:2]
        attrs: dict[str, Any] = {
            "hidden_size": h,
            "direction": "bidirectional" if dirs == 2 else "forward",
        }
        if case.cell == "gru":
            attrs["linear_before_reset"] = 1
        while node_in and node_in[-1] == "":
            node_in.pop()
        while node_out and node_out[-1] == "":
            node_out.pop()
        nodes.append(helper.make_node(op, node_in, node_out, name=f"{op}{layer}", **attrs))
        # Y (T, D, B, H) -> (T, B, D*H)
        out = "y" if layer == case.num_layers - 1 else f"X{layer + 1}"
        if dirs == 1:
            nodes.append(helper.make_node("Squeeze", [f"Y{layer}", "axis1"], [out]))
        else:
            nodes.append(
                helper.make_node("Transpose", [f"Y{layer}"], [f"Yt{layer}"], perm=[0, 2, 1, 3])
            )
            nodes.append(helper.make_node("Reshape", [f"Yt{layer}", "shape_tbx"], [out]))
        prev = out
    outputs.insert(
        0, helper.make_tensor_value_info("y", TensorProto.FLOAT, [steps, batch, dirs * h])
    )
    graph = helper.make_graph(nodes, f"rnnkit_bench_{case.name}", inputs, outputs, inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rnnkit-bench"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


class OnnxPeer(Peer):
    """ONNX Runtime, CPU execution provider."""

    key = "onnxruntime"
    label = "ONNX Runtime"
    supports_training = False

    def __init__(self, threads: int) -> None:
        super().__init__(threads)
        self.weights: dict[str, np.ndarray] = {}
        self.sessions: dict[tuple, ort.InferenceSession] = {}

    @staticmethod
    def versions() -> dict[str, str]:
        """onnxruntime and onnx versions."""
        return {"onnxruntime": ort.__version__, "onnx": onnx.__version__}

    def config(self) -> str:
        """Thread settings and providers."""
        return (
            f"intra_op_num_threads={self.threads}, inter_op_num_threads=1, "
            f"providers={ort.get_available_providers()}"
        )

    def build(self, case: Case, weights: dict[str, np.ndarray]) -> None:
        """Remember the weights; graphs are built per input shape on first use."""
        self.case, self.weights, self.sessions = case, weights, {}

    def _session(self, steps: int, batch: int, with_state: bool) -> ort.InferenceSession:
        key = (steps, batch, with_state)
        if key not in self.sessions:
            model = build_model(self.case, self.weights, steps, batch, with_state)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.sessions[key] = ort.InferenceSession(
                model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
            )
        return self.sessions[key]

    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Graph output ``y`` (final states are not graph outputs of the stacked graph)."""
        sess = self._session(x.shape[0], x.shape[1], False)
        (y,) = sess.run(["y"], {"x": x})
        return {"y": y}

    def infer_fn(self, x: np.ndarray, variant: str = "") -> Callable[[], Any]:
        """One ``session.run`` over the whole sequence."""
        sess = self._session(x.shape[0], x.shape[1], False)
        feeds = {"x": np.ascontiguousarray(x)}
        return lambda: sess.run(["y"], feeds)

    def stream_fn(self, x: np.ndarray) -> Callable[[], list[np.ndarray]]:
        """One ``session.run`` per step with the state fed back as graph inputs."""
        case = self.case
        sess = self._session(1, 1, True)
        shape = (case.directions, 1, case.hidden_size)
        names = ["y", "h_n", "c_n"] if case.cell == "lstm" else ["y", "h_n"]
        steps = [np.ascontiguousarray(x[t : t + 1]) for t in range(x.shape[0])]

        def call() -> list[np.ndarray]:
            out = []
            h = np.zeros(shape, np.float32)
            c = np.zeros(shape, np.float32)
            for xt in steps:
                if case.cell == "lstm":
                    y, h, c = sess.run(names, {"x": xt, "h0": h, "c0": c})
                else:
                    y, h = sess.run(names, {"x": xt, "h0": h})
                out.append(y)
            return out

        return call
