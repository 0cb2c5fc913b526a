"""Variable-length batches: what steps past a sequence's end cost, paired in one process.

A batch with ``lengths`` runs in packed-sequence order (sorted longest first, the running rows
shrinking as sequences end), so its time should follow the sum of the lengths, not B*T. For
each cell, mode and thread count, the calls alternate: the full-length batch, the same batch
with every length T/4, and with lengths uniform in 1..T (mean about T/2); the figures are the
medians over pairs of (time with lengths / full-length time), and, with torch installed, of
torch's time on a packed sequence of the same lengths over rnnkit's.

    python bench/bench_lengths.py                 # LSTM and GRU, B=64 T=100 I=128 H=256
    python bench/bench_lengths.py --threads 1 --pairs 31

Target (issue 9): lengths averaging T/4 run in <= 0.35x the full-length time.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def timed(fn, min_s: float) -> float:
    """Seconds per call of fn, over enough calls to last at least min_s."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if el >= min_s:
            return el / n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2")
    p.add_argument("--pairs", type=int, default=15)
    p.add_argument("--min-ms", type=float, default=60.0)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--input", type=int, default=128)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--modes", default="inference,training")
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    n_max = max(int(t) for t in args.threads.split(","))
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[key] = str(n_max)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import rnnkit

    try:
        import torch
    except ImportError:
        torch = None

    from rnnkit.bench.machine import cpu_info

    B, T, I, H = args.batch, args.steps, args.input, args.hidden
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    lens = {
        "T/4": np.full(B, T // 4, dtype=np.int64),
        "uniform": rng.integers(1, T + 1, size=B),
    }
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        rnnkit.set_num_threads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        for cell in ("LSTM", "GRU"):
            m = getattr(rnnkit, cell)(I, H, seed=0)
            tm = None
            if torch is not None:
                tm = getattr(torch.nn, cell)(I, H)
                tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
            for mode in args.modes.split(","):
                train = mode == "training"
                m.train(train)
                dy = np.ones((T, B, H), np.float32)

                def rk(lengths, m=m, train=train, dy=dy):
                    def f():
                        y, _ = m(x, lengths=lengths)
                        if train:
                            m.backward(dy)

                    return f

                def th(lengths, tm=tm, train=train):
                    xt = torch.from_numpy(x)
                    packed = torch.nn.utils.rnn.pack_padded_sequence(
                        xt, torch.from_numpy(lengths), enforce_sorted=False
                    )

                    def f():
                        if train:
                            out, _ = tm(packed)
                            out.data.sum().backward()
                        else:
                            with torch.inference_mode():
                                tm(packed)

                    return f

                full = rk(None)
                for name, L in lens.items():
                    part = rk(L)
                    peer = th(L) if tm is not None else None
                    full(), part()
                    if peer:
                        peer()
                    ratios, vs_torch, t_part = [], [], []
                    for _ in range(args.pairs):
                        a = timed(full, args.min_ms / 1e3)
                        b = timed(part, args.min_ms / 1e3)
                        ratios.append(b / a)
                        t_part.append(b)
                        if peer:
                            vs_torch.append(timed(peer, args.min_ms / 1e3) / b)
                    row = {
                        "cell": cell,
                        "mode": mode,
                        "threads": threads,
                        "lengths": name,
                        "mean_len": float(L.mean()),
                        "ms": 1e3 * float(np.median(t_part)),
                        "vs_full": float(np.median(ratios)),
                        "torch_packed": float(np.median(vs_torch)) if vs_torch else None,
                    }
                    rows.append(row)
                    tp = "—" if row["torch_packed"] is None else f"{row['torch_packed']:.2f}"
                    print(
                        f"{cell} {mode} {threads}t lengths {name} (mean {row['mean_len']:.0f}): "
                        f"{row['ms']:.2f} ms, {row['vs_full']:.3f}x full length, torch packed {tp}",
                        flush=True,
                    )
    lines = [
        f"# Variable-length batches, B={B} T={T} I={I} H={H}",
        "",
        f"{cpu_info().get('model', '?')}; `python bench/bench_lengths.py`; medians over "
        f"{args.pairs} alternating pairs. 'vs full' = time with lengths / full-length time "
        "(target for T/4: <= 0.35); 'torch packed' = torch time on a PackedSequence / rnnkit "
        "time (above 1: rnnkit faster).",
        "",
        "| cell | mode | threads | lengths | mean length | rnnkit ms | vs full | torch packed |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        tp = "—" if r["torch_packed"] is None else f"{r['torch_packed']:.2f}"
        lines.append(
            f"| {r['cell']} | {r['mode']} | {r['threads']} | {r['lengths']} | "
            f"{r['mean_len']:.0f} | {r['ms']:.2f} | {r['vs_full']:.3f} | {tp} |"
        )
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
