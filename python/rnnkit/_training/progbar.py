"""Keras-style progress line: ``31/31 ━━━━━━━━━━━━━━━━━━━━ 1s 4ms/step - loss: 0.0123``.

verbose=1 redraws one line during the epoch (at most every 50 ms) where the output shows a
carriage return as a redraw: a terminal, a Jupyter/IPython kernel (``ipykernel`` loaded and
writing to ``sys.stdout``) or PyCharm's console (``PYCHARM_HOSTED``), as Keras's Progbar
decides; elsewhere (a pipe, a log file) it prints the final line once. Keras also redraws on
any POSIX system; rnnkit does not, so logs written to files stay one line per epoch.
verbose=2 prints one line per epoch; 0 is silent.

Output whose encoding cannot show the box-drawing characters (ascii, cp1252) gets plain
ASCII ones instead (``=`` and ``.``), and any other character it cannot encode is replaced,
so printing progress never raises UnicodeEncodeError.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

#: Characters the progress bar and ``summary()`` draw with, and their ASCII stand-ins.
_BOX = "━─┏┓┗┛┡┩└┘├┤┼┳╇┴┃│"
ASCII_BOX = str.maketrans(_BOX, "=-" + "+" * 14 + "||")


def supports_unicode(stream: Any) -> bool:
    """Whether ``stream`` can encode the box-drawing characters. A stream without an
    ``encoding`` (``io.StringIO``) takes any text."""
    encoding = getattr(stream, "encoding", None)
    if not encoding:
        return True
    try:
        _BOX.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def safe_write(stream: Any, text: str) -> None:
    """``stream.write(text)``, replacing characters its encoding cannot represent."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, "replace").decode(encoding))


def dynamic_display(stream: Any) -> bool:
    """Whether ``stream`` redraws a line on ``\\r``: a tty, or ``sys.stdout`` inside an
    IPython kernel (Jupyter) or PyCharm, the cases in which Keras redraws too."""
    isatty = getattr(stream, "isatty", None)
    try:
        if isatty is not None and isatty():
            return True
    except (ValueError, OSError):  # a closed or detached stream
        return False
    if stream is sys.stdout:
        return "ipykernel" in sys.modules or "PYCHARM_HOSTED" in os.environ
    return False


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
        target: int | None,
        verbose: int = 1,
        width: int = 20,
        stream: TextIO | None = None,
        interval: float = 0.05,
    ) -> None:
        self.target = None if target is None else max(int(target), 1)  # None: unknown
        self.verbose = verbose
        self.width = width
        self.stream = stream if stream is not None else sys.stdout
        self.interval = interval
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._last_len = 0
        self.dynamic = dynamic_display(self.stream)
        self.unicode = supports_unicode(self.stream)

    def _bar(self, current: int) -> str:
        if self.target is None:  # a generator's epoch: steps so far
            return f"{current}/Unknown"
        digits = len(str(self.target))
        count = f"{current:>{digits}d}/{self.target}"
        filled = int(self.width * current / self.target)
        done, todo = ("━", "━" if self.dynamic else "─") if self.unicode else ("=", ".")
        if self.dynamic:
            bar = (
                "\x1b[32m"
                + done * filled
                + "\x1b[0m"
                + "\x1b[37m"
                + todo * (self.width - filled)
                + "\x1b[0m"
            )
        else:
            bar = done * filled + todo * (self.width - filled)
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
                safe_write(
                    self.stream,
                    f"{current}/{self.target or current} - {format_time(elapsed)} - "
                    f"{format_per_step(per_step)}{tail}\n",
                )
                self.stream.flush()
            return
        if not finalize and (not self.dynamic or now - self._last_draw < self.interval):
            return
        self._last_draw = now
        shown = elapsed if finalize or self.target is None else per_step * (self.target - current)
        line = f"{self._bar(current)} {format_time(shown)} {format_per_step(per_step)}{tail}"
        if self.dynamic:
            pad = max(self._last_len - len(line), 0)
            safe_write(self.stream, "\r" + line + " " * pad)
            self._last_len = len(line)
        else:
            safe_write(self.stream, line)
        if finalize:
            self.stream.write("\n")
        self.stream.flush()
