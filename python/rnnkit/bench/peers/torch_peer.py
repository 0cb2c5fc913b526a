"""PyTorch peer: ``torch.nn.LSTM`` / ``torch.nn.GRU`` on CPU.

Inference runs under ``torch.inference_mode()`` with the module in eval mode; training is
a forward pass in train mode plus ``sum(y * dy).backward()`` with ``x.requires_grad`` (so
dx is computed, as rnnkit's backward does). A ``dtype="bfloat16"`` case runs a ``.bfloat16()``
module on a bfloat16 input (inference only); outputs are returned as float32. Threads:
``torch.set_num_threads(n)`` and one inter-op thread.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..cases import Case
from . import Peer


def build_module(case: Case, weights: dict[str, np.ndarray]) -> torch.nn.Module:
    """``torch.nn.LSTM``/``GRU`` for ``case`` with ``weights`` loaded (float32, time-major)."""
    cls = torch.nn.LSTM if case.cell == "lstm" else torch.nn.GRU
    module = cls(
        case.input_size,
        case.hidden_size,
        num_layers=case.num_layers,
        bidirectional=case.bidirectional,
    )
    module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
    return module


class TorchPeer(Peer):
    """PyTorch on CPU."""

    key = "torch"
    label = "PyTorch"
    dtypes = ("float32", "bfloat16")

    def __init__(self, threads: int) -> None:
        super().__init__(threads)
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set, or parallel work already started
            pass
        self.module: torch.nn.Module | None = None

    @staticmethod
    def versions() -> dict[str, str]:
        """PyTorch version."""
        return {"torch": torch.__version__}

    def config(self) -> str:
        """Thread counts and the parallel backend."""
        return (
            f"torch.get_num_threads()={torch.get_num_threads()}, "
            f"interop={torch.get_num_interop_threads()}, "
            f"mkldnn={torch.backends.mkldnn.is_available()}"
        )

    def build(self, case: Case, weights: dict[str, np.ndarray]) -> None:
        """Create the module and load the weights."""
        self.case = case
        self.module = build_module(case, weights)
        self.xtype = torch.float32
        if case.dtype == "bfloat16":
            self.module, self.xtype = self.module.bfloat16(), torch.bfloat16

    def _state_to_numpy(self, state: Any) -> dict[str, np.ndarray]:
        if isinstance(state, tuple):
            return {"h_n": state[0].float().numpy(), "c_n": state[1].float().numpy()}
        return {"h_n": state.float().numpy()}

    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Eval-mode outputs."""
        self.module.eval()
        with torch.inference_mode():
            y, state = self.module(torch.from_numpy(x).to(self.xtype))
            return {"y": y.float().numpy().copy(), **self._state_to_numpy(state)}

    def gradients(self, x: np.ndarray, dy: np.ndarray) -> dict[str, np.ndarray]:
        """``y``, ``dx`` and the weight gradients of ``sum(y * dy)``."""
        self.module.train()
        self.module.zero_grad(set_to_none=True)
        xt = torch.from_numpy(x).requires_grad_(True)
        y, _ = self.module(xt)
        (y * torch.from_numpy(dy)).sum().backward()
        out = {"y": y.detach().numpy(), "dx": xt.grad.numpy()}
        for key, param in self.module.named_parameters():
            out["grad." + key] = param.grad.numpy()
        return out

    def infer_fn(self, x: np.ndarray, variant: str = "") -> Callable[[], Any]:
        """One eval-mode call under ``inference_mode``."""
        module = self.module.eval()
        xt = torch.from_numpy(x).to(self.xtype)

        def call() -> Any:
            with torch.inference_mode():
                return module(xt)

        return call

    def train_fn(self, x: np.ndarray, dy: np.ndarray) -> Callable[[], Any]:
        """zero_grad, forward in train mode, backward of ``sum(y * dy)``."""
        module = self.module.train()
        dyt = torch.from_numpy(dy)
        xt = torch.from_numpy(x).requires_grad_(True)

        def call() -> Any:
            module.zero_grad(set_to_none=True)
            xt.grad = None
            y, _ = module(xt)
            (y * dyt).sum().backward()
            return y

        return call

    def stream_fn(self, x: np.ndarray) -> Callable[[], list[np.ndarray]]:
        """One module call per step, carrying ``(h, c)``/``h`` between calls."""
        module = self.module.eval()
        steps = [x[t : t + 1] for t in range(x.shape[0])]

        def call() -> list[np.ndarray]:
            out = []
            state = None
            with torch.inference_mode():
                for xt in steps:
                    y, state = module(torch.from_numpy(xt), state)
                    out.append(y.numpy())
            return out

        return call
