"""``Sequential.stream()``: Keras-shaped models one time step at a time.

Each step's output equals ``predict`` for the last step of the sequence so far (bit for bit
through recurrent layers; to float rounding through Dense, whose numpy product sees one step's
rows instead of all steps' rows); run() = stacked steps; states get/set/reset; non-causal
layers refuse with the layer's name.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.layers import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    RepeatVector,
    SimpleRNN,
)
from rnnkit.models import Sequential


def bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_recurrent_stack_steps_equal_predict_bit_for_bit(dtype: str) -> None:
    model = Sequential(
        [
            LSTM(16, return_sequences=True, input_shape=(None, 3), dtype=dtype),
            Dropout(0.3),
            GRU(8, return_sequences=True, reset_after=False, dtype=dtype),
            SimpleRNN(5, return_sequences=True, dtype=dtype),
        ]
    )
    x = np.random.default_rng(0).standard_normal((4, 12, 3)).astype(dtype)
    want = model.predict(x, verbose=0)
    s = model.stream(batch=4)
    got = np.stack([s.step(x[:, t]) for t in range(12)], axis=1)
    assert bits_equal(got, want), f"max abs diff {np.abs(got - want).max():.2e}"
    s.reset()
    assert bits_equal(s.run(x), want), "run() after reset differs from predict"


def test_last_step_model_matches_predict_on_each_prefix() -> None:
    model = Sequential([LSTM(12, input_shape=(None, 4)), Dense(3, activation="softmax")])
    x = np.random.default_rng(1).standard_normal((2, 9, 4)).astype(np.float32)
    s = model.stream(batch=2)
    for t in range(9):
        y_t = s.step(x[:, t])
        want = model.predict(x[:, : t + 1], verbose=0)
        err = np.abs(y_t - want).max()
        assert y_t.shape == (2, 3) and err < 1e-6, f"step {t}: off by {err:.2e}"


def test_embedding_model_steps_on_token_ids() -> None:
    model = Sequential(
        [Embedding(20, 5, input_shape=(None,)), GRU(8, return_sequences=True), Dense(20)]
    )
    ids = np.random.default_rng(2).integers(0, 20, size=(3, 7))
    want = model.predict(ids, verbose=0)
    s = model.stream(batch=3)
    got = np.stack([s.step(ids[:, t]) for t in range(7)], axis=1)
    err = np.abs(got - want).max()
    assert got.shape == (3, 7, 20) and err < 1e-6, f"embedding model off by {err:.2e}"
    with pytest.raises(ValueError, match="ids outside 0..19"):
        s.step(np.array([1, 2, 25]))


def test_state_get_set_continues_the_sequences() -> None:
    model = Sequential([LSTM(6, return_sequences=True, input_shape=(None, 2)), GRU(5)])
    x = np.random.default_rng(3).standard_normal((2, 10, 2)).astype(np.float32)
    want = model.predict(x, verbose=0)
    s = model.stream(batch=2)
    s.run(x[:, :6])
    saved = s.state
    assert [len(saved[0]), saved[1].shape] == [2, (2, 5)]
    assert saved[0][0].shape == (2, 6) and saved[0][1].shape == (2, 6)
    s.reset()
    other = model.stream(batch=2)
    other.state = saved
    ys = [other.step(x[:, t]) for t in range(6, 10)]
    assert bits_equal(ys[-1], want), "steps from a copied state do not continue the sequences"
    with pytest.raises(ValueError, match=r"expected \(2, 5\)"):
        other.state = [saved[0], np.zeros((3, 5))]


def test_non_causal_layers_refuse_naming_the_layer() -> None:
    bi = Sequential([Bidirectional(LSTM(4, name="enc"), input_shape=(None, 3), name="bi")])
    with pytest.raises(ValueError, match=r"layer 'bi' \(Bidirectional\) reads the sequence"):
        bi.stream()
    back = Sequential([GRU(4, go_backwards=True, input_shape=(None, 3), name="rev")])
    with pytest.raises(ValueError, match=r"layer 'rev' \(GRU\) has go_backwards=True"):
        back.stream()
    rep = Sequential([LSTM(4, input_shape=(None, 3)), RepeatVector(3, name="rep"), GRU(2)])
    with pytest.raises(ValueError, match=r"layer 'rep' \(RepeatVector\) has no per-step form"):
        rep.stream()
    dense_only = Sequential([Dense(2, input_shape=(5, 3))])
    with pytest.raises(ValueError, match="no recurrent layer"):
        dense_only.stream()
    unbuilt = Sequential([LSTM(3)])
    with pytest.raises(ValueError, match="not built"):
        unbuilt.stream()


def test_step_shape_errors() -> None:
    model = Sequential([LSTM(4, input_shape=(None, 3))])
    s = model.stream(batch=2)
    with pytest.raises(ValueError, match=r"x has shape \(2, 4\); expected \(2, 3\)"):
        s.step(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"x has shape \(3, 3\)"):
        s.step(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="batch must be an int >= 1"):
        model.stream(batch=0)
