"""rnnkit against the PyTorch golden files in tests/fixtures/ (see make_golden.py there):
torch.nn.LSTM, GRU and RNN (tanh and relu).

For every fixture: build the rnnkit module with the same config and dtype, load the
state_dict, run forward in training mode, backward with dy = R_y, dh_n = R_h, dc_n = R_c,
and compare y, h_n, c_n, dx, dh0, dc0 and every entry of ``m.grads``. The numpy reference
(tests/reference.py) is checked against the same files, which validates the oracle that
tests/test_reference_options.py relies on. Two backward calls must accumulate (+=) into
``m.grads`` and ``zero_grad`` must clear them.

Tolerances (reference.TOLERANCES): |a - b| <= atol + rtol*|b|, float32 rtol 1e-5 atol 1e-6,
float64 rtol 1e-10 atol 1e-12. PyTorch's own float32 results differ from its float64
results by < 0.2 of that float32 budget on these fixtures.

``run_rnnkit`` and ``reference_case`` are shared with the other cross-checking modules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures.make_golden import CONFIGS
from reference import TOLERANCES, assert_close, gru_forward, lstm_forward, rnn_forward

FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures"
FIXTURES = sorted(FIXTURE_DIR.glob("golden_*.npz"))
STATE_KEYS = ("y", "h_n", "c_n")
OPTION_KEYS = (
    "activation",
    "recurrent_activation",
    "cell_activation",
    "peephole",
    "reset_after",
    "clip",
    "input_forget",
    "reverse",
)
# the options each cell's constructor takes
CELL_OPTIONS = {
    "lstm": set(OPTION_KEYS) - {"reset_after"},
    "gru": set(OPTION_KEYS) - {"cell_activation", "peephole", "input_forget"},
    "rnn": {"activation", "clip", "reverse"},
}


def load_fixture(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(config, arrays) of one golden file."""
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    return json.loads(str(data.pop("config"))), data


def params_of(case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k[len("param.") :]: v for k, v in case.items() if k.startswith("param.")}


def build_module(cfg: dict[str, Any]) -> Any:
    """A fresh rnnkit.LSTM / GRU / RNN for a config (options passed only when present)."""
    import rnnkit

    kw = {k: cfg[k] for k in ("num_layers", "bias", "batch_first", "bidirectional", "dtype")}
    kw |= {k: cfg[k] for k in CELL_OPTIONS[cfg["cell"]] if k in cfg}
    if cfg["cell"] == "lstm":
        return rnnkit.LSTM(cfg["I"], cfg["H"], proj_size=cfg["proj_size"], **kw)
    if cfg["cell"] == "rnn":
        return rnnkit.RNN(cfg["I"], cfg["H"], nonlinearity=cfg.get("nonlinearity", "tanh"), **kw)
    return rnnkit.GRU(cfg["I"], cfg["H"], **kw)


def run_rnnkit(cfg: dict[str, Any], case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """rnnkit forward (train mode) + backward with the case's R tensors.

    Returns the keys of make_golden.torch_run: y, h_n, c_n (LSTM), grad.x, grad.h0,
    grad.c0 (LSTM) and grad.<state_dict key> for every parameter.
    """
    lstm = cfg["cell"] == "lstm"
    m = build_module(cfg)
    params = params_of(case)
    m.load_state_dict(params)
    sd = m.state_dict()
    assert set(sd) == set(params), f"state_dict keys {sorted(sd)} != {sorted(params)}"
    for k, v in params.items():  # loading and reading back must be exact
        assert_close(sd[k], v, f"state_dict()[{k!r}] after load_state_dict", 0.0, 0.0)
    m.train()
    m.zero_grad()
    lengths = case.get("lengths")
    if lstm:
        y, (h_n, c_n) = m(case["x"], (case["h0"], case["c0"]), lengths=lengths)
        dx, (dh0, dc0) = m.backward(case["R_y"], (case["R_h"], case["R_c"]))
        res = {"y": y, "h_n": h_n, "c_n": c_n, "grad.x": dx, "grad.h0": dh0, "grad.c0": dc0}
    else:
        y, h_n = m(case["x"], case["h0"], lengths=lengths)
        dx, dh0 = m.backward(case["R_y"], case["R_h"])
        res = {"y": y, "h_n": h_n, "grad.x": dx, "grad.h0": dh0}
    assert set(m.grads) == set(params), f"m.grads keys {sorted(m.grads)} != {sorted(params)}"
    res |= {"grad." + k: np.array(v) for k, v in m.grads.items()}
    for k, v in res.items():
        assert np.asarray(v).dtype == np.dtype(cfg["dtype"]), (
            f"{k}: dtype {np.asarray(v).dtype}, expected {cfg['dtype']}"
        )
    return res


def reference_case(cfg: dict[str, Any], case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """tests/reference.py forward on a case; y in the case's layout (batch-first or not)."""
    x = case["x"].transpose(1, 0, 2) if cfg["batch_first"] else case["x"]
    keys = CELL_OPTIONS[cfg["cell"]] - {"peephole", "reset_after"}  # peepholes: in the params
    opts = {k: cfg[k] for k in keys if k in cfg}
    params = params_of(case)
    if cfg["cell"] == "lstm":
        y, h_n, c_n = lstm_forward(params, x, case["h0"], case["c0"], case.get("lengths"), **opts)
        res = {"y": y, "h_n": h_n, "c_n": c_n}
    elif cfg["cell"] == "rnn":
        opts.setdefault("activation", cfg.get("nonlinearity", "tanh"))
        y, h_n = rnn_forward(params, x, case["h0"], case.get("lengths"), **opts)
        res = {"y": y, "h_n": h_n}
    else:
        opts["reset_after"] = cfg.get("reset_after", True)
        y, h_n = gru_forward(params, x, case["h0"], case.get("lengths"), **opts)
        res = {"y": y, "h_n": h_n}
    if cfg["batch_first"]:
        res["y"] = res["y"].transpose(1, 0, 2)
    return res


def compare(
    actual: dict[str, np.ndarray], expected: dict[str, np.ndarray], keys: list[str], dtype: str
) -> None:
    rtol, atol = TOLERANCES[dtype]
    missing = [k for k in keys if k not in actual]
    assert not missing, f"missing results {missing}"
    for k in keys:
        assert_close(actual[k], expected[k], f"{k} ({dtype})", rtol, atol)


def _golden_keys(golden: dict[str, np.ndarray]) -> tuple[list[str], list[str]]:
    outputs = [k for k in STATE_KEYS if k in golden]
    return outputs, sorted(k for k in golden if k.startswith("grad."))


def test_every_config_has_both_dtypes() -> None:
    expected = {f"golden_{n}_{d}.npz" for n in CONFIGS for d in ("float32", "float64")}
    found = {p.name for p in FIXTURES}
    assert found == expected, (
        f"missing {sorted(expected - found)}, unexpected {sorted(found - expected)}; "
        "re-run python tests/fixtures/make_golden.py"
    )


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_reference_matches_golden(path: Path) -> None:
    cfg, golden = load_fixture(path)
    outputs, _ = _golden_keys(golden)
    compare(reference_case(cfg, golden), golden, outputs, cfg["dtype"])


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_golden_forward(path: Path) -> None:
    cfg, golden = load_fixture(path)
    outputs, _ = _golden_keys(golden)
    compare(run_rnnkit(cfg, golden), golden, outputs, cfg["dtype"])


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_golden_backward(path: Path) -> None:
    cfg, golden = load_fixture(path)
    _, grads = _golden_keys(golden)
    compare(run_rnnkit(cfg, golden), golden, grads, cfg["dtype"])


@pytest.mark.parametrize("name", ["lstm_proj_l2_bi_len", "gru_l2_bi_bf_len"])
def test_grads_accumulate_and_zero_grad(name: str) -> None:
    """Two backward calls add up to twice the golden gradients; zero_grad clears them."""
    cfg, golden = load_fixture(FIXTURE_DIR / f"golden_{name}_float64.npz")
    lstm = cfg["cell"] == "lstm"
    m = build_module(cfg)
    m.load_state_dict(params_of(golden))
    m.zero_grad()
    for _ in range(2):
        if lstm:
            m(golden["x"], (golden["h0"], golden["c0"]), lengths=golden["lengths"])
            m.backward(golden["R_y"], (golden["R_h"], golden["R_c"]))
        else:
            m(golden["x"], golden["h0"], lengths=golden["lengths"])
            m.backward(golden["R_y"], golden["R_h"])
    rtol, atol = TOLERANCES["float64"]
    for k, g in m.grads.items():
        assert_close(g, 2 * golden["grad." + k], f"2 backward calls: grads[{k!r}]", rtol, atol)
    m.zero_grad()
    for k, g in m.grads.items():
        assert_close(g, np.zeros_like(g), f"after zero_grad: grads[{k!r}]", 0.0, 0.0)
