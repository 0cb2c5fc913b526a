"""Keras-style progress line: ``31/31 ━━━━━━━━━━━━━━━━━━━━ 1s 4ms/step - loss: 0.0123``.

verbose=1 redraws one line in a terminal (at most every 50 ms) and prints the final line
once when the output is not a terminal; verbose=2 prints one line per epoch; 0 is silent.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def format_value(v: float) -> str:
    return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.4e}"


def format_time(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


def format_per_step(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


class Progbar:
    """Progress over ``target`` steps. ``update(current, values)``; ``values`` maps names to
    running averages already computed by the caller."""

    def __init__(
        self,
        target: int,
        verbose: int = 1,
        width: int = 20,
        stream: TextIO | None = None,
        interval: float = 0.05,
    ) -> None:
        self.target = max(int(target), 1)
        self.verbose = verbose
        self.width = width
        self.stream = stream if stream is not None else sys.stdout
        self.interval = interval
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._last_len = 0
        isatty = getattr(self.stream, "isatty", None)
        self.dynamic = bool(isatty and isatty())

    def _bar(self, current: int) -> str:
        digits = len(str(self.target))
        count = f"{current:>{digits}d}/{self.target}"
        filled = int(self.width * current / self.target)
        if self.dynamic:
            bar = (
                "\x1b[32m"
                + "━" * filled
                + "\x1b[0m"
                + "\x1b[37m"
                + "━" * (self.width - filled)
                + "\x1b[0m"
            )
        else:
            bar = "━" * filled + "─" * (self.width - filled)
        return f"{count} {bar}"

    def update(
        self, current: int, values: dict[str, Any] | None = None, finalize: bool = False
    ) -> None:
        if self.verbose == 0:
            return
        now = time.perf_counter()
        elapsed = now - self.start
        per_step = elapsed / max(current, 1)
        tail = "".join(f" - {k}: {format_value(v)}" for k, v in (values or {}).items())
        if self.verbose == 2:
            if finalize:
                self.stream.write(
                    f"{current}/{self.target} - {format_time(elapsed)} - "
                    f"{format_per_step(per_step)}{tail}\n"
                )
                self.stream.flush()
            return
        if not finalize and (not self.dynamic or now - self._last_draw < self.interval):
            return
        self._last_draw = now
        shown = elapsed if finalize else per_step * (self.target - current)
        line = f"{self._bar(current)} {format_time(shown)} {format_per_step(per_step)}{tail}"
        if self.dynamic:
            pad = max(self._last_len - len(line), 0)
            self.stream.write("\r" + line + " " * pad)
            self._last_len = len(line)
        else:
            self.stream.write(line)
        if finalize:
            self.stream.write("\n")
        self.stream.flush()
