"""Plain-loop numpy float64 reference for LSTM, GRU and the plain RNN: the test oracle.

Independent of rnnkit's core. Clarity over speed: every time step and every batch row is
an explicit Python loop over the equations of docs/design.md / docs/api.md.

The architecture (layers, directions, bias, proj_size, peepholes) is read from the keys
and shapes of a PyTorch-shaped ``state_dict``; only what a state_dict cannot tell (the
activations, GRU ``reset_after``, ONNX's ``clip`` and ``input_forget``, a single direction
run in ``reverse``), the initial states and ``lengths`` are arguments.

Activations are given as a name or ``(name, alpha[, beta])``, with the formulas and defaults
of the ONNX operators (hard_sigmoid: Keras 3's alpha 1/6, beta 1/2); see ``activation_fn``.
``clip`` clips every activation's input (the gate pre-activations; not the LSTM cell state
before the cell activation) to [-clip, clip]; ``input_forget`` couples the LSTM gates as
f = 1 - i.

Shapes, time-major only (tests transpose for ``batch_first``), L layers, D directions:

- ``x``: (T, B, I)
- LSTM: ``y, h_n, c_n = lstm_forward(...)``; y (T, B, D*Hout), h (L*D, B, Hout),
  c (L*D, B, H); Hout = proj_size or H.
- GRU: ``y, h_n = gru_forward(...)``; y (T, B, D*H), h (L*D, B, H).
- RNN: ``y, h_n = rnn_forward(...)``; as GRU.
- ``lengths``: (B,) ints in 1..T, packed-sequence semantics: outputs past a sequence's
  length are 0, its final state is taken at its last valid step, and the reverse
  direction starts at its last valid step.

The bottom of the file holds the comparison helpers the tests share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

Array = np.ndarray
Step = Callable[..., tuple[Array, ...]]


def sigmoid(v: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-v))


def hard_sigmoid(v: Array) -> Array:
    return np.clip(v / 6.0 + 0.5, 0.0, 1.0)


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "tanh": np.tanh,
    "relu": lambda v: np.maximum(v, 0.0),
    "sigmoid": sigmoid,
    "linear": lambda v: v,
}
RECURRENT_ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid,
}

# name -> (f(v, alpha, beta), default alpha, default beta)
_PARAMETRIC: dict[str, tuple[Callable[[Array, float, float], Array], float, float]] = {
    "tanh": (lambda v, a, b: np.tanh(v), 0.0, 0.0),
    "relu": (lambda v, a, b: np.maximum(v, 0.0), 0.0, 0.0),
    "sigmoid": (lambda v, a, b: sigmoid(v), 0.0, 0.0),
    "linear": (lambda v, a, b: v, 0.0, 0.0),
    "hard_sigmoid": (lambda v, a, b: np.clip(a * v + b, 0.0, 1.0), 1.0 / 6.0, 0.5),
    "affine": (lambda v, a, b: a * v + b, 1.0, 0.0),
    "leaky_relu": (lambda v, a, b: np.where(v >= 0, v, a * v), 0.01, 0.0),
    "thresholded_relu": (lambda v, a, b: np.where(v > a, v, 0.0), 1.0, 0.0),
    "scaled_tanh": (lambda v, a, b: a * np.tanh(b * v), 1.0, 1.0),
    "elu": (lambda v, a, b: np.where(v >= 0, v, a * np.expm1(np.minimum(v, 0.0))), 1.0, 0.0),
    "softsign": (lambda v, a, b: v / (1.0 + np.abs(v)), 0.0, 0.0),
    "softplus": (lambda v, a, b: np.logaddexp(0.0, v), 0.0, 0.0),
}
ALL_ACTIVATIONS = tuple(_PARAMETRIC)


def activation_fn(spec: str | tuple | list) -> Callable[[Array], Array]:
    """The function of a name or ``(name, alpha[, beta])``; missing parameters take the
    defaults (ONNX's operator defaults; hard_sigmoid Keras 3's 1/6, 1/2)."""
    name, params = (spec, ()) if isinstance(spec, str) else (spec[0], tuple(spec[1:]))
    f, alpha, beta = _PARAMETRIC[name]
    if len(params) > 0:
        alpha = float(params[0])
    if len(params) > 1:
        beta = float(params[1])
    return lambda v: f(np.asarray(v, np.float64), alpha, beta)


def _clipper(clip: float | None) -> Callable[[Array], Array]:
    return (lambda v: v) if clip is None else (lambda v: np.clip(v, -clip, clip))


def _weights(params: Mapping[str, Array], layer: int, reverse: bool) -> dict[str, Array | None]:
    """One layer-direction's weights as float64; absent optional tensors are None."""
    sfx = f"_l{layer}" + ("_reverse" if reverse else "")

    def get(name: str) -> Array | None:
        v = params.get(name + sfx)
        return None if v is None else np.asarray(v, dtype=np.float64)

    w = {k: get(k) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")}
    w["peephole"] = get("weight_peephole")
    gh = w["weight_hh"].shape[0]
    for b in ("bias_ih", "bias_hh"):  # bias=False: zero biases
        if w[b] is None:
            w[b] = np.zeros(gh)
    return w


def _structure(params: Mapping[str, Array]) -> tuple[int, int]:
    """(num_layers, num_directions) read from the state_dict keys."""
    num_layers = sum(1 for k in params if k.startswith("weight_ih_l") and "reverse" not in k)
    return num_layers, 2 if "weight_ih_l0_reverse" in params else 1


def _same(v: Array) -> Array:
    return v


def lstm_step(
    x: Array,
    h: Array,
    c: Array,
    w: Mapping[str, Array | None],
    act: Callable,
    rec: Callable,
    q: Callable = _same,
    cact: Callable | None = None,
    clip: Callable = _same,
    input_forget: bool = False,
) -> tuple[Array, Array]:
    """One LSTM step for one batch row: x (in,), h (Hout,), c (H,) -> (h', c').

    q is applied to the vector entering the recurrent product (bfloat16 rounding, for
    kernels that multiply bfloat16 pairs); cact is the cell output's activation (None: act);
    clip is applied to each gate's pre-activation; input_forget: f = 1 - i."""
    H = c.shape[0]
    cact = act if cact is None else cact
    z = w["weight_ih"] @ x + w["bias_ih"] + w["weight_hh"] @ q(h) + w["bias_hh"]  # (4H,) i,f,g,o
    zi, zf, zg, zo = z[:H], z[H : 2 * H], z[2 * H : 3 * H], z[3 * H :]
    p = w["peephole"]  # (3H,) i, f, o; i and f see c_prev, o sees c_new
    if p is not None:
        zi, zf = zi + p[:H] * c, zf + p[H : 2 * H] * c
    i, g = rec(clip(zi)), act(clip(zg))
    f = 1.0 - i if input_forget else rec(clip(zf))
    c_new = f * c + i * g
    if p is not None:
        zo = zo + p[2 * H :] * c_new
    h_new = rec(clip(zo)) * cact(c_new)
    if w["weight_hr"] is not None:  # projection: h = W_hr (o * act(c))
        h_new = w["weight_hr"] @ h_new
    return h_new, c_new


def gru_step(
    x: Array,
    h: Array,
    w: Mapping[str, Array | None],
    act: Callable,
    rec: Callable,
    reset_after: bool,
    q: Callable = _same,
    clip: Callable = _same,
) -> tuple[Array]:
    """One GRU step for one batch row: x (in,), h (H,) -> (h',); q, clip as in lstm_step."""
    H = h.shape[0]
    Wi, Wh, bi, bh = w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"]  # rows r,z,n
    r = rec(clip(Wi[:H] @ x + bi[:H] + Wh[:H] @ q(h) + bh[:H]))
    z = rec(clip(Wi[H : 2 * H] @ x + bi[H : 2 * H] + Wh[H : 2 * H] @ q(h) + bh[H : 2 * H]))
    if reset_after:
        n = act(clip(Wi[2 * H :] @ x + bi[2 * H :] + r * (Wh[2 * H :] @ q(h) + bh[2 * H :])))
    else:
        n = act(clip(Wi[2 * H :] @ x + bi[2 * H :] + Wh[2 * H :] @ q(r * h) + bh[2 * H :]))
    return ((1.0 - z) * n + z * h,)


def rnn_step(
    x: Array,
    h: Array,
    w: Mapping[str, Array | None],
    act: Callable,
    q: Callable = _same,
    clip: Callable = _same,
) -> tuple[Array]:
    """One plain RNN step for one batch row: x (in,), h (H,) -> (h',); q, clip as in
    lstm_step."""
    pre = w["weight_ih"] @ x + w["bias_ih"] + w["weight_hh"] @ q(h) + w["bias_hh"]
    return (act(clip(pre)),)


def _run_direction(
    step: Step, x: Array, states: list[Array], lengths: Array, reverse: bool
) -> tuple[Array, list[Array]]:
    """Run one layer-direction. x (T, B, in); states[k] (B, ·); state 0 is the output."""
    T, B, _ = x.shape
    y = np.zeros((T, B, states[0].shape[1]))
    finals = [s.copy() for s in states]
    for b in range(B):
        st = tuple(s[b] for s in states)
        times = range(lengths[b])
        for t in reversed(times) if reverse else times:
            st = step(x[t, b], *st)
            y[t, b] = st[0]
        for k, s in enumerate(st):
            finals[k][b] = s
    return y, finals


def _run_stack(
    make_step: Callable[[int, bool], Step],
    x: Array,
    init: list[Array],
    num_layers: int,
    num_dirs: int,
    lengths: Array | None,
    reverse: bool = False,
) -> tuple[Array, list[Array]]:
    """Stacked (bi)directional run; init[k] (L*D, B, ·) indexed layer*D + direction.
    reverse: the single direction of every layer runs backwards in time."""
    x = np.asarray(x, dtype=np.float64)
    T, B, _ = x.shape
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths, dtype=np.int64)
    finals = [np.zeros_like(s) for s in init]
    inp = x
    for layer in range(num_layers):
        outs = []
        for d in range(num_dirs):
            idx = layer * num_dirs + d
            y, fin = _run_direction(
                make_step(layer, d == 1), inp, [s[idx] for s in init], lengths, d == 1 or reverse
            )
            outs.append(y)
            for k, f in enumerate(fin):
                finals[k][idx] = f
        inp = np.concatenate(outs, axis=2)
    return inp, finals


def lstm_forward(
    params: Mapping[str, Array],
    x: Array,
    h0: Array | None = None,
    c0: Array | None = None,
    lengths: Array | None = None,
    *,
    activation: str | tuple = "tanh",
    recurrent_activation: str | tuple = "sigmoid",
    q: Callable = _same,
    cell_activation: str | tuple | None = None,
    clip: float | None = None,
    input_forget: bool = False,
    reverse: bool = False,
) -> tuple[Array, Array, Array]:
    """LSTM forward: x (T, B, I) -> y (T, B, D*Hout), h_n (L*D, B, Hout), c_n (L*D, B, H)."""
    num_layers, num_dirs = _structure(params)
    H = params["weight_hh_l0"].shape[0] // 4
    Hout = params["weight_hh_l0"].shape[1]
    B = x.shape[1]
    h0 = np.zeros((num_layers * num_dirs, B, Hout)) if h0 is None else h0
    c0 = np.zeros((num_layers * num_dirs, B, H)) if c0 is None else c0
    act, rec = activation_fn(activation), activation_fn(recurrent_activation)
    cact = None if cell_activation is None else activation_fn(cell_activation)
    cl = _clipper(clip)

    def make_step(layer: int, backwards: bool) -> Step:
        w = _weights(params, layer, backwards)
        return lambda xt, h, c: lstm_step(xt, h, c, w, act, rec, q, cact, cl, input_forget)

    init = [np.asarray(h0, np.float64), np.asarray(c0, np.float64)]
    y, (h_n, c_n) = _run_stack(make_step, x, init, num_layers, num_dirs, lengths, reverse)
    return y, h_n, c_n


def gru_forward(
    params: Mapping[str, Array],
    x: Array,
    h0: Array | None = None,
    lengths: Array | None = None,
    *,
    reset_after: bool = True,
    activation: str | tuple = "tanh",
    recurrent_activation: str | tuple = "sigmoid",
    q: Callable = _same,
    clip: float | None = None,
    reverse: bool = False,
) -> tuple[Array, Array]:
    """GRU forward: x (T, B, I) -> y (T, B, D*H), h_n (L*D, B, H)."""
    num_layers, num_dirs = _structure(params)
    H = params["weight_hh_l0"].shape[1]
    h0 = np.zeros((num_layers * num_dirs, x.shape[1], H)) if h0 is None else h0
    act, rec = activation_fn(activation), activation_fn(recurrent_activation)
    cl = _clipper(clip)

    def make_step(layer: int, backwards: bool) -> Step:
        w = _weights(params, layer, backwards)
        return lambda xt, h: gru_step(xt, h, w, act, rec, reset_after, q, cl)

    init = [np.asarray(h0, np.float64)]
    y, (h_n,) = _run_stack(make_step, x, init, num_layers, num_dirs, lengths, reverse)
    return y, h_n


def rnn_forward(
    params: Mapping[str, Array],
    x: Array,
    h0: Array | None = None,
    lengths: Array | None = None,
    *,
    activation: str | tuple = "tanh",
    q: Callable = _same,
    clip: float | None = None,
    reverse: bool = False,
) -> tuple[Array, Array]:
    """Plain RNN forward, h' = act(W x + b_ih + U h + b_hh): x (T, B, I) -> y (T, B, D*H),
    h_n (L*D, B, H)."""
    num_layers, num_dirs = _structure(params)
    H = params["weight_hh_l0"].shape[1]
    h0 = np.zeros((num_layers * num_dirs, x.shape[1], H)) if h0 is None else h0
    act = activation_fn(activation)
    cl = _clipper(clip)

    def make_step(layer: int, backwards: bool) -> Step:
        w = _weights(params, layer, backwards)
        return lambda xt, h: rnn_step(xt, h, w, act, q, cl)

    init = [np.asarray(h0, np.float64)]
    y, (h_n,) = _run_stack(make_step, x, init, num_layers, num_dirs, lengths, reverse)
    return y, h_n


# --- comparison helpers shared by the tests -----------------------------------------------

# Tolerances: |a - b| <= atol * max(1, max|b|) + rtol * |b| elementwise.
# float32: rtol 1e-5 is ~80 ulp, room for the different summation orders of two float32
# implementations over a few steps and layers. A pure relative test is meaningless for
# elements near zero: their rounding error is set by the O(1) terms that cancelled to make
# them, not by their own size. So atol 1e-6 (~8 ulp of 1.0) covers those, scaled by the
# tensor's largest magnitude when that exceeds 1 (weight gradients summed over T*B terms
# reach ~10, and so does the rounding error of their small entries).
# float64: the same reasoning, rtol 1e-10 / atol 1e-12, still ~1e5 ulp above rounding.
TOLERANCES: dict[str, tuple[float, float]] = {
    "float32": (1e-5, 1e-6),
    "float64": (1e-10, 1e-12),
}


def errors(actual: Array, expected: Array) -> tuple[float, float]:
    """(max abs error, max relative error |a-b|/|b| over the elements where b != 0)."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    diff = np.abs(a - b)
    if diff.size == 0:
        return 0.0, 0.0
    nz = b != 0
    rel = float(np.max(diff[nz] / np.abs(b[nz]))) if nz.any() else 0.0
    return float(diff.max()), rel


def assert_close(actual: Array, expected: Array, name: str, rtol: float, atol: float) -> None:
    """|a - b| <= atol*max(1, max|b|) + rtol*|b| elementwise; the message names the key,
    the max abs and max relative error and the first failing index."""
    a = np.asarray(actual)
    b = np.asarray(expected)
    assert a.shape == b.shape, f"{name}: shape {a.shape} != expected {b.shape}"
    assert np.all(np.isfinite(a)), f"{name}: non-finite values in actual"
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    scale = max(1.0, float(np.abs(b64).max())) if b64.size else 1.0
    bad = np.abs(a64 - b64) > atol * scale + rtol * np.abs(b64)
    max_abs, max_rel = errors(a64, b64)
    assert not bad.any(), (
        f"{name}: {int(bad.sum())}/{bad.size} elements outside atol={atol * scale:g} "
        f"rtol={rtol:g}; "
        f"max abs err {max_abs:.3e}, max rel err {max_rel:.3e}; "
        f"first bad index {tuple(int(i) for i in np.argwhere(bad)[0])}"
    )


def scaled_error(actual: Array, expected: Array) -> float:
    """max|a - b| / max(max|b|, tiny): the error relative to the tensor's scale (the
    single number reported as "relative error" per tensor; robust to entries near 0)."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if b.size == 0:
        return 0.0
    return float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-300))
