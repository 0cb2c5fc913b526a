"""rnnkit.onnx.InferenceSession vs onnxruntime.InferenceSession vs the rnnkit module, paired.

The suite's ONNX graphs (bench/peers/onnx_peer.py builds them from each case's seeded
weights) run in rnnkit's session and in ONNX Runtime's, and the same model runs as a
``rnnkit.LSTM``/``GRU`` built directly; the three calls alternate in one process (as in
bench/paired.py) and each figure is the median over samples of a per-sample ratio, with its
interquartile range. Outputs are checked against each other before timing.

    python bench/bench_onnx.py --cases lstm_b1_t100_i32_h128 --threads 1 --pairs 7

Columns: ``ort/session`` above 1 means rnnkit's session is faster than ONNX Runtime;
``session/module`` is the session's cost over the direct module (target: within 1.05).
Writes bench/results/<cpu>-onnx-session.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="all")
    p.add_argument("--threads", default="1")
    p.add_argument("--pairs", type=int, default=15)
    p.add_argument("--min-ms", type=float, default=30.0)
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RNNKIT_NUM_THREADS"):
        os.environ[key] = str(max(threads))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import onnxruntime as ort

    import rnnkit
    from rnnkit.bench.cases import CASES, make_data, make_weights
    from rnnkit.bench.machine import cpu_info, slugify
    from rnnkit.bench.peers.onnx_peer import build_model
    from rnnkit.bench.reference import rel_err
    from rnnkit.onnx import InferenceSession

    names = [
        n
        for n in (list(CASES) if args.cases == "all" else args.cases.split(","))
        if not CASES[n].stream
    ]
    rows = []
    for th in threads:
        rnnkit.set_num_threads(th)
        for name in names:
            case = CASES[name]
            weights = make_weights(case)
            x, _ = make_data(case)
            model = build_model(case, weights, case.steps, case.batch).SerializeToString()
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = th, 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            s_ort = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
            s_rk = InferenceSession(model)
            cls = rnnkit.LSTM if case.cell == "lstm" else rnnkit.GRU
            module = cls(
                case.input_size,
                case.hidden_size,
                num_layers=case.num_layers,
                bidirectional=case.bidirectional,
            )
            module.load_state_dict(weights)
            module.eval()
            feeds = {"x": x}
            (y_rk,) = s_rk.run(["y"], feeds)
            (y_ort,) = s_ort.run(["y"], feeds)
            y_mod = module(x)[0]
            errs = (rel_err(y_rk, y_mod), rel_err(y_rk, y_ort))
            if max(errs) > 1e-4:
                print(f"{name}: outputs disagree {errs}; skipped")
                continue
            calls = {
                "session": lambda s=s_rk, f=feeds: s.run(["y"], f),
                "ort": lambda s=s_ort, f=feeds: s.run(["y"], f),
                "module": lambda m=module, a=x: m(a),
            }
            for f in calls.values():
                f()
            t0 = time.perf_counter()
            calls["session"]()
            n = max(1, int(args.min_ms / 1e3 / max(time.perf_counter() - t0, 1e-6)))
            times: dict[str, list[float]] = {k: [] for k in calls}
            for _ in range(args.pairs):
                for k, f in calls.items():
                    t0 = time.perf_counter()
                    for _ in range(n):
                        f()
                    times[k].append((time.perf_counter() - t0) / n * 1e3)
            t = {k: np.array(v) for k, v in times.items()}
            r1 = t["ort"] / t["session"]
            r2 = t["session"] / t["module"]
            q = [np.percentile(r, [25, 50, 75]) for r in (r1, r2)]
            row = (name, th, *(float(np.median(t[k])) for k in calls), q[0], q[1])
            rows.append(row)
            print(
                f"{name} t={th}: session {row[2]:.4g} ms, ORT {row[3]:.4g} ms, "
                f"module {row[4]:.4g} ms; "
                f"ort/session {q[0][1]:.2f} (IQR {q[0][0]:.2f}-{q[0][2]:.2f}), "
                f"session/module {q[1][1]:.3f} (IQR {q[1][0]:.3f}-{q[1][2]:.3f})",
                flush=True,
            )
    cpu = cpu_info()
    lines = [
        f"# rnnkit.onnx.InferenceSession vs ONNX Runtime vs the rnnkit module: {cpu['model']}",
        "",
        "Paired in one process, calls alternating; medians over samples of per-sample ratios. "
        "Command: `python bench/bench_onnx.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
        + "`",
        "",
        "| case | threads | session ms | ORT ms | module ms | ORT/session | IQR "
        "| session/module | IQR |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for name, th, a, b, c, q1, q2 in rows:
        lines.append(
            f"| {name} | {th} | {a:.4g} | {b:.4g} | {c:.4g} "
            f"| {q1[1]:.2f} | {q1[0]:.2f}–{q1[2]:.2f} "
            f"| {q2[1]:.3f} | {q2[0]:.3f}–{q2[2]:.3f} |"
        )
    out = (
        Path(args.out)
        if args.out
        else Path(__file__).parent / "results" / f"{slugify(cpu['model'])}-onnx-session.md"
    )
    out.write_text("\n".join(lines) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
