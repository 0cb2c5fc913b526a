"""Live PyTorch modules in and out: ``rnnkit.LSTM.from_torch(nn.LSTM)`` and ``m.to_torch()``.

torch is imported only here, and only when one of these is called (the ``torch`` extra).
Both directions copy every constructor option that both libraries have and the training
mode; the weights keep their keys, shapes and values (PyTorch's layout is rnnkit's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from ._rnn import _RNNBase

_Module = TypeVar("_Module", bound="_RNNBase")

#: rnnkit class -> constructor options it shares with the torch class of the same name.
_OPTIONS = {
    "LSTM": ("num_layers", "bias", "batch_first", "dropout", "bidirectional", "proj_size"),
    "GRU": ("num_layers", "bias", "batch_first", "dropout", "bidirectional"),
    "RNN": ("num_layers", "bias", "batch_first", "dropout", "bidirectional"),
}


def _torch(owner: str) -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"[{owner}] needs PyTorch: pip install 'rnnkit[torch]' (or torch itself)"
        ) from None
    return torch


def _dtype_name(torch: Any, module: Any, owner: str) -> str:
    dtypes = {p.dtype for p in module.parameters()}
    if len(dtypes) != 1:
        raise TypeError(f"[{owner}] the module's parameters mix dtypes {sorted(map(str, dtypes))}")
    dtype = dtypes.pop()
    names = {torch.float32: "float32", torch.float64: "float64", torch.bfloat16: "bfloat16"}
    if dtype not in names:
        raise TypeError(
            f"[{owner}] the module is {dtype}; rnnkit takes float32, float64 or bfloat16 "
            "modules (call module.float() first)"
        )
    return names[dtype]


def from_torch(cls: type[_Module], module: Any) -> _Module:
    """An rnnkit module with ``module``'s options, weights and mode (see ``from_torch``)."""
    cell = cls._cell
    owner = f"{cell}.from_torch"
    torch = _torch(owner)
    expected = getattr(torch.nn, cell)
    if not isinstance(module, expected):
        got = f"{type(module).__module__}.{type(module).__qualname__}"
        hint = ""
        for other in _OPTIONS:
            if other != cell and isinstance(module, getattr(torch.nn, other)):
                hint = f" (use rnnkit.{other}.from_torch)"
        raise TypeError(f"[{owner}] expected a torch.nn.{cell}; got {got}{hint}")
    dtype = _dtype_name(torch, module, owner)
    if dtype == "bfloat16" and module.training:
        raise ValueError(
            f"[{owner}] bfloat16 rnnkit modules are for inference only and this module is in "
            "training mode: call module.eval() first, or module.float() to train in float32"
        )
    kwargs = {name: getattr(module, name) for name in _OPTIONS[cell]}
    if cell == "RNN":
        kwargs["activation"] = module.nonlinearity
    ours = cls(module.input_size, module.hidden_size, dtype=dtype, **kwargs)
    state = {}
    with torch.no_grad():
        for key in ours.named_parameters():
            value = getattr(module, key).detach().to("cpu")
            if value.dtype == torch.bfloat16:
                value = value.float()  # exact: rnnkit keeps bfloat16 values in float32 arrays
            state[key] = value.numpy()
    ours.load_state_dict(state, strict=True)
    if dtype != "bfloat16":  # a bfloat16 module is in eval mode already
        ours.train(module.training)
    return ours


def to_torch(m: _RNNBase) -> Any:
    """A ``torch.nn`` module with ``m``'s options, weights and mode (see ``to_torch``)."""
    cell = m._cell
    owner = f"{cell}.to_torch"
    torch = _torch(owner)
    differ = []
    if cell == "RNN":
        if m.activation not in ("tanh", "relu"):
            differ.append(f"activation={m.activation!r} (torch.nn.RNN has tanh and relu)")
    elif m.activation != "tanh":
        differ.append(f"activation={m.activation!r}")
    if getattr(m, "recurrent_activation", "sigmoid") != "sigmoid":
        differ.append(f"recurrent_activation={m.recurrent_activation!r}")
    if getattr(m, "peephole", False):
        differ.append("peephole=True")
    if cell == "GRU" and not m.reset_after:
        differ.append("reset_after=False")
    if differ:
        raise ValueError(
            f"[{owner}] torch.nn.{cell} has no equivalent of {', '.join(differ)}; only modules "
            "with PyTorch's cell equations convert"
        )
    dtypes = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}
    kwargs = {name: getattr(m, name) for name in _OPTIONS[cell]}
    if cell == "RNN":
        kwargs["nonlinearity"] = m.activation
    module = getattr(torch.nn, cell)(
        m.input_size, m.hidden_size, dtype=dtypes[m.weight_dtype], **kwargs
    )
    state = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in m.state_dict().items()}
    module.load_state_dict(state, strict=True)  # copy_ rounds float32 to the bfloat16 it holds
    module.train(m.training)
    return module
