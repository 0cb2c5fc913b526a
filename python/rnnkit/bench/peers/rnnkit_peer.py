"""rnnkit peer: ``rnnkit.LSTM`` / ``rnnkit.GRU`` (the PyTorch-shaped core modules).

Weights load with ``load_state_dict`` (PyTorch layout, no conversion). Inference is an
eval-mode call; training is ``zero_grad()``, a train-mode forward and
``backward(dy, None)``, which computes dx and accumulates every weight gradient.
Inference is also timed as the ``bf16`` variant: a copy of the module with bfloat16 weights
(``.bfloat16()``), float32 activations; a case with ``dtype="bfloat16"`` runs only those.
Its ratio is to float32 rnnkit; its error against float32 weights is measured and tested in
tests/test_bf16.py, not by the harness's check.
With ``isas`` (``run.py --isas``), inference is also timed under each other instruction set
the machine has (variant ``isa:<name>``): the evidence for the default ISA choice.
Threads: ``rnnkit.set_num_threads(n)`` when the package has it; the worker process also
exports ``RNNKIT_NUM_THREADS=n`` before importing rnnkit.
"""

from __future__ import annotations

import copy
import io
from contextlib import redirect_stdout
from typing import Any, Callable

import numpy as np

import rnnkit

from ..cases import Case
from . import Peer


class RnnkitPeer(Peer):
    """rnnkit's C++ core through its Python API."""

    key = "rnnkit"
    label = "rnnkit"
    dtypes = ("float32", "bfloat16")

    #: set by the worker from ``--isas``: also time inference under the other ISAs
    time_isas = False

    def __init__(self, threads: int) -> None:
        super().__init__(threads)
        if hasattr(rnnkit, "set_num_threads"):
            rnnkit.set_num_threads(threads)
        self.module: Any = None
        self.default_isa = rnnkit.get_isa() if hasattr(rnnkit, "get_isa") else ""

    @staticmethod
    def versions() -> dict[str, str]:
        """rnnkit version."""
        return {"rnnkit": str(getattr(rnnkit, "__version__", "unknown"))}

    def config(self) -> str:
        """Version, kernel ISA, threads, Eigen and compiler from ``rnnkit.config()``.

        Falls back to ``show_config()``'s printed text, or the thread count, on builds
        without ``config()``.
        """
        if hasattr(rnnkit, "config"):
            info = rnnkit.config()
            keys = ("version", "isa", "num_threads", "eigen_version", "compiler", "cxx_flags")
            return ", ".join(f"{k}={str(info[k]).strip()}" for k in keys if k in info)
        if hasattr(rnnkit, "show_config"):
            buf = io.StringIO()
            with redirect_stdout(buf):
                rnnkit.show_config()
            return " ".join(buf.getvalue().split())
        if hasattr(rnnkit, "get_num_threads"):
            return f"get_num_threads()={rnnkit.get_num_threads()}"
        return ""

    def build(self, case: Case, weights: dict[str, np.ndarray]) -> None:
        """Create the module and load the weights."""
        self.case = case
        cls = rnnkit.LSTM if case.cell == "lstm" else rnnkit.GRU
        self.module = cls(
            case.input_size,
            case.hidden_size,
            num_layers=case.num_layers,
            bidirectional=case.bidirectional,
            dtype="float32",
        )
        self.module.load_state_dict(weights)
        if case.dtype == "bfloat16":
            self.module = self.module.bfloat16()

    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Eval-mode outputs."""
        self.module.eval()
        y, state = self.module(x)
        out = {"y": np.asarray(y)}
        if self.case.cell == "lstm":
            out["h_n"], out["c_n"] = (np.asarray(s) for s in state)
        else:
            out["h_n"] = np.asarray(state)
        return out

    def gradients(self, x: np.ndarray, dy: np.ndarray) -> dict[str, np.ndarray]:
        """``y``, ``dx`` and the weight gradients from ``backward``."""
        m = self.module
        m.train()
        m.zero_grad()
        y, _ = m(x)
        dx, _ = m.backward(dy, None)
        out = {"y": np.array(y), "dx": np.array(dx)}
        for key, g in m.grads.items():
            out["grad." + key] = np.array(g)
        return out

    def variants(self, mode: str) -> tuple[str, ...]:
        """float32 weights, and for inference also bfloat16 weights (when supported)."""
        out: tuple[str, ...] = ("",)
        if mode == "inference" and self.case.dtype == "float32":
            out += ("bf16",)
        if mode == "inference" and self.time_isas and self.default_isa:
            # avx512 and avx512bf16 share their float32 kernels: time only one of the two
            same = {"avx512": "avx512bf16", "avx512bf16": "avx512"}.get(self.default_isa, "")
            skip = ("baseline", self.default_isa, same)
            others = [i for i in rnnkit.available_isas() if i not in skip]
            out += tuple(f"isa:{i}" for i in others)
        return out

    def infer_fn(self, x: np.ndarray, variant: str = "") -> Callable[[], Any]:
        """One eval-mode call (``variant="bf16"``: on a bfloat16-weight copy)."""
        m = self.module
        if self.default_isa:  # the ISA variant's, else the default (a previous variant changed it)
            rnnkit.set_isa(variant[4:] if variant.startswith("isa:") else self.default_isa)
        if variant == "bf16":
            m = copy.deepcopy(m).bfloat16()
        m.eval()
        return lambda: m(x)

    def train_fn(self, x: np.ndarray, dy: np.ndarray) -> Callable[[], Any]:
        """zero_grad, train-mode forward, backward through time."""
        m = self.module
        m.train()

        def call() -> Any:
            m.zero_grad()
            y, _ = m(x)
            m.backward(dy, None)
            return y

        return call

    def stream_fn(self, x: np.ndarray) -> Callable[[], list[np.ndarray]]:
        """One ``s.step`` per time step of a stream (``m.stream``): the state stays in the core."""
        m = self.module
        m.eval()
        steps = [np.ascontiguousarray(x[t]) for t in range(x.shape[0])]
        s = m.stream(x.shape[1])

        def call() -> list[np.ndarray]:
            s.reset()
            return [s.step(xt)[None] for xt in steps]

        return call
