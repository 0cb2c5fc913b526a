"""Metrics reported by ``fit``/``evaluate``: accuracy variants, mae, mse, rmse, precision,
recall and AUC (and losses).

A metric accumulates over batches (``update_state``) and reports the mean over all samples
seen since ``reset_state`` (``result``), as Keras's metrics do. ``"accuracy"``/``"acc"`` pick
the binary, categorical or sparse-categorical variant from the shapes of the targets and
predictions (Keras 3's rule, which agrees with the loss: binary when the model has one
output unit, sparse when the targets are class ids, categorical for one-hot targets).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from ._checks import check_float
from ._namespace import missing_attribute

Array = np.ndarray


def _value_weights(owner: str, sample_weight: Any, n_values: int, n_samples: int) -> Array:
    """Per-value weights from ``sample_weight`` (N,) or (N, T): a metric's values are laid
    out sample by sample (each sample's steps, then their elements, in order), so each weight
    repeats over the values it covers."""
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.shape[0] != n_samples or w.size == 0 or n_values % w.size:
        raise ValueError(
            f"[{owner}] sample_weight has shape {w.shape}; expected ({n_samples},) or "
            f"({n_samples}, steps), one weight per sample or per step of each sample"
        )
    if not np.all(np.isfinite(w)):
        raise ValueError(f"[{owner}] sample_weight must be finite")
    return np.repeat(w.ravel(), n_values // w.size)


class Metric:
    """Running mean of a per-sample value ``_values(y_true, y_pred) -> (N,)`` (or per step or
    element, sample by sample), weighted by ``sample_weight`` when given."""

    #: Whether a model's loop gives it the samples' weights (compile's weighted_metrics).
    _weighted = False

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__.lower()
        self.reset_state()

    def reset_state(self) -> None:
        self._total = 0.0
        self._count = 0.0

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Add a batch. ``sample_weight`` (N,) or (N, T): the weighted mean
        ``sum(w * v) / sum(w)`` over everything seen, as Keras's metrics."""
        t = np.asarray(y_true)
        values = self._values(t, np.asarray(y_pred))
        if sample_weight is None:
            self._total += float(np.sum(values, dtype=np.float64))
            self._count += values.size
            return
        w = _value_weights(self.name, sample_weight, values.size, t.shape[0] if t.ndim else 1)
        self._total += float(np.sum(values.ravel() * w))
        self._count += float(np.sum(w))

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


class MeanMetricWrapper(Metric):
    """A metric from a function ``fn(y_true, y_pred)`` returning per-sample values (or one
    value per batch), averaged over everything seen, as Keras wraps a metric function;
    ``compile(metrics=[fn])`` wraps a plain function this way, named after it."""

    def __init__(self, fn: Any, name: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"[MeanMetricWrapper] fn must be callable; got {type(fn).__name__}")
        self.fn = fn
        super().__init__(name or getattr(fn, "__name__", None) or "custom_metric")

    def _values(self, y_true, y_pred):
        values = np.asarray(self.fn(y_true, y_pred), dtype=np.float64)
        if values.dtype.kind not in "fiub":
            raise TypeError(f"[{self.name}] the metric function must return numbers")
        return values.ravel()


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
        # per element: the mean over each sample's elements, weighted per sample or per step
        return ((y_pred > self.threshold) == (y_true > 0.5)).ravel()


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


class RootMeanSquaredError(Metric):
    """``sqrt(mean((y_pred - y_true)^2))`` over every element seen since ``reset_state``."""

    def __init__(self, name: str = "root_mean_squared_error") -> None:
        super().__init__(name)

    def _values(self, y_true, y_pred):
        y_true = _same_rank(y_true, y_pred)
        return np.square(y_pred - y_true).ravel()

    def result(self) -> float:
        return math.sqrt(super().result())

    def __call__(self, y_true: Any, y_pred: Any) -> float:
        return math.sqrt(super().__call__(y_true, y_pred))


class _Confusion(Metric):
    """Counts of true/false positives/negatives at one or more thresholds, over all elements
    seen since ``reset_state``: an element is predicted positive when ``y_pred > threshold``
    and is a positive when ``y_true > 0.5`` (targets are 0/1, as Keras expects)."""

    _thresholds: Array

    def reset_state(self) -> None:
        n = len(getattr(self, "_thresholds", ()))
        self.true_positives = np.zeros(n, dtype=np.float64)
        self.false_positives = np.zeros(n, dtype=np.float64)
        self.true_negatives = np.zeros(n, dtype=np.float64)
        self.false_negatives = np.zeros(n, dtype=np.float64)

    def _scores(self, y_pred: Array) -> Array:
        return y_pred

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Add a batch; with ``sample_weight`` (N,) or (N, T) each element counts its
        sample's (or step's) weight instead of 1."""
        t, p = np.asarray(y_true), np.asarray(y_pred)
        t = _same_rank(t, p)
        if t.shape != p.shape:
            raise ValueError(
                f"[{type(self).__name__}] y_true has shape {t.shape}; y_pred has {p.shape}"
            )
        positive = (t > 0.5).ravel()
        all_scores = self._scores(p.astype(np.float64)).ravel()
        if sample_weight is None:
            w = np.ones(all_scores.size)
        else:
            w = _value_weights(self.name, sample_weight, all_scores.size, p.shape[0])

        def above(scores: Array, weights: Array) -> tuple[Array, float]:
            # the weight of the elements above each threshold, and of them all
            order = np.argsort(scores, kind="stable")
            cum = np.concatenate([[0.0], np.cumsum(weights[order])])
            at = np.searchsorted(scores[order], self._thresholds, side="right")
            return cum[-1] - cum[at], float(cum[-1])

        tp, pos = above(all_scores[positive], w[positive])
        fp, neg = above(all_scores[~positive], w[~positive])
        self.true_positives += tp
        self.false_positives += fp
        self.false_negatives += pos - tp
        self.true_negatives += neg - fp

    def __call__(self, y_true: Any, y_pred: Any) -> float:
        """Value on one batch (does not touch the running state)."""
        other = copy.copy(self)
        other.reset_state()
        other.update_state(y_true, y_pred)
        return other.result()


def _ratio(num: Array, den: Array) -> Array:
    """``num / den``, 0 where ``den == 0`` (Keras's divide_no_nan)."""
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def _threshold(owner: str, thresholds: Any) -> Array:
    values = [0.5] if thresholds is None else np.atleast_1d(thresholds).tolist()
    out = np.array(
        [check_float(owner, "thresholds", v, 0.0, 1.0, high_open=False) for v in values],
        dtype=np.float64,
    )
    if out.size == 0:
        raise ValueError(f"[{owner}] thresholds must not be empty")
    return out


class Precision(_Confusion):
    """``tp / (tp + fp)`` with predictions ``y_pred > threshold`` (default 0.5), Keras's
    ``Precision``; 0 when nothing was predicted positive. A list of ``thresholds`` gives a
    list of values. ``top_k`` and ``class_id`` are not supported."""

    def __init__(
        self,
        thresholds: float | list[float] | None = None,
        top_k: int | None = None,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        if top_k is not None or class_id is not None:
            raise NotImplementedError(
                f"[{type(self).__name__}] top_k and class_id are not supported"
            )
        self.thresholds = thresholds
        self._many = isinstance(thresholds, (list, tuple, np.ndarray))
        self._thresholds = _threshold(type(self).__name__, thresholds)
        super().__init__(name or type(self).__name__.lower())

    def result(self) -> Any:  # type: ignore[override]
        r = _ratio(self.true_positives, self.true_positives + self.false_positives)
        return [float(v) for v in r] if self._many else float(r[0])


class Recall(Precision):
    """``tp / (tp + fn)`` with predictions ``y_pred > threshold`` (default 0.5), Keras's
    ``Recall``; 0 when there were no positives."""

    def result(self) -> Any:  # type: ignore[override]
        r = _ratio(self.true_positives, self.true_positives + self.false_negatives)
        return [float(v) for v in r] if self._many else float(r[0])


class AUC(_Confusion):
    """Area under the ROC (or precision-recall) curve, approximated as Keras's ``AUC`` does.

    Predictions are bucketed at ``num_thresholds`` thresholds ``{-eps, 1/(n-1), ..., 1 + eps}``
    (``eps = 1e-7``; or the given ``thresholds`` between those ends); the curve through the
    points (false-positive rate, recall) for ROC, (recall, precision) for PR, is summed with
    the trapezoid rule (``summation_method="interpolation"``; for PR, Davis & Goadrich's
    interpolation, as Keras) or step heights ``"minoring"``/``"majoring"``.
    ``from_logits=True`` applies a sigmoid first. Multi-label AUC is not supported.
    """

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str | None = None,
        dtype: Any = None,
        thresholds: list[float] | None = None,
        multi_label: bool = False,
        num_labels: int | None = None,
        label_weights: Any = None,
        from_logits: bool = False,
    ) -> None:
        if multi_label or label_weights is not None or num_labels is not None:
            raise NotImplementedError(
                "[AUC] multi_label, num_labels and label_weights are not supported"
            )
        curve = str(curve).upper()
        if curve not in ("ROC", "PR"):
            raise ValueError(f"[AUC] curve must be 'ROC' or 'PR'; got {curve!r}")
        summation_method = str(summation_method).lower()
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(
                "[AUC] summation_method must be 'interpolation', 'minoring' or 'majoring'; "
                f"got {summation_method!r}"
            )
        eps = 1e-7
        if thresholds is not None:
            inner = sorted(
                check_float("AUC", "thresholds", v, 0.0, 1.0, high_open=False) for v in thresholds
            )
            grid = [0.0 - eps, *inner, 1.0 + eps]
        else:
            if (
                isinstance(num_thresholds, bool)
                or not isinstance(num_thresholds, (int, np.integer))
                or num_thresholds <= 1
            ):
                raise ValueError(f"[AUC] num_thresholds must be an int > 1; got {num_thresholds!r}")
            n = int(num_thresholds)
            grid = [0.0 - eps, *((i + 1) / (n - 1) for i in range(n - 2)), 1.0 + eps]
        self.num_thresholds = len(grid)
        self.curve = curve
        self.summation_method = summation_method
        self.from_logits = bool(from_logits)
        self._thresholds = np.array(grid, dtype=np.float64)
        super().__init__(name or "auc")

    def _scores(self, y_pred: Array) -> Array:
        return 1.0 / (1.0 + np.exp(-y_pred)) if self.from_logits else y_pred

    def result(self) -> float:
        tp, fp = self.true_positives, self.false_positives
        tn, fn = self.true_negatives, self.false_negatives
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolated_pr(tp, fp, fn)
        recall = _ratio(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _ratio(fp, fp + tn), recall
        else:
            x, y = recall, _ratio(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return float(np.sum((x[:-1] - x[1:]) * heights))

    @staticmethod
    def _interpolated_pr(tp: Array, fp: Array, fn: Array) -> float:
        """Davis & Goadrich (2006): between two thresholds precision is interpolated along
        true positives, not linearly in recall."""
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _ratio(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.ones_like(p[1:])
        ratio[both] = p[:-1][both] / p[1:][both]
        inc = _ratio(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0))
        return float(np.sum(inc))


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
    "root_mean_squared_error": RootMeanSquaredError,
    "auc": AUC,
    "precision": Precision,
    "recall": Recall,
}
#: Class names accepted as strings too (Keras's ``metrics.get("AUC")``).
_BY_CLASS_NAME: dict[str, type[Metric]] = {
    cls.__name__: cls
    for cls in (
        BinaryAccuracy,
        CategoricalAccuracy,
        SparseCategoricalAccuracy,
        MeanAbsoluteError,
        MeanSquaredError,
        RootMeanSquaredError,
        AUC,
        Precision,
        Recall,
    )
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
    if callable(identifier) and not isinstance(identifier, type):
        return MeanMetricWrapper(identifier)
    if not isinstance(identifier, str):
        raise TypeError(
            "metric must be a name, a rnnkit.metrics.Metric or a function fn(y_true, y_pred); "
            f"got {type(identifier).__name__}"
        )
    if identifier in _BY_CLASS_NAME:
        return _BY_CLASS_NAME[identifier]()
    key = identifier.lower()
    if key in ("accuracy", "acc"):
        if y_true_shape is None or y_pred_shape is None:
            raise ValueError("'accuracy' needs the target and output shapes to pick a variant")
        return accuracy_variant(y_true_shape, y_pred_shape)(name=identifier)
    cls = _BY_NAME.get(key)
    if cls is None:
        raise ValueError(
            f"unknown metric {identifier!r}; expected a class name "
            f"({', '.join(sorted(_BY_CLASS_NAME))}) or one of accuracy, acc, "
            f"{', '.join(sorted(_BY_NAME))}"
        )
    return cls(name=identifier)


__all__ = [
    "AUC",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "Mean",
    "MeanAbsoluteError",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "Metric",
    "Precision",
    "Recall",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "accuracy_variant",
    "get",
]
__getattr__ = missing_attribute(__name__, __all__)
