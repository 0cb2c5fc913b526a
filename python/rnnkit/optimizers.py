"""Optimizers with Keras 3's update equations and defaults, updating arrays in place.

Every optimizer applies, in order: gradient clipping (``clipnorm`` per array,
``global_clipnorm`` over all arrays, or ``clipvalue`` elementwise; at most one), decoupled
weight decay ``w -= lr * weight_decay * w`` when ``weight_decay`` is set, then its update.
``learning_rate`` is a float or a schedule (a callable of the step count, such as
:class:`ExponentialDecay`, :class:`CosineDecay`, :class:`PiecewiseConstantDecay`, all in
``rnnkit.optimizers.schedules``); ``iterations`` counts the steps applied.

Parameters are plain numpy arrays (C-contiguous float32 or float64) updated in place, so an
optimizer works on any list of arrays: ``opt.apply(grads, params)``. The built-in optimizers'
updates run in the core, every parameter in one call (``_core.update``), with the operations
of the formulas below in their order, each rounded to the parameters' dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _core
from ._checks import check_float
from ._namespace import missing_attribute
from ._training import schedules
from ._training.schedules import ExponentialDecay

Array = np.ndarray

if TYPE_CHECKING:  # for type checkers only: the keyword arguments every optimizer takes
    from typing_extensions import TypedDict, Unpack

    class ClipOptions(TypedDict, total=False):
        """``**kwargs`` of every optimizer but ``weight_decay`` (AdamW names that itself)."""

        clipnorm: float | None
        clipvalue: float | None
        global_clipnorm: float | None
        name: str | None
        use_ema: bool
        ema_momentum: float
        ema_overwrite_frequency: int | None
        loss_scale_factor: float | None
        gradient_accumulation_steps: int | None

    class OptimizerOptions(ClipOptions, total=False):
        """``**kwargs`` of every optimizer (see :class:`Optimizer`)."""

        weight_decay: float | None


class Optimizer:
    """Base class: clipping, weight decay, slots, learning rate and state I/O.

    Subclasses define ``_slot_names(self) -> tuple[str, ...]`` (per-parameter state arrays,
    zero-initialised) and either ``_core_rule(self)`` (the built-in ones: the core's update rule
    and its scalars) or ``_update(param, grad, slots, lr)`` (numpy, one parameter at a time).
    """

    def __init__(
        self,
        learning_rate: float | Callable[[int], float] = 0.001,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        cls = type(self).__name__
        ignored = {
            "use_ema",
            "ema_momentum",
            "ema_overwrite_frequency",
            "loss_scale_factor",
            "gradient_accumulation_steps",
        }
        unknown = set(kwargs) - ignored
        if unknown:
            raise TypeError(f"[{cls}] unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        for k in ignored & set(kwargs):
            if kwargs[k] not in (None, False):
                raise NotImplementedError(f"[{cls}] {k} is not supported by rnnkit")
        given = [
            n
            for n, v in (
                ("clipnorm", clipnorm),
                ("clipvalue", clipvalue),
                ("global_clipnorm", global_clipnorm),
            )
            if v is not None
        ]
        if len(given) > 1:
            raise ValueError(
                f"[{cls}] give at most one of clipnorm, clipvalue, global_clipnorm; "
                f"got {', '.join(given)}"
            )
        for n, v in (
            ("clipnorm", clipnorm),
            ("clipvalue", clipvalue),
            ("global_clipnorm", global_clipnorm),
        ):
            if v is not None:
                check_float(cls, n, v, 0.0, math.inf, low_open=True)
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.clipvalue = None if clipvalue is None else float(clipvalue)
        self.global_clipnorm = None if global_clipnorm is None else float(global_clipnorm)
        self.weight_decay = (
            None
            if weight_decay is None
            else check_float(cls, "weight_decay", weight_decay, 0.0, math.inf)
        )
        self.name = name or cls.lower()
        self.iterations = 0
        self._schedule: Callable[[int], float] | None = None
        self._lr = 0.0
        self.learning_rate = learning_rate  # type: ignore[assignment]
        self._slots: list[dict[str, Array]] | None = None
        self._shapes: list[tuple[int, ...]] = []
        self._param_ids: tuple[int, ...] = ()

    # ------------------------------------------------------------ learning rate
    @property
    def learning_rate(self) -> float:
        """Current learning rate (a schedule is evaluated at ``iterations``)."""
        if self._schedule is not None:
            return float(self._schedule(self.iterations))
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value: float | Callable[[int], float]) -> None:
        if callable(value):
            self._schedule = value
            return
        value = check_float(type(self).__name__, "learning_rate", value, 0.0, math.inf)
        self._schedule = None
        self._lr = value

    # -------------------------------------------------------------------- slots
    def _slot_names(self) -> tuple[str, ...]:
        return ()

    @property
    def built(self) -> bool:
        return self._slots is not None

    def build(self, params: Sequence[Array]) -> None:
        """Create zeroed state for each parameter (done by the first ``apply``)."""
        names = self._slot_names()
        self._slots = [{n: np.zeros_like(p) for n in names} for p in params]
        self._shapes = [p.shape for p in params]
        self._param_ids = tuple(id(p) for p in params)

    # -------------------------------------------------------------------- apply
    def apply(self, grads: Sequence[Array], params: Sequence[Array]) -> None:
        """One step: update each ``params[k]`` in place from ``grads[k]`` (same shape)."""
        if len(grads) != len(params):
            raise ValueError(
                f"[{type(self).__name__}] got {len(grads)} gradients for {len(params)} parameters"
            )
        if self._slots is None or tuple(id(p) for p in params) != self._param_ids:
            if (
                self._slots is not None
                and len(self._slots) == len(params)
                and all(s == p.shape for s, p in zip(self._shapes, params))
            ):
                self._param_ids = tuple(id(p) for p in params)  # same model, new arrays
            else:
                self.build(params)
        for k, (p, g) in enumerate(zip(params, grads)):
            if g.shape != p.shape:
                raise ValueError(
                    f"[{type(self).__name__}] gradient shape {g.shape} does not "
                    f"match parameter shape {p.shape}"
                )
            if not (
                isinstance(p, np.ndarray)
                and p.dtype in (np.float32, np.float64)
                and p.flags.c_contiguous
                and p.flags.writeable
            ):
                raise TypeError(
                    f"[{type(self).__name__}] parameters must be writeable C-contiguous float32 "
                    f"or float64 numpy arrays (updated in place); parameter {k} is "
                    f"{type(p).__name__} {getattr(p, 'dtype', '')}"
                )
        grads = [np.ascontiguousarray(g, dtype=p.dtype) for g, p in zip(self._clip(grads), params)]
        lr = self.learning_rate
        decay = 1.0 - lr * self.weight_decay if self.weight_decay else 1.0
        self._begin_step(lr)
        assert self._slots is not None
        rule = self._core_rule()
        if rule is not None:
            name, scalars = rule
            _core.update(name, list(params), grads, self._slots, lr=lr, decay=decay, **scalars)
        else:
            for p, g, slots in zip(params, grads, self._slots):
                if decay != 1.0:
                    p *= decay
                self._update(p, g, slots, lr)
        self.iterations += 1

    def apply_gradients(self, grads_and_vars: Any) -> None:
        """Keras spelling: ``apply_gradients(zip(grads, params))``."""
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def _begin_step(self, lr: float) -> None:
        """Per-step scalars shared by all parameters (e.g. Adam's bias correction)."""

    def _core_rule(self) -> tuple[str, dict[str, Any]] | None:
        """The core's update rule (``"sgd"``, ``"adam"``, ``"rmsprop"``) and its scalars, or
        None for an optimizer whose ``_update`` runs in numpy."""
        return None

    def _update(self, p: Array, g: Array, slots: dict[str, Array], lr: float) -> None:
        raise NotImplementedError

    def _clip(self, grads: Sequence[Array]) -> Sequence[Array]:
        if self.clipnorm is not None:
            out = []
            for g in grads:
                norm = math.sqrt(float(np.vdot(g, g)))
                out.append(g * (self.clipnorm / norm) if norm > self.clipnorm else g)
            return out
        if self.global_clipnorm is not None:
            norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
            if norm > self.global_clipnorm:
                scale = self.global_clipnorm / norm
                return [g * scale for g in grads]
            return grads
        if self.clipvalue is not None:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    # ------------------------------------------------------------ state and config
    def get_state(self) -> dict[str, Any]:
        """``{"iterations": int, "slots": [[array per slot name] per parameter]}`` (copies)."""
        slots = (
            []
            if self._slots is None
            else [[s[n].copy() for n in self._slot_names()] for s in self._slots]
        )
        return {"iterations": self.iterations, "slots": slots}

    def set_state(self, state: dict[str, Any], params: Sequence[Array]) -> None:
        """Restore ``get_state()`` output for ``params``; shapes are checked first."""
        names = self._slot_names()
        slots = state.get("slots", [])
        if slots:
            if len(slots) != len(params):
                raise ValueError(
                    f"[{type(self).__name__}] state holds slots for {len(slots)} "
                    f"parameters; the model has {len(params)}"
                )
            for k, (per, p) in enumerate(zip(slots, params)):
                if len(per) != len(names) or any(np.shape(a) != p.shape for a in per):
                    raise ValueError(
                        f"[{type(self).__name__}] state slot shapes for parameter "
                        f"{k} do not match its shape {p.shape}"
                    )
            self.build(params)
            assert self._slots is not None
            for per, s in zip(slots, self._slots):
                for n, a in zip(names, per):
                    s[n][...] = a
        self.iterations = int(state.get("iterations", 0))

    def _config(self) -> dict[str, Any]:
        return {}

    def get_config(self) -> dict[str, Any]:
        lr: Any = self._lr
        if self._schedule is not None:
            sched = self._schedule
            if isinstance(sched, schedules.LearningRateSchedule):
                lr = schedules.serialize(sched)
            else:
                lr = self.learning_rate  # an arbitrary callable cannot be serialised
        config = {
            "name": self.name,
            "learning_rate": lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }
        config.update(self._config())
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            config["learning_rate"] = schedules.deserialize(lr)
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self.learning_rate:g})"


class SGD(Optimizer):
    """Stochastic gradient descent, Keras 3 form.

    ``momentum == 0``: ``w -= lr g``. Otherwise ``m = momentum m - lr g`` then
    ``w += m`` or, with ``nesterov``, ``w += momentum m - lr g``. Default lr 0.01.
    """

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **kwargs: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = check_float("SGD", "momentum", momentum, 0.0, 1.0, high_open=False)
        self.nesterov = bool(nesterov)

    def _slot_names(self) -> tuple[str, ...]:
        return ("momentum",) if self.momentum else ()

    def _core_rule(self):
        return "sgd", {"momentum": self.momentum, "nesterov": self.nesterov}

    def _config(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam, Keras 3 form (epsilon outside the square root, bias correction folded in lr).

    ``m += (1 - b1)(g - m)``, ``v += (1 - b2)(g^2 - v)``,
    ``alpha = lr sqrt(1 - b2^t) / (1 - b1^t)``, ``w -= alpha m / (sqrt(v) + eps)``.
    With ``amsgrad`` the denominator uses ``v_hat = max(v_hat, v)``.
    Defaults: lr 0.001, b1 0.9, b2 0.999, eps 1e-7.
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        owner = type(self).__name__
        self.beta_1 = check_float(owner, "beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = check_float(owner, "beta_2", beta_2, 0.0, 1.0)
        self.epsilon = check_float(owner, "epsilon", epsilon, 0.0, math.inf)
        self.amsgrad = bool(amsgrad)
        self._alpha = 0.0

    def _slot_names(self) -> tuple[str, ...]:
        return ("m", "v", "v_hat") if self.amsgrad else ("m", "v")

    def _begin_step(self, lr):
        t = self.iterations + 1
        self._alpha = lr * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)

    def _core_rule(self):
        scalars = {"beta_1": self.beta_1, "beta_2": self.beta_2, "alpha": self._alpha}
        return "adam", {**scalars, "epsilon": self.epsilon}

    def _config(self):
        return {
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay ``w -= lr * weight_decay * w`` before each update.

    Keras 3 default ``weight_decay=0.004``.
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Unpack[ClipOptions],
    ) -> None:
        if weight_decay is None:
            raise ValueError("[AdamW] weight_decay must be a number")
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            weight_decay=weight_decay,
            **kwargs,
        )


class RMSprop(Optimizer):
    """RMSprop, Keras 3 form (epsilon inside the square root).

    ``v = rho v + (1 - rho) g^2``; centered: ``a = rho a + (1 - rho) g``, ``d = v - a^2 + eps``,
    else ``d = v + eps``; ``inc = lr g / sqrt(d)``; with momentum ``mom = momentum mom + inc``,
    ``w -= mom``, else ``w -= inc``. Defaults: lr 0.001, rho 0.9, eps 1e-7.
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **kwargs: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho = check_float("RMSprop", "rho", rho, 0.0, 1.0)
        self.momentum = check_float("RMSprop", "momentum", momentum, 0.0, 1.0)
        self.epsilon = check_float("RMSprop", "epsilon", epsilon, 0.0, math.inf)
        self.centered = bool(centered)

    def _slot_names(self) -> tuple[str, ...]:
        names = ["velocity"]
        if self.momentum > 0:
            names.append("momentum")
        if self.centered:
            names.append("average_gradient")
        return tuple(names)

    def _core_rule(self):
        return "rmsprop", {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon}

    def _config(self):
        return {
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


CLASSES: dict[str, type[Optimizer]] = {
    "SGD": SGD,
    "Adam": Adam,
    "AdamW": AdamW,
    "RMSprop": RMSprop,
}
_BY_NAME = {k.lower(): v for k, v in CLASSES.items()}


def get(identifier: Any) -> Optimizer:
    """An optimizer from a name (``"adam"``, ``"sgd"``, ``"rmsprop"``, ``"adamw"``), an
    optimizer object (returned as is), or an optimizer class (default arguments)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(
                f"unknown optimizer {identifier!r}; expected one of {', '.join(sorted(_BY_NAME))}"
            )
        return cls()
    raise TypeError(
        f"optimizer must be a name or a rnnkit.optimizers.Optimizer; got "
        f"{type(identifier).__name__}"
    )


def serialize(opt: Optimizer) -> dict[str, Any]:
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


def deserialize(config: dict[str, Any]) -> Optimizer:
    cls = CLASSES.get(config.get("class_name", ""))
    if cls is None:
        raise ValueError(f"unknown optimizer class {config.get('class_name')!r}")
    return cls.from_config(dict(config.get("config", {})))


__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "ExponentialDecay",
    "Optimizer",
    "RMSprop",
    "get",
    "schedules",
]
__getattr__ = missing_attribute(__name__, __all__)
