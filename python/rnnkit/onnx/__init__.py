"""ONNX import and export: ``rnnkit.onnx.InferenceSession`` and ``rnnkit.onnx.export``.

``InferenceSession`` has ONNX Runtime's API (``run``, ``get_inputs``, ``get_outputs``) and
runs a model's LSTM, GRU and RNN nodes on rnnkit's core, the ops around them in a small
numpy interpreter. ``export`` writes rnnkit modules and Keras-shaped models as ONNX graphs
that ONNX Runtime runs. Reading and writing files needs the ``onnx`` package, an optional
extra: ``pip install rnnkit[onnx]``.
"""

from __future__ import annotations

from .export import export  # the function replaces the submodule's name on the package
from .graph import OnnxError
from .session import InferenceSession, NodeArg

__all__ = ["InferenceSession", "NodeArg", "OnnxError", "export", "supported_ops"]


def supported_ops() -> list[str]:
    """The op types the interpreter runs (default ONNX domain)."""
    from .ops import REGISTRY

    return sorted(REGISTRY)
