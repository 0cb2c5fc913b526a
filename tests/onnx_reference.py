"""An independent numpy reference of the ONNX LSTM, GRU and RNN operators (float64 loops).

Written from the operator spec's equations for the tests, not from rnnkit: plain per-step,
per-sequence loops in ONNX's own gate order and layouts. Semantics the spec leaves open
follow ONNX Runtime: ``clip`` bounds every gate's pre-activation; ``input_forget`` sets
f = 1 - i; steps past a sequence's length give zeros in Y, Y_h/Y_c come from its last
step, the reverse direction starts at its own last step, and a length of 0 gives zeros.
"""

from __future__ import annotations

import numpy as np


def _act(name: str, alpha: float | None, beta: float | None):
    n = name.lower()
    if n == "relu":
        return lambda x: np.maximum(x, 0)
    if n == "tanh":
        return np.tanh
    if n == "sigmoid":
        return lambda x: 1 / (1 + np.exp(-x))
    if n == "affine":
        return lambda x: alpha * x + beta
    if n == "leakyrelu":
        return lambda x: np.where(x >= 0, x, alpha * x)
    if n == "thresholdedrelu":
        return lambda x: np.where(x >= alpha, x, 0.0)
    if n == "scaledtanh":
        return lambda x: alpha * np.tanh(beta * x)
    if n == "hardsigmoid":
        return lambda x: np.minimum(np.maximum(alpha * x + beta, 0), 1)
    if n == "elu":
        return lambda x: np.where(x >= 0, x, alpha * (np.exp(x) - 1))
    if n == "softsign":
        return lambda x: x / (1 + np.abs(x))
    if n == "softplus":
        return lambda x: np.log1p(np.exp(x))
    raise ValueError(name)


_TAKES = {
    "affine": (1.0, 0.0),
    "leakyrelu": (0.01,),
    "thresholdedrelu": (1.0,),
    "scaledtanh": (1.0, 1.0),
    "hardsigmoid": (0.2, 0.5),
    "elu": (1.0,),
}


def activations(names: list[str], alphas: list[float], betas: list[float]) -> list:
    """Functions for ``names``, each taking the next alpha/beta it needs (else its default)."""
    alphas, betas = list(alphas), list(betas)
    out = []
    for n in names:
        d = _TAKES.get(n.lower(), ())
        a = (alphas.pop(0) if alphas else d[0]) if len(d) > 0 else None
        b = (betas.pop(0) if betas else d[1]) if len(d) > 1 else None
        out.append(_act(n, a, b))
    return out


def run(
    cell: str,
    X: np.ndarray,
    W: np.ndarray,
    R: np.ndarray,
    B: np.ndarray | None = None,
    seq: np.ndarray | None = None,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
    P: np.ndarray | None = None,
    *,
    direction: str = "forward",
    acts: list[str] | None = None,
    alphas: list[float] = (),
    betas: list[float] = (),
    clip: float | None = None,
    input_forget: int = 0,
    linear_before_reset: int = 0,
    layout: int = 0,
):
    """(Y, Y_h[, Y_c]) of one ONNX node, in its layout, float64."""
    X = np.asarray(X, np.float64)
    if layout == 1:
        X = X.transpose(1, 0, 2)
        h0 = None if h0 is None else h0.transpose(1, 0, 2)
        c0 = None if c0 is None else c0.transpose(1, 0, 2)
    T, N, _ = X.shape
    D = 2 if direction == "bidirectional" else 1
    G = {"LSTM": 4, "GRU": 3, "RNN": 1}[cell]
    H = R.shape[-1]
    per = {"LSTM": 3, "GRU": 2, "RNN": 1}[cell]
    if acts is None:
        acts = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}[
            cell
        ] * D
    fns = activations(acts, list(alphas), list(betas))
    lens = np.full(N, T) if seq is None else np.asarray(seq)
    Y = np.zeros((T, D, N, H))
    Yh = np.zeros((D, N, H))
    Yc = np.zeros((D, N, H))
    cl = (lambda v: np.clip(v, -clip, clip)) if clip is not None else (lambda v: v)
    for d in range(D):
        f = fns[d * per : (d + 1) * per]
        rev = direction == "reverse" or d == 1
        Wd, Rd = W[d].astype(np.float64), R[d].astype(np.float64)
        Wb = np.zeros(G * H) if B is None else B[d, : G * H].astype(np.float64)
        Rb = np.zeros(G * H) if B is None else B[d, G * H :].astype(np.float64)
        for n in range(N):
            L = int(lens[n])
            h = np.zeros(H) if h0 is None else h0[d, n].astype(np.float64)
            c = np.zeros(H) if c0 is None else c0[d, n].astype(np.float64)
            steps = range(L - 1, -1, -1) if rev else range(L)
            for t in steps:
                x = X[t, n]
                if cell == "LSTM":
                    g = Wd @ x + Wb + Rd @ h + Rb
                    gi, go, gf, gc = (g[k * H : (k + 1) * H] for k in range(4))
                    p = np.zeros(3 * H) if P is None else P[d].astype(np.float64)
                    i = f[0](cl(gi + p[:H] * c))
                    ff = 1 - i if input_forget else f[0](cl(gf + p[2 * H :] * c))
                    cc = f[1](cl(gc))
                    c = ff * c + i * cc
                    o = f[0](cl(go + p[H : 2 * H] * c))
                    h = o * f[2](c)
                elif cell == "GRU":
                    gx = Wd @ x + Wb
                    z = f[0](cl(gx[:H] + Rd[:H] @ h + Rb[:H]))
                    r = f[0](cl(gx[H : 2 * H] + Rd[H : 2 * H] @ h + Rb[H : 2 * H]))
                    if linear_before_reset:
                        hh = f[1](cl(gx[2 * H :] + r * (Rd[2 * H :] @ h + Rb[2 * H :])))
                    else:
                        hh = f[1](cl(gx[2 * H :] + Rd[2 * H :] @ (r * h) + Rb[2 * H :]))
                    h = (1 - z) * hh + z * h
                else:
                    h = f[0](cl(Wd @ x + Wb + Rd @ h + Rb))
                Y[t, d, n] = h
            if L > 0:
                Yh[d, n], Yc[d, n] = h, c
    if layout == 1:
        Y, Yh, Yc = Y.transpose(2, 0, 1, 3), Yh.transpose(1, 0, 2), Yc.transpose(1, 0, 2)
    return (Y, Yh, Yc) if cell == "LSTM" else (Y, Yh)
