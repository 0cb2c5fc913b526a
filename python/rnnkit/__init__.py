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

# --- training API (issue 3) ---
from . import callbacks, data, layers, losses, metrics, models, optimizers, utils  # noqa: E402
from . import keras  # noqa: E402  (``import rnnkit as tf`` runs ``tf.keras.…`` code)
from .models import Sequential, load_model  # noqa: E402

__all__ += [
    "Sequential",
    "callbacks",
    "data",
    "keras",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "utils",
]
# --- end training API (issue 3) ---
