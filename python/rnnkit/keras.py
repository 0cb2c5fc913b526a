"""A Keras-shaped namespace, so Keras programs run with only their imports changed.

``from rnnkit import keras`` (or ``import rnnkit.keras as keras``) stands in for
``import keras`` (``keras.Sequential``, ``keras.layers.LSTM``,
``keras.callbacks.EarlyStopping``, ``keras.utils.pad_sequences`` ...), and ``import rnnkit
as tf`` for ``import tensorflow as tf`` in code written as ``tf.keras.Sequential([...])``.
The dotted imports work too: ``from rnnkit.keras.layers import LSTM``,
``from rnnkit.keras.optimizers.schedules import CosineDecay``,
``from rnnkit.keras.preprocessing.sequence import pad_sequences``.

``keras.Model(inputs, outputs)`` is the functional API. A name Keras has and rnnkit does
not raises an AttributeError naming it.
"""

from __future__ import annotations

import sys

from . import (
    callbacks,
    constraints,
    data,
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
from ._namespace import missing_attribute
from .layers import Input
from .models import Model, Sequential, load_model

__all__ = [
    "Input",
    "Model",
    "Sequential",
    "callbacks",
    "constraints",
    "data",
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
__getattr__ = missing_attribute(__name__, __all__)

# ``rnnkit.keras`` is a module, not a package: register its namespaces under their dotted
# names so that ``from rnnkit.keras.X import Y`` finds them (the same module objects).
for _name, _module in [
    ("callbacks", callbacks),
    ("constraints", constraints),
    ("data", data),
    ("layers", layers),
    ("losses", losses),
    ("metrics", metrics),
    ("models", models),
    ("optimizers", optimizers),
    ("optimizers.schedules", optimizers.schedules),
    ("preprocessing", preprocessing),
    ("preprocessing.sequence", preprocessing.sequence),
    ("random", random),
    ("regularizers", regularizers),
    ("utils", utils),
]:
    sys.modules.setdefault(f"{__name__}.{_name}", _module)
sys.modules.setdefault("rnnkit.optimizers.schedules", optimizers.schedules)
del _name, _module
