"""Options PyTorch lacks, against the numpy reference (tests/reference.py).

GRU reset_after=False, LSTM peepholes, every activation x recurrent_activation combination of
Keras's, every activation of rnnkit (with parameters off their defaults) in every slot of
every cell (LSTM activation / recurrent_activation / cell_activation, GRU activation /
recurrent_activation, RNN activation), and ONNX's clip, input_forget and direction="reverse"
alone and combined, each on a 2-layer model (bidirectional but for reverse) with unsorted
lengths (1..T):

- forward (y, h_n, c_n) against the reference, float64 and float32;
- float64 gradients (dx, dh0, dc0, every parameter) against central finite differences
  of the reference's loss sum(y*R_y) + sum(h_n*R_h) + sum(c_n*R_c), one random
  direction per tensor;
- float32 gradients against rnnkit's float64 gradients on the same (rounded) values.

The reference itself is validated against PyTorch by tests/test_golden.py.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from fixtures.make_golden import LENGTHS, full_config, make_case
from reference import (
    ACTIVATIONS,
    ALL_ACTIVATIONS,
    RECURRENT_ACTIVATIONS,
    TOLERANCES,
    assert_close,
)
from test_golden import compare, params_of, reference_case, run_rnnkit

# float64 forward against the reference is held tighter than the golden files: both
# sides compute in float64 from identical values, so errors are a few ulp.
FORWARD_TOL = {"float64": (1e-12, 1e-13), "float32": TOLERANCES["float32"]}
FD_EPS = 1e-6  # central-difference step (kinks of relu / hard_sigmoid / clip are rarely crossed)
FD_RTOL = 1e-6  # relative to |grad| * |direction|; FD error is ~1e-9 of that here


def _option_configs() -> dict[str, dict[str, Any]]:
    combos = list(itertools.product(ACTIVATIONS, RECURRENT_ACTIVATIONS))
    base = dict(num_layers=2, bidirectional=True, lengths=LENGTHS)
    configs: dict[str, dict[str, Any]] = {}
    for n, (act, rec) in enumerate(combos):
        acts = dict(activation=act, recurrent_activation=rec, batch_first=n % 2 == 1)
        for peephole in (False, True):
            name = f"lstm_{act}_{rec}" + ("_peephole" if peephole else "")
            configs[name] = dict(base, cell="lstm", peephole=peephole, **acts)
        for reset_after in (True, False):
            name = f"gru_{act}_{rec}_reset_" + ("after" if reset_after else "before")
            configs[name] = dict(base, cell="gru", reset_after=reset_after, **acts)
    configs["lstm_peephole_proj"] = dict(base, cell="lstm", peephole=True, proj_size=3)
    configs["gru_reset_before_l1_nobias"] = dict(cell="gru", reset_after=False, bias=False)
    # every activation in every slot, parameters off their defaults
    for n, name in enumerate(ALL_ACTIVATIONS):
        spec = (name, *ACTIVATION_PARAMS[name]) if name in ACTIVATION_PARAMS else name
        bf = dict(base, batch_first=n % 2 == 1)
        configs[f"lstm_act_{name}"] = dict(bf, cell="lstm", activation=spec)
        configs[f"lstm_ract_{name}"] = dict(bf, cell="lstm", recurrent_activation=spec)
        configs[f"lstm_cact_{name}"] = dict(bf, cell="lstm", cell_activation=spec)
        configs[f"gru_act_{name}"] = dict(bf, cell="gru", activation=spec, reset_after=n % 2 == 0)
        # one layer: an unbounded z (linear, relu, ...) grows h' = n + z (h - n) fast
        configs[f"gru_ract_{name}"] = dict(
            bf, cell="gru", recurrent_activation=spec, reset_after=n % 2 == 1, num_layers=1
        )
        configs[f"rnn_act_{name}"] = dict(bf, cell="rnn", activation=spec)
    # ONNX's clip, input_forget and direction="reverse"
    rev = dict(base, bidirectional=False, reverse=True)
    configs |= {
        "lstm_clip": dict(base, cell="lstm", clip=0.5),
        "lstm_clip_peephole_proj": dict(base, cell="lstm", clip=0.7, peephole=True, proj_size=3),
        "lstm_input_forget": dict(base, cell="lstm", input_forget=True),
        "lstm_input_forget_peephole_clip": dict(
            base, cell="lstm", input_forget=True, peephole=True, clip=0.8, batch_first=True
        ),
        "lstm_reverse": dict(rev, cell="lstm"),
        "lstm_reverse_everything": dict(
            rev,
            cell="lstm",
            clip=0.6,
            input_forget=True,
            peephole=True,
            activation=("scaled_tanh", 0.9, 1.2),
            recurrent_activation=("hard_sigmoid", 0.2, 0.5),
            cell_activation="softsign",
        ),
        "gru_clip_reset_after": dict(base, cell="gru", clip=0.5),
        "gru_clip_reset_before": dict(base, cell="gru", clip=0.5, reset_after=False),
        "gru_reverse_reset_after": dict(rev, cell="gru", batch_first=True),
        "gru_reverse_reset_before_clip_elu": dict(
            rev, cell="gru", reset_after=False, clip=0.7, activation=("elu", 0.8)
        ),
        "rnn_relu": dict(base, cell="rnn", nonlinearity="relu"),
        "rnn_clip": dict(base, cell="rnn", clip=0.4),
        "rnn_reverse": dict(rev, cell="rnn"),
        "rnn_reverse_clip_leaky_l1_nobias": dict(
            cell="rnn", reverse=True, clip=0.5, activation=("leaky_relu", 0.2), bias=False
        ),
    }
    return configs


# parameters off the defaults, away from degenerate values
ACTIVATION_PARAMS = {
    "hard_sigmoid": (0.3, 0.4),
    "affine": (0.7, 0.1),
    "leaky_relu": (0.2,),
    "thresholded_relu": (0.25,),
    "scaled_tanh": (0.9, 1.3),
    "elu": (0.8,),
}


OPTION_CONFIGS = _option_configs()


def option_case(name: str, dtype: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    cfg = full_config(OPTION_CONFIGS[name], dtype)
    return cfg, make_case(cfg, seed=3000 + list(OPTION_CONFIGS).index(name))


LOSS_WEIGHTS = {"y": "R_y", "h_n": "R_h", "c_n": "R_c"}


def reference_loss(cfg: dict[str, Any], case: dict[str, np.ndarray]) -> float:
    """sum(y*R_y) + sum(h_n*R_h) + sum(c_n*R_c) of the reference forward."""
    out = reference_case(cfg, case)
    return sum(float(np.sum(out[k] * case[LOSS_WEIGHTS[k]])) for k in out)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(OPTION_CONFIGS))
def test_forward_matches_reference(name: str, dtype: str) -> None:
    cfg, case = option_case(name, dtype)
    expected = reference_case(cfg, case)
    actual = run_rnnkit(cfg, case)
    rtol, atol = FORWARD_TOL[dtype]
    for k in expected:
        assert_close(actual[k], expected[k], f"{name} {k} ({dtype})", rtol, atol)


@pytest.mark.parametrize("name", list(OPTION_CONFIGS))
def test_float64_gradients_match_finite_differences(name: str) -> None:
    cfg, case = option_case(name, "float64")
    grads = run_rnnkit(cfg, case)
    rng = np.random.default_rng(7)
    inputs = [k for k in ("x", "h0", "c0") if k in case]
    for key in inputs + ["param." + k for k in params_of(case)]:
        v = rng.standard_normal(case[key].shape)
        plus = dict(case, **{key: case[key] + FD_EPS * v})
        minus = dict(case, **{key: case[key] - FD_EPS * v})
        fd = (reference_loss(cfg, plus) - reference_loss(cfg, minus)) / (2 * FD_EPS)
        g = grads["grad." + key.removeprefix("param.")]
        analytic = float(np.sum(g * v))
        scale = float(np.linalg.norm(g) * np.linalg.norm(v))
        err = abs(analytic - fd)
        assert err <= FD_RTOL * max(scale, 1e-12), (
            f"{name} grad.{key.removeprefix('param.')}: directional derivative {analytic:.10e} "
            f"vs finite difference {fd:.10e}; abs err {err:.3e}, "
            f"rel err {err / max(abs(fd), 1e-300):.3e} (|g||v| = {scale:.3e})"
        )


@pytest.mark.parametrize("name", list(OPTION_CONFIGS))
def test_float32_gradients_match_float64(name: str) -> None:
    cfg32, case32 = option_case(name, "float32")
    case64 = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in case32.items()}
    actual = run_rnnkit(cfg32, case32)
    expected = run_rnnkit(dict(cfg32, dtype="float64"), case64)
    compare(actual, expected, sorted(k for k in expected if k.startswith("grad.")), "float32")
