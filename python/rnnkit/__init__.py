"""rnnkit: fast CPU LSTM and GRU networks with a C++ core.

``rnnkit.LSTM`` and ``rnnkit.GRU`` mirror ``torch.nn.LSTM`` / ``torch.nn.GRU`` on numpy
arrays, forward and backward.
"""

from ._config import (
    available_isas,
    config,
    get_isa,
    get_num_threads,
    set_isa,
    set_num_threads,
    show_config,
)
from ._rnn import GRU, LSTM

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "available_isas",
    "config",
    "get_isa",
    "get_num_threads",
    "set_isa",
    "set_num_threads",
    "show_config",
]
