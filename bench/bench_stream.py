"""Streaming benchmarks, paired in one process: per-step time from Python and stream banks.

Part 1, one step per Python call at batch 1 (LSTM 16->64 and GRU 16->64):

- rnnkit ``s.step(x_t)`` (a new output array per step) and ``s.step(x_t, out=y)``;
- PyTorch ``nn.LSTMCell`` / ``nn.GRUCell`` under ``torch.inference_mode()``, 1 thread, inputs
  already torch tensors (its best case: no numpy conversion per step);
- ONNX Runtime, a one-step LSTM/GRU graph whose state is fed back through IOBinding (OrtValues
  bound once per buffer, outputs swapped with inputs each step), 1 intra-op thread;
- the floors: an empty pybind11 call with step's arguments (``_core._noop(x)``), the same
  releasing and re-taking the GIL once (``_core._noop_nogil``), and ``np.empty`` of the output;
  then the two floors again while another Python thread spins (what a GIL release costs a
  serving process).

Part 2, banks (LSTM 16->64): ``bank.step(ids, x)`` of 100 random ids out of 10 000 streams,
one batch-100 stream's ``step`` (contiguous states), and 100 batch-1 streams' ``step`` calls.

Each framework runs blocks of ``--block`` steps in turn (paired, alternating), ``--steps``
steps each in all; the figure is the median over blocks of the time per step, with the
interquartile range. Outputs are checked against each other before timing.

    python bench/bench_stream.py                  # 1e5 steps each, about a minute
    python bench/bench_stream.py --steps 20000    # a quick look

Writes bench/results/<cpu>-stream.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread everywhere, numpy's BLAS included

import numpy as np  # noqa: E402


def paired(fns: dict[str, Callable[[], Any]], steps: int, block: int, per_call: dict[str, int]):
    """Median and IQR (µs per step) of each function, blocks of calls alternating."""
    for f in fns.values():  # warm up
        for _ in range(max(1, block // 10)):
            f()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(max(1, steps // block)):
        for name, f in fns.items():
            calls = max(1, block // per_call.get(name, 1))
            t0 = time.perf_counter()
            for _ in range(calls):
                f()
            samples[name].append((time.perf_counter() - t0) / (calls * per_call.get(name, 1)) * 1e6)
    out = {}
    for name, v in samples.items():
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        out[name] = (float(med), float(q1), float(q3))
    return out


def single_step(cell: str, steps: int, block: int) -> dict[str, tuple[float, float, float]]:
    import rnnkit
    from rnnkit import _core

    I, H = 16, 64
    m = (rnnkit.LSTM if cell == "lstm" else rnnkit.GRU)(I, H, seed=0).eval()
    weights = m.state_dict()
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((block, 1, I)).astype(np.float32)
    want, _ = m(xs[:50])

    s = m.stream()
    s_out = m.stream()
    y_buf = np.empty((1, H), np.float32)
    got = np.stack([s.step(xs[t]) for t in range(50)])
    assert np.array_equal(got, want), "rnnkit stream differs from the sequence call"
    s.reset()
    it = {"rk": 0, "rk_out": 0, "noop": 0}

    def rk() -> None:
        s.step(xs[it["rk"] % block])
        it["rk"] += 1

    x0 = np.ascontiguousarray(xs[0])

    def rk_out() -> None:
        s_out.step(x0, y_buf)

    fns: dict[str, Callable[[], Any]] = {}
    # rk cycles through inputs (xs[t] is a view: one more Python operation than rk_out)
    fns["rnnkit s.step(x)"] = rk
    fns["rnnkit s.step(x, out=y)"] = rk_out
    fns["floor: empty pybind11 call"] = lambda: _core._noop(x0, y_buf)
    fns["floor: empty call + GIL release"] = lambda: _core._noop_nogil(x0, y_buf)
    fns["floor: np.empty((1, H))"] = lambda: np.empty((1, H), np.float32)

    try:
        import torch

        torch.set_num_threads(1)
        tc = (torch.nn.LSTMCell if cell == "lstm" else torch.nn.GRUCell)(I, H)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(tc, name).copy_(torch.from_numpy(weights[name + "_l0"]))
        txs = [torch.from_numpy(xs[t]) for t in range(block)]
        state: list[Any] = [None]
        with torch.inference_mode():
            hx = None
            outs = []
            for t in range(50):
                hx = tc(txs[t], hx)
                outs.append((hx[0] if cell == "lstm" else hx).numpy().copy())
        err = np.abs(np.stack(outs) - want).max()
        assert err < 1e-5, f"torch differs from rnnkit by {err}"
        ti = {"t": 0}

        def torch_step() -> None:
            with torch.inference_mode():
                state[0] = tc(txs[ti["t"] % block], state[0])
            ti["t"] += 1

        fns["torch LSTMCell/GRUCell"] = torch_step
    except ImportError:
        print("torch not installed: skipped")

    try:
        import onnxruntime as ort

        from rnnkit.bench.cases import Case
        from rnnkit.bench.peers.onnx_peer import build_model

        case = Case(f"stream_{cell}_i16_h64", cell, 1, 1, I, H, stream=True)
        model = build_model(case, weights, 1, 1, with_state=True)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(
            model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        names = ["h", "c"] if cell == "lstm" else ["h"]
        bufs = [
            {n: ort.OrtValue.ortvalue_from_numpy(np.zeros((1, 1, H), np.float32)) for n in names}
            for _ in range(2)
        ]
        xv = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(xs[0:1]))
        yv = ort.OrtValue.ortvalue_from_numpy(np.zeros((1, 1, H), np.float32))
        bindings = []
        for k in range(2):  # binding k reads state buffers k and writes buffers 1 - k
            b = sess.io_binding()
            b.bind_ortvalue_input("x", xv)
            b.bind_ortvalue_input("h0", bufs[k]["h"])
            b.bind_ortvalue_output("y", yv)
            b.bind_ortvalue_output("h_n", bufs[1 - k]["h"])
            if cell == "lstm":
                b.bind_ortvalue_input("c0", bufs[k]["c"])
                b.bind_ortvalue_output("c_n", bufs[1 - k]["c"])
            bindings.append(b)
        xin = xv.numpy()  # ortvalue_from_numpy shares the array's memory
        outs = []
        for t in range(50):
            xin[...] = xs[t : t + 1]
            sess.run_with_iobinding(bindings[t % 2])
            outs.append(yv.numpy()[0].copy())
        err = np.abs(np.stack(outs) - want).max()
        assert err < 1e-5, f"onnxruntime differs from rnnkit by {err}"
        oi = {"t": 0}

        def ort_step() -> None:
            sess.run_with_iobinding(bindings[oi["t"] & 1])
            oi["t"] += 1

        fns["ONNX Runtime, IOBinding"] = ort_step
    except ImportError:
        print("onnxruntime not installed: skipped")
    return paired(fns, steps, block, {})


def gil_contended(steps: int, block: int) -> dict[str, tuple[float, float, float]]:
    """The call floors while another Python thread is busy (it holds the GIL whenever this one
    lets go): what releasing the GIL around a step costs a serving process."""
    import threading

    import rnnkit
    from rnnkit import _core

    x = np.zeros((1, 16), np.float32)
    s = rnnkit.LSTM(16, 64, seed=0).eval().stream()
    stop = threading.Event()

    def spin() -> None:
        n = 0
        while not stop.is_set():
            n += 1

    t = threading.Thread(target=spin, daemon=True)
    t.start()
    try:
        return paired(
            {
                "contended: empty pybind11 call": lambda: _core._noop(x),
                "contended: empty call + GIL release": lambda: _core._noop_nogil(x),
                "contended: rnnkit s.step(x) (keeps the GIL)": lambda: s.step(x),
            },
            steps,
            block,
            {},
        )
    finally:
        stop.set()
        t.join()


def banks(steps: int, block: int) -> dict[str, tuple[float, float, float]]:
    import rnnkit

    m = rnnkit.LSTM(16, 64, seed=0).eval()
    rng = np.random.default_rng(2)
    bank = m.streams(10_000)
    bank.add(10_000)
    ids = rng.choice(10_000, 100, replace=False).astype(np.int64)
    x = rng.standard_normal((100, 16)).astype(np.float32)
    contiguous = m.stream(100)
    singles = [m.stream() for _ in range(100)]
    y = np.empty((100, 64), np.float32)
    got = np.stack([bank.step(ids, x) for _ in range(5)])
    want = np.stack([contiguous.step(x) for _ in range(5)])
    assert np.array_equal(got, want), "bank differs from a contiguous batch"
    rows = [np.ascontiguousarray(x[i]) for i in range(100)]

    def separate() -> None:
        for s, r in zip(singles, rows):
            s.step(r)

    fns = {
        "bank.step(100 of 10 000 ids)": lambda: bank.step(ids, x, y),
        "one B=100 stream step (contiguous)": lambda: contiguous.step(x, y),
        "100 separate batch-1 s.step": separate,
    }
    per_call = dict.fromkeys(fns, 1)
    res = paired(fns, steps, block, per_call)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100_000, help="steps per framework (part 1)")
    p.add_argument("--block", type=int, default=1000, help="steps per timed block")
    p.add_argument("--bank-calls", type=int, default=2000, help="calls per variant (part 2)")
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import rnnkit
    from rnnkit.bench.machine import cpu_info, slugify

    rnnkit.set_num_threads(1)
    cpu = cpu_info()
    lines = [
        f"# Streaming, paired in one process: {cpu['model']}, {os.cpu_count()} CPUs",
        "",
        f"rnnkit ISA {rnnkit.get_isa()}, 1 thread. Command: `python bench/bench_stream.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
        + "`",
        "",
    ]
    for cell in ("lstm", "gru"):
        res = single_step(cell, args.steps, args.block)
        lines += [
            f"## {cell.upper()} 16->64, batch 1: µs per step ({args.steps} steps each, "
            f"blocks of {args.block})",
            "",
            "| call | median µs | IQR |",
            "|---|---:|---|",
        ]
        for name, (med, q1, q3) in res.items():
            lines.append(f"| {name} | {med:.2f} | {q1:.2f}–{q3:.2f} |")
            print(f"{cell} {name}: {med:.2f} µs (IQR {q1:.2f}-{q3:.2f})", flush=True)
        lines.append("")
    res = gil_contended(args.steps // 5, args.block)
    lines += [
        "## Releasing the GIL, with another Python thread busy (LSTM 16->64, batch 1)",
        "",
        "| call | median µs | IQR |",
        "|---|---:|---|",
    ]
    for name, (med, q1, q3) in res.items():
        lines.append(f"| {name} | {med:.2f} | {q1:.2f}–{q3:.2f} |")
        print(f"{name}: {med:.2f} µs (IQR {q1:.2f}-{q3:.2f})", flush=True)
    lines.append("")
    res = banks(args.bank_calls, max(1, args.bank_calls // 50))
    lines += [
        "## Banks, LSTM 16->64: µs per call",
        "",
        "| call | median µs | IQR | µs per stream |",
        "|---|---:|---|---:|",
    ]
    for name, (med, q1, q3) in res.items():
        lines.append(f"| {name} | {med:.1f} | {q1:.1f}–{q3:.1f} | {med / 100:.2f} |")
        print(f"{name}: {med:.1f} µs (IQR {q1:.1f}-{q3:.1f})", flush=True)
    b = res["bank.step(100 of 10 000 ids)"][0]
    c = res["one B=100 stream step (contiguous)"][0]
    s = res["100 separate batch-1 s.step"][0]
    # The arithmetic floor of a 100-row step: every row multiplies its x (16) and h (64) by
    # the four gates' weights; against one core's measured float32 GEMM rate (numpy/torch).
    from rnnkit.bench.timing import sgemm_peak

    flops = 100 * 2.0 * (16 + 64) * 4 * 64
    peak = sgemm_peak(1, n=1024)
    rate = flops / (b * 1e-6) / 1e9
    floor = flops / (peak["best"] * 1e9) * 1e6
    lines += [
        "",
        f"bank / contiguous = {b / c:.2f}; 100 separate steps / bank = {s / b:.1f}",
        "",
        f"A 100-row step is {flops / 1e6:.2f} MFLOP: the bank runs it at {rate:.0f} GFLOP/s; at "
        f"this core's float32 GEMM rate ({peak['best']:.0f} GFLOP/s, {peak['best_by']} n=1024) "
        f"it would take {floor:.1f} µs, so 100 separate steps / bank can be at most "
        f"{s / floor:.1f} here (20 would need {flops / (s / 20 * 1e-6) / 1e9:.0f} GFLOP/s).",
    ]
    print(lines[-3])
    print(lines[-1])
    out = (
        Path(args.out)
        if args.out
        else Path(__file__).parent / "results" / f"{slugify(cpu['model'])}-stream.md"
    )
    out.write_text("\n".join(lines) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
