"""Metrics reported by ``fit``/``evaluate``: accuracy variants, mae, mse (and losses).

A metric accumulates over batches (``update_state``) and reports the mean over all samples
seen since ``reset_state`` (``result``), as Keras's metrics do. ``"accuracy"``/``"acc"`` pick
the binary, categorical or sparse-categorical variant from the shapes of the targets and
predictions (Keras 3's rule, which agrees with the loss: binary when the model has one
output unit, sparse when the targets are class ids, categorical for one-hot targets).
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray


class Metric:
    """Running mean of a per-sample value ``_values(y_true, y_pred) -> (N,)``."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__.lower()
        self.reset_state()

    def reset_state(self) -> None:
        self._total = 0.0
        self._count = 0

    def update_state(self, y_true: Any, y_pred: Any) -> None:
        values = self._values(np.asarray(y_true), np.asarray(y_pred))
        self._total += float(np.sum(values, dtype=np.float64))
        self._count += int(values.size)

    def result(self) -> float:
        return self._total / self._count if self._count else 0.0

    def _values(self, y_true: Array, y_pred: Array) -> Array:
        raise NotImplementedError

    def __call__(self, y_true: Any, y_pred: Any) -> float:
        """Value on one batch (does not touch the running state)."""
        v = self._values(np.asarray(y_true), np.asarray(y_pred))
        return float(np.mean(v, dtype=np.float64))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _same_rank(y_true: Array, y_pred: Array) -> Array:
    if y_true.ndim == y_pred.ndim - 1:
        return y_true[..., None]
    return y_true


class BinaryAccuracy(Metric):
    """Fraction of elements where ``(y_pred > threshold) == y_true``."""

    def __init__(self, name: str = "binary_accuracy", threshold: float = 0.5) -> None:
        super().__init__(name)
        self.threshold = threshold

    def _values(self, y_true, y_pred):
        y_true = _same_rank(y_true, y_pred)
        hit = (y_pred > self.threshold) == (y_true > 0.5)
        return hit.reshape(hit.shape[0], -1).mean(axis=-1) if hit.ndim > 1 else hit


class CategoricalAccuracy(Metric):
    """Fraction of samples where ``argmax(y_pred) == argmax(y_true)`` (one-hot targets)."""

    def __init__(self, name: str = "categorical_accuracy") -> None:
        super().__init__(name)

    def _values(self, y_true, y_pred):
        return (y_pred.argmax(axis=-1) == y_true.argmax(axis=-1)).ravel()


class SparseCategoricalAccuracy(Metric):
    """Fraction of samples where ``argmax(y_pred) == y_true`` (integer class ids)."""

    def __init__(self, name: str = "sparse_categorical_accuracy") -> None:
        super().__init__(name)

    def _values(self, y_true, y_pred):
        if y_true.ndim == y_pred.ndim:
            y_true = y_true[..., 0]
        return (y_pred.argmax(axis=-1) == y_true).ravel()


class MeanAbsoluteError(Metric):
    """Mean of ``|y_pred - y_true|`` (over the last axis, then over samples)."""

    def __init__(self, name: str = "mean_absolute_error") -> None:
        super().__init__(name)

    def _values(self, y_true, y_pred):
        y_true = _same_rank(y_true, y_pred)
        return np.abs(y_pred - y_true).mean(axis=-1).ravel()


class MeanSquaredError(Metric):
    """Mean of ``(y_pred - y_true)^2`` (over the last axis, then over samples)."""

    def __init__(self, name: str = "mean_squared_error") -> None:
        super().__init__(name)

    def _values(self, y_true, y_pred):
        y_true = _same_rank(y_true, y_pred)
        return np.square(y_pred - y_true).mean(axis=-1).ravel()


class Mean(Metric):
    """Weighted running mean of scalars: ``update_state(value, weight)`` (used for losses)."""

    def update_state(self, value: Any, weight: Any = 1) -> None:  # type: ignore[override]
        self._total += float(value) * float(weight)
        self._count += int(weight)


_BY_NAME: dict[str, type[Metric]] = {
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
}


def accuracy_variant(y_true_shape: tuple[int, ...], y_pred_shape: tuple[int, ...]) -> type[Metric]:
    """Keras 3's choice for ``"accuracy"``: binary if one output unit; sparse if the targets
    have a lower rank (or a last axis of 1 against several classes); else categorical."""
    if y_pred_shape[-1] == 1:
        return BinaryAccuracy
    if len(y_true_shape) < len(y_pred_shape) or y_true_shape[-1] == 1:
        return SparseCategoricalAccuracy
    return CategoricalAccuracy


def get(
    identifier: Any,
    y_true_shape: tuple[int, ...] | None = None,
    y_pred_shape: tuple[int, ...] | None = None,
) -> Metric:
    """A metric from a name (kept as its display name), a Metric object or class."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if not isinstance(identifier, str):
        raise TypeError(
            f"metric must be a name or a rnnkit.metrics.Metric; got {type(identifier).__name__}"
        )
    key = identifier.lower()
    if key in ("accuracy", "acc"):
        if y_true_shape is None or y_pred_shape is None:
            raise ValueError("'accuracy' needs the target and output shapes to pick a variant")
        return accuracy_variant(y_true_shape, y_pred_shape)(name=identifier)
    cls = _BY_NAME.get(key)
    if cls is None:
        raise ValueError(
            f"unknown metric {identifier!r}; expected one of accuracy, acc, "
            f"{', '.join(sorted(_BY_NAME))}"
        )
    return cls(name=identifier)


__all__ = [
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "Mean",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Metric",
    "SparseCategoricalAccuracy",
    "accuracy_variant",
    "get",
]
