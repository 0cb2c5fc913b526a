"""Keras-shaped layers (batch-first): ``Input``, ``InputLayer``, ``Dense``, ``Dropout``,
``Embedding``, ``Flatten``, ``RepeatVector``, ``LSTM``, ``GRU``, ``SimpleRNN``,
``Bidirectional``, ``TimeDistributed``, ``Masking``; for graphs of layers (``rnnkit.Model``)
the merge layers ``Concatenate``, ``Add``, ``Subtract``, ``Multiply``, ``Average``,
``Maximum``, ``Minimum``, ``Dot`` and the attention layers ``Attention`` and
``AdditiveAttention``; and ``Reshape``, ``Permute``, ``Conv1D``, ``MaxPooling1D``,
``AveragePooling1D``, ``GlobalAveragePooling1D``, ``GlobalMaxPooling1D``,
``LayerNormalization``, ``BatchNormalization``, ``Activation``, ``SpatialDropout1D``,
``GaussianNoise``, ``UpSampling1D``, ``ZeroPadding1D``, ``Cropping1D``.

``from rnnkit.layers import LSTM, Dense, Dropout`` replaces
``from tensorflow.keras.layers import LSTM, Dense, Dropout``. The recurrent layers run on
the C++ core modules (``rnnkit.LSTM``/``rnnkit.GRU``/``rnnkit.RNN``);
``get_weights``/``set_weights`` use Keras's weight layout, so weights move between Keras and
rnnkit unchanged.
"""

from __future__ import annotations

from typing import Any

from ._namespace import missing_attribute
from ._training.base import Layer
from ._training.convolution import (
    AveragePooling1D,
    BatchNormalization,
    Conv1D,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    LayerNormalization,
    MaxPooling1D,
)
from ._training.core_layers import (
    Activation,
    Cropping1D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GaussianNoise,
    Input,
    InputLayer,
    Masking,
    Permute,
    RepeatVector,
    Reshape,
    SpatialDropout1D,
    UpSampling1D,
    ZeroPadding1D,
)
from ._training.merge import (
    Add,
    AdditiveAttention,
    Attention,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    TimeDistributed,
)
from ._training.recurrent import GRU, LSTM, Bidirectional, SimpleRNN

#: Layer classes that ``deserialize`` (and so ``load_model``) may construct.
LAYER_CLASSES: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (
        InputLayer,
        Dense,
        Dropout,
        Embedding,
        Masking,
        Flatten,
        RepeatVector,
        LSTM,
        GRU,
        SimpleRNN,
        Bidirectional,
        Concatenate,
        Add,
        Subtract,
        Multiply,
        Average,
        Maximum,
        Minimum,
        Dot,
        Attention,
        AdditiveAttention,
        TimeDistributed,
        Reshape,
        Permute,
        Conv1D,
        MaxPooling1D,
        AveragePooling1D,
        GlobalAveragePooling1D,
        GlobalMaxPooling1D,
        LayerNormalization,
        BatchNormalization,
        Activation,
        SpatialDropout1D,
        GaussianNoise,
        UpSampling1D,
        ZeroPadding1D,
        Cropping1D,
    )
}


def serialize(layer: Layer) -> dict[str, Any]:
    """``{"class_name": ..., "config": layer.get_config()}``."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(entry: dict[str, Any]) -> Layer:
    """Rebuild a layer from ``serialize`` output; only rnnkit's own classes are allowed."""
    if not isinstance(entry, dict):
        raise ValueError(f"layer entry must be a dict; got {type(entry).__name__}")
    name = entry.get("class_name")
    cls = LAYER_CLASSES.get(name)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(
            f"unknown layer class {name!r}; rnnkit layers: {', '.join(sorted(LAYER_CLASSES))}"
        )
    config = entry.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"config of layer {name!r} must be a dict")
    return cls.from_config(dict(config))


__all__ = [
    "GRU",
    "LSTM",
    "Activation",
    "Cropping1D",
    "GaussianNoise",
    "SpatialDropout1D",
    "UpSampling1D",
    "ZeroPadding1D",
    "AveragePooling1D",
    "BatchNormalization",
    "Conv1D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "LayerNormalization",
    "MaxPooling1D",
    "Permute",
    "Reshape",
    "Add",
    "AdditiveAttention",
    "Attention",
    "Average",
    "Bidirectional",
    "Concatenate",
    "Dense",
    "Dot",
    "Dropout",
    "Embedding",
    "Flatten",
    "Input",
    "InputLayer",
    "Layer",
    "Masking",
    "Maximum",
    "Minimum",
    "Multiply",
    "RepeatVector",
    "SimpleRNN",
    "Subtract",
    "TimeDistributed",
    "deserialize",
    "serialize",
]
__getattr__ = missing_attribute(__name__, __all__)
