"""Learning-rate schedules with Keras 3's names, arguments and values.

A schedule is a callable of the optimizer's step count returning the learning rate; pass it
as ``learning_rate=`` to any optimizer. ``get_config``/``deserialize`` let optimizer configs
(and so saved models, rnnkit's and Keras's files) carry it.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .._checks import check_float
from .._namespace import missing_attribute


class LearningRateSchedule:
    """Base class: ``schedule(step) -> float``; subclasses give ``__call__`` and
    ``get_config`` (the constructor's keyword arguments)."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _steps(owner: str, name: str, value: Any, minimum: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value != int(value)
    ):
        raise ValueError(f"[{owner}] {name} must be an int; got {value!r}")
    if value < minimum:
        raise ValueError(f"[{owner}] {name} must be >= {minimum}; got {value!r}")
    return int(value)


class ExponentialDecay(LearningRateSchedule):
    """``lr(step) = initial_learning_rate * decay_rate ** (step / decay_steps)``.

    With ``staircase=True`` the exponent is floored (Keras's schedule of the same name).
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str = "ExponentialDecay",
    ) -> None:
        owner = "ExponentialDecay"
        self.initial_learning_rate = check_float(
            owner, "initial_learning_rate", initial_learning_rate, 0.0, math.inf
        )
        self.decay_steps = _steps(owner, "decay_steps", decay_steps, 1)
        self.decay_rate = check_float(owner, "decay_rate", decay_rate, 0.0, math.inf)
        self.staircase = bool(staircase)
        self.name = name

    def __call__(self, step: int) -> float:
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate**p

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
        }


class CosineDecay(LearningRateSchedule):
    """Cosine decay with optional linear warmup (SGDR without restarts), as Keras 3.

    Without warmup (``warmup_target=None``), with ``s = min(step, decay_steps)``:
    ``lr = initial_learning_rate * ((1 - alpha) * 0.5 * (1 + cos(pi s / decay_steps)) + alpha)``.
    With ``warmup_target``, the rate first rises linearly from ``initial_learning_rate`` to
    ``warmup_target`` over ``warmup_steps`` steps, then decays as above from
    ``warmup_target`` over the next ``decay_steps`` steps (``s = step - warmup_steps``).
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        name: str = "CosineDecay",
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ) -> None:
        owner = "CosineDecay"
        self.initial_learning_rate = check_float(
            owner, "initial_learning_rate", initial_learning_rate, 0.0, math.inf
        )
        self.decay_steps = _steps(owner, "decay_steps", decay_steps, 1)
        self.alpha = check_float(owner, "alpha", alpha, 0.0, 1.0, high_open=False)
        self.warmup_target = (
            None
            if warmup_target is None
            else check_float(owner, "warmup_target", warmup_target, 0.0, math.inf)
        )
        self.warmup_steps = _steps(owner, "warmup_steps", warmup_steps, 0)
        if self.warmup_target is not None and self.warmup_steps == 0:
            raise ValueError(f"[{owner}] warmup_target needs warmup_steps > 0")
        self.name = name

    def _decay(self, step: float, start: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return start * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            return self._decay(min(float(step), self.decay_steps), self.initial_learning_rate)
        s = min(float(step), float(self.decay_steps + self.warmup_steps))
        if s < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return self.initial_learning_rate + delta * s / self.warmup_steps
        return self._decay(s - self.warmup_steps, self.warmup_target)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[k]`` while
    ``boundaries[k-1] < step <= boundaries[k]``, ``values[-1]`` after the last boundary
    (Keras's schedule: ``len(values) == len(boundaries) + 1``, boundaries increasing)."""

    def __init__(
        self, boundaries: list[int], values: list[float], name: str = "PiecewiseConstant"
    ) -> None:
        owner = "PiecewiseConstantDecay"
        bounds = [float(b) for b in boundaries]
        vals = [check_float(owner, f"values[{k}]", v, 0.0, math.inf) for k, v in enumerate(values)]
        if len(vals) != len(bounds) + 1:
            raise ValueError(
                f"[{owner}] values must have one more entry than boundaries; got "
                f"{len(vals)} values for {len(bounds)} boundaries"
            )
        if any(not math.isfinite(b) for b in bounds) or any(
            b >= c for b, c in zip(bounds, bounds[1:])
        ):
            raise ValueError(f"[{owner}] boundaries must be finite and increasing; got {bounds}")
        self.boundaries = [int(b) if b == int(b) else b for b in bounds]
        self.values = vals
        self.name = name

    def __call__(self, step: int) -> float:
        for b, v in zip(self.boundaries, self.values):
            if step <= b:
                return v
        return self.values[-1]

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": list(self.boundaries), "values": list(self.values)}


CLASSES: dict[str, type[LearningRateSchedule]] = {
    cls.__name__: cls for cls in (ExponentialDecay, CosineDecay, PiecewiseConstantDecay)
}


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """``{"class_name": ..., "config": schedule.get_config()}``."""
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(entry: dict[str, Any]) -> LearningRateSchedule:
    """Rebuild a schedule from ``serialize`` output; only the classes above are allowed."""
    if not isinstance(entry, dict):
        raise ValueError(f"learning-rate schedule must be a dict; got {type(entry).__name__}")
    cls = CLASSES.get(entry.get("class_name"))  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(
            f"unknown learning-rate schedule {entry.get('class_name')!r}; rnnkit has "
            f"{', '.join(sorted(CLASSES))}"
        )
    config = entry.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"config of schedule {entry.get('class_name')!r} must be a dict")
    return cls.from_config(dict(config))


__all__ = [
    "CosineDecay",
    "ExponentialDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "deserialize",
    "serialize",
]
__getattr__ = missing_attribute(__name__, __all__, shown="optimizers.schedules")
