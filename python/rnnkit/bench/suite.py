"""The benchmark suite: rnnkit against PyTorch, ONNX Runtime and Keras on the same weights.

Usage (``bench/run.py`` in a source checkout drives this module, writing to bench/results;
``python -m rnnkit.bench.suite`` writes to ./bench-results)::

    python bench/run.py                      # everything: all cases, peers, {1, all} threads
    python bench/run.py --quick              # smoke run, under two minutes
    python bench/run.py --cases lstm_b1_t100_i32_h128 --frameworks rnnkit,torch --threads 1

For every case the reference outputs (PyTorch float32; numpy float64 without torch) are
computed once; then each (framework, thread count) runs in its own process, with every
thread-pool variable set before anything loads, checks its outputs against the reference
and times inference and training. The results go to ``<out-dir>/<cpu>.md`` (table),
``<cpu>.json`` (raw) and ``<cpu>.png`` (chart).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .cases import (
    CASES,
    QUICK_CASES,
    QUICK_STREAM_STEPS,
    Case,
    make_data,
    make_weights,
)
from .machine import (
    LoadMeter,
    cpu_info,
    machine_description,
    slugify,
    wait_quiet,
)
from .peers import PEERS, canonical, dist_version, missing_modules
from .report import (
    annotate,
    check_table,
    results_table,
    write_chart,
    write_markdown,
)
from .worker import thread_env

LABELS = {"rnnkit": "rnnkit", "torch": "PyTorch", "onnxruntime": "ONNX Runtime", "keras": "Keras"}
DISTS = {
    "rnnkit": ("rnnkit",),
    "torch": ("torch",),
    "onnxruntime": ("onnxruntime", "onnx"),
    "keras": ("keras", "tensorflow-cpu", "tensorflow"),
}


def rnnkit_importable() -> tuple[bool, str]:
    """Whether ``import rnnkit; rnnkit.LSTM`` works (tried in a child process)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import rnnkit; rnnkit.LSTM; rnnkit.GRU"],
        capture_output=True,
        text=True,
    )
    return proc.returncode == 0, (proc.stderr.strip().splitlines() or [""])[-1]


def parse_threads(spec: str, logical: int) -> list[int]:
    """``"1,all"`` -> ``[1, logical]`` (deduplicated, sorted)."""
    out = set()
    for part in spec.split(","):
        part = part.strip().lower()
        out.add(logical if part in ("all", "max") else int(part))
    return sorted(t for t in out if t >= 1)


def run_worker(
    args: list[str], threads: int, out: Path, log_prefix: str, wait_s: float, deadline: float
) -> dict[str, Any]:
    """Run ``rnnkit.bench.worker`` in a child process with the thread environment set.

    Waits up to ``wait_s`` seconds (never past ``deadline``, epoch seconds) for the machine
    to go quiet first, and records in the
    result how many cores other processes used while the worker ran (``other_load``).
    """
    wait_s = min(wait_s, deadline - time.time())
    quiet = wait_quiet(wait_s) if wait_s > 0 else None
    env = {**os.environ, **thread_env(threads)}
    cmd = [
        sys.executable,
        "-m",
        "rnnkit.bench.worker",
        "--threads",
        str(threads),
        "--out",
        str(out),
        *args,
    ]
    t0 = time.perf_counter()
    meter = LoadMeter()
    meter.start()
    proc = subprocess.run(cmd, env=env)
    load = meter.stop()
    if proc.returncode != 0 or not out.exists():
        print(
            f"!!! {log_prefix}: worker exited with {proc.returncode} "
            f"after {time.perf_counter() - t0:.0f}s: {shlex.join(cmd)}",
            file=sys.stderr,
        )
        return {}
    result = json.loads(out.read_text())
    result["other_load"] = load
    result["wall"] = time.perf_counter() - t0
    result["load_before"] = quiet
    if load is not None and load > 0.2:
        print(
            f"!!! {log_prefix}: other processes used {load:.2f} cores on average while it "
            "ran; see the per-measurement loads",
            file=sys.stderr,
        )
    return result


def write_references(cases: dict[str, Case], ref_dir: Path) -> str:
    """Compute and save the reference outputs of every case; return their source."""
    from .reference import compute_reference

    source = ""
    for name, case in cases.items():
        t0 = time.perf_counter()
        x, dy = make_data(case)
        source, ref = compute_reference(case, make_weights(case), x, dy)
        np.savez(ref_dir / f"{name}.npz", **ref)
        print(f"reference {name}: {source} ({time.perf_counter() - t0:.1f}s)", flush=True)
    return source


def parse_args(
    argv: list[str] | None, out_dir: Path = Path("bench-results"), prog: str | None = None
) -> argparse.Namespace:
    """Command-line options (``out_dir``: the default of ``--out-dir``)."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Benchmark rnnkit against PyTorch, ONNX Runtime and Keras.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--cases",
        default=None,
        help=f"comma-separated case names or 'all' (known: {', '.join(CASES)}); "
        "default all, or a small set with --quick",
    )
    p.add_argument(
        "--frameworks",
        default=",".join(PEERS),
        help="comma-separated: rnnkit, torch, onnxruntime, keras",
    )
    p.add_argument("--threads", default="1,all", help="thread counts; 'all' = every core")
    p.add_argument("--modes", default="inference,training", help="inference and/or training")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run (< 2 min): 4 cases, 3 repeats, 200 stream steps, 1024³ SGEMM, "
        "no Keras predict; written to <cpu>-quick.*",
    )
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (default 15, quick 3)")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every worker this many times, in rotated order, and report the median of "
        "the rounds' medians (use 3 on a shared machine)",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="time budget per measurement (default 20, quick 1)",
    )
    p.add_argument(
        "--stream-steps",
        type=int,
        default=None,
        help=f"steps per streaming block (default 1000, quick {QUICK_STREAM_STEPS})",
    )
    p.add_argument(
        "--tol",
        type=float,
        default=1e-4,
        help="max relative error against the reference before a case is aborted",
    )
    p.add_argument(
        "--check-only",
        action="store_true",
        help="only check every framework against the reference; time nothing, write nothing",
    )
    p.add_argument(
        "--isas",
        action="store_true",
        help="also time rnnkit inference under every other instruction set the CPU has",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        help="re-measure a measurement during which other processes used > 0.2 cores "
        "(not in --quick)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=None,
        help="before each worker and each retry, wait up to this many seconds for other "
        "processes to use < 0.2 cores (default 300, quick 0)",
    )
    p.add_argument(
        "--wait-budget",
        type=float,
        default=None,
        help="total seconds the run may spend waiting for quiet and retrying; after that "
        "disturbed measurements are kept and marked (default 1800, quick 0)",
    )
    p.add_argument("--out-dir", type=Path, default=out_dir)
    p.add_argument(
        "--name",
        default=None,
        help="output file stem (default: CPU model slug, '-quick' appended in quick)",
    )
    return p.parse_args(argv)


def select_cases(args: argparse.Namespace, stream_steps: int) -> dict[str, Case]:
    """The cases to run, streaming cases shortened to ``stream_steps``.

    Raises
    ------
    SystemExit
        For an unknown case name.
    """
    if args.cases in (None, "all"):
        names = list(QUICK_CASES) if args.quick and args.cases is None else list(CASES)
    else:
        names = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; known: {list(CASES)}")
    return {n: CASES[n].with_steps(stream_steps) if CASES[n].stream else CASES[n] for n in names}


def select_frameworks(spec: str) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Installed frameworks among ``spec``, and a per-framework info dict for the report."""
    info: dict[str, dict[str, Any]] = {}
    frameworks = []
    for name in spec.split(","):
        key = canonical(name.strip())
        missing = missing_modules(key)
        if key == "rnnkit" and not missing:
            ok, err = rnnkit_importable()
            missing = [] if ok else [f"import failed: {err}"]
        if missing:
            print(f"skipping {LABELS[key]}: not available ({', '.join(missing)})")
            info[key] = {"status": f"skipped: not available ({', '.join(missing)})"}
        elif key not in frameworks:
            frameworks.append(key)
            info[key] = {"versions": {}, "config": {}}
    return frameworks, info


def merge_rounds(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per measurement from the records of every round.

    A timed measurement keeps the median of its rounds' medians as its median, the lowest
    and highest round medians as its quartile columns (the spread between rounds), the list
    of round medians, and the most other load seen in any round. Untimed records (checks,
    "not supported") come from the first round; errors from any round are kept.
    """
    rounds = {r.get("round", 0) for r in records}
    if len(rounds) <= 1:
        return [{k: v for k, v in r.items() if k != "round"} for r in records]
    timed: dict[tuple, list[dict[str, Any]]] = {}
    out: list[dict[str, Any]] = []
    for r in records:
        key = (r["case"], r["mode"], r["threads"], r["framework"], r.get("variant", ""))
        if r.get("status") == "ok":
            timed.setdefault(key, []).append(r)
        elif r.get("round", 0) == min(rounds) or r.get("status") == "error":
            out.append({k: v for k, v in r.items() if k != "round"})
    for group in timed.values():
        medians = [g["timing"]["median_ms"] for g in group]
        merged = {k: v for k, v in group[0].items() if k != "round"}
        merged["timing"] = dict(group[0]["timing"])
        merged["timing"].update(
            median_ms=statistics.median(medians),
            q1_ms=min(medians),
            q3_ms=max(medians),
            min_ms=min(g["timing"]["min_ms"] for g in group),
            round_medians_ms=medians,
        )
        loads = [g.get("other_load") for g in group if g.get("other_load") is not None]
        merged["other_load"] = max(loads) if loads else None
        out.append(merged)
    return out


def main(
    argv: list[str] | None = None,
    out_dir: Path = Path("bench-results"),
    prog: str = "python -m rnnkit.bench.suite",
) -> int:
    """Run the benchmark suite and write the report.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).
    out_dir : Path
        Default of ``--out-dir`` (``bench/run.py`` passes the checkout's bench/results).
    prog : str
        How the command is shown in the report and ``--help``.

    Returns
    -------
    int
        0, or 1 when a measurement failed its check or errored.
    """
    args = parse_args(argv, out_dir, prog)
    started = time.perf_counter()
    cpu = cpu_info()
    quick = args.quick
    repeats = args.repeats or (3 if quick else 15)
    max_seconds = args.max_seconds or (1.0 if quick else 20.0)
    repeat_target = 0.01 if quick else 0.05
    stream_steps = args.stream_steps or (QUICK_STREAM_STEPS if quick else 1000)
    peak_n = 1024 if quick else 2048
    wait_s = args.wait_quiet if args.wait_quiet is not None else (0.0 if quick else 300.0)
    budget = args.wait_budget if args.wait_budget is not None else (0.0 if quick else 1800.0)
    deadline = time.time() + budget
    cases = select_cases(args, stream_steps)
    modes = [m.strip() for m in args.modes.split(",")]
    if not set(modes) <= {"inference", "training"}:
        raise SystemExit(f"--modes: expected inference and/or training, got {modes}")
    threads = parse_threads(args.threads, cpu["logical"])
    frameworks, frameworks_info = select_frameworks(args.frameworks)
    print(
        f"cases: {', '.join(cases)}\nframeworks: {', '.join(frameworks) or 'none'}\n"
        f"threads: {threads}\nmodes: {', '.join(modes)}",
        flush=True,
    )

    records: list[dict[str, Any]] = []
    peaks: dict[int, dict[str, Any]] = {}
    workers: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rnnkit-bench-") as tmp:
        tmpdir = Path(tmp)
        ref_source = write_references(cases, tmpdir)
        retry_args = ["--retries", str(0 if quick else args.retries), "--wait-quiet", str(wait_s)]
        retry_args += ["--wait-until", str(deadline)]
        jobs: list[tuple] = []  # (framework or "sgemm", threads, worker args[, round])
        if not args.check_only:
            peak_args = ["--peak", "--peak-n", str(peak_n), *retry_args]
            jobs += [("sgemm", th, peak_args) for th in threads]
        common = ["--cases", ",".join(cases), "--modes", ",".join(modes), "--ref-dir", tmp]
        common += ["--repeats", str(repeats), "--repeat-target", str(repeat_target)]
        common += ["--max-seconds", str(max_seconds), "--stream-steps", str(stream_steps)]
        common += ["--tol", str(args.tol)] + (["--check-only"] if args.check_only else [])
        common += retry_args
        if quick:  # Keras predict retraces per shape and dominates a smoke run's time
            common += ["--skip-variants", "predict"]
        if args.isas:
            common += ["--isas"]
        # Each round runs every (framework, threads) worker once, in a rotated order, so that
        # a slow spell of a shared machine does not land on one framework in every round.
        for rnd in range(args.rounds):
            order = frameworks[rnd % len(frameworks) :] + frameworks[: rnd % len(frameworks)]
            ths = threads if rnd % 2 == 0 else threads[::-1]
            jobs += [(key, th, ["--framework", key, *common], rnd) for th in ths for key in order]
        for key, th, job_args, *rest in jobs:
            rnd = rest[0] if rest else 0
            label = "SGEMM peak" if key == "sgemm" else LABELS[key]
            print(
                f"--- {label}, {th} thread(s)"
                + (f", round {rnd + 1}/{args.rounds}" if key != "sgemm" and args.rounds > 1 else "")
                + " ---",
                flush=True,
            )
            out = tmpdir / f"{key}{th}r{rnd}.json"
            res = run_worker(job_args, th, out, f"{label} t={th}", wait_s, deadline)
            workers.append(
                {
                    "job": label,
                    "threads": th,
                    "seconds": res.get("wall"),
                    "other_load": res.get("other_load"),
                    "load_before": res.get("load_before"),
                }
            )
            if key == "sgemm":
                peaks[th] = res.get("peak", {})
            elif not res:
                records.append(
                    {"case": "*", "mode": "*", "threads": th, "framework": key, "variant": ""}
                    | {"status": "error", "error": "worker process failed (see log)"}
                )
            else:
                frameworks_info[key]["versions"] = res.get("versions", {})
                frameworks_info[key]["config"][th] = res.get("config", "")
                records += [r | {"round": rnd} for r in res["records"]]
    records = merge_rounds(records)

    if args.check_only:
        print("\n" + "\n".join(check_table(records, LABELS, args.tol)))
        bad = [r for r in records if r.get("status") not in ("checked", "n/a")]
        print(f"\n{len(bad)} failure(s)" if bad else "\nall checks passed")
        return 1 if bad else 0
    best_peaks = {th: p["best"] for th, p in peaks.items() if p.get("best")}
    timed = annotate([r for r in records if r["case"] in cases], cases, best_peaks)
    records = timed + [r for r in records if r["case"] not in cases]
    for key, info in frameworks_info.items():
        if not info.get("versions") and "status" not in info:
            info["versions"] = {d: v for d in DISTS[key] if (v := dist_version(d))}
    elapsed = time.perf_counter() - started
    stem = args.name or (slugify(cpu["model"]) + ("-quick" if quick else ""))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    command = sys.argv[1:] if argv is None else argv
    meta = {
        "cpu_model": cpu["model"],
        "quick": quick,
        "machine": machine_description(cpu),
        "frameworks": frameworks_info,
        "labels": LABELS,
        "peaks": peaks,
        "peak_n": peak_n,
        "reference": ref_source,
        "tol": args.tol,
        "workers": workers,
        "run": {
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": f"{prog} " + shlex.join(command),
            "repeats": f"{repeats} (budget {max_seconds:g} s per measurement, each repeat "
            f"≥ {repeat_target * 1e3:g} ms of calls)",
            "rounds": f"{args.rounds}"
            + (
                " (every worker run once per round in rotated order; median ms is the median "
                "of the rounds' medians, and the IQR column is the range of those medians)"
                if args.rounds > 1
                else ""
            ),
            "streaming steps per block": stream_steps,
            "disturbance handling": f"re-measure up to {0 if quick else args.retries}× when "
            f"other processes use > 0.2 cores, waiting ≤ {wait_s:g} s for quiet each time, "
            f"≤ {budget:g} s of waiting in total",
            "wall time": f"{elapsed:.0f} s",
            "process model": "one process per (framework, threads); OMP/MKL/OpenBLAS/TF/"
            "RNNKIT thread variables set before anything is imported",
        },
    }
    md_path = args.out_dir / f"{stem}.md"
    write_markdown(md_path, meta, records, cases)
    (args.out_dir / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "records": records}, indent=1, default=str)
    )
    title = f"rnnkit benchmark, {cpu['model']}{' (quick)' if quick else ''}"
    chart_msg = write_chart(args.out_dir / f"{stem}.png", timed, LABELS, title)
    print("\n" + "\n".join(results_table(timed, LABELS)))
    print(f"\nreport written to {md_path}\n{chart_msg}\ntotal {elapsed:.0f} s")
    failed = [r for r in records if r.get("status") in ("check-failed", "error")]
    if failed:
        print(
            f"!!! {len(failed)} measurement(s) failed or were aborted; see the report",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
