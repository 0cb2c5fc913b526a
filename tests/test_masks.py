"""Masks (issue 12): ``Embedding(mask_zero=True)`` and ``Masking`` mark padding steps; the
recurrent layers skip them (the core's ``lengths`` for right-padded rows, the valid steps
moved to the front otherwise), through ``Bidirectional``, into ``Attention``, and into losses
and metrics (masked steps do not count).

Compared with Keras 3 on the same weights: predictions for right-padded, left-padded, holed
and fully padded rows, and two epochs of ``fit``. Gradients against central differences in
float64, and padding that no longer changes predictions.
"""

from __future__ import annotations

import numpy as np
import pytest
from graph_check import fd_check, max_diff

import rnnkit.keras as rk
from rnnkit import layers
from rnnkit.models import Model, Sequential


def _keras():
    return pytest.importorskip("keras")


def _padded_ids(rng, n=8, t=7, vocab=20):
    ids = rng.integers(1, vocab, (n, t))
    ids[0, 4:] = 0  # right-padded
    ids[1, :3] = 0  # left-padded
    ids[2, 2] = 0  # a hole
    ids[3, :] = 0  # nothing but padding
    ids[4, 1::2] = 0  # every other step
    return ids


def _classifier(mod, cell, bi, sequences=False):
    L = mod.layers
    inp = mod.Input(shape=(None,), dtype="int32", name="ids")
    x = L.Embedding(20, 5, mask_zero=True, name="emb")(inp)
    r = getattr(L, cell)(4, return_sequences=True, name="r1")
    x = L.Bidirectional(r, name="bi")(x) if bi else r(x)
    x = getattr(L, cell)(3, return_sequences=sequences, name="r2")(x)
    return mod.Model(inp, L.Dense(2, activation="softmax", name="out")(x))


@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bidirectional"])
@pytest.mark.parametrize("cell", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("sequences", [False, True], ids=["last", "sequences"])
def test_masked_predictions_match_keras(cell, bi, sequences):
    keras = _keras()
    ids = _padded_ids(np.random.default_rng(0))
    ours, theirs = _classifier(rk, cell, bi, sequences), _classifier(keras, cell, bi, sequences)
    ours.set_weights(theirs.get_weights())
    d = max_diff(ours.predict(ids, verbose=0), theirs.predict(ids, verbose=0))
    assert d < 1e-5, f"{cell} bi={bi} sequences={sequences}: {d:.3e}"


@pytest.mark.parametrize("sequences", [False, True], ids=["classifier", "tagger"])
def test_masked_fit_matches_keras(sequences):
    """Two epochs on padded sequences: a classifier, and a tagger whose loss and accuracy
    count only the real steps (Keras's masked mean)."""
    keras = _keras()
    rng = np.random.default_rng(1)
    ids = _padded_ids(rng, n=16)
    y = rng.integers(0, 2, (16, 7) if sequences else 16)
    ours, theirs = (
        _classifier(rk, "LSTM", True, sequences),
        _classifier(keras, "LSTM", True, sequences),
    )
    ours.set_weights(theirs.get_weights())
    # SGD: Keras 3 on TensorFlow gives an Embedding's gradient as IndexedSlices, and its
    # Adam then updates differently from Adam on the dense gradient (up to lr per step);
    # rnnkit's Adam is the dense one (test_regularizers compares Adam where Keras densifies)
    for m, mod in ((ours, rk), (theirs, keras)):
        m.compile(
            optimizer=mod.optimizers.SGD(0.5),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    h1 = ours.fit(ids, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    h2 = theirs.fit(ids, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    for key in h2:
        assert np.allclose(h1[key], h2[key], rtol=1e-5, atol=1e-6), f"{key}: {h1[key]} vs {h2[key]}"
    for k, (a, b) in enumerate(zip(ours.get_weights(), theirs.get_weights())):
        assert max_diff(a, b) < 1e-5, f"weight {k}: {max_diff(a, b):.3e}"
    e1 = ours.evaluate(ids, y, verbose=0)
    e2 = theirs.evaluate(ids, y, verbose=0)
    assert np.allclose(e1, e2, rtol=1e-5, atol=1e-6), f"evaluate {e1} vs {e2}"


def test_masking_layer_in_a_sequential_matches_keras():
    keras = _keras()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((10, 6, 3)).astype(np.float32)
    x[0, 3:] = 0.0
    x[1, :2] = 0.0
    x[2, 4] = 0.0
    y = rng.standard_normal((10, 1)).astype(np.float32)

    def build(mod):
        L = mod.layers
        return mod.Sequential(
            [
                mod.Input(shape=(6, 3)),
                L.Masking(0.0),
                L.GRU(4, return_sequences=True),
                L.LSTM(3),
                L.Dense(1),
            ]
        )

    ours, theirs = build(rk), build(keras)
    ours.set_weights(theirs.get_weights())
    assert max_diff(ours.predict(x, verbose=0), theirs.predict(x, verbose=0)) < 1e-5
    for m, mod in ((ours, rk), (theirs, keras)):
        m.compile(optimizer=mod.optimizers.SGD(0.1), loss="mse")
    h1 = ours.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0).history
    h2 = theirs.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0).history
    assert np.allclose(h1["loss"], h2["loss"], rtol=1e-5), (h1, h2)
    for k, (a, b) in enumerate(zip(ours.get_weights(), theirs.get_weights())):
        assert max_diff(a, b) < 1e-5, f"weight {k}: {max_diff(a, b):.3e}"


def test_attention_over_masked_sequences_matches_keras():
    keras = _keras()

    def build(mod):
        L = mod.layers
        src = mod.Input(shape=(None,), dtype="int32", name="src")
        tgt = mod.Input(shape=(None,), dtype="int32", name="tgt")
        enc, h, c = L.LSTM(4, return_sequences=True, return_state=True, name="enc")(
            L.Embedding(20, 5, mask_zero=True, name="e1")(src)
        )
        dec = L.LSTM(4, return_sequences=True, name="dec")(
            L.Embedding(20, 5, mask_zero=True, name="e2")(tgt), initial_state=[h, c]
        )
        ctx = L.Attention(name="att")([dec, enc])
        out = L.Dense(20, activation="softmax", name="out")(L.Concatenate(name="cat")([dec, ctx]))
        return mod.Model([src, tgt], out)

    rng = np.random.default_rng(3)
    # The decoder's inputs are unpadded here: Keras 3 (3.15) drops the mask of a recurrent
    # layer called with initial_state= (it runs the padding steps); rnnkit applies it, see
    # test_a_masked_decoder_with_initial_state_skips_its_padding
    src, tgt = _padded_ids(rng, n=8), rng.integers(1, 20, (8, 5))
    y = rng.integers(0, 20, (8, 5))
    ours, theirs = build(rk), build(keras)
    ours.set_weights(theirs.get_weights())
    d = max_diff(ours.predict([src, tgt], verbose=0), theirs.predict([src, tgt], verbose=0))
    assert d < 1e-5, f"predict: {d:.3e}"
    for m, mod in ((ours, rk), (theirs, keras)):
        m.compile(optimizer=mod.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    h1 = ours.fit([src, tgt], y, batch_size=4, epochs=2, shuffle=False, verbose=0).history
    h2 = theirs.fit([src, tgt], y, batch_size=4, epochs=2, shuffle=False, verbose=0).history
    assert np.allclose(h1["loss"], h2["loss"], rtol=1e-5), (h1, h2)
    for k, (a, b) in enumerate(zip(ours.get_weights(), theirs.get_weights())):
        assert max_diff(a, b) < 1e-5, f"weight {k}: {max_diff(a, b):.3e}"


def test_a_masked_decoder_with_initial_state_skips_its_padding():
    """Each padded row's final state equals that of its valid tokens alone (an independent
    reference: the same layers on the unpadded row), initial state included."""
    L = layers
    tgt = L.Input(shape=(None,), dtype="int32")
    h0, c0 = L.Input(shape=(3,)), L.Input(shape=(3,))
    seq, h, c = L.LSTM(3, return_sequences=True, return_state=True)(
        L.Embedding(20, 4, mask_zero=True)(tgt), initial_state=[h0, c0]
    )
    model = Model([tgt, h0, c0], [h, c])
    rng = np.random.default_rng(7)
    ids = _padded_ids(rng, n=6)
    s0 = [rng.standard_normal((6, 3)).astype(np.float32) for _ in range(2)]
    got = model.predict([ids, *s0], verbose=0)
    for i, row in enumerate(ids):
        valid = row[row != 0]
        if valid.size == 0:
            want = [s0[0][i : i + 1], s0[1][i : i + 1]]  # nothing to read: the initial state
        else:
            want = model.predict([valid[None], s0[0][i : i + 1], s0[1][i : i + 1]], verbose=0)
        for k in range(2):
            d = max_diff(got[k][i], want[k][0])
            assert d < 1e-6, f"row {i} {row}: state {k} differs from its valid tokens by {d:.3e}"


@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_no_longer_changes_predictions(side):
    rng = np.random.default_rng(4)
    model = Sequential(
        [
            layers.Input(shape=(None,), dtype="int32"),
            layers.Embedding(30, 8, mask_zero=True),
            layers.Bidirectional(layers.LSTM(6)),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    lengths = rng.integers(1, 9, 12)
    seqs = [rng.integers(1, 30, n) for n in lengths]

    def pad(width):
        out = np.zeros((len(seqs), width), np.int64)
        for i, s in enumerate(seqs):
            if side == "right":
                out[i, : len(s)] = s
            else:
                out[i, width - len(s) :] = s
        return out

    short, long = model.predict(pad(8), verbose=0), model.predict(pad(40), verbose=0)
    assert max_diff(short, long) < 1e-6, (
        f"padding to 40 changed predictions by {max_diff(short, long):.3e}"
    )


# ----------------------------------------------------------------- finite differences
@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bidirectional"])
def test_masked_gradients_against_finite_differences(cell, bi):
    """Holes, left padding and an empty row, with the decoder's initial state from a masked
    encoder: every weight's gradient, the embeddings' included."""
    f64 = {"dtype": "float64"}
    ids_in = layers.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(20, 4, mask_zero=True, **f64)(ids_in)
    rec = getattr(layers, cell)
    first = rec(3, return_sequences=True, **f64)
    seq = layers.Bidirectional(first, **f64)(x) if bi else first(x)
    out, *states = rec(3, return_sequences=True, return_state=True, **f64)(seq)
    dec_in = layers.Input(shape=(4, 2), dtype="float64")
    dec = rec(3, return_sequences=True, **f64)(dec_in, initial_state=states)
    model = Model([ids_in, dec_in], [out, dec, layers.Dense(2, **f64)(states[0])])
    rng = np.random.default_rng(5)
    fd_check(model, [_padded_ids(rng, n=6), rng.standard_normal((6, 4, 2))], n_checks=5)


def test_masks_are_refused_where_they_cannot_apply():
    m = Sequential(
        [
            layers.Input(shape=(5,), dtype="int32"),
            layers.Embedding(9, 3, mask_zero=True),
            layers.LSTM(2),
        ]
    )
    with pytest.raises(ValueError, match="mask_zero=True"):
        m.stream()
    pytest.importorskip("onnx")
    from rnnkit import onnx as rk_onnx

    with pytest.raises(ValueError, match="mask_zero=True"):
        rk_onnx.export(m)
    with pytest.raises(ValueError, match=r"mask has shape"):
        layers.LSTM(2)(np.zeros((2, 3, 1)), mask=np.ones((2, 4), bool))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("ext", [".keras", ".h5", ".rnnkit"])
def test_masked_models_round_trip_through_files_and_keras(tmp_path, ext):
    rng = np.random.default_rng(8)
    ids = _padded_ids(rng, n=5, t=6, vocab=9)
    x = rng.standard_normal((5, 6, 2)).astype(np.float32)
    x[0, 3:] = 0.0
    x[1, :2] = 0.0
    models = [
        (
            Sequential(
                [
                    layers.Input(shape=(6,), dtype="int32"),
                    layers.Embedding(9, 3, mask_zero=True),
                    layers.LSTM(2),
                    layers.Dense(1),
                ]
            ),
            ids,
        ),
        (
            Sequential(
                [layers.Input(shape=(6, 2)), layers.Masking(0.0), layers.GRU(2), layers.Dense(1)]
            ),
            x,
        ),
    ]
    for k, (model, data) in enumerate(models):
        path = tmp_path / f"m{k}{ext}"
        model.save(path)
        want = model.predict(data, verbose=0)
        from rnnkit.models import load_model

        again = load_model(path).predict(data, verbose=0)
        assert max_diff(again, want) == 0.0, (
            f"model {k} {ext}: reloaded {max_diff(again, want):.3e}"
        )
        if ext != ".rnnkit":
            keras = _keras()
            pytest.importorskip("h5py")
            theirs = keras.models.load_model(path).predict(data, verbose=0)
            assert max_diff(theirs, want) < 1e-6, (
                f"model {k} {ext}: Keras {max_diff(theirs, want):.3e}"
            )
