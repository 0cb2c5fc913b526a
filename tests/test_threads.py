"""Opt-in pinning of the pool's workers (RNNKIT_PIN_THREADS=1): reported, and the results are
those of unpinned threads."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

CHILD = """
import sys, numpy as np, rnnkit
rnnkit.set_num_threads(2)
m = rnnkit.LSTM(8, 144, seed=0).eval()
y, _ = m(np.linspace(-1, 1, 40 * 8, dtype=np.float32).reshape(40, 1, 8))
np.save(sys.argv[1], y)
print(rnnkit.config()["threads_pinned"])
"""


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs two CPUs in the affinity mask",
)
def test_pinned_workers_are_reported_and_change_no_result(tmp_path) -> None:
    out = {}
    for pin in ("0", "1"):
        env = {**os.environ, "RNNKIT_PIN_THREADS": pin, "RNNKIT_NUM_THREADS": "2"}
        path = tmp_path / f"y{pin}.npy"
        res = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)], env=env, capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == ("True" if pin == "1" else "False"), res.stdout
        out[pin] = np.load(path)
    diff = np.abs(out["0"] - out["1"]).max()
    assert diff == 0, f"pinned and unpinned results differ by {diff:.2e}"
