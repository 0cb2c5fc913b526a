"""A Keras-shaped namespace, so Keras programs run with only their imports changed.

``from rnnkit import keras`` stands in for ``import keras`` (``keras.Sequential``,
``keras.layers.LSTM``, ``keras.callbacks.EarlyStopping`` ...), and ``import rnnkit as tf``
for ``import tensorflow as tf`` in code written as ``tf.keras.Sequential([...])``.
"""

from __future__ import annotations

from . import callbacks, data, layers, losses, metrics, models, optimizers, utils
from .layers import Input
from .models import Sequential, load_model

__all__ = [
    "Input",
    "Sequential",
    "callbacks",
    "data",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "utils",
]
