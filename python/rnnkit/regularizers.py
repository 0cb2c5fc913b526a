"""Weight and activity regularizers with Keras 3's names, defaults and values.

A regularizer maps a weight array ``w`` to a penalty that training adds to the loss:
``L1(l1)``: ``l1 * sum(|w|)``; ``L2(l2)``: ``l2 * sum(w**2)``; ``L1L2(l1, l2)``: both.
``l1``, ``l2`` and ``l1_l2`` are the same classes under Keras's lower-case aliases, so
``kernel_regularizer=l2(1e-4)`` and ``kernel_regularizer="l2"`` (``L2(0.01)``) both work.

Layers take them as ``kernel_regularizer=``, ``recurrent_regularizer=``,
``bias_regularizer=``, ``embeddings_regularizer=``, ``beta_regularizer=``/``gamma_regularizer=``
and ``activity_regularizer=``. As in Keras 3, ``fit``, ``evaluate`` and ``train_on_batch``
report the loss plus every trainable weight's penalty plus each activity penalty divided by
the batch size; the penalties' gradients enter the weights' gradients. ``gradient(w)`` is
``dpenalty/dw`` (``l1 * sign(w) + 2 * l2 * w``; 0 at ``w == 0`` for L1, as TensorFlow).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._keras_objects import Registry
from ._namespace import missing_attribute

Array = np.ndarray


def _factor(value: Any, name: str, owner: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(float(value))
        or value < 0
    ):
        raise ValueError(f"[{owner}] {name} must be a non-negative float; got {value!r}")
    return float(value)


class Regularizer:
    """Base class: ``__call__(w)`` is the penalty (a float), ``gradient(w)`` its derivative."""

    def __call__(self, x: Array) -> float:
        return 0.0

    def gradient(self, x: Array) -> Array:
        return np.zeros_like(x)

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w**2)`` (Keras defaults: both 0)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = _factor(0.0 if l1 is None else l1, "l1", type(self).__name__)
        self.l2 = _factor(0.0 if l2 is None else l2, "l2", type(self).__name__)

    def __call__(self, x: Array) -> float:
        x = np.asarray(x)
        total = 0.0
        if self.l1:
            total += float(x.dtype.type(self.l1) * np.sum(np.abs(x)))
        if self.l2:
            total += float(x.dtype.type(self.l2) * np.sum(np.square(x)))
        return total

    def gradient(self, x: Array) -> Array:
        x = np.asarray(x)
        g = np.zeros_like(x)
        if self.l1:
            g += x.dtype.type(self.l1) * np.sign(x)
        if self.l2:
            g += x.dtype.type(2.0 * self.l2) * x
        return g

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(|w|)`` (Keras default ``l1=0.01``)."""

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1, l2=0.0)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(w**2)`` (Keras default ``l2=0.01``)."""

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l1=0.0, l2=l2)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


l1 = L1
l2 = L2
l1_l2 = L1L2

CLASSES: dict[str, type[Regularizer]] = {c.__name__: c for c in (L1, L2, L1L2)}
_BY_NAME: dict[str, type[Regularizer]] = {
    **CLASSES,
    "l1": L1,
    "l2": L2,
    "l1_l2": L1L2,
    "l1l2": L1L2,
}


_REGISTRY = Registry(
    "regularizer",
    Regularizer,
    "keras.regularizers",
    _BY_NAME,
    "a plain function has no gradient rnnkit can use; pass rnnkit.regularizers.L1/L2/L1L2 "
    "or a Regularizer subclass with gradient(w)",
)


def get(identifier: Any, owner: str = "regularizers.get", argument: str = "regularizer") -> Any:
    """A :class:`Regularizer` (or None) from None, a name, a Keras config dict
    (``{"class_name": ..., "config": ...}``), a class or an instance."""
    return _REGISTRY.get(identifier, owner, argument)


def serialize(regularizer: Regularizer | None) -> dict[str, Any] | None:
    """Keras 3's form: ``{"module", "class_name", "config", "registered_name"}``."""
    return _REGISTRY.serialize(regularizer)


def deserialize(
    config: dict[str, Any], owner: str = "regularizers.deserialize", argument: str = "regularizer"
) -> Regularizer:
    return _REGISTRY.deserialize(config, owner, argument)  # type: ignore[no-any-return]


__all__ = [
    "L1",
    "L1L2",
    "L2",
    "Regularizer",
    "deserialize",
    "get",
    "l1",
    "l1_l2",
    "l2",
    "serialize",
]
__getattr__ = missing_attribute(__name__, __all__)
