"""Streams and stream banks: recurrent state kept in the core between calls.

- T steps of a stream equal one module call over the T steps, bit for bit: every cell (LSTM,
  GRU, RNN) and option (ONNX's clip, input_forget and parameterized activations included),
  float32/float64/bfloat16, batch 1 and several, 1 and 2 threads, and (conftest) every
  instruction set; run() chunks mixed with steps too; initial states set through ``state``.
- A bank stepping a list of ids equals a batch of those rows, bit for bit; random subsets over
  time match each stream's own sequence call to float rounding; add/free/reset/state.
- Threads stepping disjoint ids of one bank at once equal the same steps made serially;
  overlapping ids raise ValueError and never corrupt a state.
- Bad input raises a clear error and changes nothing.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

import rnnkit

CONFIGS = [
    ("LSTM", {}),
    ("LSTM", {"proj_size": 7}),
    ("LSTM", {"peephole": True}),
    ("LSTM", {"activation": "relu", "recurrent_activation": "hard_sigmoid", "bias": False}),
    ("LSTM", {"num_layers": 3, "activation": "sigmoid"}),
    ("LSTM", {"clip": 0.8, "input_forget": True, "cell_activation": ("scaled_tanh", 1.5, 0.7)}),
    ("GRU", {}),
    ("GRU", {"reset_after": False}),
    ("GRU", {"num_layers": 2, "activation": "linear", "recurrent_activation": "hard_sigmoid"}),
    ("GRU", {"bias": False, "reset_after": False, "num_layers": 2}),
    ("GRU", {"clip": 0.5, "activation": ("leaky_relu", 0.1), "recurrent_activation": "softsign"}),
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu", "num_layers": 2}),
    ("RNN", {"activation": ("elu", 0.5), "clip": 1.2, "bias": False}),
]


def make(cell: str, I: int, H: int, dtype: str = "float32", seed: int = 0, **kw: Any) -> Any:
    """An eval-mode module with weights in ±0.7 (wide enough to reach every activation's range)."""
    m = getattr(rnnkit, cell)(I, H, dtype=dtype, seed=seed, **kw)
    rng = np.random.default_rng(seed + 100)
    m.load_state_dict({k: rng.uniform(-0.7, 0.7, v.shape) for k, v in m.state_dict().items()})
    return m.eval()


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def assert_bits(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    n = int(np.sum(bits(np.ascontiguousarray(got)) != bits(np.ascontiguousarray(want))))
    assert n == 0, f"{what}: {n} elements differ, max abs {np.abs(got - want).max():.3e}"


def states(cell: str, out: Any) -> list[np.ndarray]:
    return list(out) if cell == "LSTM" else [out]


@pytest.fixture(params=[1, 2], ids=["threads1", "threads2"])
def threads(request: pytest.FixtureRequest) -> Any:
    before = rnnkit.get_num_threads()
    rnnkit.set_num_threads(request.param)
    yield request.param
    rnnkit.set_num_threads(before)


# --------------------------------------------------------------------------- one stream


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("hidden", [13, 32])
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize(("cell", "kw"), CONFIGS)
def test_steps_equal_one_call_bit_for_bit(
    cell: str, kw: dict[str, Any], dtype: str, hidden: int, batch: int, kernel_isa: str
) -> None:
    m = make(cell, 6, hidden, dtype, seed=hidden + batch, **kw)
    real = "float32" if dtype == "bfloat16" else dtype
    x = np.random.default_rng(batch).standard_normal((11, batch, 6)).astype(real)
    y, st = m(x)
    s = m.stream(batch)
    ys = np.stack([s.step(x[t]) for t in range(11)])
    label = f"{kernel_isa} {cell} {kw} {dtype} H={hidden} B={batch}"
    assert_bits(ys, y, f"{label}: y")
    for name, got, want in zip(("h", "c"), states(cell, s.state), states(cell, st)):
        assert_bits(got, want, f"{label}: state {name}")


@pytest.mark.parametrize(
    ("cell", "I", "H", "B", "kw"),
    [
        ("LSTM", 16, 64, 32, {}),  # the sequence call splits its batch across threads
        ("LSTM", 24, 256, 1, {}),  # a batch-1 team splits the units across threads
        ("GRU", 24, 256, 1, {}),
        ("GRU", 24, 256, 1, {"reset_after": False}),
        ("GRU", 16, 128, 20, {"num_layers": 2}),
        ("RNN", 16, 512, 1, {}),
    ],
)
def test_steps_equal_one_call_with_threads(
    cell: str, I: int, H: int, B: int, kw: dict[str, Any], threads: int, kernel_isa: str
) -> None:
    m = make(cell, I, H, seed=3, **kw)
    x = np.random.default_rng(4).standard_normal((40, B, I)).astype(np.float32)
    y, st = m(x)
    s = m.stream(B)
    ys = np.stack([s.step(x[t]) for t in range(40)])
    label = f"{kernel_isa} {cell} H={H} B={B} {kw} threads={threads}"
    assert_bits(ys, y, f"{label}: y")
    for got, want in zip(states(cell, s.state), states(cell, st)):
        assert_bits(got, want, f"{label}: state")


@pytest.mark.parametrize(("cell", "kw"), [CONFIGS[1], CONFIGS[4], CONFIGS[7], CONFIGS[12]])
@pytest.mark.parametrize("batch_first", [False, True])
def test_run_chunks_steps_and_initial_state(
    cell: str, kw: dict[str, Any], batch_first: bool, kernel_isa: str
) -> None:
    """run(x[:4]) + 3 steps + run(x[7:]) from a set initial state = one call from it."""
    m = make(cell, 5, 20, seed=8, batch_first=batch_first, **kw)
    rng = np.random.default_rng(9)
    B, T, L = 3, 15, m.num_layers
    x = rng.standard_normal((B, T, 5) if batch_first else (T, B, 5)).astype(np.float32)
    h0 = rng.standard_normal((L, B, m.output_size)).astype(np.float32)
    c0 = rng.standard_normal((L, B, 20)).astype(np.float32)
    y, st = m(x, (h0, c0)) if cell == "LSTM" else m(x, h0)
    s = m.stream(B)
    s.state = (h0, c0) if cell == "LSTM" else h0
    t_axis = 1 if batch_first else 0
    step_in = [np.take(x, t, axis=t_axis) for t in range(4, 7)]
    parts = [s.run(np.take(x, range(4), axis=t_axis))]
    parts.append(np.stack([s.step(xt) for xt in step_in], axis=t_axis))
    parts.append(s.run(np.take(x, range(7, T), axis=t_axis)))
    assert_bits(np.concatenate(parts, axis=t_axis), y, f"{cell} {kw} chunks: y")
    for got, want in zip(states(cell, s.state), states(cell, st)):
        assert_bits(got, want, f"{cell} {kw} chunks: state")
    s.reset()
    y0, _ = m(x)
    assert_bits(s.run(x), y0, f"{cell} {kw} after reset")


def test_unbatched_steps_and_out(kernel_isa: str) -> None:
    m = make("LSTM", 4, 16, seed=1)
    x = np.random.default_rng(0).standard_normal((9, 4)).astype(np.float32)
    y, _ = m(x)  # unbatched: (T, I) -> (T, H)
    s = m.stream()
    out = np.empty(16, np.float32)
    got = []
    for t in range(9):
        r = s.step(x[t], out=out)
        assert r is out, "step(out=...) must return out itself"
        got.append(out.copy())
    assert_bits(np.stack(got), y, "unbatched steps into out")
    s.reset()
    assert_bits(s.run(x), y, "unbatched run")


def test_inputs_converted_only_when_exact(kernel_isa: str) -> None:
    m = make("GRU", 6, 16, seed=2)
    x = np.random.default_rng(1).standard_normal((8, 2, 12)).astype(np.float16)
    x_view = x[:, :, ::2]  # non-contiguous float16
    y, _ = m(x_view.astype(np.float32))
    s = m.stream(2)
    assert_bits(np.stack([s.step(x_view[t]) for t in range(8)]), y, "float16 strided input")
    before = s.state.copy()
    with pytest.raises(TypeError, match="x has dtype float64"):
        s.step(np.zeros((2, 6)))
    with pytest.raises(TypeError, match="dtype float64"):
        s.step([[0.0] * 6] * 2)  # a list of Python floats is float64
    with pytest.raises(ValueError, match=r"x has shape \(3, 6\); expected \(2, 6\)"):
        s.step(np.zeros((3, 6), np.float32))
    with pytest.raises(TypeError, match="out must be a writeable C-contiguous float32"):
        s.step(np.zeros((2, 6), np.float32), out=np.empty((2, 15), np.float32))
    with pytest.raises(TypeError, match="out must be"):
        s.step(np.zeros((2, 6), np.float32), out=np.empty((2, 16), np.float64))
    ro = np.empty((2, 16), np.float32)
    ro.flags.writeable = False
    with pytest.raises(TypeError, match="out must be a writeable"):
        s.step(np.zeros((2, 6), np.float32), out=ro)
    assert_bits(s.state, before, "state after rejected calls")


def test_stream_needs_eval_and_a_causal_module() -> None:
    m = rnnkit.LSTM(3, 8, seed=0)
    with pytest.raises(RuntimeError, match=r"\[LSTM.stream\] the module is in training mode"):
        m.stream()
    with pytest.raises(ValueError, match="bidirectional module cannot stream"):
        rnnkit.GRU(3, 8, bidirectional=True).eval().stream()
    with pytest.raises(ValueError, match="bidirectional module cannot stream"):
        rnnkit.GRU(3, 8, bidirectional=True).eval().streams(4)
    with pytest.raises(ValueError, match="reverse=True cannot stream"):
        rnnkit.RNN(3, 8, reverse=True).eval().stream()
    with pytest.raises(ValueError, match="batch must be >= 1"):
        m.eval().stream(0)
    s = m.stream()
    s.step(np.ones(3, np.float32))
    before = s.state
    m.train()
    with pytest.raises(RuntimeError, match="training mode"):
        s.step(np.ones(3, np.float32))
    m.eval()
    for got, want in zip(s.state, before):
        assert_bits(got, want, "state after a step refused in training mode")


def test_weights_loaded_later_are_used(kernel_isa: str) -> None:
    """The stream steps the module's current weights (load_state_dict repacks)."""
    a, b = make("LSTM", 4, 16, seed=1), make("LSTM", 4, 16, seed=2)
    x = np.random.default_rng(3).standard_normal((5, 1, 4)).astype(np.float32)
    s = a.stream()
    a.load_state_dict(b.state_dict())
    assert_bits(np.stack([s.step(x[t]) for t in range(5)]), b(x)[0], "after load_state_dict")


# --------------------------------------------------------------------------- banks


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize(
    ("cell", "kw"), [CONFIGS[1], CONFIGS[2], CONFIGS[5], CONFIGS[6], CONFIGS[9], CONFIGS[13]]
)
def test_bank_step_equals_a_batch_of_those_rows(
    cell: str, kw: dict[str, Any], dtype: str, kernel_isa: str
) -> None:
    m = make(cell, 5, 19, dtype, seed=5, **kw)
    real = "float32" if dtype == "bfloat16" else dtype
    bank = m.streams(capacity=40)
    bank.add(40)
    ids = np.random.default_rng(6).permutation(40)[:7]
    x = np.random.default_rng(7).standard_normal((9, 7, 5)).astype(real)
    y, st = m(x)
    got = np.stack([bank.step(ids, x[t]) for t in range(9)])
    label = f"{kernel_isa} {cell} {kw} {dtype}"
    assert_bits(got, y, f"{label}: bank y")
    for j, i in enumerate(ids):
        for got_s, want in zip(states(cell, bank.state(int(i))), states(cell, st)):
            assert_bits(got_s, want[:, j], f"{label}: state of stream {i}")
    untouched = [i for i in range(40) if i not in set(ids.tolist())]
    for i in untouched[:3]:
        for a in states(cell, bank.state(i)):
            assert not a.any(), f"{label}: stream {i} was never stepped but is not zero"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_bank_random_subsets_match_each_streams_own_call(
    cell: str, dtype: str, kernel_isa: str
) -> None:
    """Each stream sees its own sequence whatever else is stepped with it (to float rounding:
    a row's last bits may depend on which rows share its kernel call)."""
    m = make(cell, 4, 24, dtype, seed=11, num_layers=2)
    bank = m.streams(capacity=12)
    bank.add(12)
    rng = np.random.default_rng(12)
    seqs: dict[int, list[np.ndarray]] = {i: [] for i in range(12)}
    outs: dict[int, list[np.ndarray]] = {i: [] for i in range(12)}
    for _ in range(25):
        ids = rng.permutation(12)[: rng.integers(1, 13)]
        x = rng.standard_normal((len(ids), 4)).astype(dtype)
        y = bank.step(ids, x)
        for j, i in enumerate(ids):
            seqs[int(i)].append(x[j])
            outs[int(i)].append(y[j])
    tol = 2e-5 if dtype == "float32" else 1e-12
    for i in range(12):
        if not seqs[i]:
            continue
        y_ref, st = m(np.stack(seqs[i])[:, None])
        err = np.abs(np.stack(outs[i]) - y_ref[:, 0]).max()
        assert err < tol, f"{cell} {dtype}: stream {i} differs from its own call by {err:.2e}"
        for got, want in zip(states(cell, bank.state(i)), states(cell, st)):
            err = np.abs(got - want[:, 0]).max()
            assert err < tol, f"{cell} {dtype}: state of stream {i} off by {err:.2e}"


def test_bank_add_free_reset_and_state() -> None:
    m = make("LSTM", 3, 8, seed=1, num_layers=2)
    bank = m.streams(4)
    assert (len(bank), bank.num_free) == (0, 4)
    assert bank.add() == 0
    assert list(bank.add(2)) == [1, 2]
    assert list(bank.in_use) == [0, 1, 2]
    x = np.ones((2, 3), np.float32)
    bank.step([0, 2], x)
    h2, c2 = bank.state(2)
    assert h2.shape == (2, 8) and c2.shape == (2, 8) and h2.any() and c2.any()
    assert not bank.state(1)[0].any(), "stream 1 was not stepped"
    bank.free(2)
    with pytest.raises(ValueError, match="stream id 2 is free"):
        bank.step([2], x[:1])
    assert bank.add() == 2
    assert not bank.state(2)[0].any(), "a re-added stream must start at zero"
    bank.set_state(1, (h2, c2))
    for a, b in zip(bank.state(1), (h2, c2)):
        assert_bits(a, b, "set_state then state")
    y_set = bank.step([1], x[:1])
    y_ref, _ = m(x[:1, None], (h2[:, None], c2[:, None]))
    assert_bits(y_set, y_ref[0], "a step from a set state")
    bank.reset([1])
    assert not bank.state(1)[0].any() and not bank.state(1)[1].any()
    bank.step([0], x[:1])
    bank.reset()
    assert not bank.state(0)[0].any(), "reset() zeroes every stream"
    assert bank.add() == 3
    with pytest.raises(RuntimeError, match="no free streams"):
        bank.add()
    bank.free([0, 3])
    with pytest.raises(RuntimeError, match="no free streams"):
        bank.add(3)
    assert bank.num_free == 2, "a failed add(count) must give back the streams it took"


def test_bank_bad_input_changes_nothing() -> None:
    m = make("GRU", 3, 8, seed=4)
    bank = m.streams(6)
    bank.add(5)
    bank.step(np.arange(5), np.ones((5, 3), np.float32))
    before = [bank.state(i).copy() for i in range(5)]
    x2 = np.zeros((2, 3), np.float32)
    cases = [
        (ValueError, "stream id 1 appears twice", ([1, 1], x2)),
        (ValueError, "stream id 5 is free", ([0, 5], x2)),
        (ValueError, r"ids\[1\] = 6 is not a stream id of this bank \(0..5\)", ([0, 6], x2)),
        (ValueError, r"ids\[0\] = -1 is not a stream id", ([-1, 0], x2)),
        (TypeError, "ids must be integers; got dtype float64", ([0.0, 1.0], x2)),
        (ValueError, r"ids has shape \(1, 2\)", ([[0, 1]], x2)),
        (ValueError, r"x has shape \(2, 3\); expected \(3, 3\)", ([0, 1, 2], x2)),
        (TypeError, "x has dtype float64", ([0, 1], np.zeros((2, 3)))),
    ]
    for exc, msg, (ids, x) in cases:
        with pytest.raises(exc, match=msg):
            bank.step(ids, x)
    with pytest.raises(ValueError, match="id 9 is not a stream id"):
        bank.state(9)
    with pytest.raises(TypeError, match="id must be an int"):
        bank.state(1.0)
    with pytest.raises(ValueError, match=r"state h has shape \(2, 8\); expected \(1, 8\)"):
        bank.set_state(0, np.zeros((2, 8), np.float32))
    with pytest.raises(ValueError, match="stream id 5 is free"):
        bank.reset([5])
    for i in range(5):
        assert_bits(bank.state(i), before[i], f"stream {i} after rejected calls")


def test_bank_threads_with_disjoint_ids_equal_serial_steps() -> None:
    """Four threads step their own ids of one bank concurrently (large enough steps release
    the GIL); the states equal the same steps made one thread after another."""
    m = make("LSTM", 32, 128, seed=21)
    rng = np.random.default_rng(22)
    perm = rng.permutation(256)
    groups = [perm[k * 64 : (k + 1) * 64] for k in range(4)]
    xs = rng.standard_normal((4, 15, 64, 32)).astype(np.float32)

    def run(bank: rnnkit.StreamBank, k: int, out: list[Any]) -> None:
        try:
            out[k] = np.stack([bank.step(groups[k], xs[k, t]) for t in range(15)])
        except Exception as e:  # reported below
            out[k] = e

    serial = m.streams(256)
    serial.add(256)
    want: list[Any] = [None] * 4
    for k in range(4):
        run(serial, k, want)
    bank = m.streams(256)
    bank.add(256)
    got: list[Any] = [None] * 4
    workers = [threading.Thread(target=run, args=(bank, k, got)) for k in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for k in range(4):
        assert not isinstance(got[k], Exception), f"thread {k} raised {got[k]!r}"
        assert_bits(got[k], want[k], f"thread {k} outputs")
    for i in range(0, 256, 17):
        for a, b in zip(bank.state(i), serial.state(i)):
            assert_bits(a, b, f"state of stream {i}")


def test_bank_overlapping_ids_raise_and_never_corrupt() -> None:
    """Thread A steps streams 0..63 again and again while thread B keeps stepping stream 10,
    always with the same input row: calls that meet each other's ids raise ValueError, and
    every stream's state is that of as many steps as succeeded on it."""
    m = rnnkit.LSTM(32, 160, seed=31).eval()  # small weights: rounding differences do not grow
    x = np.random.default_rng(32).standard_normal((64, 32)).astype(np.float32)
    bank = m.streams(64)
    ids = bank.add(64)
    counts = {"a": 0, "b": 0}
    errors: list[str] = []
    stop = threading.Event()

    def a() -> None:
        deadline = time.monotonic() + 10
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                bank.step(ids, x)
                counts["a"] += 1
            except ValueError as e:
                errors.append(str(e))
            if counts["a"] >= 30 and any("in use by another call" in e for e in errors):
                stop.set()

    def b() -> None:
        while not stop.is_set():
            try:
                bank.step([10], x[10:11])
                counts["b"] += 1
            except ValueError as e:
                errors.append(str(e))

    workers = [threading.Thread(target=a), threading.Thread(target=b)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert any("stream id 10 is in use by another call" in e for e in errors), (
        f"no overlap was ever detected in {counts} steps; errors: {errors[:3]}"
    )
    assert all("in use by another call" in e for e in errors), errors[:3]
    # Streams other than 10 took exactly counts["a"] steps in batches of 64.
    ref = m.stream(64)
    for _ in range(counts["a"]):
        ref.step(x)
    h_ref, c_ref = ref.state
    for i in (0, 9, 11, 63):
        h, c = bank.state(i)
        assert_bits(h, h_ref[:, i], f"stream {i} after {counts['a']} steps")
        assert_bits(c, c_ref[:, i], f"stream {i} (c)")
    # Stream 10 took counts["a"] + counts["b"] steps, in batches of 64 or alone.
    one = m.stream(1)
    for _ in range(counts["a"] + counts["b"]):
        one.step(x[10])
    for got, want in zip(bank.state(10), one.state):
        err = np.abs(got - want[:, 0]).max()
        assert err < 1e-5, f"stream 10 off by {err:.2e} after {counts} steps: corrupted"
