"""Losses with Keras's names, values and reduction, plus their gradients.

A loss maps ``(y_true, y_pred)`` to one number: a per-sample loss over the last axis,
averaged over all remaining elements (Keras's ``"sum_over_batch_size"``). ``value_and_grad``
also returns ``dL/dy_pred``. The cross-entropies can instead take logits
(``from_logits=True``); ``Sequential`` uses that path when the last Dense has a softmax or
sigmoid activation, which fuses the activation's gradient into the loss (``p - y``) and
keeps it finite when probabilities saturate.

Shapes: ``y_pred (B, ..., C)``. ``y_true`` has the same shape, or one axis less when C is
1 (Keras squeezes), or integer class ids ``(B, ...)``/``(B, ..., 1)`` for the sparse
categorical cross-entropy.

``sample_weight`` (``__call__``, ``value_and_grad``): weights of shape ``(B,)`` or ``(B, ...)``
(a prefix of the per-sample losses' shape, e.g. ``(B, T)`` for sequence outputs) multiply
the per-sample losses before the average, which still divides by their number, as Keras 3's
``"sum_over_batch_size"`` does; the gradient scales by the same weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._namespace import missing_attribute
from ._training.activations import sigmoid

Array = np.ndarray

#: Keras's probability clipping epsilon (``keras.config.epsilon()``).
EPSILON = 1e-7


def _align(y_true: Array, y_pred: Array, name: str) -> Array:
    """Give y_true y_pred's rank the way Keras does; check shapes agree."""
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y_true = y_true[..., None]
    elif y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"[{name}] y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}"
        )
    return y_true


if TYPE_CHECKING:  # for type checkers only: the keyword arguments every loss takes
    from typing_extensions import TypedDict, Unpack

    class LossOptions(TypedDict, total=False):
        """``**kwargs`` of the losses with their own arguments (see :class:`Loss`)."""

        name: str | None
        reduction: str


class Loss:
    """Base class. Subclasses implement ``_value_and_grad(y_true, y_pred, need_grad)``,
    returning the per-sample (or per-element) losses and ``d mean(losses) / dy_pred``; the
    base class averages them, with the sample weights if given.

    ``__call__`` returns the mean loss (float); ``value_and_grad`` returns it with
    ``dL/dy_pred`` (y_pred's shape and dtype).
    """

    name = "loss"
    #: Whether y_true holds class ids (checked against the number of classes by fit).
    sparse_labels = False
    #: Whether ``value_and_grad_from_logits`` exists for this loss.
    supports_logits = False
    #: Which output activation the logits path fuses: "softmax" or "sigmoid".
    fused_activation: str | None = None

    def __init__(self, name: str | None = None, reduction: str = "sum_over_batch_size") -> None:
        if reduction not in ("sum_over_batch_size", "auto"):
            raise NotImplementedError(
                f"[{type(self).__name__}] reduction={reduction!r} is not supported; "
                "rnnkit averages over the batch (Keras's 'sum_over_batch_size')"
            )
        if name is not None:
            self.name = name

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
        value, _ = self.value_and_grad(y_true, y_pred, need_grad=False, sample_weight=sample_weight)
        return value

    def value_and_grad(
        self, y_true: Any, y_pred: Any, need_grad: bool = True, sample_weight: Any = None
    ) -> tuple[float, Array | None]:
        y_pred = np.asarray(y_pred)
        if y_pred.dtype.kind != "f":
            y_pred = y_pred.astype(np.float32)
        y_true = self._prepare_true(np.asarray(y_true), y_pred)
        per, grad = self._value_and_grad(y_true, y_pred, need_grad)
        return self._reduce(per, grad, sample_weight)

    def _reduce(
        self, per: Any, grad: Array | None, sample_weight: Any
    ) -> tuple[float, Array | None]:
        """The (weighted) mean of the per-sample losses, and the gradient scaled alike."""
        if sample_weight is None:
            return float(np.mean(per, dtype=np.float64)), grad
        per = np.asarray(per)
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.ndim == 0 or w.ndim > per.ndim or per.shape[: w.ndim] != w.shape:
            if w.ndim == per.ndim + 1 and w.shape[-1] == 1 and per.shape == w.shape[:-1]:
                w = w[..., 0]
            else:
                raise ValueError(
                    f"[{self.name}] sample_weight has shape {w.shape}; expected ({per.shape[0]},) "
                    f"or a prefix of the per-sample losses' shape {per.shape}"
                )
        wl = w.reshape(w.shape + (1,) * (per.ndim - w.ndim))
        value = float(np.mean(per * wl, dtype=np.float64))
        if grad is not None:
            grad = grad * w.reshape(w.shape + (1,) * (grad.ndim - w.ndim)).astype(grad.dtype)
        return value, grad

    def _prepare_true(self, y_true: Array, y_pred: Array) -> Array:
        return _align(y_true, y_pred, self.name).astype(y_pred.dtype, copy=False)

    def _value_and_grad(
        self, y_true: Array, y_pred: Array, need_grad: bool
    ) -> tuple[Array, Array | None]:
        raise NotImplementedError

    def value_and_grad_from_logits(
        self, y_true: Any, logits: Any, need_grad: bool = True, sample_weight: Any = None
    ) -> tuple[float, Array | None]:
        """Loss of ``activation(logits)`` and ``dL/dlogits`` in one stable pass."""
        if not self.supports_logits:
            raise NotImplementedError(f"[{self.name}] has no logits path")
        logits = np.asarray(logits)
        y_true = self._prepare_true(np.asarray(y_true), logits)
        per, grad = self._logits(y_true, logits, need_grad)
        return self._reduce(per, grad, sample_weight)

    def _logits(self, y_true: Array, logits: Array, need_grad: bool) -> tuple[Array, Array | None]:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


class MeanSquaredError(Loss):
    """``mean((y_pred - y_true)^2)``; gradient ``2 (y_pred - y_true) / N``."""

    name = "mean_squared_error"

    def _value_and_grad(self, y_true, y_pred, need_grad):
        diff = y_pred - y_true
        per = np.square(diff, dtype=np.float64)
        if not need_grad:
            return per, None
        diff *= y_pred.dtype.type(2.0 / diff.size)
        return per, diff


class MeanAbsoluteError(Loss):
    """``mean(|y_pred - y_true|)``; gradient ``sign(y_pred - y_true) / N``."""

    name = "mean_absolute_error"

    def _value_and_grad(self, y_true, y_pred, need_grad):
        diff = y_pred - y_true
        per = np.abs(diff)
        if not need_grad:
            return per, None
        grad = np.sign(diff)
        grad *= y_pred.dtype.type(1.0 / diff.size)
        return per, grad


class Huber(Loss):
    """``0.5 d^2`` where ``|d| <= delta``, else ``delta (|d| - 0.5 delta)``; d = y_pred - y_true."""

    name = "huber_loss"

    def __init__(self, delta: float = 1.0, **kwargs: Unpack[LossOptions]) -> None:
        super().__init__(**kwargs)
        if delta <= 0:
            raise ValueError(f"[Huber] delta must be positive; got {delta}")
        self.delta = float(delta)

    def _value_and_grad(self, y_true, y_pred, need_grad):
        d = y_pred - y_true
        a = np.abs(d)
        small = a <= self.delta
        per = np.where(small, 0.5 * d * d, self.delta * (a - 0.5 * self.delta))
        if not need_grad:
            return per, None
        grad = np.where(small, d, self.delta * np.sign(d)).astype(y_pred.dtype, copy=False)
        grad *= y_pred.dtype.type(1.0 / d.size)
        return per, grad

    def get_config(self):
        return {"name": self.name, "delta": self.delta}


class BinaryCrossentropy(Loss):
    """``-mean(y log p + (1 - y) log(1 - p))`` with p clipped to ``[eps, 1 - eps]``.

    With ``from_logits=True`` (or fused after a sigmoid Dense) the stable form
    ``max(z, 0) - z y + log(1 + exp(-|z|))`` is used, with gradient ``(sigmoid(z) - y)/N``.
    """

    name = "binary_crossentropy"
    supports_logits = True
    fused_activation = "sigmoid"

    def __init__(
        self, from_logits: bool = False, label_smoothing: float = 0.0, **kwargs: Unpack[LossOptions]
    ):
        super().__init__(**kwargs)
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def _smooth(self, y: Array) -> Array:
        if self.label_smoothing:
            return y * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return y

    def _value_and_grad(self, y_true, y_pred, need_grad):
        if self.from_logits:
            return self._logits(y_true, y_pred, need_grad)
        y = self._smooth(y_true)
        p = np.clip(y_pred, EPSILON, 1.0 - EPSILON)
        per = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        if not need_grad:
            return per, None
        inside = (y_pred > EPSILON) & (y_pred < 1.0 - EPSILON)
        grad = (-(y / p) + (1 - y) / (1 - p)) * inside / y_pred.size
        return per, grad.astype(y_pred.dtype, copy=False)

    def _logits(self, y_true, z, need_grad):
        y = self._smooth(y_true)
        per = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        if not need_grad:
            return per, None
        grad = sigmoid(z) - y
        grad *= z.dtype.type(1.0 / z.size)
        return per, grad.astype(z.dtype, copy=False)

    def get_config(self):
        return {
            "name": self.name,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


def _log_softmax(z: Array) -> Array:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class CategoricalCrossentropy(Loss):
    """``-mean_over_samples(sum_c y_c log p_c)`` for one-hot (or soft) targets ``(B, ..., C)``.

    Probabilities are renormalised to sum to 1 and clipped to ``[eps, 1 - eps]`` (Keras).
    The logits path uses ``log_softmax`` with gradient ``(softmax(z) sum_c y_c - y) / N``.
    """

    name = "categorical_crossentropy"
    supports_logits = True
    fused_activation = "softmax"

    def __init__(
        self, from_logits: bool = False, label_smoothing: float = 0.0, **kwargs: Unpack[LossOptions]
    ):
        super().__init__(**kwargs)
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def _smooth(self, y: Array) -> Array:
        if self.label_smoothing:
            c = y.shape[-1]
            return y * (1.0 - self.label_smoothing) + self.label_smoothing / c
        return y

    def _value_and_grad(self, y_true, y_pred, need_grad):
        if self.from_logits:
            return self._logits(y_true, y_pred, need_grad)
        y = self._smooth(y_true)
        s = y_pred.sum(axis=-1, keepdims=True)
        q = y_pred / s
        qc = np.clip(q, EPSILON, 1.0 - EPSILON)
        per = -(y * np.log(qc)).sum(axis=-1)
        if not need_grad:
            return per, None
        n = per.size
        gq = np.where((q > EPSILON) & (q < 1.0 - EPSILON), -y / qc, 0.0) / n
        grad = (gq - (gq * q).sum(axis=-1, keepdims=True)) / s
        return per, grad.astype(y_pred.dtype, copy=False)

    def _logits(self, y_true, z, need_grad):
        y = self._smooth(y_true)
        logp = _log_softmax(z)
        per = -(y * logp).sum(axis=-1)
        if not need_grad:
            return per, None
        grad = np.exp(logp) * y.sum(axis=-1, keepdims=True) - y
        grad *= z.dtype.type(1.0 / per.size)
        return per, grad.astype(z.dtype, copy=False)

    def get_config(self):
        return {
            "name": self.name,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


class SparseCategoricalCrossentropy(Loss):
    """Categorical cross-entropy with integer class ids ``y_true (B, ...)`` in ``0..C-1``.

    ``y_pred (B, ..., C)``; ``y_true`` may also carry a trailing axis of 1. Ids outside
    ``0..C-1`` raise ValueError (Keras silently produces NaN or garbage).
    """

    name = "sparse_categorical_crossentropy"
    sparse_labels = True
    supports_logits = True
    fused_activation = "softmax"

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if ignore_class is not None:
            raise NotImplementedError("[SparseCategoricalCrossentropy] ignore_class")
        self.from_logits = bool(from_logits)

    def _prepare_true(self, y_true: Array, y_pred: Array) -> Array:
        if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
            y_true = y_true[..., 0]
        if y_true.shape != y_pred.shape[:-1]:
            raise ValueError(
                f"[{self.name}] y_true has shape {y_true.shape}; expected class ids of shape "
                f"{y_pred.shape[:-1]} (y_pred has shape {y_pred.shape})"
            )
        labels = y_true
        if labels.dtype.kind == "f":
            if np.any(labels != np.round(labels)):
                raise ValueError(f"[{self.name}] y_true must hold integer class ids")
            labels = labels.astype(np.int64)
        elif labels.dtype.kind not in "iub":
            raise TypeError(f"[{self.name}] y_true must hold integer class ids")
        check_class_ids(labels, y_pred.shape[-1], self.name)
        return labels

    def _pick(self, logp: Array, labels: Array) -> Array:
        return np.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]

    def _value_and_grad(self, y_true, y_pred, need_grad):
        if self.from_logits:
            return self._logits(y_true, y_pred, need_grad)
        s = y_pred.sum(axis=-1, keepdims=True)
        q = y_pred / s
        qc = np.clip(q, EPSILON, 1.0 - EPSILON)
        qt = self._pick(qc, y_true)
        per = -np.log(qt)
        if not need_grad:
            return per, None
        n = per.size
        gq = np.zeros_like(q)
        qraw = self._pick(q, y_true)
        inside = (qraw > EPSILON) & (qraw < 1.0 - EPSILON)
        np.put_along_axis(gq, y_true[..., None], (-(inside / qt) / n)[..., None], axis=-1)
        grad = (gq - (gq * q).sum(axis=-1, keepdims=True)) / s
        return per, grad.astype(y_pred.dtype, copy=False)

    def _logits(self, y_true, z, need_grad):
        logp = _log_softmax(z)
        per = -self._pick(logp, y_true)
        if not need_grad:
            return per, None
        grad = np.exp(logp)
        flat = grad.reshape(-1, grad.shape[-1])
        flat[np.arange(flat.shape[0]), y_true.reshape(-1)] -= 1
        grad *= z.dtype.type(1.0 / per.size)
        return per, grad.astype(z.dtype, copy=False)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class CustomLoss(Loss):
    """A loss from a function ``fn(y_true, y_pred)`` returning the per-sample losses (shape
    ``(B,)`` or ``(B, ...)``, numpy in, numpy out; a scalar mean is accepted too), as Keras
    takes a loss function. rnnkit cannot differentiate Python code, so the gradient comes
    from ``gradient(y_true, y_pred)``, if given: ``d loss_b / d y_pred`` for each sample's
    loss (y_pred's shape). Without it, central finite differences in float64: each of the
    ``prod(y_pred.shape[1:])`` output elements is stepped in every sample at once (the
    losses of different samples must not depend on each other), two calls of ``fn`` each.
    ``compile(loss=fn)`` wraps a plain function this way (``rnnkit.losses.custom``).
    """

    def __init__(self, fn: Any, gradient: Any = None, name: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"[CustomLoss] fn must be callable; got {type(fn).__name__}")
        if gradient is not None and not callable(gradient):
            raise TypeError(
                f"[CustomLoss] gradient must be callable or None; got {type(gradient).__name__}"
            )
        super().__init__(name=name or getattr(fn, "__name__", None) or "custom_loss")
        self.fn, self.gradient = fn, gradient

    def _per(self, y_true: Array, y_pred: Array) -> Array:
        per = np.asarray(self.fn(y_true, y_pred), dtype=np.float64)
        if per.ndim == 0 or per.shape != y_pred.shape[: per.ndim]:
            raise ValueError(
                f"[{self.name}] the loss function returned shape {per.shape}; it must return "
                f"the per-sample losses, shape ({y_pred.shape[0]},) or a prefix of "
                f"{y_pred.shape} (e.g. a mean over the last axis only)"
            )
        return per

    def _value_and_grad(self, y_true, y_pred, need_grad):
        per = self._per(y_true, y_pred)
        if not need_grad:
            return per, None
        n = max(per.size, 1)
        if self.gradient is not None:
            g = np.asarray(self.gradient(y_true, y_pred), dtype=np.float64)
            if g.shape != y_pred.shape:
                raise ValueError(
                    f"[{self.name}] gradient returned shape {g.shape}; expected y_pred's "
                    f"{y_pred.shape}"
                )
            return per, (g / n).astype(y_pred.dtype)
        y64 = y_pred.astype(np.float64)
        flat = y64.reshape(y64.shape[0], -1)
        grad = np.empty_like(flat)
        for j in range(flat.shape[1]):
            h = 1e-6 * np.maximum(1.0, np.abs(flat[:, j]))
            col = flat[:, j].copy()
            flat[:, j] = col + h
            up = self._per(y_true, y64).reshape(y64.shape[0], -1).sum(axis=1)
            flat[:, j] = col - h
            down = self._per(y_true, y64).reshape(y64.shape[0], -1).sum(axis=1)
            flat[:, j] = col
            grad[:, j] = (up - down) / (2 * h)
        return per, (grad.reshape(y_pred.shape) / n).astype(y_pred.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        raise ValueError(
            f"the model was compiled with a custom loss function {config.get('name')!r}, "
            "which files do not store; load with compile=False and compile again with it"
        )


def custom(fn: Any, gradient: Any = None, name: str | None = None) -> CustomLoss:
    """A loss from a per-sample function (and optionally its gradient): see CustomLoss."""
    return CustomLoss(fn, gradient, name)


def check_class_ids(labels: Array, num_classes: int, owner: str) -> None:
    """Raise ValueError naming an offending id when labels fall outside 0..C-1."""
    if labels.size == 0:
        return
    lo, hi = labels.min(), labels.max()
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(
            f"[{owner}] y_true holds class id {int(bad)}, outside 0..{num_classes - 1}: the "
            f"model outputs {num_classes} classes"
        )


# Functional forms (Keras: keras.losses.mean_squared_error(y_true, y_pred) -> per-sample).
def _functional(cls: type[Loss]):
    def fn(y_true: Any, y_pred: Any) -> float:
        return cls()(y_true, y_pred)

    fn.__name__ = cls.name
    fn.__doc__ = f"Mean {cls.name} of ``y_pred`` against ``y_true`` (see :class:`{cls.__name__}`)."
    return fn


mean_squared_error = _functional(MeanSquaredError)
mean_absolute_error = _functional(MeanAbsoluteError)
binary_crossentropy = _functional(BinaryCrossentropy)
categorical_crossentropy = _functional(CategoricalCrossentropy)
sparse_categorical_crossentropy = _functional(SparseCategoricalCrossentropy)
huber = _functional(Huber)
mse = mean_squared_error
mae = mean_absolute_error

_BY_NAME: dict[str, type[Loss]] = {
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "meansquarederror": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "meanabsoluteerror": MeanAbsoluteError,
    "huber": Huber,
    "huber_loss": Huber,
    "binary_crossentropy": BinaryCrossentropy,
    "binarycrossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "categoricalcrossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "sparsecategoricalcrossentropy": SparseCategoricalCrossentropy,
}
_FUNCTIONS = {
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    huber: Huber,
    binary_crossentropy: BinaryCrossentropy,
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
}

CLASSES: dict[str, type[Loss]] = {
    c.__name__: c
    for c in (
        MeanSquaredError,
        MeanAbsoluteError,
        Huber,
        BinaryCrossentropy,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
    )
}


def get(identifier: Any) -> Loss:
    """A :class:`Loss` from a name (``"mse"``, ``"categorical_crossentropy"``, ...), a loss
    object, a loss class, or one of this module's functions."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            names = sorted(k for k in _BY_NAME if "_" in k or k in ("mse", "mae", "huber"))
            raise ValueError(f"unknown loss {identifier!r}; expected one of {', '.join(names)}")
        obj = cls()
        if identifier.lower() in ("mse", "mae"):
            obj.name = identifier.lower()
        return obj
    if callable(identifier) and not isinstance(identifier, type):
        return CustomLoss(identifier)
    raise TypeError(
        f"loss must be a name, a rnnkit.losses.Loss, a rnnkit.losses function or a function "
        f"fn(y_true, y_pred) returning per-sample losses; got {type(identifier).__name__}"
    )


def serialize(loss: Loss) -> dict[str, Any]:
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config: dict[str, Any]) -> Loss:
    if config.get("class_name") == "CustomLoss":
        return CustomLoss.from_config(dict(config.get("config", {})))
    cls = CLASSES.get(config.get("class_name", ""))
    if cls is None:
        raise ValueError(f"unknown loss class {config.get('class_name')!r}")
    return cls.from_config(dict(config.get("config", {})))


__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "Huber",
    "CustomLoss",
    "Loss",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy",
    "categorical_crossentropy",
    "custom",
    "get",
    "huber",
    "mae",
    "mean_absolute_error",
    "mean_squared_error",
    "mse",
    "sparse_categorical_crossentropy",
]
__getattr__ = missing_attribute(__name__, __all__)
