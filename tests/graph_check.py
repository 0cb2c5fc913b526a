"""Central-difference checks of a model's parameter gradients, for graph and Sequential
models (the functional-API, mask and layer tests share it)."""

from __future__ import annotations

import numpy as np


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def fd_check(model, xs, seed=0, n_checks=4, tol=1e-6):
    """``sum(out_k * G_k)`` over the model's outputs, G random: a few entries of every
    trainable parameter's gradient (from the model's backward) against central differences.
    The model should be float64."""
    rng = np.random.default_rng(seed)
    outs = model._forward_list(xs, True)
    gs = [rng.standard_normal(o.shape) for o in outs]
    model._training_setup()
    for layer in model._train_layers:
        layer.zero_grad()
    model._backward_list(gs, [None] * len(gs))
    grads = [g.copy() for lay in model._train_layers for g in lay.gradients()]
    assert model._params, "the model has parameters"

    def objective():
        return sum(float(np.sum(o * g)) for o, g in zip(model._forward_list(xs, True), gs))

    eps = 1e-6
    for k, (p, g) in enumerate(zip(model._params, grads)):
        flat = p.reshape(-1)
        for idx in rng.choice(flat.size, min(n_checks, flat.size), replace=False):
            old = flat[idx]
            flat[idx] = old + eps
            up = objective()
            flat[idx] = old - eps
            down = objective()
            flat[idx] = old
            fd = (up - down) / (2 * eps)
            got = g.reshape(-1)[idx]
            assert abs(fd - got) < tol * max(1.0, abs(fd)), (
                f"parameter {k} {p.shape} entry {idx}: backward {got:.8g} vs central "
                f"differences {fd:.8g}"
            )
