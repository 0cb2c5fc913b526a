"""What machine this is, and how busy other processes keep it.

The benchmark runs on shared 2-core machines, so besides describing the CPU it measures
how many cores *other* processes used while each worker ran (from ``/proc/stat`` minus
the worker's own CPU time) and can wait for the machine to go quiet before a worker starts.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

#: Other processes keeping more cores than this busy make a measurement "disturbed".
DISTURBED = 0.2


def cpu_info() -> dict[str, Any]:
    """CPU model, logical and physical core counts, and SIMD flags from /proc/cpuinfo."""
    model, flags, cores = platform.processor() or platform.machine(), set(), set()
    phys = "0"
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, val = (s.strip() for s in line.partition(":"))
        if key == "model name":
            model = val
        elif key == "flags" and not flags:
            flags = set(val.split())
        elif key == "physical id":
            phys = val
        elif key == "core id":
            cores.add((phys, val))
    if hasattr(os, "sched_getaffinity"):
        logical = len(os.sched_getaffinity(0))
    else:
        logical = os.cpu_count() or 1
    simd = [f for f in ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return {
        "model": model,
        "logical": logical,
        "physical": min(len(cores), logical) or logical,
        "simd": simd,
    }


def slugify(text: str) -> str:
    """``AMD EPYC 7B13 64-Core Processor`` -> ``amd-epyc-7b13-64-core-processor``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown-cpu"


def machine_description(cpu: dict[str, Any]) -> dict[str, str]:
    """Human-readable facts about this machine for the report."""
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    blas = ""
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f" ({info.get('name')} {info.get('version')})"
    except Exception:  # older numpy has no dict mode
        pass
    return {
        "CPU": cpu["model"],
        "cores": f"{cpu['logical']} logical, {cpu['physical']} physical",
        "SIMD": ", ".join(cpu["simd"]) or "none detected",
        "memory": mem,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "numpy": np.__version__ + blas,
    }


def _busy_seconds() -> float | None:
    """CPU-seconds all processes have been busy since boot (None off Linux)."""
    try:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = vals[3] + vals[4]  # idle + iowait
    return (sum(vals) - idle) / _HZ


def _children_cpu() -> float:
    try:
        import resource  # Unix only; elsewhere /proc/stat is missing too and loads are None
    except ImportError:
        return 0.0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class LoadMeter:
    """Cores kept busy by processes other than this one and its finished children.

    Use ``start()`` before a child process runs and ``stop()`` after it is reaped.
    """

    def __init__(self) -> None:
        self._t0 = self._busy0 = self._child0 = 0.0
        self._self0 = 0.0

    def start(self) -> None:
        """Mark the beginning of the interval."""
        self._t0 = time.perf_counter()
        self._busy0 = _busy_seconds() or 0.0
        self._child0 = _children_cpu()
        self._self0 = time.process_time()

    def stop(self) -> float | None:
        """Average number of cores other processes used during the interval."""
        busy = _busy_seconds()
        if busy is None:
            return None
        wall = max(time.perf_counter() - self._t0, 1e-6)
        own = (_children_cpu() - self._child0) + (time.process_time() - self._self0)
        return max(0.0, (busy - self._busy0 - own) / wall)


def other_load(sample_s: float = 1.0) -> float | None:
    """Cores busy over ``sample_s`` seconds while this process sleeps."""
    meter = LoadMeter()
    meter.start()
    time.sleep(sample_s)
    return meter.stop()


def wait_quiet(max_wait_s: float, threshold: float = DISTURBED) -> float | None:
    """Wait until other processes use fewer than ``threshold`` cores, for at most ``max_wait_s``.

    Returns
    -------
    float or None
        The last measured load (None off Linux).
    """
    deadline = time.perf_counter() + max_wait_s
    load = other_load(1.0)
    announced = False
    while load is not None and load > threshold and time.perf_counter() < deadline:
        if not announced:
            print(
                f"waiting up to {max_wait_s:.0f}s for the machine to go quiet "
                f"(other processes use {load:.2f} cores)",
                file=sys.stderr,
                flush=True,
            )
            announced = True
        load = other_load(2.0)
    return load
