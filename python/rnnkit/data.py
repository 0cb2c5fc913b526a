"""Sliding-window datasets for sequence models (views via numpy's sliding_window_view)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._namespace import missing_attribute


def sliding_windows(
    series: Any,
    window: int,
    horizon: int = 1,
    stride: int = 1,
    targets: bool = True,
) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
    """Cut a series into input windows and the value ``horizon`` steps after each.

    For window w, sample k covers ``series[k*stride : k*stride + w]`` and its target is
    ``series[k*stride + w + horizon - 1]``. This is the loop forecasting tutorials write
    (``X.append(data[i:i+w]); y.append(data[i+w])``), vectorised.

    Parameters
    ----------
    series : array (N,) or (N, F)
        A univariate or multivariate series; time on axis 0.
    window : int
        Steps per input window (w >= 1).
    horizon : int
        How far past the window the target lies (1 = the next value).
    stride : int
        Step between window starts.
    targets : bool
        When False, return only the windows (every full window, for prediction).

    Returns
    -------
    X : array (S, w, F)
        F = 1 for a 1-D series. A contiguous copy, ready for an LSTM.
    y : array (S,) for a 1-D series, (S, F) otherwise
        Only when ``targets`` is True.
    """
    data = np.asarray(series)
    if data.ndim not in (1, 2):
        raise ValueError(
            f"[sliding_windows] series must be 1-D (N,) or 2-D (N, F); got shape {data.shape}"
        )
    for name, v in (("window", window), ("horizon", horizon), ("stride", stride)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"[sliding_windows] {name} must be an int >= 1; got {v!r}")
    univariate = data.ndim == 1
    if univariate:
        data = data[:, None]
    n = data.shape[0]
    span = window + (horizon if targets else 0)
    if n < span:
        raise ValueError(
            f"[sliding_windows] the series has {n} steps; a window of {window}"
            + (f" plus a target {horizon} ahead" if targets else "")
            + f" needs at least {span}"
        )
    count = (n - span) // stride + 1
    views = sliding_window_view(data, window, axis=0)[: count * stride : stride]  # (S, F, w)
    x = np.ascontiguousarray(views.transpose(0, 2, 1))
    if not targets:
        return x
    idx = np.arange(count) * stride + window + horizon - 1
    y = data[idx]
    return x, (y[:, 0].copy() if univariate else y.copy())


__all__ = ["sliding_windows"]
__getattr__ = missing_attribute(__name__, __all__)
