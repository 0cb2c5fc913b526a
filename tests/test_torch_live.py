"""rnnkit against torch.nn.LSTM / GRU / RNN run live, beyond the golden fixtures.

Odd sizes (I=7, H=13, P=5, B=3, T=11), up to 3 layers, bidirectional with projection,
unsorted lengths including 1 and T, both layouts, float32 and float64. Compared: y,
h_n, c_n, dx, dh0, dc0 and every parameter gradient, for the loss
sum(y*R_y) + sum(h_n*R_h) + sum(c_n*R_c) (see tests/fixtures/make_golden.py).

The worst error relative to each tensor's scale (reference.scaled_error) is collected
per dtype and printed by the last test (``pytest -s``); ``python
tests/worst_error_vs_torch.py`` prints the same table without pytest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")

from fixtures.make_golden import full_config, make_case, torch_run  # noqa: E402
from reference import TOLERANCES, scaled_error  # noqa: E402
from test_golden import compare, run_rnnkit  # noqa: E402

SIZES = {"T": 11, "B": 3, "I": 7, "H": 13}
P = 5
LENGTHS = [7, 11, 1]
DTYPES = ("float32", "float64")
LIVE_CONFIGS: dict[str, dict[str, Any]] = {
    "lstm_l3": dict(cell="lstm", num_layers=3),
    "lstm_l3_bi_proj_len_bf": dict(
        cell="lstm",
        num_layers=3,
        bidirectional=True,
        proj_size=P,
        lengths=LENGTHS,
        batch_first=True,
    ),
    "lstm_l2_bi_proj": dict(cell="lstm", num_layers=2, bidirectional=True, proj_size=P),
    "lstm_l1_proj_len_bf": dict(cell="lstm", proj_size=P, lengths=LENGTHS, batch_first=True),
    "lstm_l2_bi_len": dict(cell="lstm", num_layers=2, bidirectional=True, lengths=LENGTHS),
    "lstm_l1_bi_bf_nobias": dict(cell="lstm", bidirectional=True, batch_first=True, bias=False),
    "gru_l3": dict(cell="gru", num_layers=3),
    "gru_l3_bi_len_bf": dict(
        cell="gru", num_layers=3, bidirectional=True, lengths=LENGTHS, batch_first=True
    ),
    "gru_l1_bi_len": dict(cell="gru", bidirectional=True, lengths=LENGTHS),
    "gru_l2_len_bf": dict(cell="gru", num_layers=2, lengths=LENGTHS, batch_first=True),
    # 2 layers: without gates a float32 RNN's gradients drift faster with depth (at 3 layers
    # rnnkit and torch float32 are each ~1e-6 of scale from float64, 1.5e-6 from each other)
    "rnn_l2_bi_len_bf": dict(
        cell="rnn",
        nonlinearity="tanh",
        num_layers=2,
        bidirectional=True,
        lengths=LENGTHS,
        batch_first=True,
    ),
    "rnn_relu_l3_len": dict(cell="rnn", nonlinearity="relu", num_layers=3, lengths=LENGTHS),
}

# dtype -> (worst scaled error, "config: key"), filled as the tests run
WORST: dict[str, tuple[float, str]] = {}


def live_results(
    name: str, dtype: str
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(config, rnnkit results, torch results) for one live configuration."""
    cfg = full_config(SIZES | LIVE_CONFIGS[name], dtype)
    case = make_case(cfg, seed=2000 + list(LIVE_CONFIGS).index(name))
    return cfg, run_rnnkit(cfg, case), torch_run(cfg, case)


def worst_error(
    actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]
) -> tuple[float, str]:
    """(largest scaled error over the keys of expected present in actual, that key)."""
    errs = [(scaled_error(actual[k], v), k) for k, v in expected.items() if k in actual]
    return max(errs)


def record(dtype: str, name: str, err: tuple[float, str]) -> None:
    if err[0] >= WORST.get(dtype, (-1.0, ""))[0]:
        WORST[dtype] = (err[0], f"{name}: {err[1]}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(LIVE_CONFIGS))
def test_rnnkit_matches_torch(name: str, dtype: str) -> None:
    _, actual, expected = live_results(name, dtype)
    record(dtype, name, worst_error(actual, expected))
    compare(actual, expected, sorted(expected), dtype)


def test_zz_report_worst_relative_error() -> None:
    """Print the worst scaled error per dtype (run with -s); it must be within rtol."""
    if not WORST:
        pytest.skip("no live comparison ran in this session (deselected)")
    for dtype, (err, where) in sorted(WORST.items()):
        print(f"\n[rnnkit vs torch] {dtype}: worst relative error {err:.3e} ({where})")
    for dtype, (err, where) in WORST.items():
        assert err <= TOLERANCES[dtype][0], f"{dtype}: worst relative error {err:.3e} at {where}"
