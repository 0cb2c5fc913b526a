"""Property tests (hypothesis): structural identities every LSTM/GRU/RNN configuration obeys.

- bidirectional = forward (+) reversed-time forward (reversal within each sequence's length);
- a stack of L layers = L single-layer modules composed (dropout 0);
- a batch = its rows run one at a time;
- a lengths-masked batch = each sequence run alone, truncated to its length (padding -> 0);
- streaming one step per call, carrying the state = one sequence call;
- batch_first=True on the transposed input = batch_first=False;
- training flag does not change outputs when dropout = 0;
- 4 Python threads calling one model at once = the same calls made serially (bit-exact).

Shapes are tiny and random; each example also draws the dtype (float32 compared with
rtol = atol = 1e-5, float64 with 1e-12), the activations (parameterized ones too), bias,
proj_size, peepholes, reset_after, ONNX's clip, input_forget and reverse, initial states and
training mode.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnkit

TOL = {
    "float32": {"rtol": 1e-5, "atol": 1e-5},
    "float64": {"rtol": 1e-12, "atol": 1e-12},
}
EXAMPLES = settings(max_examples=100, deadline=None)
ACTS = ["tanh", "relu", "sigmoid", "linear", "softsign", ("leaky_relu", 0.1), ("elu", 0.5)]
GATE_ACTS = ["sigmoid", "hard_sigmoid", ("hard_sigmoid", 0.2, 0.5), ("scaled_tanh", 0.5, 2.0)]


@dataclass
class Config:
    """A module configuration; ``make`` builds it with weights drawn from ``seed``."""

    cell: str
    dtype: str
    input_size: int
    hidden_size: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    training: bool = True

    @property
    def num_layers(self) -> int:
        return int(self.kwargs.get("num_layers", 1))

    @property
    def num_dirs(self) -> int:
        return 2 if self.kwargs.get("bidirectional", False) else 1

    @property
    def hout(self) -> int:
        return int(self.kwargs.get("proj_size", 0)) or self.hidden_size

    def make(self, input_size: int | None = None, **overrides: Any) -> Any:
        cls = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}[self.cell]
        kwargs = {**self.kwargs, **overrides}
        m = cls(
            self.input_size if input_size is None else input_size,
            self.hidden_size,
            dtype=self.dtype,
            seed=self.seed,
            **kwargs,
        )
        if self.training:
            m.train()
        else:
            m.eval()
        return m

    def random_weights(self, m: Any) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed + 1)
        return {
            k: rng.uniform(-0.7, 0.7, v.shape).astype(self.dtype) for k, v in m.state_dict().items()
        }


@dataclass
class Problem:
    """A configuration plus time-major inputs for it."""

    cfg: Config
    x: np.ndarray  # (T, B, I)
    states: list[np.ndarray] | None  # [h0 (L*D, B, Hout), c0 (L*D, B, H)] or [h0]
    lengths: np.ndarray | None  # (B,) int64 in 1..T

    @property
    def steps(self) -> int:
        return self.x.shape[0]

    @property
    def batch(self) -> int:
        return self.x.shape[1]


@st.composite
def configs(
    draw: st.DrawFn,
    *,
    layers: tuple[int, int] = (1, 2),
    bidirectional: tuple[bool, ...] = (False, True),
    reverse: tuple[bool, ...] = (False, True),
) -> Config:
    cell = draw(st.sampled_from(["lstm", "gru", "rnn"]))
    # mostly tiny; sometimes wide enough for SIMD main loops plus remainders
    hidden = draw(st.one_of(st.integers(1, 5), st.sampled_from([8, 9, 16, 17])))
    bidi = draw(st.sampled_from(bidirectional))
    kwargs: dict[str, Any] = {
        "num_layers": draw(st.integers(*layers)),
        "bidirectional": bidi,
        "bias": draw(st.booleans()),
        "activation": draw(st.sampled_from(ACTS)),
        "clip": draw(st.sampled_from([None, None, 0.8])),
        "reverse": False if bidi else draw(st.sampled_from(reverse)),
    }
    if cell != "rnn":
        kwargs["recurrent_activation"] = draw(st.sampled_from(GATE_ACTS))
    if cell == "lstm":
        kwargs["proj_size"] = draw(st.integers(0, hidden - 1))
        kwargs["peephole"] = draw(st.booleans())
        kwargs["input_forget"] = draw(st.booleans())
        kwargs["cell_activation"] = draw(st.sampled_from([None, None, "softsign"]))
    elif cell == "gru":
        kwargs["reset_after"] = draw(st.booleans())
    return Config(
        cell=cell,
        dtype=draw(st.sampled_from(["float32", "float64"])),
        input_size=draw(st.integers(1, 4)),
        hidden_size=hidden,
        kwargs=kwargs,
        seed=draw(st.integers(0, 2**31 - 1)),
        training=draw(st.booleans()),
    )


@st.composite
def problems(
    draw: st.DrawFn,
    *,
    layers: tuple[int, int] = (1, 2),
    bidirectional: tuple[bool, ...] = (False, True),
    lengths: tuple[bool, ...] = (False, True),
    reverse: tuple[bool, ...] = (False, True),
    max_batch: int = 6,
) -> Problem:
    cfg = draw(configs(layers=layers, bidirectional=bidirectional, reverse=reverse))
    steps = draw(st.integers(1, 6))
    batch = draw(st.integers(1, max_batch))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    x = rng.normal(size=(steps, batch, cfg.input_size)).astype(cfg.dtype)
    states = None
    if draw(st.booleans()):
        ld = cfg.num_layers * cfg.num_dirs
        shapes = [(ld, batch, cfg.hout), (ld, batch, cfg.hidden_size)]
        states = [
            rng.normal(0, 0.5, s).astype(cfg.dtype)
            for s in shapes[: 2 if cfg.cell == "lstm" else 1]
        ]
    lens = None
    if draw(st.sampled_from(lengths)):
        lens = np.array(
            draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch)), dtype=np.int64
        )
    return Problem(cfg, x, states, lens)


def run(
    m: Any,
    cell: str,
    x: np.ndarray,
    states: list[np.ndarray] | None,
    lengths: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Forward; returns [y, h_n] (GRU) or [y, h_n, c_n] (LSTM)."""
    if cell == "lstm":
        hx = None if states is None else (states[0], states[1])
        y, (h_n, c_n) = m(x, hx, lengths=lengths)
        return [y, h_n, c_n]
    y, h_n = m(x, None if states is None else states[0], lengths=lengths)
    return [y, h_n]


NAMES = ["y", "h_n", "c_n"]


def assert_outputs_close(
    got: list[np.ndarray],
    want: list[np.ndarray],
    dtype: str,
    what: str,
    noise: list[np.ndarray] | None = None,
) -> None:
    """``got`` equals ``want`` within TOL, plus 4x the problem's own rounding ``noise`` if given.

    Two float32 runs that sum in different orders (a batch and its rows one at a time) differ by
    rounding, and a model whose gates leave [0, 1] (scaled_tanh) with a linear activation amplifies
    it step by step; ``noise`` is how far float32 lands from float64 on the same problem.
    """
    for i, (name, g, w) in enumerate(zip(NAMES, got, want)):
        assert g.shape == w.shape, f"{what}: {name} shape {g.shape} != {w.shape}"
        assert g.dtype == np.dtype(dtype), f"{what}: {name} dtype {g.dtype}, want {dtype}"
        diff = np.abs(g.astype(np.float64) - w)
        bound = TOL[dtype]["atol"] + TOL[dtype]["rtol"] * np.abs(w.astype(np.float64))
        if noise is not None:
            bound = bound + 4.0 * noise[i]
        worst = float(np.max(diff - bound, initial=-np.inf))
        assert worst <= 0.0, (
            f"{what}: {name} max abs diff {float(np.max(diff, initial=0.0)):.3e} exceeds "
            f"{TOL[dtype]} + 4 x float32 rounding noise by {worst:.3e}"
        )


def rounding_noise(p: Problem, m: Any, got: list[np.ndarray]) -> list[np.ndarray] | None:
    """|float32 result - float64 result| of ``m`` on ``p`` per element (None for float64)."""
    cfg = p.cfg
    if cfg.dtype != "float32":
        return None
    wide = Config(
        cfg.cell, "float64", cfg.input_size, cfg.hidden_size, cfg.kwargs, cfg.seed, cfg.training
    ).make()
    wide.load_state_dict({k: v.astype(np.float64) for k, v in m.state_dict().items()})
    states = None if p.states is None else [s.astype(np.float64) for s in p.states]
    ref = run(wide, cfg.cell, p.x.astype(np.float64), states, p.lengths)
    return [np.abs(g.astype(np.float64) - r) for g, r in zip(got, ref)]


def zero_states(p: Problem) -> list[np.ndarray]:
    cfg = p.cfg
    ld = cfg.num_layers * cfg.num_dirs
    shapes = [(ld, p.batch, cfg.hout), (ld, p.batch, cfg.hidden_size)]
    return [np.zeros(s, cfg.dtype) for s in shapes[: 2 if cfg.cell == "lstm" else 1]]


def full_lengths(p: Problem) -> np.ndarray:
    return np.full(p.batch, p.steps, dtype=np.int64) if p.lengths is None else p.lengths


def reverse_within(a: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Reverse each column b of a time-major array within its first lengths[b] steps;
    positions past the length become 0."""
    out = np.zeros_like(a)
    for b, n in enumerate(lengths):
        out[:n, b] = a[:n, b][::-1]
    return out


@EXAMPLES
@given(problems(layers=(1, 1), bidirectional=(True,)))
def test_bidirectional_is_forward_plus_reversed_forward(p: Problem) -> None:
    cfg = p.cfg
    bi = cfg.make()
    sd = cfg.random_weights(bi)
    bi.load_state_dict(sd)
    fwd = cfg.make(bidirectional=False)
    rev = cfg.make(bidirectional=False)
    fwd.load_state_dict({k: v for k, v in sd.items() if not k.endswith("_reverse")})
    rev.load_state_dict(
        {k.removesuffix("_reverse"): v for k, v in sd.items() if k.endswith("_reverse")}
    )

    got = run(bi, cfg.cell, p.x, p.states, p.lengths)
    lens = full_lengths(p)
    st_f = None if p.states is None else [s[0:1] for s in p.states]
    st_r = None if p.states is None else [s[1:2] for s in p.states]
    out_f = run(fwd, cfg.cell, p.x, st_f, p.lengths)
    out_r = run(rev, cfg.cell, reverse_within(p.x, lens), st_r, p.lengths)
    want = [np.concatenate([out_f[0], reverse_within(out_r[0], lens)], axis=-1)]
    want += [np.concatenate([f, r], axis=0) for f, r in zip(out_f[1:], out_r[1:])]
    assert_outputs_close(got, want, cfg.dtype, f"bidirectional {cfg}")


def layer_state_dict(sd: dict[str, np.ndarray], layer: int) -> dict[str, np.ndarray]:
    """Keys of one layer of a stack, renamed to layer 0."""
    pat = re.compile(rf"^(.*)_l{layer}(_reverse)?$")
    out = {}
    for k, v in sd.items():
        mt = pat.match(k)
        if mt:
            out[f"{mt.group(1)}_l0{mt.group(2) or ''}"] = v
    return out


@EXAMPLES
@given(problems(layers=(2, 3)))
def test_stack_is_composition_of_single_layers(p: Problem) -> None:
    cfg = p.cfg
    stack = cfg.make(dropout=0.0)
    sd = cfg.random_weights(stack)
    stack.load_state_dict(sd)
    got = run(stack, cfg.cell, p.x, p.states, p.lengths)

    d = cfg.num_dirs
    inp = p.x
    finals: list[list[np.ndarray]] = []
    for layer in range(cfg.num_layers):
        size = cfg.input_size if layer == 0 else d * cfg.hout
        single = cfg.make(input_size=size, num_layers=1)
        single.load_state_dict(layer_state_dict(sd, layer))
        st_l = None if p.states is None else [s[layer * d : (layer + 1) * d] for s in p.states]
        out = run(single, cfg.cell, inp, st_l, p.lengths)
        inp = out[0]
        finals.append(out[1:])
    want = [inp] + [np.concatenate([f[i] for f in finals], axis=0) for i in range(len(finals[0]))]
    assert_outputs_close(got, want, cfg.dtype, f"stack vs composition {cfg}")


@EXAMPLES
@given(problems())
def test_batch_equals_rows_one_by_one(p: Problem) -> None:
    cfg = p.cfg
    m = cfg.make()
    m.load_state_dict(cfg.random_weights(m))
    got = run(m, cfg.cell, p.x, p.states, p.lengths)
    rows = []
    for b in range(p.batch):
        st_b = None if p.states is None else [s[:, b : b + 1] for s in p.states]
        lens_b = None if p.lengths is None else p.lengths[b : b + 1]
        rows.append(run(m, cfg.cell, p.x[:, b : b + 1], st_b, lens_b))
    want = [np.concatenate([r[0] for r in rows], axis=1)]
    want += [np.concatenate([r[i] for r in rows], axis=1) for i in range(1, len(got))]
    noise = rounding_noise(p, m, got)
    assert_outputs_close(got, want, cfg.dtype, f"batch vs rows {cfg}", noise)


@EXAMPLES
@given(problems(lengths=(True,)))
def test_lengths_equal_truncated_runs(p: Problem) -> None:
    cfg = p.cfg
    assert p.lengths is not None
    m = cfg.make()
    m.load_state_dict(cfg.random_weights(m))
    got = run(m, cfg.cell, p.x, p.states, p.lengths)
    noise = rounding_noise(p, m, got)
    y = got[0]
    for b, n in enumerate(p.lengths):
        pad = y[n:, b]
        assert np.all(pad == 0), (
            f"{cfg}: outputs past length {n} of row {b} are not exactly 0 "
            f"(max abs {np.max(np.abs(pad)):.3e})"
        )
        st_b = None if p.states is None else [s[:, b : b + 1] for s in p.states]
        alone = run(m, cfg.cell, p.x[:n, b : b + 1], st_b)
        assert_outputs_close(
            [y[:n, b : b + 1]] + [s[:, b : b + 1] for s in got[1:]],
            alone,
            cfg.dtype,
            f"row {b} (length {n} of {p.steps}) vs truncated run {cfg}",
            None
            if noise is None
            else [noise[0][:n, b : b + 1]] + [e[:, b : b + 1] for e in noise[1:]],
        )


@EXAMPLES
@given(problems(bidirectional=(False,), lengths=(False,), reverse=(False,)))
def test_streaming_equals_sequence_call(p: Problem) -> None:
    cfg = p.cfg
    m = cfg.make()
    m.load_state_dict(cfg.random_weights(m))
    got = run(m, cfg.cell, p.x, p.states)
    states = p.states
    ys = []
    for t in range(p.steps):
        out = run(m, cfg.cell, p.x[t : t + 1], states)
        ys.append(out[0])
        states = out[1:]
    assert states is not None
    assert_outputs_close(
        got, [np.concatenate(ys, axis=0), *states], cfg.dtype, f"streaming vs sequence {cfg}"
    )


@EXAMPLES
@given(problems())
def test_batch_first_equals_time_major(p: Problem) -> None:
    cfg = p.cfg
    tm = cfg.make(batch_first=False)
    sd = cfg.random_weights(tm)
    tm.load_state_dict(sd)
    bf = cfg.make(batch_first=True)
    bf.load_state_dict(sd)
    want = run(tm, cfg.cell, p.x, p.states, p.lengths)
    got = run(bf, cfg.cell, np.ascontiguousarray(p.x.swapaxes(0, 1)), p.states, p.lengths)
    got[0] = got[0].swapaxes(0, 1)
    assert_outputs_close(got, want, cfg.dtype, f"batch_first vs time-major {cfg}")


@EXAMPLES
@given(problems())
def test_training_flag_does_not_change_outputs_without_dropout(p: Problem) -> None:
    cfg = p.cfg
    m = cfg.make(dropout=0.0)
    m.load_state_dict(cfg.random_weights(m))
    m.train()
    train_out = run(m, cfg.cell, p.x, p.states, p.lengths)
    m.eval()
    eval_out = run(m, cfg.cell, p.x, p.states, p.lengths)
    # eval runs the packed kernels, train the training path: the sums run in other orders
    noise = rounding_noise(p, m, eval_out)
    assert_outputs_close(eval_out, train_out, cfg.dtype, f"eval vs train {cfg}", noise)


THREAD_CASES = [
    (cell, dtype, training)
    for cell in ("lstm", "gru", "rnn")
    for dtype in ("float32", "float64")
    for training in (False, True)
]


@pytest.mark.parametrize(
    ("cell", "dtype", "training"),
    THREAD_CASES,
    ids=[f"{c}-{d}-{'train' if t else 'eval'}" for c, d, t in THREAD_CASES],
)
def test_concurrent_calls_match_serial(cell: str, dtype: str, training: bool) -> None:
    """4 threads share one model, each with its own input shape; results are bit-exact."""
    kwargs: dict[str, Any] = {"num_layers": 2, "bidirectional": True}
    if cell == "lstm":
        kwargs["proj_size"] = 16
    cfg = Config(cell, dtype, 8, 32, kwargs, seed=5, training=training)
    m = cfg.make()
    m.load_state_dict(cfg.random_weights(m))
    rng = np.random.default_rng(0)
    # different T and B per thread, so any shared per-call workspace would be resized
    inputs = []
    for k, (steps, batch) in enumerate([(60, 1), (25, 9), (47, 3), (16, 16)]):
        x = rng.normal(size=(steps, batch, 8)).astype(dtype)
        lens = rng.integers(1, steps + 1, size=batch) if k % 2 else None
        inputs.append((x, lens))
    serial = [run(m, cell, x, None, lens) for x, lens in inputs]

    rounds = 20
    barrier = threading.Barrier(len(inputs))
    results: list[list[list[np.ndarray]]] = [[] for _ in inputs]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            x, lens = inputs[k]
            barrier.wait()
            for _ in range(rounds):
                results[k].append(run(m, cell, x, None, lens))
        except BaseException as e:  # noqa: BLE001 - reported in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"a thread raised: {errors[0]!r}"
    for k, res in enumerate(results):
        assert len(res) == rounds, f"thread {k} finished {len(res)}/{rounds} calls"
        for r, outs in enumerate(res):
            for name, got, want in zip(NAMES, outs, serial[k]):
                diff = float(np.max(np.abs(got.astype(np.float64) - want)))
                assert np.array_equal(got, want), (
                    f"thread {k} call {r}: {name} differs from the serial result "
                    f"(max abs diff {diff:.3e})"
                )
