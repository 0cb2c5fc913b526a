"""The amx kernels: bfloat16 weights on AMX tiles (TDPBF16PS) at batch.

They run where the CPU has AMX-TILE and AMX-BF16 and Linux grants the tile state, and in a
build configured with ``-Ccmake.define.RNNKIT_AMX_EMULATION=ON``, where the tile operations are
emulated in C++ from the instruction reference (CI builds that variant too), so that the tile
kernels' packing, blocking and bookkeeping are tested on any CPU with AVX512-BF16. Elsewhere
these tests skip, saying why. One step of the tiles against the float64 reference that rounds
what they round is in test_bf16.py (it runs under every ISA, amx included)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import reference as ref

import rnnkit
from rnnkit import _core

pytestmark = pytest.mark.skipif(
    "amx" not in rnnkit.available_isas(), reason=f"amx kernels: {_core.amx_status()}"
)


@pytest.fixture
def amx() -> Any:
    before = rnnkit.get_isa()
    rnnkit.set_isa("amx")
    yield
    rnnkit.set_isa(before)


CONFIGS = [
    ("LSTM", {}),
    ("LSTM", {"num_layers": 2, "bidirectional": True}),
    ("LSTM", {"peephole": True}),
    ("GRU", {}),
    ("GRU", {"reset_after": False, "num_layers": 2}),
    ("GRU", {"bidirectional": True}),
    ("RNN", {}),
    ("RNN", {"bidirectional": True, "num_layers": 2, "nonlinearity": "relu"}),
]


def run(cell: str, kw: dict[str, Any], x: np.ndarray, lengths: Any, dtype: str, H: int) -> tuple:
    m = getattr(rnnkit, cell)(x.shape[2], H, dtype=dtype, seed=8, **kw).eval()
    y, state = m(x, lengths=lengths)
    return y, state[0] if cell == "LSTM" else state


@pytest.mark.parametrize(("cell", "kw"), CONFIGS)
@pytest.mark.parametrize(("batch", "hidden"), [(37, 144), (16, 64), (5, 40)])
def test_tiles_identical_for_any_thread_count_and_close_to_float64(
    amx: Any, cell: str, kw: dict[str, Any], batch: int, hidden: int
) -> None:
    """Sequences of 12 steps with lengths (the running rows shrink and, with two threads, are
    re-split): 1 and 2 threads bitwise equal; against the float64 reference of the rounded
    weights within bfloat16's rounding of h and x (a relative 2^-9 per product)."""
    rng = np.random.default_rng(batch + hidden)
    x = rng.standard_normal((12, batch, 24)).astype(np.float32)
    lengths = rng.integers(1, 13, size=batch)
    before = rnnkit.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            rnnkit.set_num_threads(threads)
            outs.append(run(cell, kw, x, lengths, "bfloat16", hidden))
    finally:
        rnnkit.set_num_threads(before)
    for name, a, b in zip(("y", "h_n"), outs[0], outs[1]):
        diff = np.abs(a - b).max()
        assert diff == 0, f"{cell} {kw} B={batch}: {name} differs between 1 and 2 threads by {diff}"
    m = getattr(rnnkit, cell)(24, hidden, dtype="bfloat16", seed=8, **kw)
    params = {k: v.astype(np.float64) for k, v in m.state_dict().items()}
    x64 = x.astype(np.float64)
    if cell == "LSTM":
        want = ref.lstm_forward(params, x64, lengths=lengths)[0]
    elif cell == "RNN":
        want = ref.rnn_forward(params, x64, lengths=lengths, activation=m.activation)[0]
    else:
        rf = kw.get("reset_after", True)
        want = ref.gru_forward(params, x64, reset_after=rf, lengths=lengths)[0]
    scaled = ref.scaled_error(outs[0][0], want)
    assert scaled < 5e-3, f"{cell} {kw} B={batch} H={hidden}: error / scale {scaled:.2e}"
    for t in range(12):  # padding stays exactly zero
        assert not outs[0][0][t, lengths <= t].any(), f"output past a sequence's end at t={t}"


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_tiles_agree_with_the_streaming_kernels(amx: Any, cell: str) -> None:
    """The same bfloat16 module at batch 1 (VDPBF16PS, one row streamed) and as one row of a
    batch of 8 (tiles): both round h, so they differ only by float32 summation order, far
    less than the rounding itself."""
    rng = np.random.default_rng(0)
    m = getattr(rnnkit, cell)(32, 128, dtype="bfloat16", seed=1)
    x = rng.standard_normal((20, 8, 32)).astype(np.float32)
    batch, _ = m(x)
    for b in (0, 5):
        alone, _ = m(x[:, b : b + 1])
        err = np.abs(alone[:, 0] - batch[:, b]).max()
        assert err < 1e-4, f"{cell} row {b}: tiles vs streamed row differ by {err:.2e}"


def test_amx_is_reported_and_float32_unchanged(amx: Any) -> None:
    """show_config says the amx kernels are in use and why; float32 modules compute exactly as
    on avx512bf16, whose float kernels the amx build shares."""
    cfg = rnnkit.config()
    assert cfg["isa"] == "amx" and "usable" in cfg["amx"], cfg
    assert _core.bf16_info()["tiles"], _core.bf16_info()
    x = np.random.default_rng(2).standard_normal((15, 16, 24)).astype(np.float32)
    y_amx = rnnkit.LSTM(24, 96, seed=3).eval()(x)[0]
    rnnkit.set_isa("avx512bf16")
    y_ref = rnnkit.LSTM(24, 96, seed=3).eval()(x)[0]
    assert np.array_equal(y_amx, y_ref), "float32 results differ between amx and avx512bf16"
