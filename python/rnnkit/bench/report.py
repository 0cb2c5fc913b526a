"""Markdown table and PNG chart from the collected benchmark results."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .cases import CASES, Case
from .machine import DISTURBED
from .peers import PEERS

MODES = ("inference", "training")


def display_name(rec: dict[str, Any], labels: dict[str, str]) -> str:
    """Framework label plus variant, e.g. ``Keras (predict)``."""
    name = labels.get(rec["framework"], rec["framework"])
    return f"{name} ({rec['variant']})" if rec.get("variant") else name


def _sort_key(rec: dict[str, Any]) -> tuple:
    order = list(CASES)
    return (
        order.index(rec["case"]) if rec["case"] in order else len(order),
        MODES.index(rec["mode"]) if rec["mode"] in MODES else len(MODES),
        rec["threads"],
        list(PEERS).index(rec["framework"]) if rec["framework"] in PEERS else len(PEERS),
        rec.get("variant_rank", 0),
    )


def is_disturbed(rec: dict[str, Any]) -> bool:
    """Whether other processes kept more than ``DISTURBED`` cores busy during ``rec``."""
    load = rec.get("other_load")
    return load is not None and load > DISTURBED


def annotate(
    records: list[dict[str, Any]], cases: dict[str, Case], peaks: dict[int, float]
) -> list[dict[str, Any]]:
    """Add GFLOP/s, % of SGEMM peak and the ratio to rnnkit to every timed record.

    Parameters
    ----------
    records : list of dict
        Worker records (``case``, ``mode``, ``threads``, ``framework``, ``status``,
        ``timing``...).
    cases : dict of str to Case
        The cases as run (streaming steps as run).
    peaks : dict of int to float
        Best SGEMM GFLOP/s per thread count.

    Returns
    -------
    list of dict
        The records, sorted, with ``gflops``, ``pct_peak`` and ``ratio`` where computable.
    """
    base = {
        (r["case"], r["mode"], r["threads"]): r
        for r in records
        if r["framework"] == "rnnkit" and not r.get("variant") and r.get("status") == "ok"
    }
    for r in records:
        if r.get("status") != "ok":
            continue
        case = cases[r["case"]]
        ms = r["timing"]["median_ms"]
        r["gflops"] = case.flops(r["mode"] == "training") / (ms * 1e-3) / 1e9
        peak = peaks.get(r["threads"])
        r["pct_peak"] = 100.0 * r["gflops"] / peak if peak else None
        ref = base.get((r["case"], r["mode"], r["threads"]))
        r["ratio"] = ms / ref["timing"]["median_ms"] if ref else None
        r["disturbed"] = is_disturbed(r) or (ref is not None and is_disturbed(ref))
    return sorted(records, key=_sort_key)


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    decimals = max(0, digits - 1 - mag)
    return f"{v:.{decimals}f}"


def results_table(records: list[dict[str, Any]], labels: dict[str, str]) -> list[str]:
    """Markdown lines of the main results table."""
    lines = [
        "| case | mode | threads | framework | median ms | IQR ms | GFLOP/s | % peak | vs rnnkit |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        name = display_name(r, labels)
        status = r.get("status")
        if status != "ok":
            text = {
                "n/a": "not supported",
                "check-failed": "**CHECK FAILED, not timed**",
                "error": f"**error**: {r.get('error', '')}",
            }.get(status, status)
            lines.append(
                f"| {r['case']} | {r['mode']} | {r['threads']} | {name} | {text} | | | | |"
            )
            continue
        t = r["timing"]
        ratio = r.get("ratio")
        if r["framework"] == "rnnkit" and not r.get("variant"):
            ratio_s = "1 (base)"
        else:
            ratio_s = _fmt(ratio, 3)
        unit = " /step" if r.get("per_step") else ""
        if is_disturbed(r):
            unit += " †"
        lines.append(
            f"| {r['case']} | {r['mode']} | {r['threads']} | {name} | "
            f"{_fmt(t['median_ms'], 4)}{unit} | {_fmt(t['q3_ms'] - t['q1_ms'], 2)} | "
            f"{_fmt(r['gflops'], 3)} | {_fmt(r.get('pct_peak'), 2)} | {ratio_s} |"
        )
    return lines


def check_table(records: list[dict[str, Any]], labels: dict[str, str], tol: float) -> list[str]:
    """Markdown lines: worst relative error per case, framework and thread count."""
    worst: dict[tuple, tuple[float, str]] = {}
    for r in records:
        errs = r.get("check") or {}
        key = (r["case"], r["framework"], r["threads"])
        if errs and key not in worst:
            k = max(errs, key=errs.get)
            worst[key] = (errs[k], k)
    lines = [
        f"| case | framework | threads | max rel err | worst array | ≤ {tol:g} |",
        "|---|---|---:|---:|---|---|",
    ]
    for (case, fw, threads), (err, what) in sorted(
        worst.items(),
        key=lambda kv: _sort_key(
            {"case": kv[0][0], "mode": "", "threads": kv[0][2], "framework": kv[0][1]}
        ),
    ):
        ok = "yes" if err <= tol else "**NO**"
        lines.append(f"| {case} | {labels.get(fw, fw)} | {threads} | {err:.2e} | {what} | {ok} |")
    return lines


def workers_table(workers: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: each worker process, its duration and the load others put on the CPU."""
    if not workers:
        return []
    lines = [
        "",
        "Other processes' CPU use while each worker ran (cores, from /proc/stat minus the "
        "benchmark's own CPU time); above 0.2 the timings of that worker are disturbed.",
        "",
        "| worker | threads | wall s | other load | load just before |",
        "|---|---:|---:|---:|---:|",
    ]
    for w in workers:
        load = w.get("other_load")
        flag = " **disturbed**" if load is not None and load > 0.2 else ""
        lines.append(
            f"| {w['job']} | {w['threads']} | {_fmt(w.get('seconds'), 3)} | "
            f"{_fmt(load, 2)}{flag} | {_fmt(w.get('load_before'), 2)} |"
        )
    return lines


def write_markdown(
    path: Path, meta: dict[str, Any], records: list[dict[str, Any]], cases: dict[str, Case]
) -> None:
    """Write the results page: machine, cases, results, correctness, notes."""
    labels = meta["labels"]
    lines = [f"# rnnkit benchmark: {meta['cpu_model']}", ""]
    if meta.get("quick"):
        lines += ["**Quick smoke run** (few repeats, short streams): not for quoting.", ""]
    lines += ["## Machine", ""]
    for key, val in meta["machine"].items():
        lines.append(f"- **{key}**: {val}")
    lines += ["", "## Frameworks", ""]
    for fw, info in meta["frameworks"].items():
        vers = ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items())
        lines.append(f"- **{labels.get(fw, fw)}**: {vers or info.get('status', '')}")
        for threads, cfg in sorted(info.get("config", {}).items()):
            if cfg:
                lines.append(f"  - {threads} thread(s): `{cfg}`")
    lines += [
        "",
        "## SGEMM peak (float32, measured in this run)",
        "",
        "| threads | numpy GFLOP/s | torch GFLOP/s | peak used | other load (cores) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for threads, peak in sorted(meta["peaks"].items()):
        lines.append(
            f"| {threads} | {_fmt(peak.get('numpy'), 3)} | "
            f"{_fmt(peak.get('torch'), 3)} | {_fmt(peak.get('best'), 3)} | "
            f"{_fmt(peak.get('other_load'), 2)} |"
        )
    lines += [
        "",
        f"Matrix size {meta['peak_n']}³, median of repeats, best library.",
        "",
        "## Cases",
        "",
        "| case | shape | GFLOP per call (inference) | GFLOP (training) |",
        "|---|---|---:|---:|",
    ]
    for name, case in cases.items():
        lines.append(
            f"| {name} | {case.describe()} | {_fmt(case.flops() / 1e9, 3)} | "
            f"{'—' if case.stream else _fmt(case.flops(True) / 1e9, 3)} |"
        )
    lines += ["", "## Results", ""]
    lines += results_table(records, labels)
    lines += [
        "",
        "- **median ms**: median over repeats of the per-call wall time (warmup first);"
        " the streaming case reports time per step (one Python call each).",
        "- **IQR ms**: interquartile range of the same repeats; with `--rounds` above 1, "
        "median ms is the median of the rounds' medians and this column is the range "
        "(highest − lowest) of those round medians.",
        f"- **†**: other processes kept more than {DISTURBED} cores busy during this "
        "measurement even after retries; treat it as disturbed.",
        "- **GFLOP/s**: Σ over layers and directions of 2·B·T·G·H·(in + H) per call "
        "(training 3×) divided by the median time.",
        "- **% peak**: GFLOP/s over the SGEMM peak measured above at the same thread count.",
        "- **vs rnnkit**: peer median / rnnkit median at the same case, mode and threads; "
        "above 1 means rnnkit is faster.",
        "- **rnnkit (bf16)**: rnnkit with bfloat16 weights (float32 activations); its "
        "ratio is to float32 rnnkit, below 1 means the bfloat16 weights are faster. "
        "Its error against float32 weights (about 2e-3 of the output scale) is "
        "tested in tests/test_bf16.py and not part of the check below.",
        "- inference = eval mode; training = forward + backward through time of "
        "sum(y·dy), producing dx and every weight gradient (no optimizer step).",
        "",
        "## Correctness check before timing",
        "",
        f"Reference: {meta['reference']}. Error = max|out − ref| / max|ref| over y, final "
        "states and (training) dx and weight gradients; a framework whose error exceeds "
        f"{meta['tol']:g} is not timed on that case.",
        "",
    ]
    lines += check_table(records, labels, meta["tol"])
    failures = [r for r in records if r.get("status") in ("check-failed", "error")]
    if failures:
        lines += ["", "## Failures", ""]
        for r in failures:
            lines.append(
                f"- {display_name(r, labels)} {r['case']} {r['mode']} "
                f"t={r['threads']}: {r['status']} {r.get('error', '')}"
            )
    lines += ["", "## Run", ""]
    for key, val in meta["run"].items():
        lines.append(f"- **{key}**: {val}")
    lines += workers_table(meta.get("workers", []))
    path.write_text("\n".join(lines) + "\n")


def write_chart(
    path: Path, records: list[dict[str, Any]], labels: dict[str, str], title: str
) -> str:
    """Grouped bars per case: peer / rnnkit ratio (or median ms when rnnkit is absent).

    One panel per (mode, thread count); log scale; bars above the line at 1 mean rnnkit
    was faster.

    Returns
    -------
    str
        A message saying what was written, or why nothing was.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart (pip install matplotlib)"
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok:
        return "no timed results: no chart"
    use_ratio = any(r.get("ratio") is not None and r["framework"] != "rnnkit" for r in ok)
    if use_ratio:
        ok = [r for r in ok if r["framework"] != "rnnkit" and r.get("ratio")]
    value = (lambda r: r["ratio"]) if use_ratio else (lambda r: r["timing"]["median_ms"])
    series: list[str] = []
    for r in sorted(ok, key=lambda r: _sort_key({**r, "case": "", "mode": "", "threads": 0})):
        if display_name(r, labels) not in series:
            series.append(display_name(r, labels))
    panels = sorted(
        {(r["mode"], r["threads"]) for r in ok}, key=lambda p: (MODES.index(p[0]), p[1])
    )
    modes = [m for m in MODES if any(p[0] == m for p in panels)]
    threads = sorted({p[1] for p in panels})
    fig, axes = plt.subplots(
        len(modes),
        len(threads),
        squeeze=False,
        figsize=(5.5 * len(threads) + 1, 4.4 * len(modes) + 0.8),
    )
    cmap = plt.get_cmap("tab10")
    for i, mode in enumerate(modes):
        for j, th in enumerate(threads):
            ax = axes[i][j]
            here = [r for r in ok if r["mode"] == mode and r["threads"] == th]
            if not here:
                ax.set_visible(False)
                continue
            case_names = [c for c in CASES if any(r["case"] == c for r in here)]
            names = [s for s in series if any(display_name(r, labels) == s for r in here)]
            width = 0.8 / len(names)
            for k, name in enumerate(names):
                for r in here:
                    if display_name(r, labels) != name:
                        continue
                    x = case_names.index(r["case"]) + (k - (len(names) - 1) / 2) * width
                    hatch = "///" if r.get("disturbed") else None
                    ax.bar(
                        x,
                        value(r),
                        width,
                        color=cmap(series.index(name) % 10),
                        hatch=hatch,
                        edgecolor="white" if hatch else None,
                        linewidth=0,
                    )
            ax.set_yscale("log")
            if use_ratio:
                ax.axhline(1.0, color="black", lw=1)
                ax.set_ylabel("peer ms / rnnkit ms  (>1: rnnkit faster)")
            else:
                ax.set_ylabel("median ms (streaming: per step)")
            ax.set_title(f"{mode}, {th} thread{'s' if th > 1 else ''}", fontsize=10)
            ax.set_xticks(range(len(case_names)))
            ax.set_xticklabels(case_names, rotation=30, ha="right", fontsize=7)
            ax.grid(axis="y", which="both", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(k % 10)) for k in range(len(series))]
    if any(r.get("disturbed") for r in ok):
        title += "  (hatched: peer or rnnkit run disturbed by other processes)"
    fig.suptitle(title, fontsize=11, y=0.995)
    fig.legend(
        handles,
        series,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.965),
        ncol=len(series),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"chart written to {path}"
