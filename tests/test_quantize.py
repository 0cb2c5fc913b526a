"""``Sequential.quantize("bfloat16")``: every recurrent and Dense layer's weights rounded to
bfloat16 for inference, the recurrent layers on the core's bfloat16 kernels."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import reference as ref

import rnnkit
from rnnkit import _core
from rnnkit import layers as L
from rnnkit.models import Sequential, load_model


def build_model(seed: int = 0, dtype: str = "float32") -> Sequential:
    model = Sequential(
        [
            L.Input(shape=(12, 5), dtype=dtype),
            L.LSTM(24, return_sequences=True, dtype=dtype),
            L.GRU(16, return_sequences=True, reset_after=False, dtype=dtype),
            L.Bidirectional(
                L.SimpleRNN(8, return_sequences=True, dtype=dtype), merge_mode="sum", dtype=dtype
            ),
            L.LSTM(32, dtype=dtype),
            L.Dense(3, activation="softmax", dtype=dtype),
        ]
    )
    rng = np.random.default_rng(seed)
    model.set_weights([0.4 * rng.standard_normal(w.shape) for w in model.get_weights()])
    return model


def data(n: int = 9) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n, 12, 5)).astype(np.float32)


def test_quantize_rounds_every_weight_and_predicts_as_the_rounded_float32_model() -> None:
    model = build_model()
    weights = model.get_weights()
    x = data()
    y32 = model.predict(x, verbose=0)
    model.quantize("bfloat16")
    assert model.quantization_mode == "bfloat16"
    for i, (w, got) in enumerate(zip(weights, model.get_weights())):
        want = _core.round_bf16(w)
        assert np.array_equal(got, want), f"weight {i} is not its bfloat16 rounding"
    for layer in model.layers:
        core = getattr(getattr(layer, "layer", layer), "_core", None)
        if core is not None:
            assert core.weight_dtype == "bfloat16", f"{layer.name}: core not on bfloat16 kernels"
    y16 = model.predict(x, verbose=0)
    # the same rounded weights in a float32 model: equal where the bfloat16 kernels widen the
    # weights (h stays float32), within bfloat16's rounding of h where they round it too
    same = build_model()
    same.set_weights(model.get_weights())
    want = same.predict(x, verbose=0)
    if _core.bf16_info()["rounds_h"]:
        err = ref.scaled_error(y16, want)
        assert err < 5e-3, f"quantized vs float32 with the rounded weights: {err:.2e} of scale"
    else:
        assert np.array_equal(y16, want), "quantized vs float32 with the rounded weights differ"
    err32 = ref.scaled_error(y16, y32)
    assert 1e-5 < err32 < 2e-2, f"quantized vs the original float32 model: {err32:.2e} of scale"


def test_quantized_model_is_inference_only_and_survives_save_load_and_pickle(tmp_path) -> None:
    model = build_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.quantize("bfloat16")
    x, y = data(), np.arange(9) % 3
    before = model.get_weights()
    with pytest.raises(RuntimeError, match=r"quantized to bfloat16.*inference only"):
        model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(RuntimeError, match=r"quantized to bfloat16.*inference only"):
        model.train_on_batch(x, y)
    with pytest.raises(RuntimeError, match="inference only"):
        model.layers[-1].forward(np.ones((2, 32), np.float32), training=True)
    for w, b in zip(model.get_weights(), before):
        assert np.array_equal(w, b), "a refused training call changed the weights"
    loss = model.evaluate(x, y, verbose=0)
    assert np.isfinite(loss)
    pred = model.predict(x, verbose=0)
    path = tmp_path / "q.rnnkit"
    model.save(path)
    copies = (("load_model", load_model(path)), ("pickle", pickle.loads(pickle.dumps(model))))
    for name, again in copies:
        assert again.quantization_mode == "bfloat16", f"{name} lost the quantization"
        got = again.predict(x, verbose=0)
        assert np.array_equal(got, pred), (
            f"{name}: predictions differ by {np.abs(got - pred).max()}"
        )
        with pytest.raises(RuntimeError, match="inference only"):
            again.train_on_batch(x, y)


def test_load_weights_into_a_quantized_model_rounds_them(tmp_path) -> None:
    source = build_model(seed=3)
    path = tmp_path / "w.rnnkit"
    source.save_weights(path)
    model = build_model()
    model.quantize("bfloat16")
    model.load_weights(path)
    for i, (got, w) in enumerate(zip(model.get_weights(), source.get_weights())):
        assert np.array_equal(got, _core.round_bf16(w)), f"weight {i} loaded without rounding"


def test_quantize_refuses_bad_calls_and_changes_nothing() -> None:
    model = build_model()
    before = model.get_weights()
    for mode, err, text in (
        ("int8", ValueError, r"mode 'int8' is not supported; rnnkit has 'bfloat16'"),
        (16, TypeError, "quantize mode must be a string"),
    ):
        with pytest.raises(err, match=text):
            model.quantize(mode)
    for w, b in zip(model.get_weights(), before):
        assert np.array_equal(w, b), "a refused quantize changed the weights"
    assert model.quantization_mode is None
    with pytest.raises(RuntimeError, match="not built"):
        Sequential([L.LSTM(4), L.Dense(1)]).quantize("bfloat16")
    wide = build_model(dtype="float64")
    with pytest.raises(TypeError, match="needs float32 layers"):
        wide.quantize("bfloat16")
    assert wide.quantization_mode is None
    assert all(
        getattr(getattr(lay, "layer", lay), "_core", None) is None
        or getattr(lay, "layer", lay)._core.weight_dtype == "float64"
        for lay in wide.layers
    ), "a refused quantize converted a layer"


def test_quantized_model_streams_like_its_sequence_call() -> None:
    """The recurrent layers of a quantized model stream on the same bfloat16 kernels as its
    sequence call: bit for bit (a Dense head would add numpy's row-count-dependent sums)."""
    model = Sequential(
        [
            L.Input(shape=(None, 5)),
            L.LSTM(16, return_sequences=True),
            L.GRU(8, return_sequences=True),
        ]
    )
    rng = np.random.default_rng(4)
    model.set_weights([0.4 * rng.standard_normal(w.shape) for w in model.get_weights()])
    model.quantize("bfloat16")
    x = rng.standard_normal((3, 10, 5)).astype(np.float32)
    want = model.predict(x, verbose=0)
    s = model.stream(batch=3)
    got = np.stack([s.step(x[:, t]) for t in range(10)], axis=1)
    assert np.array_equal(got, want), f"stream vs sequence call: {np.abs(got - want).max():.2e}"


def test_float64_is_refused_with_the_layer_names() -> None:
    with pytest.raises(TypeError, match="'lstm"):
        build_model(dtype="float64").quantize("bfloat16")
    assert rnnkit.LSTM  # the core module API is unchanged: .bfloat16() is its own switch
