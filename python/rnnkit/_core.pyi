"""Type stubs for rnnkit._core, the compiled core (private: use the rnnkit package)."""

from typing import Any, Callable

import numpy as np
import numpy.typing as npt

_F32 = npt.NDArray[np.float32]
_F64 = npt.NDArray[np.float64]
_I32 = npt.NDArray[np.int32]
_I64 = npt.NDArray[np.int64]
# an activation: (name, alpha, beta), or the name alone for those without parameters
_Act = str | tuple[str, float, float]

class ForwardCachef32:
    """What a training-mode forward keeps for backward."""

class ForwardCachef64:
    """What a training-mode forward keeps for backward."""

class RNNf32:
    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        proj_size: int,
        bias: bool,
        reset_after: bool,
        peephole: bool,
        activation: _Act,
        recurrent_activation: _Act,
        weights: list[_F32],
        *,
        cell_activation: _Act | None = None,
        clip: float = 0.0,
        input_forget: bool = False,
        reverse: bool = False,
    ) -> None: ...
    def forward(
        self,
        x: _F32,
        h0: _F32 | None,
        c0: _F32 | None,
        lengths: _I32 | None,
        masks: _F32 | None,
        train: bool,
        reuse: ForwardCachef32 | None = None,
        h_masks: _F32 | None = None,
        x_masks: _F32 | None = None,
    ) -> tuple[_F32, _F32, _F32 | None, ForwardCachef32 | None]: ...
    def backward(
        self,
        cache: ForwardCachef32,
        dy: _F32,
        dh_n: _F32 | None,
        dc_n: _F32 | None,
        grads: list[_F32],
    ) -> tuple[_F32, _F32, _F32 | None]: ...
    def freeze(self, bf16: bool = False) -> bool: ...
    def thaw(self) -> None: ...
    def stream_bank(
        self,
        capacity: int,
        all_in_use: bool,
        convert: Callable[[Any], Any],
        convert_ids: Callable[[Any], _I64],
    ) -> Any: ...
    @property
    def param_count(self) -> int: ...

class RNNf64:
    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        proj_size: int,
        bias: bool,
        reset_after: bool,
        peephole: bool,
        activation: _Act,
        recurrent_activation: _Act,
        weights: list[_F64],
        *,
        cell_activation: _Act | None = None,
        clip: float = 0.0,
        input_forget: bool = False,
        reverse: bool = False,
    ) -> None: ...
    def forward(
        self,
        x: _F64,
        h0: _F64 | None,
        c0: _F64 | None,
        lengths: _I32 | None,
        masks: _F64 | None,
        train: bool,
        reuse: ForwardCachef64 | None = None,
        h_masks: _F64 | None = None,
        x_masks: _F64 | None = None,
    ) -> tuple[_F64, _F64, _F64 | None, ForwardCachef64 | None]: ...
    def backward(
        self,
        cache: ForwardCachef64,
        dy: _F64,
        dh_n: _F64 | None,
        dc_n: _F64 | None,
        grads: list[_F64],
    ) -> tuple[_F64, _F64, _F64 | None]: ...
    def freeze(self, bf16: bool = False) -> bool: ...
    def thaw(self) -> None: ...
    def stream_bank(
        self,
        capacity: int,
        all_in_use: bool,
        convert: Callable[[Any], Any],
        convert_ids: Callable[[Any], _I64],
    ) -> Any: ...
    @property
    def param_count(self) -> int: ...

def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def physical_cores() -> int: ...
def threads_pinned() -> bool: ...
def isa() -> str: ...
def isa_reason() -> str: ...
def set_isa(name: str) -> None: ...
def compiled_isas() -> list[str]: ...
def available_isas() -> list[str]: ...
def build_info() -> dict[str, Any]: ...
def round_bf16(a: npt.ArrayLike) -> _F32: ...
def activate(name: str, a: npt.ArrayLike, alpha: float = 0.0, beta: float = 0.0) -> _F32: ...
def bf16_info() -> dict[str, Any]: ...

class _StreamBank:
    """States of N streams of one module, in the core (StreamBankf32 / StreamBankf64)."""

    def step_all(self, x: Any, out: Any = None) -> Any: ...
    def step(self, ids: Any, x: Any, out: Any = None) -> Any: ...
    def run(self, x: Any) -> Any: ...
    def add(self) -> int: ...
    def release(self, ids: Any) -> None: ...
    def reset(self, ids: Any = None) -> None: ...
    def get_state(self, id: int) -> tuple[Any, Any | None]: ...
    def set_state(self, id: int, h: Any, c: Any) -> None: ...
    @property
    def capacity(self) -> int: ...
    @property
    def num_free(self) -> int: ...
    @property
    def in_use(self) -> _I64: ...

class StreamBankf32(_StreamBank): ...
class StreamBankf64(_StreamBank): ...

def _noop(x: Any, out: Any = None) -> Any: ...
def _noop_nogil(x: Any, out: Any = None) -> Any: ...
