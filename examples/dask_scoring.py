"""Scoring a large panel of time series with rnnkit on a local Dask cluster.

    python examples/dask_scoring.py                          # 100 000 series, 2 workers
    python examples/dask_scoring.py --series 2000 --check    # small, checked against predict

Starts a ``dask.distributed.LocalCluster`` on loopback (127.0.0.1) with 2 single-threaded
worker processes and no dashboard, generates a synthetic panel of random-walk series on the
workers (``dask.array.random``, seeded, so every run and every worker count sees the same
data), scores it with ``rnnkit.dask.predict`` (one task per chunk of series; each worker runs
rnnkit's core with one thread) and shows Dask's text progress bar while it runs. The model is
a seeded ``LSTM(32) -> Dense(1)`` one-step forecaster; a real job would ``load_model`` one.

``--check`` also scores the same panel in this process with ``model.predict`` and checks that
the two results are equal, bit for bit. Needs ``pip install rnnkit[dask]``.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

import rnnkit
import rnnkit.dask
from rnnkit.layers import LSTM, Dense

STEPS, FEATURES = 50, 8


def make_model() -> rnnkit.Sequential:
    rnnkit.utils.set_random_seed(0)
    return rnnkit.Sequential([LSTM(32, input_shape=(None, FEATURES)), Dense(1)])


def make_panel(series: int, chunk: int):
    """(series, STEPS, FEATURES) float32 random walks, generated chunk by chunk where they
    are computed."""
    import dask.array as da

    rng = da.random.default_rng(42)
    steps = rng.standard_normal(
        (series, STEPS, FEATURES), chunks=(chunk, STEPS, FEATURES), dtype=np.float32
    )
    return (steps.cumsum(axis=1) * np.float32(0.1)).astype(np.float32)


def score(client, model, panel, batch_size: int, progress: bool = True):
    """Persist the panel on the workers, then score it; returns (predictions, seconds)."""
    from distributed import progress as show_progress
    from distributed import wait

    with client.as_current():
        panel = client.persist(panel)
        wait(panel)
        t0 = time.perf_counter()
        scores = client.persist(rnnkit.dask.predict(model, panel, batch_size=batch_size))
        if progress:
            show_progress(scores)  # a text progress bar in the console
            print()
        result = client.compute(scores).result()
    return result, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=100_000)
    p.add_argument("--chunk", type=int, default=2_000, help="series per task")
    p.add_argument("--batch-size", type=int, default=500, help="series per model call")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--check", action="store_true", help="compare with local model.predict")
    args = p.parse_args(argv)
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)  # no INFO lines when workers close

    model = make_model()
    panel = make_panel(args.series, args.chunk)
    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",  # loopback only
        dashboard_address=None,  # no dashboard
        silence_logs=logging.ERROR,
    )
    with cluster, Client(cluster) as client:
        result, seconds = score(client, model, panel, args.batch_size)
        x_local = panel.compute() if args.check else None
    print(
        f"scored {args.series} series of {STEPS} steps in {seconds:.2f} s "
        f"({args.series / seconds:,.0f} series/s) on {args.workers} workers"
    )
    print(f"predictions: shape {result.shape}, mean {result.mean():.5f}, std {result.std():.5f}")
    if x_local is not None:
        local = model.predict(x_local, batch_size=args.batch_size, verbose=0)
        same = local.shape == result.shape and local.tobytes() == result.tobytes()
        print(f"equal to local model.predict bit for bit: {same}")
        if not same:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
