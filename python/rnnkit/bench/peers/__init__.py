"""Framework adapters ("peers") for the benchmark.

Each module wraps one framework behind :class:`Peer`: build a model from PyTorch-layout
weights, compute outputs (and gradients) for the correctness check, and hand out
zero-argument callables that the timer calls. Frameworks are imported only inside the
worker process that benchmarks them, after its thread settings are in the environment.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar

import numpy as np

from ..cases import Case

#: Command-line name -> (module path, class name). Order is the report's column order.
PEERS: dict[str, tuple[str, str]] = {
    "rnnkit": ("rnnkit.bench.peers.rnnkit_peer", "RnnkitPeer"),
    "torch": ("rnnkit.bench.peers.torch_peer", "TorchPeer"),
    "onnxruntime": ("rnnkit.bench.peers.onnx_peer", "OnnxPeer"),
    "keras": ("rnnkit.bench.peers.keras_peer", "KerasPeer"),
}

#: Accepted spellings on the command line.
ALIASES = {
    "pytorch": "torch",
    "ort": "onnxruntime",
    "onnx": "onnxruntime",
    "tensorflow": "keras",
    "tf": "keras",
}

#: What must be importable for a peer to run (checked without importing it).
REQUIRES: dict[str, tuple[str, ...]] = {
    "rnnkit": ("rnnkit",),
    "torch": ("torch",),
    "onnxruntime": ("onnx", "onnxruntime"),
    "keras": ("tensorflow", "keras"),
}


def canonical(name: str) -> str:
    """Map a command-line framework name to its key in :data:`PEERS`.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    key = ALIASES.get(name.lower(), name.lower())
    if key not in PEERS:
        raise ValueError(f"unknown framework {name!r}; expected one of {sorted(PEERS)}")
    return key


def missing_modules(key: str) -> list[str]:
    """Modules a peer needs that are not installed (empty when it can run)."""
    return [m for m in REQUIRES[key] if importlib.util.find_spec(m) is None]


def dist_version(dist: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def load_peer(key: str) -> type[Peer]:
    """Import a peer's module and return its class."""
    module, cls = PEERS[key]
    return getattr(importlib.import_module(module), cls)


class Peer(ABC):
    """One framework under test.

    Parameters
    ----------
    threads : int
        Threads the framework may use; applied in ``__init__`` before any model is built.

    Notes
    -----
    The timed callables take no arguments and return the framework's own output object
    (converted to numpy only where a real caller would need numpy, i.e. streaming).
    """

    #: Command-line name.
    key: ClassVar[str]
    #: Name shown in the report.
    label: ClassVar[str]
    #: Whether the peer implements training (forward + backward through time).
    supports_training: ClassVar[bool] = True
    #: Weight dtypes (``Case.dtype``) the peer can run.
    dtypes: ClassVar[tuple[str, ...]] = ("float32",)

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.case: Case | None = None

    @staticmethod
    @abstractmethod
    def versions() -> dict[str, str]:
        """Versions of the imported framework packages, e.g. ``{"torch": "2.13.0"}``."""

    def config(self) -> str:
        """Free-form runtime configuration worth reporting (threads, ISA, ...)."""
        return ""

    @abstractmethod
    def build(self, case: Case, weights: dict[str, np.ndarray]) -> None:
        """Create the model for ``case`` from PyTorch-layout ``weights``."""

    def variants(self, mode: str) -> tuple[str, ...]:
        """Ways of calling the model in ``mode``; each becomes its own report row.

        ``mode`` is ``"inference"``, ``"training"`` or ``"stream"``.
        """
        return ("",)

    @abstractmethod
    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Inference outputs for the check: ``y`` (T, B, D·H), optionally ``h_n``, ``c_n``."""

    def gradients(self, x: np.ndarray, dy: np.ndarray) -> dict[str, np.ndarray]:
        """Training-mode outputs for the check: ``y``, ``dx`` and optionally ``grad.<key>``."""
        raise NotImplementedError

    @abstractmethod
    def infer_fn(self, x: np.ndarray, variant: str = "") -> Callable[[], Any]:
        """Zero-argument callable running one inference over ``x`` (T, B, I)."""

    def train_fn(self, x: np.ndarray, dy: np.ndarray) -> Callable[[], Any]:
        """Zero-argument callable running one forward + backward through time."""
        raise NotImplementedError

    @abstractmethod
    def stream_fn(self, x: np.ndarray) -> Callable[[], list[np.ndarray]]:
        """Zero-argument callable feeding ``x`` (S, 1, I) one step per call.

        It starts from a zero state, carries the state between steps, and returns the
        S outputs as numpy arrays of shape (1, 1, H).
        """
