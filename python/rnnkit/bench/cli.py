"""``python -m rnnkit.bench`` (``rnnkit-bench``): time your shape or model file against peers.

    rnnkit-bench --cell gru -B 16 -T 200 -I 64 -H 256 --layers 2 --threads 2
    rnnkit-bench --dtype bfloat16 -B 64 -H 512            # bfloat16 weights, against torch's
    rnnkit-bench model.onnx --batch 8 --time 50           # rnnkit vs ONNX Runtime
    rnnkit-bench model.keras --json results.json --plot results.png

A shape runs through rnnkit and every installed peer (PyTorch, ONNX Runtime, Keras) on the
same seeded weights (rnnkit.bench.cases); a model file through rnnkit and the peers that can
run it (rnnkit.bench.files). Every framework's outputs are checked before anything is timed;
a framework that disagrees is not timed and the command exits with status 1. The timing is
paired (rnnkit.bench.timing.paired): each round times one block of calls of every framework
in turn, and "vs rnnkit" is the median over rounds of peer time / rnnkit time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: Install hint per framework, for the message when it is absent.
INSTALL = {
    "torch": "pip install torch",
    "onnxruntime": "pip install 'rnnkit[bench]' (onnx, onnxruntime)",
    "keras": "pip install 'rnnkit[keras]' (tensorflow-cpu, keras)",
}
#: Default agreement tolerance per dtype (normwise: max |out - ref| / max |ref|).
TOLERANCE = {"float32": 1e-4, "bfloat16": 3e-2}
#: Shape options, with their defaults (a model file brings its own shape).
SHAPE_DEFAULTS = {"cell": "lstm", "input_size": 32, "hidden_size": 128, "layers": 1}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _threads(text: str) -> int:
    if text.strip().lower() in ("all", "max"):
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1
    return _positive_int(text)


def _dim(text: str) -> tuple[str, int]:
    name, sep, size = text.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=N or INPUT:AXIS=N, got {text!r}")
    return name, _positive_int(size)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m rnnkit.bench``."""
    p = argparse.ArgumentParser(
        prog="rnnkit-bench",
        description="Time an LSTM/GRU shape or a model file through rnnkit and every installed "
        "peer (PyTorch, ONNX Runtime, Keras): outputs checked first, then paired timing.",
        epilog="Peers are optional: pip install 'rnnkit[bench]' (ONNX Runtime, matplotlib), "
        "torch, 'rnnkit[keras]'. The suite of DESIGN.md's cases is bench/run.py in a "
        "source checkout (python -m rnnkit.bench.suite).",
    )
    p.add_argument(
        "model",
        nargs="?",
        type=Path,
        help="a model file to time instead of a shape: .onnx (rnnkit vs ONNX Runtime), "
        ".keras/.h5 (rnnkit vs Keras and ONNX Runtime), .rnnkit",
    )
    g = p.add_argument_group("shape (without a model file)")
    g.add_argument("--cell", choices=("lstm", "gru"), help="default lstm")
    g.add_argument("-I", "--input-size", type=_positive_int, help="I, default 32")
    g.add_argument("-H", "--hidden-size", type=_positive_int, help="H, default 128")
    g.add_argument("-L", "--layers", type=_positive_int, help="stacked layers, default 1")
    g.add_argument("--bidirectional", action="store_true", help="D = 2")
    g.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="weights: bfloat16 runs rnnkit's bfloat16 weights against torch .bfloat16() "
        "(inference only; ONNX Runtime and Keras are float32 only)",
    )
    s = p.add_argument_group("sizes (shape, and the dynamic sizes of a model file's inputs)")
    s.add_argument("-B", "--batch", type=_positive_int, default=1, help="B (default 1)")
    s.add_argument(
        "-T", "--time", "--steps", dest="steps", type=_positive_int, default=100, help="T"
    )
    s.add_argument(
        "--dim",
        type=_dim,
        action="append",
        default=[],
        metavar="NAME=N",
        help="size of a model input's dynamic dimension, by name (batch=8) or as INPUT:AXIS=N; "
        "repeatable",
    )
    r = p.add_argument_group("run")
    r.add_argument(
        "--frameworks",
        default="all",
        help="comma-separated: rnnkit, torch, onnxruntime, keras (default: all installed)",
    )
    r.add_argument("--threads", type=_threads, default=1, help="thread count or 'all' (default 1)")
    r.add_argument(
        "--modes",
        default="inference",
        help="inference and/or training (forward + backward through time; shapes only)",
    )
    r.add_argument(
        "--repeats",
        type=_positive_int,
        default=21,
        help="rounds; each times one block of calls of every framework in turn (default 21)",
    )
    r.add_argument(
        "--min-ms",
        type=_positive_float,
        default=30.0,
        help="each block of calls lasts at least this long (default 30)",
    )
    r.add_argument(
        "--tol",
        type=_positive_float,
        help="agreement tolerance, max |out - ref| / max |ref| (default 1e-4; bfloat16 3e-2)",
    )
    o = p.add_argument_group("output")
    o.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="write the results as JSON to PATH, or to stdout without PATH (the table then "
        "goes to stderr)",
    )
    o.add_argument("--plot", type=Path, metavar="PNG", help="bar chart (needs matplotlib)")
    return p


def _frameworks(spec: str, parser: argparse.ArgumentParser) -> list[str]:
    from .peers import PEERS, canonical

    if spec.strip().lower() == "all":
        return list(PEERS)
    out = []
    for name in spec.split(","):
        try:
            key = canonical(name.strip())
        except ValueError as exc:
            parser.error(f"--frameworks: {exc}")
        if key not in out:
            out.append(key)
    if "rnnkit" not in out:
        out.insert(0, "rnnkit")  # the base of every ratio
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse and validate; a bad combination exits with argparse's usage error (status 2)."""
    p = build_parser()
    args = p.parse_args(argv)
    given = [k for k in SHAPE_DEFAULTS if getattr(args, k) is not None]
    if args.bidirectional:
        given.append("bidirectional")
    if args.model is not None:
        bad = ["--" + k.replace("_", "-") for k in given]
        bad += ["--dtype"] if args.dtype != "float32" else []
        if bad:
            p.error(f"{', '.join(bad)}: a model file brings its own shape and dtype")
    else:
        for k, v in SHAPE_DEFAULTS.items():
            if getattr(args, k) is None:
                setattr(args, k, v)
        if args.dim:
            p.error("--dim sizes a model file's inputs; a shape takes -B/-T/-I/-H")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or not set(modes) <= {"inference", "training"}:
        p.error(f"--modes: expected inference and/or training, got {args.modes!r}")
    if "training" in modes and (args.model is not None or args.dtype != "float32"):
        p.error(
            "--modes training: shapes in float32 only (a model file or bfloat16 is timed "
            "in inference)"
        )
    args.modes = modes
    args.frameworks = _frameworks(args.frameworks, p)
    args.dims = dict(args.dim)
    if args.tol is None:
        args.tol = TOLERANCE[args.dtype]
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            p.error(
                "--plot needs matplotlib, which is not installed: "
                "pip install 'rnnkit[bench]' (or pip install matplotlib)"
            )
    return args


def _set_thread_env(threads: int) -> None:
    """Size every runtime's pool before it is imported (a runtime already loaded keeps its)."""
    from .worker import thread_env

    os.environ.update(thread_env(threads))
    # OpenMP workers otherwise spin after each of a peer's calls on the cores the next
    # framework's call needs (see bench/README.md, "Paired timing").
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class _Log:
    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def __call__(self, msg: str) -> None:
        print(msg, file=self.stream, flush=True)


def _contenders_shape(
    args: argparse.Namespace, available: list[str], log: _Log, skipped: dict[str, str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Check every peer on the shape; return the description and the contenders."""
    from .cases import Case, make_data, make_weights
    from .peers import load_peer
    from .reference import compute_reference
    from .worker import check_case

    name = f"{args.cell}_b{args.batch}_t{args.steps}_i{args.input_size}_h{args.hidden_size}"
    name += (f"_l{args.layers}" if args.layers > 1 else "") + ("_bi" if args.bidirectional else "")
    case = Case(
        name,
        args.cell,
        args.batch,
        args.steps,
        args.input_size,
        args.hidden_size,
        args.layers,
        args.bidirectional,
        dtype=args.dtype,
    )
    weights = make_weights(case)
    x, dy = make_data(case)
    source, ref = compute_reference(case, weights, x, dy)
    log(f"{case.describe()}; reference: {source}")
    training = "training" in args.modes
    contenders = []
    for key in available:
        cls = load_peer(key)
        if args.dtype not in cls.dtypes:
            skipped[key] = f"{args.dtype} is not supported ({', '.join(cls.dtypes)} only)"
            log(f"skipping {cls.label}: {skipped[key]}")
            continue
        peer = cls(args.threads)
        peer.build(case, weights)
        errs = check_case(peer, case, x, dy, ref, training)
        fns: dict[str, Callable[[], Any]] = {}
        for mode in args.modes:
            if mode == "inference":
                fns[mode] = peer.infer_fn(x, peer.variants(mode)[0])
            elif peer.supports_training:
                fns[mode] = peer.train_fn(x, dy)
        contenders.append(
            {"key": key, "label": cls.label, "check": errs, "fns": fns, "versions": cls.versions()}
        )
    what = {
        "kind": "shape",
        "case": {
            "cell": case.cell,
            "batch": case.batch,
            "steps": case.steps,
            "input_size": case.input_size,
            "hidden_size": case.hidden_size,
            "layers": case.num_layers,
            "bidirectional": case.bidirectional,
            "dtype": case.dtype,
        },
        "describe": case.describe(),
        "reference": source,
        "gflop": {m: case.flops(m == "training") / 1e9 for m in args.modes},
    }
    return what, contenders


def _contenders_file(
    args: argparse.Namespace, available: list[str], log: _Log, skipped: dict[str, str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Load the model file in every framework that runs it; check each against rnnkit."""
    from .files import model_runners
    from .reference import rel_err

    def skip(key: str, reason: str) -> None:
        skipped[key] = reason
        log(f"skipping {key}: {reason}")

    inputs, runners = model_runners(
        args.model, available, args.threads, args.batch, args.steps, args.dims, skip
    )
    shapes = ", ".join(f"{k} {v}" for k, v in inputs.items())
    log(f"{args.model}: inputs {shapes}")
    base = next(r for r in runners if r.key == "rnnkit").outputs()
    contenders = []
    for run in runners:
        got = run.outputs()
        if len(got) != len(base):
            errs = {"outputs": float("inf")}
        else:
            errs = {f"output {i}": rel_err(g, b) for i, (g, b) in enumerate(zip(got, base))}
        if run.key == "rnnkit":
            errs = {}
        contenders.append(
            {
                "key": run.key,
                "label": run.label,
                "check": errs,
                "fns": {"inference": run.fn},
                "versions": run.versions,
            }
        )
    what = {
        "kind": "model",
        "path": str(args.model),
        "inputs": {k: list(v) for k, v in inputs.items()},
        "describe": f"{args.model.name} (inputs {shapes})",
        "reference": "rnnkit's outputs",
        "gflop": {},
    }
    return what, contenders


def _loud(log: _Log, msg: str) -> None:
    bar = "!" * 78
    log(f"{bar}\n!!! {msg}\n{bar}")


def run(args: argparse.Namespace, log: _Log) -> tuple[dict[str, Any], int]:
    """Check, time, and collect the results; returns (results, exit status)."""
    import rnnkit

    from .peers import missing_modules
    from .timing import paired, ratio_stats

    rnnkit.set_num_threads(args.threads)
    skipped: dict[str, str] = {}
    available = []
    for key in args.frameworks:
        missing = missing_modules(key)
        if missing:
            skipped[key] = f"not installed ({', '.join(missing)}): {INSTALL.get(key, '')}"
            log(f"skipping {key}: {skipped[key]}")
        else:
            available.append(key)
    if args.model is not None:
        what, contenders = _contenders_file(args, available, log, skipped)
    else:
        what, contenders = _contenders_shape(args, available, log, skipped)
    status = 0
    timed = []
    for c in contenders:
        errs = c["check"]
        worst = max(errs.values()) if errs else 0.0
        c["max_rel_err"] = worst
        if c["key"] != "rnnkit" or args.model is None:
            detail = ", ".join(f"{k} {v:.2e}" for k, v in errs.items()) or "nothing compared"
            against = "rnnkit" if args.model is not None else "the reference"
            if not errs or not worst <= args.tol:
                c["status"] = "check failed"
                status = 1
                _loud(
                    log,
                    f"{c['label']} and {against} disagree: max rel err {worst:.3e} > tolerance "
                    f"{args.tol:g} ({detail}); {c['label']} is not timed",
                )
                continue
            log(f"check {c['label']}: max rel err {worst:.2e} against {against} ({detail})")
        c["status"] = "ok"
        timed.append(c)
    rows: list[dict[str, Any]] = []
    for mode in args.modes:
        fns = {c["key"]: c["fns"][mode] for c in timed if mode in c["fns"]}
        for c in timed:
            if mode not in c["fns"]:
                rows.append(
                    {
                        "framework": c["key"],
                        "label": c["label"],
                        "mode": mode,
                        "status": "not supported",
                    }
                )
        if not fns:
            continue
        log(f"timing {mode}: {', '.join(fns)}, {args.repeats} rounds, {args.threads} thread(s)")
        times = paired(fns, args.repeats, args.min_ms)
        base = times.get("rnnkit")
        for c in timed:
            if c["key"] not in times:
                continue
            t = times[c["key"]]
            q1, med, q3 = (float(v) for v in np.percentile(t, [25, 50, 75]))
            row: dict[str, Any] = {
                "framework": c["key"],
                "label": c["label"],
                "mode": mode,
                "status": "ok",
                "median_ms": med,
                "q1_ms": q1,
                "q3_ms": q3,
                "rounds": len(t),
                "round_ms": [float(v) for v in t],
            }
            gflop = what["gflop"].get(mode)
            row["gflops"] = gflop / (med * 1e-3) if gflop else None
            if base is not None:
                row["ratio"], row["ratio_q1"], row["ratio_q3"] = ratio_stats(t, base)
            rows.append(row)
    results = {
        "rnnkit": rnnkit.__version__,
        "what": what,
        "threads": args.threads,
        "modes": args.modes,
        "repeats": args.repeats,
        "min_ms": args.min_ms,
        "tol": args.tol,
        "frameworks": {
            c["key"]: {
                "label": c["label"],
                "status": c["status"],
                "max_rel_err": c["max_rel_err"],
                "check": c["check"],
                "versions": c["versions"],
            }
            for c in contenders
        },
        "skipped": skipped,
        "results": rows,
    }
    return results, status


def table(results: dict[str, Any]) -> list[str]:
    """Markdown lines: the run, then one row per framework and mode."""
    from .report import _fmt

    th = results["threads"]
    lines = [
        f"rnnkit-bench: {results['what']['describe']}, {th} thread{'s' if th > 1 else ''}, "
        f"{results['repeats']} paired rounds",
        "",
        "| framework | mode | median ms | IQR ms | GFLOP/s | vs rnnkit | IQR | max rel err |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    fw = results["frameworks"]
    for r in results["results"]:
        err = f"{fw[r['framework']]['max_rel_err']:.1e}"
        if results["what"]["kind"] == "model" and r["framework"] == "rnnkit":
            err = "base"
        if r["status"] != "ok":
            lines.append(f"| {r['label']} | {r['mode']} | {r['status']} | | | | | |")
            continue
        ratio, iqr = "—", ""
        if r.get("ratio") is not None:
            ratio = "1 (base)" if r["framework"] == "rnnkit" else f"{r['ratio']:.2f}"
            if r["framework"] != "rnnkit":
                iqr = f"{r['ratio_q1']:.2f}–{r['ratio_q3']:.2f}"
        lines.append(
            f"| {r['label']} | {r['mode']} | {_fmt(r['median_ms'], 4)} | "
            f"{_fmt(r['q3_ms'] - r['q1_ms'], 2)} | {_fmt(r.get('gflops'), 3)} | {ratio} | {iqr} "
            f"| {err} |"
        )
    for info in fw.values():
        if info["status"] != "ok":
            lines.append(
                f"| {info['label']} | * | **CHECK FAILED** (max rel err "
                f"{info['max_rel_err']:.2e}), not timed | | | | | |"
            )
    lines.append("")
    lines.append(
        "vs rnnkit: median over rounds of framework time / rnnkit time (above 1: rnnkit is "
        "faster); IQR: its interquartile range."
    )
    for key, reason in results["skipped"].items():
        lines.append(f"skipped {key}: {reason}")
    return lines


def plot(results: dict[str, Any], path: Path) -> None:
    """Bar chart: median ms per framework, one group per mode, ratios on the bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["results"] if r["status"] == "ok"]
    modes = [m for m in results["modes"] if any(r["mode"] == m for r in rows)]
    labels = list(dict.fromkeys(r["label"] for r in rows))
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(labels) * max(len(modes), 1), 4))
    width = 0.8 / max(len(labels), 1)
    for k, label in enumerate(labels):
        for i, mode in enumerate(modes):
            for r in rows:
                if r["label"] == label and r["mode"] == mode:
                    xpos = i + (k - (len(labels) - 1) / 2) * width
                    name = label if i == 0 else None
                    ax.bar(xpos, r["median_ms"], width, color=f"C{k}", label=name)
                    if r.get("ratio") is not None:
                        ax.annotate(
                            f"{r['ratio']:.2f}×",
                            (xpos, r["median_ms"]),
                            ha="center",
                            va="bottom",
                            fontsize=8,
                        )
    ax.set_xticks(range(len(modes)))
    ax.set_xticklabels(modes)
    ax.set_ylabel("median ms per call")
    ax.set_title(f"{results['what']['describe']}, {results['threads']} thread(s)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m rnnkit.bench`` and ``rnnkit-bench``.

    Returns
    -------
    int
        0; 1 when a framework's outputs disagree (it is not timed); argparse exits with 2 on
        a bad argument, and a model file that cannot be run exits with 2 and the reason.
    """
    args = parse_args(argv)
    to_stdout = args.json == "-"
    log = _Log(sys.stderr)
    _set_thread_env(args.threads)
    from .files import ModelFileError

    try:
        results, status = run(args, log)
    except ModelFileError as exc:
        print(f"rnnkit-bench: error: {exc}", file=sys.stderr)
        return 2
    out = sys.stderr if to_stdout else sys.stdout
    print("\n".join(table(results)), file=out, flush=True)
    if args.json is not None:
        text = json.dumps(results, indent=1, default=str)
        if to_stdout:
            print(text, flush=True)
        else:
            Path(args.json).write_text(text + "\n")
            print(f"results written to {args.json}", file=out)
    if args.plot is not None:
        plot(results, args.plot)
        print(f"chart written to {args.plot}", file=out)
    return status
