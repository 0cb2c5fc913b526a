"""``recurrent_dropout`` (issue 12): a mask per gate on h where it enters the recurrent product,
fixed over the sequence and drawn anew each training call, as Keras 3's cells do.

Against Keras 3 with the same masks (each side's mask source replaced by the same arrays):
outputs, weight gradients and input gradients of LSTM, both GRU variants and SimpleRNN, with
masked (padded) steps, ``go_backwards``, initial states and ``Bidirectional``. The core's
masked loop against central differences in float64 for every module option (layers,
directions, lengths in any order, projections). Inference never drops anything.
"""

from __future__ import annotations

import numpy as np
import pytest
from graph_check import fd_check, max_diff

import rnnkit
import rnnkit.keras as rk

GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}
CELLS = [
    ("LSTM", {}),
    ("GRU", {}),
    ("GRU", {"reset_after": False}),
    ("SimpleRNN", {}),
]
CELL_IDS = ["lstm", "gru", "gru_reset_before", "simple_rnn"]


def _masks(rng, shape, rate=0.4, dtype=np.float32):
    return ((rng.random(shape) >= rate) / (1 - rate)).astype(dtype)


def _keras_mask_source(layer, masks, tf, input_masks=None):
    """Make a Keras recurrent layer use ``masks`` (gates, B, U) as its recurrent dropout and
    ``input_masks`` (gates, B, I) as its input dropout."""
    g = masks.shape[0]
    consts = [tf.constant(m) for m in masks]
    layer.cell.get_recurrent_dropout_mask = lambda h: consts if g > 1 else consts[0]
    if input_masks is not None:
        xs = [tf.constant(m) for m in input_masks]
        layer.cell.get_dropout_mask = lambda x: xs if g > 1 else xs[0]


def _pair(cell, kw, rng, B, T, I, U, dropout=0.0, **layer_kw):
    keras = pytest.importorskip("keras")
    opts = {"recurrent_dropout": 0.4, "dropout": dropout, **kw, **layer_kw}
    kl = getattr(keras.layers, cell)(U, **opts)
    kl.build((B, T, I))
    if kl.cell.use_bias:  # nonzero biases, so that every bias gradient path is exercised
        kl.cell.bias.assign(rng.standard_normal(kl.cell.bias.shape).astype("float32"))
    ours = getattr(rk.layers, cell)(U, **opts)
    ours.build((B, T, I))
    ours.set_weights(kl.get_weights())
    return kl, ours


def _keras_step(kl, x, dy, tf, **call_kw):
    """Keras's training-mode output, d(sum(y * dy))/d(weights) and d/dx."""
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = kl(xt, training=True, **call_kw)
        loss = tf.reduce_sum(y * tf.constant(dy))
    grads = tape.gradient(loss, [*kl.trainable_weights, xt])
    return y.numpy(), [g.numpy() for g in grads[:-1]], grads[-1].numpy()


def _ours_step(layer, x, dy, **call_kw):
    y = layer.forward(x, training=True, **call_kw)
    layer.zero_grad()
    dx = layer._backward(dy, True)
    return y, layer._keras_from_parameters(layer.gradients()), dx


def _compare(cell, what, ours, theirs, tol=2e-5):
    y, gw, dx = ours
    ky, kgw, kdx = theirs
    scale = max(1.0, float(np.max(np.abs(ky))))
    assert max_diff(y, ky) < tol * scale, f"{cell} {what}: outputs differ by {max_diff(y, ky):.3e}"
    assert max_diff(dx, kdx) < tol * max(1.0, float(np.max(np.abs(kdx)))), (
        f"{cell} {what}: input gradients differ by {max_diff(dx, kdx):.3e}"
    )
    for k, (a, b) in enumerate(zip(gw, kgw)):
        d = max_diff(a, b)
        assert d < tol * max(1.0, float(np.max(np.abs(b)))), f"{cell} {what}: weight {k} by {d:.3e}"


@pytest.mark.parametrize("cell,kw", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize(
    "variant",
    ["plain", "padded", "go_backwards", "initial_state", "input_dropout", "padded_input_dropout"],
)
def test_matches_keras_with_the_same_masks(cell, kw, variant):
    """With ``dropout`` too, Keras drops each gate's input with its own mask: so does rnnkit."""
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(1)
    B, T, I, U = 5, 7, 3, 4
    layer_kw = {"return_sequences": True, "go_backwards": variant == "go_backwards"}
    with_input = "input_dropout" in variant
    kl, ours = _pair(cell, kw, rng, B, T, I, U, dropout=0.3 if with_input else 0.0, **layer_kw)
    masks = _masks(rng, (GATES[cell], B, U))
    xmasks = _masks(rng, (GATES[cell], B, I), rate=0.3) if with_input else None
    _keras_mask_source(kl, masks, tf, xmasks)
    ours._recurrent_masks = lambda batch: masks[None]
    ours._input_masks = lambda batch, features: xmasks[None]
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    dy = rng.standard_normal((B, T, U)).astype(np.float32)
    call_kw: dict = {}
    if variant.startswith("padded"):  # right padding (the core's lengths) and a hole
        m = np.ones((B, T), bool)
        m[0, 4:] = False
        m[2, 2] = False
        call_kw["mask"] = m
    if variant == "initial_state":
        n = 2 if cell == "LSTM" else 1
        call_kw["initial_state"] = [
            rng.standard_normal((B, U)).astype(np.float32) for _ in range(n)
        ]
    kcall = dict(call_kw)
    if "mask" in kcall:
        kcall["mask"] = tf.constant(kcall["mask"])
    if "initial_state" in kcall:
        kcall["initial_state"] = [tf.constant(a) for a in kcall["initial_state"]]
    theirs = _keras_step(kl, x, dy, tf, **kcall)
    _compare(cell, variant, _ours_step(ours, x, dy, **call_kw), theirs)


@pytest.mark.parametrize("cell,kw", CELLS[:2], ids=CELL_IDS[:2])
def test_bidirectional_matches_keras_with_each_directions_masks(cell, kw):
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(2)
    B, T, I, U = 4, 6, 3, 5
    opts = {"recurrent_dropout": 0.3, "dropout": 0.2, "return_sequences": True, **kw}
    kb = keras.layers.Bidirectional(getattr(keras.layers, cell)(U, **opts))
    kb.build((B, T, I))
    ob = rk.layers.Bidirectional(getattr(rk.layers, cell)(U, **opts))
    ob.build((B, T, I))
    ob.set_weights(kb.get_weights())
    masks = _masks(rng, (2, GATES[cell], B, U), rate=0.3)
    xmasks = _masks(rng, (2, GATES[cell], B, I), rate=0.2)
    _keras_mask_source(kb.forward_layer, masks[0], tf, xmasks[0])
    _keras_mask_source(kb.backward_layer, masks[1], tf, xmasks[1])
    inner = ob.layer if hasattr(ob, "layer") else ob
    inner._recurrent_masks = lambda batch: masks
    inner._input_masks = lambda batch, features: xmasks
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    dy = rng.standard_normal((B, T, 2 * U)).astype(np.float32)
    theirs = _keras_step(kb, x, dy, tf)
    _compare(cell, "bidirectional", _ours_step(ob, x, dy), theirs)


def _module(cell, dtype="float64", **kw):
    cls = {"LSTM": rnnkit.LSTM, "GRU": rnnkit.GRU, "SimpleRNN": rnnkit.RNN}[cell]
    m = cls(3, 4, dtype=dtype, **kw)
    m.train()
    return m


MODULE_CASES = [
    ("LSTM", {}),
    ("LSTM", {"num_layers": 2, "bidirectional": True}),
    ("LSTM", {"proj_size": 2}),
    ("GRU", {}),
    ("GRU", {"reset_after": False, "bidirectional": True}),
    ("GRU", {"num_layers": 2}),
    ("SimpleRNN", {"bidirectional": True}),
]


@pytest.mark.parametrize(
    "cell,kw", MODULE_CASES, ids=[f"{c}-{'-'.join(k) or 'plain'}" for c, k in MODULE_CASES]
)
@pytest.mark.parametrize("lengths", [None, [5, 2, 4]], ids=["full", "lengths"])
def test_core_masked_loop_against_central_differences(cell, kw, lengths):
    """d/d(every parameter, x, h0) of sum(y * Ry) + sum(h_n * Rh) [+ sum(c_n * Rc)] through
    the core's masked loop and per-gate input masks, against central differences in
    float64."""
    rng = np.random.default_rng(3)
    m = _module(cell, **kw)
    T, B = 5, 3
    LD = m.num_layers * m.num_directions
    Ho = m.output_size
    x = rng.standard_normal((T, B, 3))
    h0 = rng.standard_normal((LD, B, Ho))
    lstm = cell == "LSTM"
    c0 = rng.standard_normal((LD, B, 4)) if lstm else None
    hm = _masks(rng, (LD, GATES[cell], B, Ho), dtype=np.float64)
    xm = _masks(rng, (m.num_directions, GATES[cell], B, 3), dtype=np.float64)
    ry = rng.standard_normal((T, B, m.num_directions * Ho))
    rh = rng.standard_normal((LD, B, Ho))
    rc = rng.standard_normal((LD, B, 4)) if lstm else None

    def loss():
        y, hn, cn = m._run(x, h0, c0, lengths, hm, xm)
        return float(np.sum(y * ry) + np.sum(hn * rh) + (np.sum(cn * rc) if lstm else 0.0))

    m._run(x, h0, c0, lengths, hm, xm)
    m.zero_grad()
    dx, dh0, dc0 = m._backward(ry, rh, rc)
    checks = {"x": (x, dx), "h0": (h0, dh0)}
    if lstm:
        checks["c0"] = (c0, dc0)
    params = m.named_parameters()
    for k, g in m.grads.items():
        checks[k] = (params[k], g)
    eps = 1e-6
    for name, (arr, grad) in checks.items():
        flat, gflat = arr.reshape(-1), np.asarray(grad).reshape(-1)
        for i in rng.choice(flat.size, min(12, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + eps
            up = loss()
            flat[i] = old - eps
            down = loss()
            flat[i] = old
            fd = (up - down) / (2 * eps)
            assert abs(fd - gflat[i]) <= 1e-6 * max(1.0, abs(fd)), (
                f"{cell} {kw} lengths={lengths}: d/d{name}[{i}] = {gflat[i]:.9g}, "
                f"central difference {fd:.9g}"
            )


def test_masks_change_the_output_as_dropping_units_would():
    """An all-ones mask is no dropout (up to rounding); a mask that zeros unit j of every
    gate gives the output of the same weights with recurrent column j zeroed (an independent
    way to drop the unit from every recurrent product)."""
    rng = np.random.default_rng(4)
    for cell in ("LSTM", "GRU", "SimpleRNN"):
        m = _module(cell)
        G = GATES[cell]
        x = rng.standard_normal((6, 2, 3))
        y_plain, _, _ = m._run(x, None, None, None)
        y_ones, _, _ = m._run(x, None, None, None, np.ones((1, G, 2, 4)))
        # (per-gate products sum in another order than the whole-row one: rounding only)
        assert max_diff(y_ones, y_plain) < 1e-14, f"{cell}: an all-ones mask changed the output"
        drop = np.ones((1, G, 2, 4))
        drop[:, :, :, 1] = 0.0
        y_drop, _, _ = m._run(x, None, None, None, drop)
        w = m.named_parameters()["weight_hh_l0"]
        kept = w.copy()
        w[:, 1] = 0.0
        y_ref, _, _ = m._run(x, None, None, None)
        w[...] = kept
        assert max_diff(y_drop, y_ref) < 1e-12, f"{cell}: {max_diff(y_drop, y_ref):.3e}"


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_same_result_on_one_and_two_threads(cell):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20, 32, 3)).astype(np.float32)
    hm = _masks(rng, (2, GATES[cell], 32, 4))
    xm = _masks(rng, (2, GATES[cell], 32, 3))
    ry = rng.standard_normal((20, 32, 8)).astype(np.float32)
    results = []
    before = rnnkit.get_num_threads()
    try:
        for threads in (1, 2):
            rnnkit.set_num_threads(threads)
            m = _module(cell, dtype="float32", bidirectional=True)
            m.load_state_dict(
                {
                    k: (0.3 * np.sin(np.arange(v.size))).reshape(v.shape).astype(v.dtype)
                    for k, v in m.state_dict().items()
                }
            )
            y, _, _ = m._run(x, None, None, None, hm, xm)
            m.zero_grad()
            dx, _, _ = m._backward(ry, None, None)
            results.append((y, dx, {k: g.copy() for k, g in m.grads.items()}))
    finally:
        rnnkit.set_num_threads(before)
    (y1, dx1, g1), (y2, dx2, g2) = results
    assert np.array_equal(y1, y2) and np.array_equal(dx1, dx2), f"{cell}: 1 and 2 threads differ"
    for k in g1:
        assert np.array_equal(g1[k], g2[k]), f"{cell}: grad {k} differs between 1 and 2 threads"


def test_bad_masks_are_refused_and_change_nothing():
    m = _module("LSTM")
    x = np.zeros((4, 2, 3))
    with pytest.raises(ValueError, match=r"h_masks has shape"):
        m._run(x, None, None, None, np.ones((1, 3, 2, 4)))
    with pytest.raises(ValueError, match=r"x_masks has shape"):
        m._run(x, None, None, None, None, np.ones((1, 4, 2, 4)))
    m.eval()
    with pytest.raises(ValueError, match=r"training forwards only"):
        m._run(x, None, None, None, np.ones((1, 4, 2, 4)))
    with pytest.raises(ValueError, match=r"training forwards only"):
        m._run(x, None, None, None, None, np.ones((1, 4, 2, 3)))
    with pytest.raises(ValueError, match=r"recurrent_dropout must be in \[0, 1\); got 1.0"):
        rk.layers.LSTM(4, recurrent_dropout=1.0)


def test_layer_masks_are_fresh_per_call_seeded_and_unused_in_inference():
    layer = rk.layers.GRU(64, recurrent_dropout=0.25, seed=7, return_sequences=True)
    layer.build((16, 5, 3))
    drawn = [layer._recurrent_masks(16) for _ in range(2)]
    assert drawn[0].shape == (1, 3, 16, 64)
    assert not np.array_equal(drawn[0], drawn[1]), "the masks must change between calls"
    zero = float(np.mean(np.concatenate([d.ravel() for d in drawn]) == 0))
    assert abs(zero - 0.25) < 0.03, f"dropped fraction {zero:.3f}, rate 0.25"
    assert set(np.unique(drawn[0])) == {0.0, np.float32(1 / 0.75)}
    again = rk.layers.GRU(64, recurrent_dropout=0.25, seed=7, return_sequences=True)
    again.build((16, 5, 3))
    assert np.array_equal(again._recurrent_masks(16), drawn[0]), "a seed fixes the masks"
    x = np.random.default_rng(0).standard_normal((16, 5, 3)).astype(np.float32)
    plain = rk.layers.GRU(64, return_sequences=True)
    plain.build((16, 5, 3))
    plain.set_weights(layer.get_weights())
    assert max_diff(layer.forward(x, training=False), plain.forward(x, training=False)) == 0.0
    assert max_diff(layer.forward(x, training=True), plain.forward(x, training=False)) > 1e-3


def test_a_model_with_recurrent_dropout_learns_and_round_trips(tmp_path):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((256, 12, 2)).astype(np.float32)
    y = (x[:, :, 0].sum(axis=1, keepdims=True) > 0).astype(np.float32)
    model = rk.Sequential(
        [
            rk.layers.Input((12, 2)),
            rk.layers.LSTM(16, dropout=0.1, recurrent_dropout=0.3, seed=1),
            rk.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=rk.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"]
    )
    hist = model.fit(x, y, epochs=12, batch_size=32, verbose=0)
    acc = model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]
    assert hist.history["loss"][-1] < 0.6 * hist.history["loss"][0] and acc > 0.9, (
        hist.history,
        acc,
    )
    path = tmp_path / "m.keras"
    model.save(path)
    back = rk.models.load_model(path)
    assert back.layers[0].recurrent_dropout == 0.3
    assert max_diff(back.predict(x, verbose=0), model.predict(x, verbose=0)) == 0.0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras's own saving, on numpy 2
def test_keras_opens_our_file_and_we_open_keras_file(tmp_path):
    keras = pytest.importorskip("keras")
    ours = rk.Sequential(
        [rk.layers.Input((5, 3)), rk.layers.GRU(4, recurrent_dropout=0.2), rk.layers.Dense(1)]
    )
    ours.save(tmp_path / "ours.keras")
    theirs = keras.models.load_model(tmp_path / "ours.keras")
    assert theirs.layers[0].recurrent_dropout == 0.2
    x = np.random.default_rng(0).standard_normal((3, 5, 3)).astype(np.float32)
    assert max_diff(theirs.predict(x, verbose=0), ours.predict(x, verbose=0)) < 1e-5
    theirs.save(tmp_path / "theirs.keras")
    back = rk.models.load_model(tmp_path / "theirs.keras")
    assert back.layers[0].recurrent_dropout == 0.2


def test_fd_through_a_graph_model_with_fixed_masks():
    """Central differences through a float64 model whose recurrent layers drop with fixed
    masks: the gradient reaches the encoder through the decoder's initial state."""
    rng = np.random.default_rng(8)
    L = rk.layers
    a = L.Input((6, 3), dtype="float64")
    b = L.Input((4, 2), dtype="float64")
    enc = L.LSTM(5, recurrent_dropout=0.3, return_state=True, dtype="float64")
    _, h, c = enc(a)
    dec = L.LSTM(5, recurrent_dropout=0.3, return_sequences=True, dtype="float64")
    out = L.Dense(2, dtype="float64")(dec(b, initial_state=[h, c]))
    model = rk.Model([a, b], out)
    for layer, batch in ((enc, 3), (dec, 3)):
        fixed = _masks(rng, (1, 4, batch, 5), rate=0.3, dtype=np.float64)
        layer._recurrent_masks = lambda n, f=fixed: f
    fd_check(model, [rng.standard_normal((3, 6, 3)), rng.standard_normal((3, 4, 2))])
