"""Dask scale-out: the LocalCluster example's scoring with 1 and with 2 workers, paired.

    python bench/bench_dask.py                     # 100 000 series of 50 steps, 3 rounds
    python bench/bench_dask.py --series 20000 --rounds 2

Both clusters (loopback, single-threaded worker processes, no dashboard) stay up for the whole
run; each has the same seeded panel persisted in its workers' memory, so what is timed is the
scoring alone (rnnkit.dask.predict -> compute), alternating between the clusters round by
round. Reports the median time of each and the speedup of 2 workers over 1.
Writes bench/results/<cpu>-dask.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _example():
    path = ROOT / "examples" / "dask_scoring.py"
    spec = importlib.util.spec_from_file_location("dask_scoring", path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=100_000)
    p.add_argument("--chunk", type=int, default=2_000)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)  # no INFO lines when workers close

    from rnnkit.bench.machine import cpu_info, slugify

    ex = _example()
    model = ex.make_model()
    clusters, clients, panels = {}, {}, {}
    try:
        for w in (1, 2):
            clusters[w] = LocalCluster(
                n_workers=w,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            clients[w] = Client(clusters[w], set_as_default=False)
            panels[w] = ex.make_panel(args.series, args.chunk)
        times: dict[int, list[float]] = {1: [], 2: []}
        results = {}
        for r in range(args.rounds):
            for w in (1, 2) if r % 2 == 0 else (2, 1):
                res, sec = ex.score(clients[w], model, panels[w], args.batch_size, progress=False)
                times[w].append(sec)
                results[w] = res
                print(f"round {r}: {w} worker(s) {sec:.2f} s", flush=True)
        assert results[1].tobytes() == results[2].tobytes(), "1 and 2 workers disagree"
    finally:
        for c in clients.values():
            c.close()
        for c in clusters.values():
            c.close()
    t1, t2 = float(np.median(times[1])), float(np.median(times[2]))
    cpu = cpu_info()
    lines = [
        f"# Dask scale-out: {cpu['model']}, {os.cpu_count()} CPUs",
        "",
        f"{args.series} series x {ex.STEPS} steps x {ex.FEATURES} features, LSTM(32) -> Dense(1),"
        f" chunks of {args.chunk}, batch_size {args.batch_size}, {args.rounds} rounds alternating."
        " Command: `python bench/bench_dask.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
        + "`",
        "",
        "| workers | median s | series/s | all rounds (s) |",
        "|---:|---:|---:|---|",
    ]
    for w, t in ((1, t1), (2, t2)):
        lines.append(
            f"| {w} | {t:.2f} | {args.series / t:,.0f} | "
            + ", ".join(f"{x:.2f}" for x in times[w])
            + " |"
        )
    lines += ["", f"speedup of 2 workers over 1: {t1 / t2:.2f}x"]
    print(lines[-1])
    default = ROOT / "bench" / "results" / f"{slugify(cpu['model'])}-dask.md"
    out = Path(args.out) if args.out else default
    out.write_text("\n".join(lines) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
