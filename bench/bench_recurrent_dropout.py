"""What recurrent_dropout costs in training: one ``train_on_batch`` of an LSTM/GRU classifier
with ``recurrent_dropout`` 0 and 0.2, in rnnkit and (when installed) Keras 3, calls alternated
in one process (``rnnkit.bench.timing.paired``); medians and ratios over rounds.

    python bench/bench_recurrent_dropout.py                 # B=64, T=100, I=32, H=128
    python bench/bench_recurrent_dropout.py --batch 32 --hidden 64 --rounds 9

rnnkit's masked time loop runs on one thread on Eigen's products (the packed kernels and the
batch split need one h per row, and the masks give each gate its own); Keras switches to its
per-gate ``implementation=1`` loop.
"""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--inputs", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--cells", default="LSTM,GRU")
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-keras", action="store_true")
    args = p.parse_args(argv)
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RNNKIT_NUM_THREADS"):
        os.environ[key] = str(args.threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    import rnnkit.keras as rk
    from rnnkit.bench.timing import paired, ratio_stats

    keras = None
    if not args.no_keras:
        try:
            import keras
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        except ImportError:
            keras = None
    rng = np.random.default_rng(0)
    B, T, I, H = args.batch, args.steps, args.inputs, args.hidden
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    y = rng.integers(0, 2, (B, 1)).astype(np.float32)

    def model(mod, cell, rate):
        L = mod.layers
        m = mod.Sequential(
            [
                L.Input((T, I)),
                getattr(L, cell)(H, recurrent_dropout=rate),
                L.Dense(1, activation="sigmoid"),
            ]
        )
        m.compile(optimizer="adam", loss="binary_crossentropy")
        return m

    print(
        f"train_on_batch, B={B} T={T} I={I} H={H}, {args.threads} thread(s); "
        f"medians over {args.rounds} rounds"
    )
    print(
        "| cell | rnnkit rd=0 | rnnkit rd=0.2 | cost of rd | Keras rd=0.2 "
        "| Keras / rnnkit at rd=0.2 |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for cell in args.cells.split(","):
        fns = {}
        for rate in (0.0, 0.2):
            m = model(rk, cell, rate)
            fns[f"rnnkit {rate}"] = lambda m=m: m.train_on_batch(x, y)
        if keras is not None:
            k = model(keras, cell, 0.2)
            fns["keras 0.2"] = lambda k=k: k.train_on_batch(x, y)
        times = paired(fns, args.rounds)
        base, masked = times["rnnkit 0.0"], times["rnnkit 0.2"]
        cost = ratio_stats(masked, base)
        row = (
            f"| {cell} | {np.median(base):.2f} ms | {np.median(masked):.2f} ms "
            f"| {cost[0]:.2f}x [{cost[1]:.2f}, {cost[2]:.2f}] |"
        )
        if keras is not None:
            kr = ratio_stats(times["keras 0.2"], masked)
            k_ms = np.median(times["keras 0.2"])
            row += f" {k_ms:.2f} ms | {kr[0]:.2f}x [{kr[1]:.2f}, {kr[2]:.2f}] |"
        else:
            row += " - | - |"
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
