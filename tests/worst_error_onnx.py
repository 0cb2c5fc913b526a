"""Print the worst error per family of interchange tests (issue 14's closing figures).

    python tests/worst_error_onnx.py

Runs the ONNX, ONNX Runtime, PyTorch-export, tf2onnx and Keras-file tests with
RNNKIT_RECORD_ERRORS set (see tests/error_record.py) and prints, per test file, how many
comparisons were made and the worst error: relative to the reference's scale
(max|a - b| / max(1, max|b|)) for the ONNX files, absolute for the backend node tests and
the Keras predictions.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

FILES = [
    "test_onnx_nodes.py",
    "test_onnxruntime_cells.py",
    "test_onnx_ops.py",
    "test_onnx_torch.py",
    "test_onnx_export.py",
    "test_onnx_loop.py",
    "test_keras_files.py",
]


def main() -> int:
    here = Path(__file__).parent
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "errors.txt")
        env = {**os.environ, "RNNKIT_RECORD_ERRORS": path}
        r = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FILES],
            cwd=here,
            env=env,
        )
        worst: dict[str, float] = defaultdict(float)
        count: dict[str, int] = defaultdict(int)
        if os.path.exists(path):
            for line in Path(path).read_text().splitlines():
                name, err = line.rsplit(" ", 1)
                worst[name] = max(worst[name], float(err))
                count[name] += 1
    print(f"{'family (test file)':32s} {'comparisons':>11s} {'worst error':>12s}")
    for name in ["onnx backend node tests (abs)", *FILES]:
        print(f"{name:32s} {count[name]:11d} {worst[name]:12.3e}")
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
