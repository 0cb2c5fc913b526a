"""Benchmark rnnkit against PyTorch, ONNX Runtime and Keras over the suite of cases.

A thin driver of the installed package's harness (``rnnkit.bench.suite``) that writes to this
checkout's bench/results. See bench/README.md; ``python bench/run.py --help`` lists the options.

    python bench/run.py --quick              # smoke run, under two minutes
    python bench/run.py --check-only         # correctness of every framework, no timing
"""

from __future__ import annotations

import sys
from pathlib import Path

from rnnkit.bench.suite import main

if __name__ == "__main__":
    sys.exit(main(out_dir=Path(__file__).resolve().parent / "results", prog="python bench/run.py"))
