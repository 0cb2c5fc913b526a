"""The examples run end to end (in their quick mode, RNNKIT_EXAMPLES_QUICK=1), print their
metric, and save their plot when matplotlib is installed."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# script, a regex for its metric line (group 1 is a number), the PNG it saves, its needs
CASES = [
    ("sine_forecast.py", r"train MSE: ([0-9.e+-]+)", "sine_forecast.png", []),
    (
        "noisy_sine_lstm_gru.py",
        r"GRU: test MSE ([0-9.e+-]+)",
        "noisy_sine_lstm_gru.png",
        ["sklearn"],
    ),
    ("next_number.py", r"next number after \[8, 9, 10\]: ([0-9.e+-]+)", "next_number.png", []),
    ("sequence_classifier.py", r"validation accuracy: ([0-9.]+)", "sequence_classifier.png", []),
    ("text_generator.py", r"next-character accuracy: ([0-9.]+)", "text_generator.png", []),
    (
        "bidirectional_classifier.py",
        r"Bidirectional\(LSTM\(16\)\)\s+validation accuracy: "
        r"([0-9.]+)",
        "bidirectional_classifier.png",
        [],
    ),
    (
        "number_translation.py",
        r"attention: held-out exact-match accuracy: ([0-9.]+)",
        "number_translation.png",
        [],
    ),
    (
        "sentiment_masked.py",
        r"largest change of a prediction when padded 3x longer on the left: ([0-9.e+-]+)",
        "sentiment_masked.png",
        [],
    ),
    (
        "cnn_lstm_forecast.py",
        r"test forecast MAE: ([0-9.e+-]+)",
        "cnn_lstm_forecast.png",
        [],
    ),
]

#: Upper bounds on an example's metric where the number itself is the claim: padding must
#: not change the masked model's predictions.
BOUNDS = {"sentiment_masked.py": 1e-6}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("script,pattern,png,needs", CASES, ids=[c[0] for c in CASES])
def test_example_runs(script, pattern, png, needs, tmp_path):
    for module in needs:
        if not _installed(module):
            pytest.skip(f"{script} needs {module}")
    env = dict(
        os.environ, RNNKIT_EXAMPLES_QUICK="1", RNNKIT_EXAMPLES_OUT=str(tmp_path), MPLBACKEND="Agg"
    )
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    match = re.search(pattern, proc.stdout)
    assert match, f"{script}: no line matching {pattern!r} in\n{proc.stdout[-3000:]}"
    assert math.isfinite(float(match.group(1))), match.group(0)
    if script in BOUNDS:
        assert float(match.group(1)) <= BOUNDS[script], match.group(0)
    if _installed("matplotlib"):
        assert (tmp_path / png).stat().st_size > 10_000, f"{script} did not save {png}"
    else:
        assert "matplotlib is not installed" in proc.stdout


def test_text_corpus_is_shipped():
    text = (EXAMPLES / "data" / "the_keeper.txt").read_text(encoding="utf-8")
    assert len(text) > 5000 and text.isascii()
