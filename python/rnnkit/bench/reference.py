"""Reference outputs that every framework is checked against before it is timed.

PyTorch (float32, the same precision as the peers) is the reference when installed;
otherwise a plain numpy float64 forward pass stands in, and gradients are not checked.
"""

from __future__ import annotations

import numpy as np

from .cases import Case, flat_weights


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def numpy_forward(
    case: Case, weights: dict[str, np.ndarray], x: np.ndarray
) -> dict[str, np.ndarray]:
    """Plain float64 forward pass of a stacked (bi)directional LSTM/GRU.

    Parameters
    ----------
    case : Case
        The shape.
    weights : dict of str to ndarray
        PyTorch ``state_dict`` layout.
    x : ndarray, (T, B, I)
        Input sequence.

    Returns
    -------
    dict of str to ndarray
        ``y`` (T, B, D·H), ``h_n`` (L·D, B, H) and, for LSTM, ``c_n`` (L·D, B, H).
    """
    inp = x.astype(np.float64)
    t_len, b = inp.shape[:2]
    h_size = case.hidden_size
    h_n, c_n = [], []
    for layer in range(case.num_layers):
        outs = []
        for d in range(case.directions):
            w_ih, w_hh, b_ih, b_hh = (
                a.astype(np.float64) for a in flat_weights(case, weights, layer, d)
            )
            h = np.zeros((b, h_size))
            c = np.zeros((b, h_size))
            y = np.zeros((t_len, b, h_size))
            order = range(t_len - 1, -1, -1) if d == 1 else range(t_len)
            for t in order:
                gi = inp[t] @ w_ih.T + b_ih
                gh = h @ w_hh.T + b_hh
                if case.cell == "lstm":
                    i, f, g, o = np.split(gi + gh, 4, axis=1)
                    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
                    h = _sigmoid(o) * np.tanh(c)
                else:
                    ir, iz, in_ = np.split(gi, 3, axis=1)
                    hr, hz, hn = np.split(gh, 3, axis=1)
                    r, z = _sigmoid(ir + hr), _sigmoid(iz + hz)
                    n = np.tanh(in_ + r * hn)
                    h = (1.0 - z) * n + z * h
                y[t] = h
            outs.append(y)
            h_n.append(h)
            c_n.append(c)
        inp = np.concatenate(outs, axis=2)
    result = {"y": inp, "h_n": np.stack(h_n)}
    if case.cell == "lstm":
        result["c_n"] = np.stack(c_n)
    return result


def torch_reference(
    case: Case, weights: dict[str, np.ndarray], x: np.ndarray, dy: np.ndarray
) -> dict[str, np.ndarray]:
    """PyTorch float32 outputs and gradients on the given weights.

    Parameters
    ----------
    case : Case
        The shape.
    weights : dict of str to ndarray
        PyTorch ``state_dict`` layout.
    x : ndarray, (T, B, I)
        Input sequence.
    dy : ndarray, (T, B, D·H)
        Gradient of the loss with respect to ``y`` (the loss is ``sum(y * dy)``).

    Returns
    -------
    dict of str to ndarray
        ``y``, ``h_n``, ``c_n`` (LSTM), ``dx`` and ``grad.<state_dict key>`` for every weight.
    """
    import torch

    from .peers.torch_peer import build_module

    module = build_module(case, weights)
    module.train()
    xt = torch.from_numpy(x).requires_grad_(True)
    y, state = module(xt)
    (y * torch.from_numpy(dy)).sum().backward()
    result = {"y": y.detach().numpy(), "dx": xt.grad.numpy()}
    if case.cell == "lstm":
        result["h_n"], result["c_n"] = (s.detach().numpy() for s in state)
    else:
        result["h_n"] = state.detach().numpy()
    for key, param in module.named_parameters():
        result["grad." + key] = param.grad.numpy()
    return result


def compute_reference(
    case: Case, weights: dict[str, np.ndarray], x: np.ndarray, dy: np.ndarray
) -> tuple[str, dict[str, np.ndarray]]:
    """Reference outputs from PyTorch when installed, else from :func:`numpy_forward`.

    Returns
    -------
    source : str
        ``"PyTorch <version> float32"`` or ``"numpy float64 (forward only)"``.
    outputs : dict of str to ndarray
        See :func:`torch_reference` / :func:`numpy_forward`.
    """
    try:
        import torch
    except ImportError:
        ref = numpy_forward(case, weights, x)
        return "numpy float64 (forward only)", {k: v.astype(np.float32) for k, v in ref.items()}
    return f"PyTorch {torch.__version__} float32", torch_reference(case, weights, x, dy)


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    """Normwise relative error ``max|got − want| / max|want|``.

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        raise ValueError(f"shape {got.shape} != reference shape {want.shape}")
    scale = max(float(np.max(np.abs(want))), 1e-30) if want.size else 1.0
    return float(np.max(np.abs(got - want))) / scale if want.size else 0.0
