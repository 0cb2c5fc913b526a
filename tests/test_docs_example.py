"""docs/worked_lstm_gru_step.md: every value on the page, recomputed two ways."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import rnnkit

DOC = Path(__file__).resolve().parents[1] / "docs" / "worked_lstm_gru_step.md"

X = np.array([0.5])
H0 = np.array([0.2, 0.3])
C0 = np.array([0.4, 0.5])


def first_column(m: list[list[float]]) -> np.ndarray:
    return np.array(m)[:, :1]


def documented(block: str) -> dict[str, np.ndarray]:
    """The `name = [a, b]` lines of the fenced block tagged ``block``."""
    text = DOC.read_text(encoding="utf-8")
    body = re.search(rf"```text {block}\n(.*?)```", text, re.S)
    assert body, f"block {block} missing from {DOC.name}"
    values = {}
    for name, vec in re.findall(r"^(\S+) = \[([^\]]+)\]$", body.group(1), re.M):
        values[name] = np.array([float(v) for v in vec.split(",")])
    return values


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def check(doc: dict[str, np.ndarray], computed: dict[str, np.ndarray], source: str) -> None:
    for name, value in computed.items():
        err = np.abs(doc[name] - value).max()
        assert err <= 5e-5, (
            f"{DOC.name}: {name} = {doc[name]} but {source} gives {value} (err {err:.1e})"
        )


def test_lstm_step() -> None:
    W = [
        first_column(m)
        for m in (
            [[0.1, 0.2], [0.3, 0.4]],
            [[0.5, 0.6], [0.7, 0.8]],
            [[0.9, 1.0], [1.1, 1.2]],
            [[1.3, 1.4], [1.5, 1.6]],
        )
    ]
    U = [
        np.array(m)
        for m in (
            [[1.7, 1.8], [1.9, 2.0]],
            [[2.1, 2.2], [2.3, 2.4]],
            [[2.5, 2.6], [2.7, 2.8]],
            [[2.9, 3.0], [3.1, 3.2]],
        )
    ]
    b = [np.array(v) for v in ([0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8])]
    doc = documented("lstm-values")

    # Independent: the page's equations in numpy.
    pre = [w @ X + u @ H0 + bb for w, u, bb in zip(W, U, b)]
    i, f, o = sigmoid(pre[0]), sigmoid(pre[1]), sigmoid(pre[3])
    g = np.tanh(pre[2])
    c = f * C0 + i * g
    check(doc, {"i_t": i, "f_t": f, "g_t": g, "o_t": o, "c_t": c, "h_t": o * np.tanh(c)}, "numpy")

    # rnnkit, loaded the way the page describes.
    m = rnnkit.LSTM(1, 2, dtype="float64").eval()
    m.load_state_dict(
        {
            "weight_ih_l0": np.vstack(W),
            "weight_hh_l0": np.vstack(U),
            "bias_ih_l0": np.concatenate(b),
            "bias_hh_l0": np.zeros(8),
        }
    )
    y, (h_n, c_n) = m(X.reshape(1, 1, 1), (H0.reshape(1, 1, 2), C0.reshape(1, 1, 2)))
    check(doc, {"h_t": y[0, 0], "c_t": c_n[0, 0]}, "rnnkit.LSTM")
    assert np.array_equal(y[0, 0], h_n[0, 0])


def test_gru_step_with_z_and_one_minus_z_swapped() -> None:
    Wz, Wr, Wh = [
        first_column(m)
        for m in ([[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]], [[0.9, 1.0], [1.1, 1.2]])
    ]
    Uz, Ur, Uh = [
        np.array(m)
        for m in ([[1.3, 1.4], [1.5, 1.6]], [[1.7, 1.8], [1.9, 2.0]], [[2.1, 2.2], [2.3, 2.4]])
    ]
    bz, br, bh = np.array([0.1, 0.2]), np.array([0.3, 0.4]), np.array([0.5, 0.6])
    doc = documented("gru-values")

    z = sigmoid(Wz @ X + Uz @ H0 + bz)
    r = sigmoid(Wr @ X + Ur @ H0 + br)
    hbar = np.tanh(Wh @ X + Uh @ (r * H0) + bh)
    h = (1 - z) * H0 + z * hbar
    check(doc, {"z_t": z, "r_t": r, "r_t*h": r * H0, "hbar_t": hbar, "h_t": h}, "numpy")

    # The page's update is rnnkit's with z -> 1 - z: negate the z rows (reset_before cell).
    m = rnnkit.GRU(1, 2, dtype="float64", reset_after=False).eval()
    m.load_state_dict(
        {
            "weight_ih_l0": np.vstack([Wr, -Wz, Wh]),
            "weight_hh_l0": np.vstack([Ur, -Uz, Uh]),
            "bias_ih_l0": np.concatenate([br, -bz, bh]),
            "bias_hh_l0": np.zeros(6),
        }
    )
    y, h_n = m(X.reshape(1, 1, 1), H0.reshape(1, 1, 2))
    check(doc, {"h_t": h_n[0, 0]}, "rnnkit.GRU")
