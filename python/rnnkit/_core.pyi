"""Type stubs for rnnkit._core, the compiled core (private: use the rnnkit package)."""

from typing import Any, Optional

import numpy as np
import numpy.typing as npt

_F32 = npt.NDArray[np.float32]
_F64 = npt.NDArray[np.float64]
_I32 = npt.NDArray[np.int32]

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
        activation: str,
        recurrent_activation: str,
        weights: list[_F32],
    ) -> None: ...
    def forward(
        self,
        x: _F32,
        h0: Optional[_F32],
        c0: Optional[_F32],
        lengths: Optional[_I32],
        masks: Optional[_F32],
        train: bool,
        reuse: Optional[ForwardCachef32] = None,
    ) -> tuple[_F32, _F32, Optional[_F32], Optional[ForwardCachef32]]: ...
    def backward(
        self,
        cache: ForwardCachef32,
        dy: _F32,
        dh_n: Optional[_F32],
        dc_n: Optional[_F32],
        grads: list[_F32],
    ) -> tuple[_F32, _F32, Optional[_F32]]: ...
    def freeze(self) -> None: ...
    def thaw(self) -> None: ...
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
        activation: str,
        recurrent_activation: str,
        weights: list[_F64],
    ) -> None: ...
    def forward(
        self,
        x: _F64,
        h0: Optional[_F64],
        c0: Optional[_F64],
        lengths: Optional[_I32],
        masks: Optional[_F64],
        train: bool,
        reuse: Optional[ForwardCachef64] = None,
    ) -> tuple[_F64, _F64, Optional[_F64], Optional[ForwardCachef64]]: ...
    def backward(
        self,
        cache: ForwardCachef64,
        dy: _F64,
        dh_n: Optional[_F64],
        dc_n: Optional[_F64],
        grads: list[_F64],
    ) -> tuple[_F64, _F64, Optional[_F64]]: ...
    def freeze(self) -> None: ...
    def thaw(self) -> None: ...
    @property
    def param_count(self) -> int: ...

def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def physical_cores() -> int: ...
def isa() -> str: ...
def isa_reason() -> str: ...
def set_isa(name: str) -> None: ...
def compiled_isas() -> list[str]: ...
def available_isas() -> list[str]: ...
def build_info() -> dict[str, Any]: ...
