"""Input dtypes and memory layouts: non-contiguous, read-only, byte-swapped, float16,
float32 into float64, float64 into float32 (TypeError, nothing changed), unbatched input.

Every layout test runs forward and backward and compares every output, input gradient
and weight gradient with the same call on plain C-contiguous arrays.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import rnnkit

IN, HID, PROJ, STEPS, BATCH = 3, 4, 2, 5, 3
TIGHT = {"float32": {"rtol": 1e-6, "atol": 1e-7}, "float64": {"rtol": 1e-14, "atol": 1e-15}}

CONFIGS = {
    "lstm": ("lstm", {"num_layers": 2, "bidirectional": True, "proj_size": PROJ, "peephole": True}),
    "lstm_plain": ("lstm", {}),
    "gru_ra1": ("gru", {"num_layers": 2, "bidirectional": True, "reset_after": True}),
    "gru_ra0": ("gru", {"reset_after": False}),
}


def make(cell: str, dtype: str, seed: int = 0, **kwargs: Any) -> Any:
    cls = rnnkit.LSTM if cell == "lstm" else rnnkit.GRU
    m = cls(IN, HID, dtype=dtype, seed=seed, **kwargs)
    rng = np.random.default_rng(seed + 100)
    m.load_state_dict(
        {k: rng.uniform(-0.8, 0.8, v.shape).astype(dtype) for k, v in m.state_dict().items()}
    )
    return m


def dims(cell: str, kwargs: dict[str, Any]) -> tuple[int, int, int]:
    """(L*D, Hout, D*Hout) for a configuration."""
    d = 2 if kwargs.get("bidirectional") else 1
    hout = kwargs.get("proj_size", 0) or HID
    return kwargs.get("num_layers", 1) * d, hout, d * hout


def inputs(
    cell: str, kwargs: dict[str, Any], dtype: str, batch: int | None = BATCH, seed: int = 1
) -> dict[str, np.ndarray]:
    """C-contiguous x, h0, (c0), dy, dh_n, (dc_n) and lengths; batch=None: unbatched."""
    rng = np.random.default_rng(seed)
    ld, hout, dh = dims(cell, kwargs)
    b = () if batch is None else (batch,)
    if batch is not None and kwargs.get("batch_first"):
        x_shape, y_shape = (batch, STEPS, IN), (batch, STEPS, dh)
    else:
        x_shape, y_shape = (STEPS, *b, IN), (STEPS, *b, dh)
    out = {
        "x": rng.normal(size=x_shape),
        "h0": rng.normal(0, 0.5, (ld, *b, hout)),
        "dy": rng.normal(size=y_shape),
        "dh_n": rng.normal(size=(ld, *b, hout)),
    }
    if cell == "lstm":
        out["c0"] = rng.normal(0, 0.5, (ld, *b, HID))
        out["dc_n"] = rng.normal(size=(ld, *b, HID))
    out = {k: v.astype(dtype) for k, v in out.items()}
    if batch is not None:
        out["lengths"] = np.array([STEPS, 2, 4, 1, 3][:batch], dtype=np.int64)
    return out


def forward(
    m: Any, cell: str, a: dict[str, np.ndarray], use_lengths: bool = True
) -> list[np.ndarray]:
    lengths = a.get("lengths") if use_lengths else None
    if cell == "lstm":
        y, (h_n, c_n) = m(a["x"], (a["h0"], a["c0"]), lengths=lengths)
        return [y, h_n, c_n]
    y, h_n = m(a["x"], a["h0"], lengths=lengths)
    return [y, h_n]


def backward(m: Any, cell: str, a: dict[str, np.ndarray]) -> list[np.ndarray]:
    if cell == "lstm":
        dx, (dh0, dc0) = m.backward(a["dy"], (a["dh_n"], a["dc_n"]))
        return [dx, dh0, dc0]
    dx, dh0 = m.backward(a["dy"], a["dh_n"])
    return [dx, dh0]


def everything(
    m: Any, cell: str, a: dict[str, np.ndarray], use_lengths: bool = True
) -> dict[str, np.ndarray]:
    """Forward + backward; every output, input gradient and weight gradient by name."""
    outs = forward(m, cell, a, use_lengths)
    m.zero_grad()
    grads = backward(m, cell, a)
    res = dict(zip(["y", "h_n", "c_n"], outs))
    res.update(zip(["dx", "dh0", "dc0"], grads))
    res.update({f"grads[{k}]": np.array(v, copy=True) for k, v in m.grads.items()})
    return res


def assert_same(
    got: dict[str, np.ndarray],
    want: dict[str, np.ndarray],
    dtype: str,
    what: str,
    exact: bool = False,
) -> None:
    assert sorted(got) == sorted(want), f"{what}: results {sorted(got)} != {sorted(want)}"
    for k in want:
        g, w = got[k], want[k]
        assert g.shape == w.shape, f"{what}: {k} shape {g.shape}, expected {w.shape}"
        assert g.dtype == np.dtype(dtype), f"{what}: {k} dtype {g.dtype}, expected {dtype}"
        diff = float(np.max(np.abs(g.astype(np.float64) - w), initial=0.0))
        if exact:
            assert diff == 0.0, f"{what}: {k} differs, max abs diff {diff:.3e}"
        else:
            np.testing.assert_allclose(
                g, w, **TIGHT[dtype], err_msg=f"{what}: {k} max abs diff {diff:.3e}"
            )


def strided(a: np.ndarray) -> np.ndarray:
    """Same values, every axis stepped (a slice of a larger buffer)."""
    buf = np.zeros(tuple(2 * s + 1 for s in a.shape), a.dtype)
    view = buf[tuple(slice(1, None, 2) for _ in a.shape)]
    view[...] = a
    return view


def transposed(a: np.ndarray) -> np.ndarray:
    """Same values, a transposed view of a C-contiguous array with the axes reversed."""
    return np.ascontiguousarray(a.T).T


def reversed_strides(a: np.ndarray) -> np.ndarray:
    """Same values, negative strides on every axis."""
    sl = tuple(slice(None, None, -1) for _ in a.shape)
    return np.ascontiguousarray(a[sl])[sl]


def fortran(a: np.ndarray) -> np.ndarray:
    return np.asfortranarray(a)


def byteswapped(a: np.ndarray) -> np.ndarray:
    """Same values in non-native byte order."""
    return a.astype(a.dtype.newbyteorder())


def readonly(a: np.ndarray) -> np.ndarray:
    b = a.copy()
    b.flags.writeable = False
    return b


LAYOUTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "strided": strided,
    "transposed": transposed,
    "negative_strides": reversed_strides,
    "fortran": fortran,
    "byteswapped": byteswapped,
    "readonly": readonly,
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
def test_layout_matches_contiguous(layout: str, dtype: str, config: str, batch_first: bool) -> None:
    cell, kwargs = CONFIGS[config]
    kwargs = {**kwargs, "batch_first": batch_first}
    m = make(cell, dtype, **kwargs)
    base = inputs(cell, kwargs, dtype)
    want = everything(m, cell, base)

    fn = LAYOUTS[layout]
    odd = {k: fn(v) for k, v in base.items()}
    if layout != "byteswapped":  # layouts must really be what they claim
        for k, v in odd.items():
            if layout == "readonly":
                assert not v.flags.writeable, f"readonly {k} is writeable"
            elif v.ndim > 1 or layout in ("strided", "negative_strides"):
                assert not v.flags.c_contiguous, f"{layout} {k} is C-contiguous"
    snapshot = {k: v.copy() for k, v in odd.items()}
    got = everything(m, cell, odd)
    assert_same(got, want, dtype, f"{config} {layout} inputs")
    for k, v in odd.items():
        assert np.array_equal(v, snapshot[k]), f"{layout} input {k} was modified by the call"


def test_transposed_batch_first_view_is_the_usual_pattern() -> None:
    """A batch_first module fed x.transpose(1, 0, 2) of a time-major array."""
    cell, kwargs = CONFIGS["lstm"]
    m_tm = make(cell, "float32", **kwargs)
    m_bf = make(cell, "float32", **kwargs, batch_first=True)
    a = inputs(cell, kwargs, "float32")
    want = forward(m_tm, cell, a)
    b = dict(a, x=a["x"].transpose(1, 0, 2))
    got = forward(m_bf, cell, b)
    got[0] = got[0].transpose(1, 0, 2)
    for name, g, w in zip(["y", "h_n", "c_n"], got, want):
        diff = float(np.max(np.abs(g - w)))
        assert diff <= 1e-6, f"batch_first on a transposed view: {name} max abs diff {diff:.3e}"


@pytest.mark.parametrize("lengths_dtype", ["int32", "int64", "uint8", "intp"])
def test_lengths_integer_dtypes_and_strides(lengths_dtype: str) -> None:
    cell, kwargs = CONFIGS["gru_ra1"]
    m = make(cell, "float64", **kwargs)
    a = inputs(cell, kwargs, "float64")
    want = forward(m, cell, a)
    buf = np.zeros(2 * BATCH, dtype=lengths_dtype)
    buf[::2] = a["lengths"]
    got = forward(m, cell, dict(a, lengths=buf[::2]))
    for name, g, w in zip(["y", "h_n"], got, want):
        diff = float(np.max(np.abs(g - w)))
        assert diff == 0.0, f"lengths as strided {lengths_dtype}: {name} max abs diff {diff:.3e}"


@pytest.mark.parametrize(
    ("src", "module_dtype"),
    [("float16", "float32"), ("float16", "float64"), ("float32", "float64")],
)
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_exact_upcast_inputs_equal_converted(src: str, module_dtype: str, config: str) -> None:
    """Lower-precision inputs (x, states, dy, dh_n, dc_n) are converted exactly: results are
    bit-identical to passing ``a.astype(module_dtype)`` and have the module's dtype."""
    cell, kwargs = CONFIGS[config]
    m = make(cell, module_dtype, **kwargs)
    low = {
        k: (v if k == "lengths" else v.astype(src))
        for k, v in inputs(cell, kwargs, "float32").items()
    }
    want = everything(
        m, cell, {k: (v if k == "lengths" else v.astype(module_dtype)) for k, v in low.items()}
    )
    got = everything(m, cell, low)
    assert_same(got, want, module_dtype, f"{config}: {src} into {module_dtype}", exact=True)


def snapshot_module(m: Any) -> dict[str, Any]:
    return {
        "state_dict": {k: v.copy() for k, v in m.state_dict().items()},
        "grads": {k: np.array(v, copy=True) for k, v in m.grads.items()},
        "training": m.training,
    }


def assert_module_unchanged(m: Any, before: dict[str, Any], what: str) -> None:
    after = snapshot_module(m)
    assert after["training"] == before["training"], f"{what}: training flag changed"
    for part in ("state_dict", "grads"):
        assert sorted(after[part]) == sorted(before[part]), f"{what}: {part} keys changed"
        for k, v in before[part].items():
            diff = float(np.max(np.abs(after[part][k] - v), initial=0.0))
            assert np.array_equal(after[part][k], v), (
                f"{what}: {part}[{k!r}] changed by a rejected call (max abs diff {diff:.3e})"
            )


ARG_NAMES = {
    "x": ("x",),
    "h0": ("h0", "hx"),
    "c0": ("c0", "hx"),
    "dy": ("dy",),
    "dh_n": ("dh_n", "dh"),
    "dc_n": ("dc_n", "dc"),
}


REJECT_CASES = [
    (c, a) for c in ("lstm", "gru_ra1") for a in ARG_NAMES if c == "lstm" or a not in ("c0", "dc_n")
]


@pytest.mark.parametrize(("config", "arg"), REJECT_CASES)
def test_float64_into_float32_module_raises(config: str, arg: str) -> None:
    cell, kwargs = CONFIGS[config]
    m = make(cell, "float32", **kwargs)
    a = inputs(cell, kwargs, "float32")
    want = everything(m, cell, a)

    # a valid forward (training mode) whose cache the rejected call must not disturb
    forward(m, cell, a)
    m.zero_grad()
    before = snapshot_module(m)
    bad = dict(a)
    bad[arg] = a[arg].astype(np.float64)
    call = backward if arg in ("dy", "dh_n", "dc_n") else forward
    with pytest.raises(TypeError) as info:
        call(m, cell, bad)
    msg = str(info.value)
    names = ARG_NAMES[arg]
    assert any(re.search(rf"\b{n}\b", msg) for n in names), (
        f"TypeError for float64 {arg} does not name it ({'/'.join(names)}): {msg!r}"
    )
    assert "float64" in msg and "float32" in msg, (
        f"TypeError for float64 {arg} does not name both dtypes: {msg!r}"
    )
    assert_module_unchanged(m, before, f"float64 {arg}")

    # the earlier forward is still the one backward differentiates
    got_grads = dict(zip(["dx", "dh0", "dc0"], backward(m, cell, a)))
    got_grads.update({f"grads[{k}]": np.array(v, copy=True) for k, v in m.grads.items()})
    want_grads = {k: v for k, v in want.items() if k not in ("y", "h_n", "c_n")}
    assert_same(
        got_grads, want_grads, "float32", f"backward after rejected float64 {arg}", exact=True
    )


@pytest.mark.parametrize("with_state", [False, True], ids=["no_state", "state"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_unbatched_equals_batch_of_one(config: str, batch_first: bool, with_state: bool) -> None:
    """x (T, I) behaves as a batch of one: y (T, D*Hout), h_n (L*D, Hout) like PyTorch,
    and backward takes/returns unbatched gradients."""
    cell, kwargs = CONFIGS[config]
    kwargs = {**kwargs, "batch_first": batch_first}
    m = make(cell, "float64", **kwargs)
    u = inputs(cell, kwargs, "float64", batch=None)
    ld, hout, dh = dims(cell, kwargs)
    bdim = 0 if batch_first else 1  # batch axis of x and y in the batched call
    b1 = {k: np.expand_dims(v, bdim if k in ("x", "dy") else 1) for k, v in u.items()}
    if not with_state:
        for a in (u, b1):
            a["h0"] = np.zeros_like(a["h0"])
            if cell == "lstm":
                a["c0"] = np.zeros_like(a["c0"])

    want = everything(m, cell, b1, use_lengths=False)
    if with_state:
        got = everything(m, cell, u, use_lengths=False)
    else:
        if cell == "lstm":
            y, (h_n, c_n) = m(u["x"])
            outs = [y, h_n, c_n]
        else:
            y, h_n = m(u["x"])
            outs = [y, h_n]
        m.zero_grad()
        grads = backward(m, cell, u)
        got = dict(zip(["y", "h_n", "c_n"], outs))
        got.update(zip(["dx", "dh0", "dc0"], grads))
        got.update({f"grads[{k}]": np.array(v, copy=True) for k, v in m.grads.items()})

    expected_shapes = {
        "y": (STEPS, dh),
        "h_n": (ld, hout),
        "c_n": (ld, HID),
        "dx": (STEPS, IN),
        "dh0": (ld, hout),
        "dc0": (ld, HID),
    }
    squeezed = {}
    for k, v in want.items():
        if k in expected_shapes:
            axis = bdim if k in ("y", "dx") else 1
            squeezed[k] = np.squeeze(v, axis=axis)
            assert got[k].shape == expected_shapes[k], (
                f"unbatched {k} shape {got[k].shape}, expected {expected_shapes[k]}"
            )
        else:
            squeezed[k] = v
    assert_same(got, squeezed, "float64", f"{config} unbatched vs batch of 1", exact=False)
