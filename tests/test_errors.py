"""Every bad input gets a clear ValueError/TypeError and leaves the module unchanged."""

from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np
import pytest

import rnnkit
from rnnkit import _core

I, H, T, B = 4, 5, 6, 3


def snapshot(m: Any) -> dict[str, Any]:
    """Everything a failed call must not change: parameters, gradients, mode, pending cache."""
    return {
        "params": m.state_dict(),
        "grads": {k: v.copy() for k, v in m.grads.items()},
        "training": m.training,
        "cache": m._cache,
    }


def assert_unchanged(m: Any, before: dict[str, Any]) -> None:
    after = snapshot(m)
    for kind in ("params", "grads"):
        for k, v in before[kind].items():
            diff = np.abs(after[kind][k] - v).max()
            assert diff == 0, f"{kind} {k} changed by {diff} after a rejected call"
    assert after["training"] == before["training"]
    assert after["cache"] is before["cache"], "the pending forward cache changed"


def expect(exc: type[Exception], pattern: str, m: Any, fn: Callable[[], Any]) -> None:
    before = snapshot(m)
    with pytest.raises(exc, match=pattern):
        fn()
    assert_unchanged(m, before)


@pytest.fixture(params=["LSTM", "GRU"])
def module(request: pytest.FixtureRequest) -> Any:
    m = getattr(rnnkit, request.param)(I, H, num_layers=2, seed=1)
    # A pending training forward, so failed backward calls can be checked not to consume it.
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    m(x)
    return m


def x32(*shape: int) -> np.ndarray:
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------- forward inputs


def test_wrong_ndim(module: Any) -> None:
    expect(
        ValueError,
        r"x has 4 dims; expected \(time, batch, 4\)",
        module,
        lambda: module(x32(T, B, I, 1)),
    )
    expect(ValueError, r"x has 1 dims", module, lambda: module(x32(I)))


def test_wrong_feature_size(module: Any) -> None:
    expect(
        ValueError,
        re.escape("x has shape (6, 3, 7); expected (time, batch, 4)"),
        module,
        lambda: module(x32(T, B, 7)),
    )
    expect(
        ValueError,
        re.escape("x has shape (6, 7); expected unbatched (time, 4)"),
        module,
        lambda: module(x32(T, 7)),
    )


def test_batch_first_message_names_the_layout() -> None:
    m = rnnkit.GRU(I, H, batch_first=True)
    expect(ValueError, re.escape("expected (batch, time, 4)"), m, lambda: m(x32(B, T, 9)))


@pytest.mark.parametrize("shape", [(0, B, I), (T, 0, I), (0, I)])
def test_empty_batch_or_time(module: Any, shape: tuple[int, ...]) -> None:
    expect(ValueError, r"must be >= 1|expected unbatched", module, lambda: module(x32(*shape)))


def test_float64_into_float32_module(module: Any) -> None:
    x = np.zeros((T, B, I))
    expect(
        TypeError,
        r"x has dtype float64; this module computes in float32; pass x.astype",
        module,
        lambda: module(x),
    )


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((T, B, I), np.int64),
        np.zeros((T, B, I), np.complex64),
        [["a"]],
        np.zeros((T, B, I), object),
    ],
)
def test_non_float_input(module: Any, bad: Any) -> None:
    expect(TypeError, r"x (has dtype|must be)", module, lambda: module(bad))


def test_state_shapes(module: Any) -> None:
    LD = 2
    if module._cell == "LSTM":
        good_h, good_c = np.zeros((LD, B, H), np.float32), np.zeros((LD, B, H), np.float32)
        expect(
            ValueError,
            re.escape("h0 has shape (1, 3, 5); expected (2, 3, 5)"),
            module,
            lambda: module(x32(T, B, I), (np.zeros((1, B, H), np.float32), good_c)),
        )
        expect(
            ValueError,
            re.escape("c0 has shape (2, 4, 5); expected (2, 3, 5)"),
            module,
            lambda: module(x32(T, B, I), (good_h, np.zeros((LD, 4, H), np.float32))),
        )
        expect(
            TypeError,
            r"hx must be a tuple \(h0, c0\)",
            module,
            lambda: module(x32(T, B, I), good_h),
        )
        expect(
            TypeError,
            r"h0 has dtype float64",
            module,
            lambda: module(x32(T, B, I), (np.zeros((LD, B, H)), good_c)),
        )
    else:
        expect(
            ValueError,
            re.escape("h0 has shape (2, 3, 4); expected (2, 3, 5)"),
            module,
            lambda: module(x32(T, B, I), np.zeros((LD, B, 4), np.float32)),
        )
        expect(
            ValueError,
            re.escape("h0 has shape (2, 5); expected (2, 3, 5)"),
            module,
            lambda: module(x32(T, B, I), np.zeros((LD, H), np.float32)),
        )


@pytest.mark.parametrize(
    ("lengths", "exc", "pattern"),
    [
        (np.array([6, 6]), ValueError, re.escape("lengths has shape (2,); expected (3,)")),
        (np.array([[6, 6, 6]]), ValueError, "lengths has shape"),
        (np.array([6, 0, 2]), ValueError, r"lengths must be in 1..6 .* got min 0"),
        (np.array([7, 1, 2]), ValueError, r"lengths must be in 1..6 .* max 7"),
        (np.array([-1, 1, 2]), ValueError, r"lengths must be in 1..6"),
        (np.array([2**40, 1, 2]), ValueError, r"lengths must be in 1..6"),
        (np.array([1.0, 2.0, 3.0]), TypeError, r"lengths must be integers"),
    ],
)
def test_bad_lengths(module: Any, lengths: Any, exc: type[Exception], pattern: str) -> None:
    expect(exc, pattern, module, lambda: module(x32(T, B, I), lengths=lengths))


# ----------------------------------------------------------------------------- constructor


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        (
            {"activation": "gelu"},
            ValueError,
            r"activation must be one of 'tanh', 'relu', 'sigmoid', 'linear', .*; got 'gelu'",
        ),
        (
            {"recurrent_activation": ("leaky_relu", 0.1, 0.2)},
            ValueError,
            r"recurrent_activation 'leaky_relu' takes only alpha; got beta = 0.2",
        ),
        ({"num_layers": 0}, ValueError, r"num_layers must be >= 1; got 0"),
        ({"num_layers": 1.5}, TypeError, r"num_layers must be an int"),
        ({"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\); got 1.0"),
        ({"dropout": "0.1"}, TypeError, r"dropout must be a number"),
        (
            {"dtype": "float16"},
            TypeError,
            r"dtype must be 'float32', 'float64' or 'bfloat16' .*; got 'float16'",
        ),
        ({"dtype": "nonsense"}, TypeError, r"dtype must be 'float32', 'float64' or 'bfloat16'"),
        ({"bidirectional": "yes"}, TypeError, r"bidirectional must be a bool"),
    ],
)
@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_constructor_errors(
    cell: str, kwargs: dict[str, Any], exc: type[Exception], pattern: str
) -> None:
    with pytest.raises(exc, match=pattern):
        getattr(rnnkit, cell)(I, H, **kwargs)


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        ((0, H), "input_size must be >= 1"),
        ((I, -2), "hidden_size must be >= 1"),
        ((True, H), "input_size must be an int"),
    ],
)
def test_constructor_sizes(args: tuple[Any, ...], pattern: str) -> None:
    with pytest.raises((ValueError, TypeError), match=pattern):
        rnnkit.LSTM(*args)


def test_proj_size_must_be_smaller_than_hidden() -> None:
    with pytest.raises(
        ValueError, match=r"proj_size must be smaller than hidden_size \(5\); got 5"
    ):
        rnnkit.LSTM(I, H, proj_size=H)


# ----------------------------------------------------------------------------- backward


def test_backward_before_forward() -> None:
    for m in (rnnkit.LSTM(I, H), rnnkit.GRU(I, H)):
        expect(
            ValueError,
            r"no forward to differentiate: call the module in training mode",
            m,
            lambda m=m: m.backward(np.zeros((T, B, H), np.float32)),
        )


def test_backward_after_eval_forward() -> None:
    m = rnnkit.LSTM(I, H).eval()
    m(x32(T, B, I))
    expect(
        ValueError,
        r"no forward to differentiate",
        m,
        lambda: m.backward(np.zeros((T, B, H), np.float32)),
    )


def test_backward_twice(module: Any) -> None:
    y = module(x32(T, B, I))[0]
    module.backward(np.ones_like(y))
    expect(
        ValueError,
        r"each forward supports one backward",
        module,
        lambda: module.backward(np.ones_like(y)),
    )


def test_backward_bad_dy_keeps_cache(module: Any) -> None:
    expect(
        ValueError,
        re.escape("dy has shape (6, 3, 4); expected (6, 3, 5), the shape of the forward's output"),
        module,
        lambda: module.backward(np.zeros((T, B, 4), np.float32)),
    )
    expect(TypeError, r"dy has dtype float64", module, lambda: module.backward(np.zeros((T, B, H))))
    # The cache survived the failures: a valid backward still works.
    dx = module.backward(np.ones((T, B, H), np.float32))[0]
    assert dx.shape == (T, B, I) and np.abs(dx).max() > 0


def test_backward_bad_state_grad(module: Any) -> None:
    bad = np.zeros((1, B, H), np.float32)
    dstate = (bad, None) if module._cell == "LSTM" else bad
    expect(
        ValueError,
        re.escape("dh_n has shape (1, 3, 5); expected (2, 3, 5)"),
        module,
        lambda: module.backward(np.zeros((T, B, H), np.float32), dstate),
    )


# ----------------------------------------------------------------------------- state dicts


def test_load_state_dict_missing_extra_misshaped(module: Any) -> None:
    good = module.state_dict()
    missing = dict(good)
    del missing["weight_hh_l1"]
    expect(
        ValueError, r"missing \['weight_hh_l1'\]", module, lambda: module.load_state_dict(missing)
    )
    extra = dict(good, weight_xx_l0=np.zeros(3))
    expect(
        ValueError, r"unexpected \['weight_xx_l0'\]", module, lambda: module.load_state_dict(extra)
    )
    # A bad key after good ones: nothing at all may be copied.
    shaped = {k: v + 1 for k, v in good.items()}
    shaped["bias_hh_l1"] = np.zeros(7, np.float32)
    expect(
        ValueError,
        r"bias_hh_l1 has shape \(7,\); expected",
        module,
        lambda: module.load_state_dict(shaped),
    )
    expect(TypeError, r"expected a dict", module, lambda: module.load_state_dict([1, 2]))
    strings = dict(good, weight_ih_l0=np.full(good["weight_ih_l0"].shape, "a"))
    expect(
        TypeError,
        r"weight_ih_l0 has dtype <U1; expected floats",
        module,
        lambda: module.load_state_dict(strings),
    )


def test_load_state_dict_non_strict(module: Any) -> None:
    good = module.state_dict()
    part = {"weight_ih_l0": good["weight_ih_l0"] * 2, "unknown": np.zeros(1)}
    module.load_state_dict(part, strict=False)
    np.testing.assert_array_equal(module.state_dict()["weight_ih_l0"], good["weight_ih_l0"] * 2)
    np.testing.assert_array_equal(module.state_dict()["weight_hh_l0"], good["weight_hh_l0"])


def test_state_dict_is_a_copy(module: Any) -> None:
    sd = module.state_dict()
    sd["weight_ih_l0"][:] = 123.0
    assert np.abs(module.state_dict()["weight_ih_l0"]).max() < 1.0


# ----------------------------------------------------------------------------- configuration


def test_set_num_threads_errors() -> None:
    with pytest.raises(ValueError, match=r"n must be in 1\.\.1024; got 0"):
        rnnkit.set_num_threads(0)
    with pytest.raises(TypeError, match=r"n must be an int"):
        rnnkit.set_num_threads(2.0)  # type: ignore[arg-type]


def test_set_isa_unknown() -> None:
    before = rnnkit.get_isa()
    with pytest.raises(ValueError, match=r"ISA 'sse9' is not available .* available: baseline"):
        rnnkit.set_isa("sse9")
    assert rnnkit.get_isa() == before


# ----------------------------------------------------------------------------- the private core


def test_core_rejects_malformed_calls() -> None:
    """The compiled module checks its own arguments: misuse raises, never crashes."""
    w = [np.zeros((20, I), np.float32), np.zeros((20, H), np.float32)]
    with pytest.raises(ValueError, match=r"cell must be 'LSTM', 'GRU' or 'RNN'"):
        _core.RNNf32("CELL", I, H, 1, False, 0, False, True, False, "tanh", "sigmoid", w)
    with pytest.raises(ValueError, match=r"weights: expected 2 arrays, got 1"):
        _core.RNNf32("LSTM", I, H, 1, False, 0, False, True, False, "tanh", "sigmoid", w[:1])
    with pytest.raises(ValueError, match=r"weight_hh of layer-direction 0 has shape \(20, 4\)"):
        _core.RNNf32(
            "LSTM",
            I,
            H,
            1,
            False,
            0,
            False,
            True,
            False,
            "tanh",
            "sigmoid",
            [w[0], np.zeros((20, 4), np.float32)],
        )
    with pytest.raises(TypeError, match=r"must be a C-contiguous float32 numpy array"):
        _core.RNNf32(
            "LSTM",
            I,
            H,
            1,
            False,
            0,
            False,
            True,
            False,
            "tanh",
            "sigmoid",
            [w[0], np.zeros((H, 20), np.float32).T],
        )
    core = _core.RNNf32("LSTM", I, H, 1, False, 0, False, True, False, "tanh", "sigmoid", w)
    with pytest.raises(ValueError, match=r"x has shape \(2, 3\)"):
        core.forward(np.zeros((2, 3), np.float32), None, None, None, None, False)
    with pytest.raises(ValueError, match=r"lengths\[0\] = 9; expected 1..2"):
        core.forward(
            np.zeros((2, 1, I), np.float32), None, None, np.array([9], np.int32), None, False
        )
    other = _core.RNNf32("LSTM", I, H, 1, False, 0, False, True, False, "tanh", "sigmoid", w)
    _, _, _, cache = other.forward(np.zeros((2, 1, I), np.float32), None, None, None, None, True)
    grads = [np.zeros_like(a) for a in w]
    with pytest.raises(ValueError, match=r"cache was made by a different module"):
        core.backward(cache, np.zeros((2, 1, H), np.float32), None, None, grads)
    with pytest.raises(ValueError, match=r"must be writeable"):
        ro = [g.copy() for g in grads]
        ro[0].flags.writeable = False
        other.backward(cache, np.zeros((2, 1, H), np.float32), None, None, ro)
