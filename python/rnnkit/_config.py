"""Threads, instruction-set dispatch and build information."""

from __future__ import annotations

import os
import platform

from . import _core

#: The most threads ``set_num_threads`` accepts (the core's pool limit).
MAX_THREADS = 1024


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (the caller included) in the core, 1 <= n <= ``MAX_THREADS`` (1024).

    Results do not depend on ``n``. Raises ``RuntimeError`` if the system cannot start that
    many threads; the pool then keeps the threads it had.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"[set_num_threads] n must be an int; got {n!r}")
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"[set_num_threads] n must be in 1..{MAX_THREADS}; got {n}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """Threads the core uses; default the machine's physical cores or ``RNNKIT_NUM_THREADS``."""
    return _core.get_num_threads()


def get_isa() -> str:
    """The kernel build in use: 'baseline', 'avx2', 'avx512', 'avx512bf16' or 'amx'."""
    return _core.isa()


def set_isa(name: str) -> None:
    """Force a kernel build (as ``RNNKIT_ISA`` does at import); raises if the CPU lacks it."""
    _core.set_isa(name)


def available_isas() -> list[str]:
    """Kernel builds that this binary contains and this CPU can run."""
    return list(_core.available_isas())


def config() -> dict[str, object]:
    """What ``show_config`` prints, as a dict."""
    info = dict(_core.build_info())
    info.update(
        isa=_core.isa(),
        isa_reason=_core.isa_reason(),
        amx=_core.amx_status(),
        compiled_isas=list(_core.compiled_isas()),
        available_isas=list(_core.available_isas()),
        num_threads=_core.get_num_threads(),
        threads_pinned=_core.threads_pinned(),
        physical_cores=_core.physical_cores(),
        machine=platform.machine(),
        python=platform.python_version(),
        env={k: v for k, v in os.environ.items() if k.startswith("RNNKIT_")},
    )
    return info


def show_config() -> None:
    """Print version, chosen instruction set and why, threads, Eigen, compiler and flags."""
    for key, value in config().items():
        print(f"{key:>15}: {value}")
