"""Weight constraints with Keras 3's names, defaults and formulas.

A constraint maps a weight array (Keras's layout) to its projection; training applies it
after each optimizer step, as Keras does. Norms are taken along ``axis`` (0 by default:
for a Dense kernel ``(I, U)`` the incoming weights of each unit), with Keras's epsilon 1e-7:

- ``MaxNorm(max_value=2, axis=0)``: ``w * clip(n, 0, max_value) / (eps + n)``
- ``NonNeg()``: ``max(w, 0)``
- ``UnitNorm(axis=0)``: ``w / (eps + n)``
- ``MinMaxNorm(min_value=0, max_value=1, rate=1, axis=0)``:
  ``w * (rate * clip(n, min_value, max_value) + (1 - rate) * n) / (eps + n)``

Lower-case aliases (``max_norm``, ``non_neg``, ``unit_norm``, ``min_max_norm``) are the same
classes, as in Keras.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._keras_objects import Registry
from ._namespace import missing_attribute

Array = np.ndarray

#: Keras's ``backend.epsilon()``.
EPSILON = 1e-7


def _axis(value: Any, owner: str) -> Any:
    if isinstance(value, (list, tuple)):
        if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in value):
            raise ValueError(f"[{owner}] axis must be an int or a list of ints; got {value!r}")
        return [int(a) for a in value]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"[{owner}] axis must be an int or a list of ints; got {value!r}")
    return int(value)


def _number(value: Any, name: str, owner: str, low: float | None = 0.0) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(float(value))
        or (low is not None and value < low)
    ):
        raise ValueError(f"[{owner}] {name} must be a finite number >= {low}; got {value!r}")
    return value  # type: ignore[no-any-return]


class Constraint:
    """Base class: ``__call__(w)`` returns the constrained weights (a new array)."""

    def __call__(self, w: Array) -> Array:
        return w

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constraint:
        return cls(**config)

    def _norms(self, w: Array) -> Array:
        axis = self.axis  # type: ignore[attr-defined]
        return np.sqrt(np.sum(np.square(w), axis=tuple(np.atleast_1d(axis)), keepdims=True))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(type(self).__name__)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MaxNorm(Constraint):
    """Rescale each weight vector along ``axis`` to norm at most ``max_value``."""

    def __init__(self, max_value: float = 2, axis: Any = 0) -> None:
        self.max_value = _number(max_value, "max_value", "MaxNorm")
        self.axis = _axis(axis, "MaxNorm")

    def __call__(self, w: Array) -> Array:
        w = np.asarray(w)
        n = self._norms(w)
        t = w.dtype.type
        return w * (np.clip(n, 0, t(self.max_value)) / (t(EPSILON) + n))

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """``max(w, 0)``."""

    def __call__(self, w: Array) -> Array:
        w = np.asarray(w)
        return np.maximum(w, w.dtype.type(0))


class UnitNorm(Constraint):
    """Rescale each weight vector along ``axis`` to unit norm."""

    def __init__(self, axis: Any = 0) -> None:
        self.axis = _axis(axis, "UnitNorm")

    def __call__(self, w: Array) -> Array:
        w = np.asarray(w)
        return w / (w.dtype.type(EPSILON) + self._norms(w))

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Move each weight vector's norm along ``axis`` into ``[min_value, max_value]``."""

    def __init__(
        self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: Any = 0
    ) -> None:
        self.min_value = _number(min_value, "min_value", "MinMaxNorm")
        self.max_value = _number(max_value, "max_value", "MinMaxNorm")
        if self.max_value < self.min_value:
            raise ValueError(
                f"[MinMaxNorm] max_value={max_value!r} is below min_value={min_value!r}"
            )
        self.rate = _number(rate, "rate", "MinMaxNorm")
        self.axis = _axis(axis, "MinMaxNorm")

    def __call__(self, w: Array) -> Array:
        w = np.asarray(w)
        t = w.dtype.type
        n = self._norms(w)
        desired = t(self.rate) * np.clip(n, t(self.min_value), t(self.max_value)) + (
            t(1 - self.rate) * n
        )
        return w * (desired / (t(EPSILON) + n))

    def get_config(self) -> dict[str, Any]:
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": self.axis,
        }


max_norm = MaxNorm
non_neg = NonNeg
unit_norm = UnitNorm
min_max_norm = MinMaxNorm

CLASSES: dict[str, type[Constraint]] = {
    c.__name__: c for c in (MaxNorm, NonNeg, UnitNorm, MinMaxNorm)
}
_BY_NAME: dict[str, type[Constraint]] = {
    **CLASSES,
    "max_norm": MaxNorm,
    "non_neg": NonNeg,
    "unit_norm": UnitNorm,
    "min_max_norm": MinMaxNorm,
}


_REGISTRY = Registry("constraint", Constraint, "keras.constraints", _BY_NAME, None)


def get(identifier: Any, owner: str = "constraints.get", argument: str = "constraint") -> Any:
    """A :class:`Constraint` (or None) from None, a name, a Keras config dict
    (``{"class_name": ..., "config": ...}``), a class or an instance."""
    return _REGISTRY.get(identifier, owner, argument)


def serialize(constraint: Constraint | None) -> dict[str, Any] | None:
    """Keras 3's form: ``{"module", "class_name", "config", "registered_name"}``."""
    return _REGISTRY.serialize(constraint)


def deserialize(
    config: dict[str, Any], owner: str = "constraints.deserialize", argument: str = "constraint"
) -> Constraint:
    return _REGISTRY.deserialize(config, owner, argument)  # type: ignore[no-any-return]


__all__ = [
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "deserialize",
    "get",
    "max_norm",
    "min_max_norm",
    "non_neg",
    "serialize",
    "unit_norm",
]
__getattr__ = missing_attribute(__name__, __all__)
