"""The errors tests measure, for reporting: with RNNKIT_RECORD_ERRORS=path set, comparisons
append "<test file> <error>" to path, and tests/worst_error_onnx.py prints the worst error per
family of tests (one family per test file)."""

from __future__ import annotations

import inspect
import os


def record_error(err: float, depth: int = 1, family: str | None = None) -> None:
    """Record ``err`` under ``family``, by default the file of the caller ``depth`` frames up
    (a no-op unless RNNKIT_RECORD_ERRORS is set)."""
    path = os.environ.get("RNNKIT_RECORD_ERRORS")
    if path:
        caller = family or os.path.basename(inspect.stack()[depth].filename)
        with open(path, "a") as f:
            f.write(f"{caller} {err!r}\n")
