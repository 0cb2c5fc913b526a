"""bfloat16 inference against PyTorch's, paired in one process: issue 9's table.

For each case (cell, B, T, I, H, layers) and thread count, the calls alternate between rnnkit
float32, rnnkit bfloat16 (the default ISA: AMX tiles where the CPU has them, VDPBF16PS at batch
1), torch float32, torch ``.bfloat16()`` (oneDNN's AMX kernels on such CPUs) and torch float32
under ``torch.autocast("cpu", torch.bfloat16)``. Reported: medians of each, the median over
rounds of torch-bf16 time / rnnkit-bf16 time and of rnnkit-f32 / rnnkit-bf16, each bfloat16
output's error against the float32 one (max abs error / output scale), and rnnkit bfloat16's
GFLOP/s, against --tile-peak (bench/floor/amx_tiles.cpp's "regs" figure) when given.

    python bench/bench_bf16.py                      # the suite, 1 and 2 threads
    python bench/bench_bf16.py --threads 1 --cells lstm --tile-peak 1900
    python bench/bench_bf16.py --crossover          # amx vs avx512bf16 by batch (AMX CPUs)

Targets (issue 9), AMX CPUs: bfloat16 at B in {16, 64, 256} >= 1.3x torch .bfloat16() and
>= 4x rnnkit float32; bfloat16 error no larger than torch's.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

CASES = [  # (B, T, I, H, layers)
    (64, 100, 128, 256, 2),
    (256, 50, 512, 512, 1),
    (16, 100, 128, 256, 1),
    (1, 100, 32, 128, 1),
]


def timed(fn, min_s: float) -> float:
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if el >= min_s:
            return el / n


def scaled_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def flops(cell: str, B: int, T: int, I: int, H: int, L: int) -> float:
    G = 4 if cell == "lstm" else 3
    return sum(2.0 * B * T * G * H * ((I if l == 0 else H) + H) for l in range(L))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2")
    p.add_argument("--cells", default="lstm,gru")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--min-ms", type=float, default=40.0)
    p.add_argument("--tile-peak", type=float, default=0.0, help="GFLOP/s of one core's tiles")
    p.add_argument("--crossover", action="store_true", help="amx vs avx512bf16 by batch")
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

    lines = [
        f"# bfloat16 inference, {cpu_info().get('model', '?')}",
        "",
        f"`python bench/bench_bf16.py`; rnnkit ISA {rnnkit.get_isa()} ({rnnkit.config()['amx']}); "
        f"medians over {args.rounds} alternating rounds. 'vs torch bf16' = torch .bfloat16() time "
        "/ rnnkit bfloat16 time; 'vs own f32' = rnnkit float32 / rnnkit bfloat16; errors: max "
        "abs error against the float32 output / its scale.",
        "",
    ]
    rng = np.random.default_rng(0)
    if args.crossover:
        if "amx" not in rnnkit.available_isas():
            print(f"no amx kernels here: {rnnkit.config()['amx']}")
            return 0
        lines += [
            "| cell | B | amx ms | avx512bf16 ms | avx512bf16 / amx |",
            "|---|---:|---:|---:|---:|",
        ]
        rnnkit.set_num_threads(1)
        for cell in args.cells.split(","):
            for B in (1, 2, 4, 8, 16, 32):
                m = getattr(rnnkit, cell.upper())(128, 256, dtype="bfloat16", seed=0)
                x = rng.standard_normal((100, B, 128)).astype(np.float32)
                ta, tb = [], []

                def call(m=m, x=x):
                    m(x)

                for _ in range(args.rounds):
                    rnnkit.set_isa("amx")
                    ta.append(timed(call, args.min_ms / 1e3))
                    rnnkit.set_isa("avx512bf16")
                    tb.append(timed(call, args.min_ms / 1e3))
                rnnkit.set_isa("amx")
                a, b = np.median(ta), np.median(tb)
                lines.append(f"| {cell} | {B} | {a * 1e3:.3f} | {b * 1e3:.3f} | {b / a:.2f} |")
                print(lines[-1], flush=True)
    else:
        lines += [
            "| cell | B, T, I, H, L | threads | rnnkit f32 ms | rnnkit bf16 ms | torch f32 ms | "
            "torch bf16 ms | torch autocast ms | vs torch bf16 | vs own f32 | rnnkit bf16 err | "
            "torch bf16 err | rnnkit bf16 GFLOP/s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for threads in (int(t) for t in args.threads.split(",")):
            rnnkit.set_num_threads(threads)
            if torch is not None:
                torch.set_num_threads(threads)
            for cell in args.cells.split(","):
                for B, T, I, H, L in CASES:
                    f32 = getattr(rnnkit, cell.upper())(I, H, num_layers=L, seed=0).eval()
                    b16 = getattr(rnnkit, cell.upper())(I, H, num_layers=L, seed=0).bfloat16()
                    x = rng.standard_normal((T, B, I)).astype(np.float32)
                    fns = {"rk32": lambda f32=f32, x=x: f32(x), "rk16": lambda b16=b16, x=x: b16(x)}
                    y32 = f32(x)[0]
                    err_rk = scaled_error(b16(x)[0], y32)
                    err_t = float("nan")
                    if torch is not None:
                        t32 = getattr(torch.nn, cell.upper())(I, H, num_layers=L)
                        t32.load_state_dict(
                            {k: torch.from_numpy(v) for k, v in f32.state_dict().items()}
                        )
                        t16 = getattr(torch.nn, cell.upper())(I, H, num_layers=L)
                        t16.load_state_dict(t32.state_dict())
                        t16 = t16.bfloat16()
                        xt, xb = torch.from_numpy(x), torch.from_numpy(x).bfloat16()

                        def run_t32(t32=t32, xt=xt):
                            with torch.inference_mode():
                                t32(xt)

                        def run_t16(t16=t16, xb=xb):
                            with torch.inference_mode():
                                t16(xb)

                        def run_auto(t32=t32, xt=xt):
                            with (
                                torch.inference_mode(),
                                torch.autocast("cpu", dtype=torch.bfloat16),
                            ):
                                t32(xt)

                        fns.update(t32=run_t32, t16=run_t16, auto=run_auto)
                        with torch.inference_mode():
                            err_t = scaled_error(t16(xb)[0].float().numpy(), y32)
                    for fn in fns.values():
                        fn()
                    times: dict[str, list[float]] = {k: [] for k in fns}
                    for _ in range(args.rounds):
                        for k, fn in fns.items():
                            times[k].append(timed(fn, args.min_ms / 1e3))
                    med = {k: float(np.median(v)) for k, v in times.items()}
                    vs_t = (
                        float(np.median(np.array(times["t16"]) / np.array(times["rk16"])))
                        if "t16" in times
                        else float("nan")
                    )
                    vs_own = float(np.median(np.array(times["rk32"]) / np.array(times["rk16"])))
                    gf = flops(cell, B, T, I, H, L) / med["rk16"] / 1e9
                    peak = (
                        f" ({100 * gf / (args.tile_peak * threads):.0f}%)" if args.tile_peak else ""
                    )

                    def ms(k: str, med=med) -> str:
                        return f"{med[k] * 1e3:.3f}" if k in med else "—"

                    lines.append(
                        f"| {cell} | {B}, {T}, {I}, {H}, {L} | {threads} | {ms('rk32')} | "
                        f"{ms('rk16')} | "
                        f"{ms('t32')} | {ms('t16')} | {ms('auto')} | {vs_t:.2f} | {vs_own:.2f} | "
                        f"{err_rk:.2e} | {err_t:.2e} | {gf:.1f}{peak} |"
                    )
                    print(lines[-1], flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
