"""Helpers of the ONNX tests: optional imports, single-node models, error measures."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from error_record import record_error

import rnnkit

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install rnnkit[onnx])")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover - the ORT comparisons skip
    ort = None


def need_ort() -> None:
    if ort is None:
        pytest.skip("onnxruntime is not installed")


def core_has(feature: str) -> bool:
    """Whether this rnnkit build's core has a feature the ONNX import maps onto."""
    if feature == "RNN":
        return hasattr(rnnkit, "RNN")
    params = inspect.signature(rnnkit.LSTM.__init__).parameters
    return feature in params


def need_core(*features: str) -> None:
    missing = [f for f in features if not core_has(f)]
    if missing:
        pytest.skip(f"this rnnkit core lacks {missing} (the core half of issue 14)")


def ort_session(model: onnx.ModelProto):
    need_ort()
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(1, max |b|); recorded per test file (see record_error)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    err = float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))
    record_error(err, depth=2)
    return err


def model_of(nodes, inputs, outputs, inits=(), opset: int = 17, ir: int = 8) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "t", list(inputs), list(outputs), list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir
    return m


def tensor_info(name: str, dtype=np.float32, shape=None):
    return helper.make_tensor_value_info(
        name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape
    )


def init(name: str, value: np.ndarray):
    return numpy_helper.from_array(np.asarray(value), name)


__all__ = [
    "TensorProto",
    "helper",
    "init",
    "model_of",
    "need_core",
    "need_ort",
    "numpy_helper",
    "onnx",
    "ort",
    "ort_session",
    "rel_err",
    "tensor_info",
]
