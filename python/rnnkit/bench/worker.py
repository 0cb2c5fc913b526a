"""One benchmark process: one framework at one thread count, or the SGEMM peak.

``rnnkit.bench.suite`` (driven by ``bench/run.py``) starts this module once per (framework,
threads) with the thread variables (OMP, MKL, OpenBLAS, TensorFlow, rnnkit) already in its
environment, because several runtimes fix their thread pools when they load. The worker checks
every case against the reference written by the suite before timing it and writes its results as
JSON. It is not meant to be run by hand, but can be::

    OMP_NUM_THREADS=1 python -m rnnkit.bench.worker --framework torch --threads 1 \\
        --cases lstm_b1_t100_i32_h128 --ref-dir /tmp/ref --out /tmp/torch1.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .cases import CASES, Case, make_data, make_weights
from .machine import DISTURBED, LoadMeter, wait_quiet
from .peers import Peer, load_peer
from .reference import rel_err
from .timing import Timing, measure, sgemm_peak

#: Variables that size thread pools; ``run.py`` sets all of them for each worker.
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "RNNKIT_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def thread_env(threads: int) -> dict[str, str]:
    """Environment entries that pin every runtime's pool to ``threads``."""
    env = {k: str(threads) for k in THREAD_ENV}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["KERAS_BACKEND"] = "tensorflow"
    return env


def log(msg: str) -> None:
    """Progress line on stderr."""
    print(msg, file=sys.stderr, flush=True)


def loud(msg: str) -> None:
    """A message nobody should miss."""
    bar = "!" * 78
    log(f"\n{bar}\n!!! {msg}\n{bar}\n")


def check_case(
    peer: Peer,
    case: Case,
    x: np.ndarray,
    dy: np.ndarray,
    ref: dict[str, np.ndarray],
    training: bool,
) -> dict[str, float]:
    """Relative errors of the peer's outputs (and gradients) against the reference.

    Returns
    -------
    dict of str to float
        One entry per compared array, e.g. ``{"y": 3e-7, "h_n": 2e-7, "train.dx": 5e-7}``.
    """
    errs: dict[str, float] = {}
    if case.stream:
        ys = peer.stream_fn(x)()
        errs["y"] = rel_err(np.concatenate([np.asarray(y) for y in ys], axis=0), ref["y"])
        return errs
    got = peer.forward(x)
    for key, val in got.items():
        if key in ref:
            errs[key] = rel_err(val, ref[key])
    if training and peer.supports_training and "dx" in ref:
        got = peer.gradients(x, dy)
        for key, val in got.items():
            if key in ref:
                errs["train." + key] = rel_err(val, ref[key])
    return errs


def _load_text(load: float | None) -> str:
    return "n/a" if load is None else f"{load:.2f}"


def measure_quietly(fn: Callable[[], Any], args: argparse.Namespace) -> tuple[Timing, float | None]:
    """:func:`measure` while watching other processes' CPU use; retry when disturbed.

    A measurement during which other processes kept more than ``DISTURBED`` cores busy is
    repeated (after waiting up to ``args.wait_quiet`` seconds for the machine to go
    quiet), at most ``args.retries`` times and only until ``args.wait_until`` (epoch
    seconds); the least disturbed attempt is returned.

    Returns
    -------
    timing : Timing
        The kept measurement.
    other_load : float or None
        Cores other processes used on average during it (None off Linux).
    """
    best: tuple[Timing, float | None] | None = None
    for attempt in range(args.retries + 1):
        if attempt:
            wait = min(args.wait_quiet, args.wait_until - time.time())
            if wait <= 0:
                log("    disturbed, and the run's waiting budget is spent: keeping it")
                break
            log(f"    disturbed (other load {_load_text(best[1])}); measuring again")
            wait_quiet(wait, DISTURBED)
        meter = LoadMeter()
        meter.start()
        timing = measure(fn, args.repeats, args.repeat_target, args.max_seconds)
        other = meter.stop()
        if best is None or (other is not None and best[1] is not None and other < best[1]):
            best = (timing, other)
        if other is None or other <= DISTURBED:
            break
    return best


def run_case(
    peer: Peer, case: Case, modes: list[str], ref: dict[str, np.ndarray], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Check, then time, one case in every requested mode."""
    base = {"case": case.name, "threads": args.threads, "framework": peer.key}
    case_modes = ["inference"] if case.stream else modes
    weights = make_weights(case)
    x, dy = make_data(case)
    peer.build(case, weights)
    errs = check_case(peer, case, x, dy, ref, "training" in case_modes)
    worst = max(errs.values()) if errs else float("nan")
    detail = ", ".join(f"{k}={v:.2e}" for k, v in errs.items())
    log(
        f"[{peer.key} t={args.threads}] {case.name}: check vs reference max rel err "
        f"{worst:.2e} ({detail})"
    )
    records: list[dict[str, Any]] = []
    if not errs or not worst <= args.tol:
        loud(
            f"{peer.label} FAILED the correctness check on {case.name} at "
            f"{args.threads} thread(s): max rel err {worst:.3e} > {args.tol:g} "
            f"({detail or 'nothing compared'}). Case aborted for {peer.label}; not timed."
        )
        for mode in case_modes:
            records.append(
                {**base, "mode": mode, "variant": "", "status": "check-failed", "check": errs}
            )
        return records
    if args.check_only:
        return [
            {**base, "mode": m, "variant": "", "status": "checked", "check": errs}
            for m in case_modes
        ]
    for mode in case_modes:
        if mode == "training" and not peer.supports_training:
            records.append({**base, "mode": mode, "variant": "", "status": "n/a", "check": errs})
            continue
        variants = peer.variants("stream" if case.stream else mode)
        for rank, variant in enumerate(variants):
            if variant and variant in args.skip_variants.split(","):
                continue
            rec: dict[str, Any] = {**base, "mode": mode, "variant": variant, "check": errs}
            rec["variant_rank"] = rank
            try:
                if case.stream:
                    fn = peer.stream_fn(x)
                elif mode == "inference":
                    fn = peer.infer_fn(x, variant)
                else:
                    fn = peer.train_fn(x, dy)
                timing, other = measure_quietly(fn, args)
                if case.stream:
                    timing = timing.scaled(1.0 / case.steps)
                rec.update(status="ok", timing=timing.to_dict(), per_step=case.stream)
                rec["other_load"] = other
                log(
                    f"[{peer.key} t={args.threads}] {case.name} {mode}"
                    f"{' ' + variant if variant else ''}: median {timing.median_ms:.4g} ms"
                    f"{' per step' if case.stream else ''} (IQR {timing.iqr_ms:.2g}, "
                    f"{timing.repeats}x{timing.inner}, other load {_load_text(other)})"
                )
            except Exception as exc:  # one broken variant must not stop the run
                loud(
                    f"{peer.label} {variant} {mode} on {case.name} raised "
                    f"{type(exc).__name__}: {exc}"
                )
                traceback.print_exc()
                rec.update(status="error", error=f"{type(exc).__name__}: {exc}")
            records.append(rec)
    return records


def run_framework(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark one framework at one thread count over the requested cases."""
    peer_cls = load_peer(args.framework)
    peer = peer_cls(args.threads)
    if args.isas and hasattr(peer, "time_isas"):
        peer.time_isas = True
    out: dict[str, Any] = {
        "framework": peer.key,
        "label": peer.label,
        "threads": args.threads,
        "versions": peer.versions(),
        "config": peer.config(),
        "records": [],
    }
    log(f"[{peer.key} t={args.threads}] {out['versions']} {out['config']}")
    ref_dir = Path(args.ref_dir)
    for name in args.cases.split(","):
        case = CASES[name]
        if case.stream:
            case = case.with_steps(args.stream_steps)
        with np.load(ref_dir / f"{case.name}.npz") as data:
            ref = {k: data[k] for k in data.files}
        try:
            out["records"] += run_case(peer, case, args.modes.split(","), ref, args)
        except Exception as exc:
            loud(f"{peer.label} failed on {case.name}: {type(exc).__name__}: {exc}")
            traceback.print_exc()
            out["records"].append(
                {
                    "case": case.name,
                    "threads": args.threads,
                    "framework": peer.key,
                    "mode": "*",
                    "variant": "",
                    "status": "error",
                    "error": f"{type(exc).__name__}: {exc}",
                }
            )
        gc.collect()
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse arguments, run, write JSON to ``--out``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", help="peer key; omit with --peak")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--cases", default="")
    p.add_argument("--modes", default="inference,training")
    p.add_argument("--ref-dir", default="")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument(
        "--repeat-target", type=float, default=0.05, help="minimum seconds per timed repeat"
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=30.0,
        help="time budget for the repeats of one measurement",
    )
    p.add_argument("--stream-steps", type=int, default=1000)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--retries", type=int, default=0, help="re-measure when disturbed")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="seconds to wait for a quiet machine before a retry",
    )
    p.add_argument(
        "--wait-until",
        type=float,
        default=0.0,
        help="epoch seconds after which no more waiting or retrying is done",
    )
    p.add_argument("--skip-variants", default="", help="comma-separated variants not to time")
    p.add_argument("--isas", action="store_true", help="rnnkit: also time the other ISAs")
    p.add_argument("--check-only", action="store_true", help="check outputs, time nothing")
    p.add_argument("--peak", action="store_true", help="measure SGEMM peak only")
    p.add_argument("--peak-n", type=int, default=2048)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    for key in THREAD_ENV:
        if os.environ.get(key) != str(args.threads):
            log(f"warning: {key}={os.environ.get(key)} but --threads={args.threads}")
    t0 = time.perf_counter()
    if args.peak:
        peak, other = None, None
        for attempt in range(args.retries + 1):
            if attempt:
                wait = min(args.wait_quiet, args.wait_until - time.time())
                if wait <= 0:
                    break
                log(f"    disturbed (other load {_load_text(other)}); measuring again")
                wait_quiet(wait, DISTURBED)
            meter = LoadMeter()
            meter.start()
            got = sgemm_peak(args.threads, args.peak_n)
            load = meter.stop()
            if peak is None or got["best"] > peak["best"]:
                peak, other = got, load
            if load is None or load <= DISTURBED:
                break
        result: dict[str, Any] = {"peak": {**peak, "other_load": other}, "threads": args.threads}
        log(f"[sgemm t={args.threads}] {result['peak']}")
    else:
        result = run_framework(args)
    result["seconds"] = time.perf_counter() - t0
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
