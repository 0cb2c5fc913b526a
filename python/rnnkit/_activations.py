"""The activation arguments of the recurrent modules: names, parameters and their normal form.

Every slot (``activation``, ``recurrent_activation``, ``cell_activation``) takes any of these,
as a name or as a tuple ``(name, alpha)`` / ``(name, alpha, beta)``; missing parameters take
the defaults in brackets (ONNX's operator defaults, except ``hard_sigmoid``, whose rnnkit
meaning is Keras 3's)::

    tanh, relu, sigmoid, softsign x/(1+|x|), softplus log(1+e^x), linear (identity)
    hard_sigmoid      clip(alpha*x + beta, 0, 1)     [alpha 1/6, beta 0.5]
    affine            alpha*x + beta                 [1, 0]
    leaky_relu        x if x >= 0 else alpha*x       [0.01]
    thresholded_relu  x if x > alpha else 0          [1]
    scaled_tanh       alpha*tanh(beta*x)             [1, 1]
    elu               x if x >= 0 else alpha*(e^x - 1)  [1]

The normal form, kept in the module attributes: the name (a str) for the functions without
parameters, else the tuple ``(name, alpha, beta)`` of floats, beta 0.0 for the one-parameter
functions. It is again a valid argument, so it round-trips through pickles and configs.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Union

import numpy as np

#: name -> default values of the parameters it takes, in the order (alpha, beta).
ACTIVATION_PARAMS: dict[str, tuple[float, ...]] = {
    "tanh": (),
    "relu": (),
    "sigmoid": (),
    "linear": (),
    "softsign": (),
    "softplus": (),
    "hard_sigmoid": (1.0 / 6.0, 0.5),
    "affine": (1.0, 0.0),
    "leaky_relu": (0.01,),
    "thresholded_relu": (1.0,),
    "scaled_tanh": (1.0, 1.0),
    "elu": (1.0,),
}

ActivationSpec = Union[str, tuple[str, float, float]]


def normalize_activation(owner: str, argument: str, value: Any) -> ActivationSpec:
    """The normal form of an activation argument (see the module docstring).

    A parameter the function does not take may be given only as 0 (the normal form's beta of a
    one-parameter function). Raises TypeError / ValueError naming ``argument``.
    """
    names = ", ".join(repr(n) for n in ACTIVATION_PARAMS)
    if isinstance(value, str):
        name, params = value, ()
    elif isinstance(value, (tuple, list)) and 1 <= len(value) <= 3 and isinstance(value[0], str):
        name, params = value[0], tuple(value[1:])
    else:
        raise TypeError(
            f"[{owner}] {argument} must be an activation name or a tuple (name, alpha[, beta]); "
            f"got {value!r}"
        )
    if name not in ACTIVATION_PARAMS:
        raise ValueError(f"[{owner}] {argument} must be one of {names}; got {name!r}")
    defaults = ACTIVATION_PARAMS[name]
    values = []
    for i, p in enumerate(params):
        label = ("alpha", "beta")[i]
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
            raise TypeError(f"[{owner}] {argument} {name!r}: {label} must be a number; got {p!r}")
        p = float(p)
        if not math.isfinite(p):
            raise ValueError(f"[{owner}] {argument} {name!r}: {label} must be finite; got {p}")
        if i >= len(defaults) and p != 0.0:
            takes = "no parameters" if not defaults else "only alpha"
            raise ValueError(
                f"[{owner}] {argument} {name!r} takes {takes}; got {label} = {p} in {value!r}"
            )
        values.append(p)
    if not defaults:
        return name
    full = [values[i] if i < len(values) else d for i, d in enumerate(defaults)]
    alpha = full[0]
    beta = full[1] if len(full) > 1 else 0.0
    return (name, alpha, beta)


def activation_params(owner: str, argument: str, value: Any) -> tuple[str, float, float]:
    """``(name, alpha, beta)`` of an activation argument (0.0 for parameters it does not take):
    the form the core takes."""
    spec = normalize_activation(owner, argument, value)
    return (spec, 0.0, 0.0) if isinstance(spec, str) else spec
