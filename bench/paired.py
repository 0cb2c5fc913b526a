"""Paired timing of rnnkit against one peer in one process: calls alternate, ratios per pair.

On a shared VM whose speed drifts by tens of percent within minutes, two frameworks timed in
separate worker processes (bench/run.py) can land in different slow spells; their ratio then
measures the machine. Here both run in the same process at the same thread count, one call
of each in turn (``rnnkit.bench.timing.paired``, the method ``python -m rnnkit.bench`` uses for
any shape), and the reported figure is the median over pairs of (peer time / rnnkit time),
with its interquartile range. Thread pools of both are sized before the first call.

    python bench/paired.py                          # torch, every case, 1 and 2 threads
    python bench/paired.py --peer onnxruntime --cases lstm_b1_t100_i32_h128 --threads 1

Writes bench/results/<cpu>-paired.md. Outputs are checked against the reference before timing,
as in run.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer", default="torch", help="torch or onnxruntime")
    p.add_argument("--cases", default="all")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--modes", default="inference,training")
    p.add_argument("--pairs", type=int, default=21)
    p.add_argument(
        "--min-ms", type=float, default=30.0, help="calls per sample: at least this long"
    )
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    n = max(threads)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RNNKIT_NUM_THREADS"):
        os.environ[key] = str(n)  # pools as large as the largest count, set before any import
    # OpenMP workers otherwise spin for ~200 ms after each of the peer's calls, on the cores
    # that rnnkit's next call needs (rnnkit's own workers spin for under 1 ms).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    from rnnkit.bench.cases import CASES, make_data, make_weights
    from rnnkit.bench.machine import cpu_info, slugify
    from rnnkit.bench.peers import load_peer
    from rnnkit.bench.reference import rel_err
    from rnnkit.bench.timing import paired, ratio_stats

    cpu = cpu_info()

    names = list(CASES) if args.cases == "all" else args.cases.split(",")
    rows = []
    for th in threads:
        rk = load_peer("rnnkit")(th)
        peer = load_peer(args.peer)(th)
        for name in names:
            case = CASES[name]
            if case.stream:
                continue
            weights = make_weights(case)
            x, dy = make_data(case)
            rk.build(case, weights)
            peer.build(case, weights)
            err = rel_err(rk.forward(x)["y"], peer.forward(x)["y"])
            if err > 1e-4:
                print(f"{name}: rnnkit and {args.peer} disagree ({err:.1e}); skipped")
                continue
            for mode in args.modes.split(","):
                if mode == "training" and not peer.supports_training:
                    continue
                fa = rk.infer_fn(x) if mode == "inference" else rk.train_fn(x, dy)
                fb = peer.infer_fn(x) if mode == "inference" else peer.train_fn(x, dy)
                times = paired({"rnnkit": fa, args.peer: fb}, args.pairs, args.min_ms)
                ta, tb = times["rnnkit"], times[args.peer]
                med, q1, q3 = ratio_stats(tb, ta)
                row = (name, mode, th, float(np.median(ta)), float(np.median(tb)), med, q1, q3)
                rows.append(row)
                print(
                    f"{name} {mode} t={th}: rnnkit {row[3]:.4g} ms, {args.peer} {row[4]:.4g} ms, "
                    f"ratio {med:.2f} (IQR {q1:.2f}-{q3:.2f})",
                    flush=True,
                )
    label = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime"}.get(args.peer, args.peer)
    lines = [
        f"# rnnkit vs {label}, paired in one process: {cpu['model']}, {os.cpu_count()} CPUs",
        "",
        f"Each sample times one batch of calls of each framework in turn ({args.pairs} pairs); "
        f"ratio = {label} time / rnnkit time per pair (above 1: rnnkit is faster), median and "
        "interquartile range over pairs. Command: `python bench/paired.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
        + "`",
        "",
        f"| case | mode | threads | rnnkit ms | {label} ms | ratio | IQR |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name, mode, th, a, b, med, q1, q3 in rows:
        lines.append(
            f"| {name} | {mode} | {th} | {a:.4g} | {b:.4g} | {med:.2f} | {q1:.2f}–{q3:.2f} |"
        )
    out = (
        Path(args.out)
        if args.out
        else (Path(__file__).parent / "results" / f"{slugify(cpu['model'])}-paired-{args.peer}.md")
    )
    out.write_text("\n".join(lines) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
