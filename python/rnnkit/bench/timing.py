"""Timing: warmup, repeats, median and interquartile range; SGEMM peak measurement."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np


@dataclass
class Timing:
    """Per-call wall times of one measurement, in milliseconds.

    Attributes
    ----------
    median_ms, q1_ms, q3_ms : float
        Median and quartiles over repeats of the mean per-call time within a repeat.
    min_ms : float
        Fastest repeat.
    repeats : int
        Timed repeats.
    inner : int
        Calls per repeat (more than one for calls shorter than the repeat target).
    """

    median_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float
    repeats: int
    inner: int

    @property
    def iqr_ms(self) -> float:
        """Interquartile range q3 − q1."""
        return self.q3_ms - self.q1_ms

    def scaled(self, factor: float) -> Timing:
        """The same timing with every time multiplied by ``factor`` (e.g. per step)."""
        return Timing(
            self.median_ms * factor,
            self.q1_ms * factor,
            self.q3_ms * factor,
            self.min_ms * factor,
            self.repeats,
            self.inner,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def measure(
    fn: Callable[[], Any],
    repeats: int,
    repeat_target_s: float = 0.05,
    max_seconds: float = 30.0,
    min_repeats: int = 3,
) -> Timing:
    """Time ``fn`` after warming it up.

    The first call (tracing, allocation, thread-pool start) is untimed; one more untimed
    call calibrates how many calls make a repeat of at least ``repeat_target_s``; one
    repeat's worth of calls warms up; then ``repeats`` repeats are timed with
    ``time.perf_counter``. Repeats stop early once ``max_seconds`` of timing has passed and
    ``min_repeats`` are done.

    Parameters
    ----------
    fn : callable
        Zero-argument function; each call must do the whole work synchronously.
    repeats : int
        Timed repeats wanted.
    repeat_target_s : float
        Minimum duration of one repeat.
    max_seconds : float
        Time budget for the timed repeats.
    min_repeats : int
        Repeats done even past the budget.

    Returns
    -------
    Timing
        Per-call statistics.
    """
    fn()
    t0 = time.perf_counter()
    fn()
    single = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, math.ceil(repeat_target_s / single))
    for _ in range(inner):
        fn()
    samples = []
    start = time.perf_counter()
    for r in range(max(repeats, 1)):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
        if r + 1 >= min_repeats and time.perf_counter() - start > max_seconds:
            break
    ms = np.array(samples) * 1e3
    q1, med, q3 = np.percentile(ms, [25, 50, 75])
    return Timing(float(med), float(q1), float(q3), float(ms.min()), len(ms), inner)


def sgemm_peak(threads: int, n: int = 2048, repeats: int = 5) -> dict[str, Any]:
    """Measured float32 GEMM throughput at ``n``³ with numpy and torch, in GFLOP/s.

    Call in a process whose BLAS/OpenMP thread variables are already set to ``threads``.

    Parameters
    ----------
    threads : int
        Thread count (applied to torch; numpy's BLAS reads the environment at import).
    n : int
        Matrix size.
    repeats : int
        Timed repeats; the median is used.

    Returns
    -------
    dict
        ``{"numpy": gflops, "torch": gflops, "best": gflops, "best_by": name, "n": n}``;
        a library that is not installed is left out.
    """
    flops = 2.0 * n**3
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out: dict[str, Any] = {"n": n}
    t = measure(lambda: a @ b, repeats, repeat_target_s=0.0, max_seconds=20.0)
    out["numpy"] = flops / (t.median_ms * 1e-3) / 1e9
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.set_num_threads(threads)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        t = measure(lambda: torch.matmul(ta, tb), repeats, repeat_target_s=0.0, max_seconds=20.0)
        out["torch"] = flops / (t.median_ms * 1e-3) / 1e9
    best = max(("numpy", "torch"), key=lambda k: out.get(k, 0.0))
    out["best"], out["best_by"] = out[best], best
    return out


def paired(
    fns: dict[str, Callable[[], Any]], rounds: int, min_ms: float = 30.0
) -> dict[str, np.ndarray]:
    """Time several callables in alternation: every round, one block of calls of each.

    On a machine whose speed drifts within minutes, two frameworks timed one after the other
    can land in different slow spells; timed in turn within each round, they share them, so
    the per-round ratio of their times (:func:`ratio_stats`) is far steadier than a ratio of
    separate medians. Each callable is called twice untimed (warm-up, then sizing: a block
    holds enough calls to last ``min_ms``); the order rotates from round to round.

    Parameters
    ----------
    fns : dict of str to callable
        Zero-argument callables, each doing its whole work synchronously.
    rounds : int
        Rounds (samples per callable), at least 1.
    min_ms : float
        Minimum duration of one block of calls.

    Returns
    -------
    dict of str to ndarray, (rounds,)
        Per-call time in milliseconds of each callable in each round.
    """
    calls = {}
    for key, fn in fns.items():
        fn()
        t0 = time.perf_counter()
        fn()
        single = max(time.perf_counter() - t0, 1e-7)
        calls[key] = max(1, math.ceil(min_ms / 1e3 / single))
    keys = list(fns)
    out: dict[str, list[float]] = {k: [] for k in keys}
    for r in range(max(rounds, 1)):
        for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
            fn, n = fns[key], calls[key]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            out[key].append((time.perf_counter() - t0) / n * 1e3)
    return {k: np.array(v) for k, v in out.items()}


def ratio_stats(times: np.ndarray, base: np.ndarray) -> tuple[float, float, float]:
    """Median, first and third quartile over rounds of ``times / base`` (from :func:`paired`)."""
    q1, med, q3 = np.percentile(np.asarray(times) / np.asarray(base), [25, 50, 75])
    return float(med), float(q1), float(q3)
