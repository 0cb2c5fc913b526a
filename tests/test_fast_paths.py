"""The inference fast path (packed recurrent weights, threads sharing the time loop) against
the float64 computation, and results identical for any thread count."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import rnnkit

CONFIGS = [
    ("LSTM", {}),
    ("LSTM", {"bidirectional": True, "num_layers": 2}),
    ("LSTM", {"proj_size": 40}),
    ("LSTM", {"peephole": True, "activation": "relu"}),
    ("GRU", {}),
    ("GRU", {"reset_after": False}),
    ("GRU", {"bidirectional": True, "recurrent_activation": "hard_sigmoid"}),
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu", "bidirectional": True, "num_layers": 2}),
    # ONNX's options: every one of them, and parameterized activations in every slot
    (
        "LSTM",
        {
            "clip": 0.9,
            "input_forget": True,
            "peephole": True,
            "activation": ("scaled_tanh", 0.8, 1.2),
            "recurrent_activation": ("hard_sigmoid", 0.2, 0.5),
            "cell_activation": ("affine", 0.5, 0.1),
        },
    ),
    ("LSTM", {"reverse": True, "activation": "softsign", "cell_activation": "elu"}),
    ("GRU", {"clip": 0.7, "reverse": True, "activation": ("leaky_relu", 0.1)}),
    ("GRU", {"reset_after": False, "clip": 0.5, "recurrent_activation": "softplus"}),
    ("RNN", {"clip": 0.6, "activation": ("thresholded_relu", 0.1), "reverse": True}),
]


def run(
    cell: str, kw: dict[str, Any], dtype: str, x: np.ndarray, lengths: Any, train: bool
) -> tuple:
    # 263: not a multiple of 16, and large enough for an LSTM or GRU batch-1 team of two; an
    # RNN's row (H x H) pays for a team from H = 400 (test_rnn_teams_identical_...)
    m = getattr(rnnkit, cell)(x.shape[2], 263, dtype=dtype, seed=3, **kw)
    m.train(train)
    y, state = m(x.astype(dtype), lengths=lengths)
    h = state[0] if cell == "LSTM" else state
    return y, h


@pytest.mark.parametrize(("cell", "kw"), CONFIGS)
@pytest.mark.parametrize("batch", [1, 7, 37])  # 37: teams split the batch (odd, uneven chunks)
def test_fast_path_matches_float64_and_any_thread_count(
    cell: str, kw: dict[str, Any], batch: int, kernel_isa: str
) -> None:
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((12, batch, 9))
    lengths = None if batch == 1 else rng.integers(1, 13, size=batch)
    ref_y, ref_h = run(cell, kw, "float64", x, lengths, train=False)
    before = rnnkit.get_num_threads()
    results = {}
    try:
        for threads in (1, 2):
            rnnkit.set_num_threads(threads)
            for train in (False, True):
                y, h = run(cell, kw, "float32", x, lengths, train)
                err = max(np.abs(y - ref_y).max(), np.abs(h - ref_h).max())
                assert err < 2e-5, (
                    f"{cell} {kw} threads={threads} train={train}: max err vs float64 {err:.2e}"
                )
                results[threads, train] = (y, h)
    finally:
        rnnkit.set_num_threads(before)
    for train in (False, True):
        for a, b in zip(results[1, train], results[2, train]):
            diff = np.abs(a - b).max()
            assert diff == 0, f"{cell} {kw} train={train}: 1 vs 2 threads differ by {diff:.2e}"


def test_eval_makes_parameters_read_only_and_train_restores() -> None:
    m = rnnkit.LSTM(4, 32, seed=0).eval()
    w = m.named_parameters()["weight_hh_l0"]
    with pytest.raises(ValueError, match="read-only"):
        w += 1
    x = np.ones((5, 2, 4), np.float32)
    y0 = m(x)[0]
    m.train()
    w += 0.5  # allowed again, and seen by the next call
    m.eval()
    y1 = m(x)[0]
    assert np.abs(y1 - y0).max() > 1e-3, (
        "the edit made in train mode was not picked up after eval()"
    )


def test_load_state_dict_in_eval_mode_repacks() -> None:
    a = rnnkit.GRU(4, 32, seed=0).eval()
    b = rnnkit.GRU(4, 32, seed=1).eval()
    x = np.random.default_rng(0).standard_normal((6, 3, 4)).astype(np.float32)
    a.load_state_dict(b.state_dict())
    diff = np.abs(a(x)[0] - b(x)[0]).max()
    assert diff == 0, f"after load_state_dict in eval mode the outputs differ by {diff}"
    assert not a.named_parameters()["weight_hh_l0"].flags.writeable


def test_streaming_steps_equal_one_call() -> None:
    m = rnnkit.LSTM(16, 64, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((30, 1, 16)).astype(np.float32)
    y_all, _ = m(x)
    state = None
    for t in range(30):
        y_t, state = m(x[t : t + 1], state)
        diff = np.abs(y_t[0] - y_all[t]).max()
        assert diff < 1e-6, f"step {t}: streaming differs from the sequence call by {diff:.2e}"


@pytest.mark.parametrize(
    ("cell", "kw"),
    [
        ("LSTM", {}),
        ("LSTM", {"peephole": True}),
        ("LSTM", {"proj_size": 48}),
        ("LSTM", {"bidirectional": True}),
        ("GRU", {"reset_after": False}),
        ("GRU", {}),
        ("RNN", {}),
        ("LSTM", {"clip": 0.5, "input_forget": True, "activation": ("elu", 0.7)}),
        ("GRU", {"clip": 0.5, "reverse": True, "recurrent_activation": "hard_sigmoid"}),
        ("RNN", {"clip": 0.5, "activation": ("leaky_relu", 0.1), "reverse": True}),
    ],
)
def test_training_identical_for_any_thread_count(
    cell: str, kw: dict[str, Any], kernel_isa: str
) -> None:
    """Large enough that the input projection and the weight-gradient GEMMs are split."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 16, 64)).astype(np.float32)
    before = rnnkit.get_num_threads()
    out = {}
    try:
        for threads in (1, 2):
            rnnkit.set_num_threads(threads)
            m = getattr(rnnkit, cell)(64, 144, num_layers=2, seed=5, **kw)
            y, _ = m(x)
            dx, _ = m.backward(np.cos(y))
            out[threads] = {"y": y, "dx": dx, **m.grads}
    finally:
        rnnkit.set_num_threads(before)
    for key, a in out[1].items():
        diff = np.abs(a - out[2][key]).max()
        assert diff == 0, f"{cell} {kw}: {key} differs between 1 and 2 threads by {diff:.2e}"


@pytest.mark.parametrize(
    ("cell", "kw"),
    [
        ("LSTM", {}),
        ("LSTM", {"bidirectional": True, "num_layers": 2, "dropout": 0.3}),
        ("LSTM", {"proj_size": 48}),
        ("GRU", {"reset_after": False}),
        ("GRU", {"bidirectional": True}),
        ("RNN", {"bidirectional": True, "num_layers": 2}),
        ("LSTM", {"reverse": True, "clip": 0.6, "input_forget": True}),
        ("GRU", {"reverse": True, "clip": 0.6, "activation": ("elu", 0.5)}),
        ("RNN", {"reverse": True, "clip": 0.5, "activation": "softsign"}),
    ],
)
def test_lengths_training_identical_for_any_thread_count_and_matches_float64(
    cell: str, kw: dict[str, Any], kernel_isa: str
) -> None:
    """Unsorted lengths with ties: the core sorts the batch and shrinks the running rows as
    sequences end; teams that split the batch re-split the rows still running (B = 37 rows)."""
    rng = np.random.default_rng(4)
    T, B = 24, 37
    x = rng.standard_normal((T, B, 32))
    lengths = rng.integers(1, T + 1, size=B)
    lengths[[3, 9, 20]] = T  # ties with the longest, and a full-length row out of order
    lengths[[5, 6]] = 1
    D = 2 if kw.get("bidirectional") else 1
    dy = rng.standard_normal((T, B, D * kw.get("proj_size", 144)))
    before = rnnkit.get_num_threads()
    out = {}
    try:
        for dtype, threads in (("float64", 1), ("float32", 1), ("float32", 2)):
            rnnkit.set_num_threads(threads)
            m = getattr(rnnkit, cell)(32, 144, seed=5, dtype=dtype, **kw)
            y, state = m(x.astype(dtype), lengths=lengths)
            h = state[0] if cell == "LSTM" else state
            dx, dstate = m.backward(dy.astype(dtype))
            dh0 = dstate[0] if cell == "LSTM" else dstate
            out[dtype, threads] = {"y": y, "h_n": h, "dx": dx, "dh0": dh0, **m.grads}
    finally:
        rnnkit.set_num_threads(before)
    for t in range(T):  # padding: zero outputs and zero input gradients
        pad = lengths <= t
        assert not out["float32", 2]["y"][t, pad].any(), f"{cell}: output past a length at t={t}"
        assert not out["float32", 2]["dx"][t, pad].any(), f"{cell}: dx past a length at t={t}"
    for key, ref in out["float64", 1].items():
        got = out["float32", 1][key]
        err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)
        assert err < 2e-5, f"{cell} {kw}: {key} relative error {err:.2e} vs float64"
        diff = np.abs(got - out["float32", 2][key]).max()
        assert diff == 0, f"{cell} {kw}: {key} differs between 1 and 2 threads by {diff:.2e}"


def _child_forward(queue: Any) -> None:
    m = rnnkit.LSTM(8, 128, seed=0).eval()
    y, _ = m(np.ones((50, 1, 8), np.float32))
    queue.put((rnnkit.get_num_threads(), float(y.sum())))


def test_forked_child_gets_a_working_pool() -> None:
    """After fork() the child has none of the parent's pool threads; it must not hang."""
    import multiprocessing
    import warnings

    m = rnnkit.LSTM(8, 128, seed=0).eval()
    expected = float(m(np.ones((50, 1, 8), np.float32))[0].sum())  # the pool is running now
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_child_forward, args=(queue,))
        child.start()
        child.join(60)
    assert child.exitcode == 0, f"forked child did not finish cleanly (exit code {child.exitcode})"
    threads, total = queue.get(timeout=5)
    assert threads == rnnkit.get_num_threads()
    assert total == expected, f"child computed {total}, parent {expected}"


@pytest.mark.parametrize("batch", [1, 3, 40])  # teams by units (B = 1: step flags), by rows
@pytest.mark.parametrize("train", [False, True])
def test_rnn_teams_identical_for_any_thread_count_and_match_float64(
    batch: int, train: bool, kernel_isa: str
) -> None:
    """H = 416: an RNN row's weights (H x H) pay for a units team at batch 1 and 3; 40 rows
    split by rows. Forward (and backward in training) identical for 1 and 2 threads and
    within float32 error of float64."""
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((16, batch, 24))
    lengths = None if batch == 1 else rng.integers(1, 17, size=batch)
    dy = rng.standard_normal((16, batch, 416))
    before = rnnkit.get_num_threads()
    res = {}
    try:
        for dtype, threads in (("float64", 1), ("float32", 1), ("float32", 2)):
            rnnkit.set_num_threads(threads)
            m = rnnkit.RNN(24, 416, seed=8, dtype=dtype).train(train)
            y, h = m(x.astype(dtype), lengths=lengths)
            out = {"y": y, "h": h}
            if train:
                dx, dh0 = m.backward(dy.astype(dtype))
                out |= {"dx": dx, "dh0": dh0, **m.grads}
            res[dtype, threads] = out
    finally:
        rnnkit.set_num_threads(before)
    for key, ref in res["float64", 1].items():
        err = np.abs(res["float32", 1][key] - ref).max() / max(np.abs(ref).max(), 1e-30)
        assert err < 1e-5, f"B={batch} train={train}: {key} relative error {err:.2e} vs float64"
        diff = np.abs(res["float32", 1][key] - res["float32", 2][key]).max()
        assert diff == 0, (
            f"B={batch} train={train}: {key} differs between 1 and 2 threads by {diff}"
        )


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_threaded_training_matches_float64(cell: str, kernel_isa: str) -> None:
    """Sizes where forward and backward split every step across threads, against float64."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((15, 8, 24))
    lengths = rng.integers(1, 16, size=8)
    dy = rng.standard_normal((15, 8, 128))
    before = rnnkit.get_num_threads()
    res = {}
    try:
        rnnkit.set_num_threads(2)
        for dtype in ("float64", "float32"):
            m = getattr(rnnkit, cell)(24, 128, seed=2, dtype=dtype)
            y, _ = m(x.astype(dtype), lengths=lengths)
            dx, _ = m.backward(dy.astype(dtype))
            res[dtype] = {"y": y, "dx": dx, **m.grads}
    finally:
        rnnkit.set_num_threads(before)
    for key, ref in res["float64"].items():
        err = np.abs(res["float32"][key] - ref).max() / max(np.abs(ref).max(), 1e-30)
        assert err < 1e-5, f"{cell}: {key} relative error {err:.2e} vs float64 with 2 threads"


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_packed_input_projection_matches_float64_and_any_thread_count(
    cell: str, kernel_isa: str
) -> None:
    """H a multiple of 16: eval mode computes the input projection with the packed kernels,
    split across threads by rows (here 2000 rows, enough to split)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((40, 50, 64))
    ref_m = getattr(rnnkit, cell)(64, 128, dtype="float64", seed=9)
    ref_y, _ = ref_m(x)
    before = rnnkit.get_num_threads()
    ys = []
    try:
        for threads in (1, 2):
            rnnkit.set_num_threads(threads)
            m = getattr(rnnkit, cell)(64, 128, seed=9).eval()
            ys.append(m(x.astype(np.float32))[0])
    finally:
        rnnkit.set_num_threads(before)
    err = np.abs(ys[0] - ref_y).max()
    assert err < 2e-5, f"{cell}: max err vs float64 {err:.2e}"
    assert np.array_equal(ys[0], ys[1]), f"{cell}: 1 vs 2 threads differ"
