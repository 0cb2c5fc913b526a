"""rnnkit: fast CPU LSTM and GRU networks with a C++ core.

``rnnkit.LSTM``, ``rnnkit.GRU`` and ``rnnkit.RNN`` mirror ``torch.nn.LSTM`` / ``torch.nn.GRU``
/ ``torch.nn.RNN`` on numpy arrays, forward and backward.
"""

from ._checks import MAX_ELEMENTS
from ._config import (
    MAX_THREADS,
    available_isas,
    config,
    get_isa,
    get_num_threads,
    set_isa,
    set_num_threads,
    show_config,
)
from ._rnn import GRU, LSTM, RNN
from .streams import Stream, StreamBank

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "MAX_ELEMENTS",
    "MAX_THREADS",
    "RNN",
    "Stream",
    "StreamBank",
    "available_isas",
    "config",
    "get_isa",
    "get_num_threads",
    "set_isa",
    "set_num_threads",
    "show_config",
]

# --- training API (issue 3) ---
# (``keras`` is a Keras-shaped namespace: ``import rnnkit as tf`` runs ``tf.keras.…`` code.)
from . import (  # noqa: E402
    callbacks,
    constraints,
    data,
    keras,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    preprocessing,
    random,
    regularizers,
    utils,
)
from ._namespace import missing_attribute  # noqa: E402
from .models import Model, Sequential, load_model  # noqa: E402

__all__ += [
    "Model",
    "Sequential",
    "callbacks",
    "constraints",
    "data",
    "keras",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "preprocessing",
    "random",
    "regularizers",
    "utils",
]
# --- end training API (issue 3) ---

# A missing name says rnnkit does not provide it.
__getattr__ = missing_attribute(__name__, __all__, submodules=("dask", "onnx"))
