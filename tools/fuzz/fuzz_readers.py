"""Fuzz rnnkit's model-file readers with atheris (libFuzzer for Python).

    python tools/fuzz/fuzz_readers.py TARGET [--seconds N] [--rss-mb M] [--work DIR]

TARGET is one of:

- ``rnnkit``: ``rnnkit.load_model`` on rnnkit's own format (an npz of a JSON meta and arrays
  with a SHA-256 digest);
- ``keras``: ``rnnkit.load_model`` on Keras 3 ``.keras`` zips (config.json, metadata.json,
  model.weights.h5);
- ``h5``: ``rnnkit.load_model`` on legacy Keras HDF5 files (parsed in a child process);
- ``onnx``: ``rnnkit.onnx.InferenceSession`` on ONNX protobufs, then one run.

The seed corpus is made fresh from real files rnnkit writes (several layer mixes, compiled and
trained, bfloat16-quantized; ONNX exports of LSTM/GRU modules and Sequentials). Mutations are
of two kinds: libFuzzer's byte mutations of the whole file, and, for the zip formats, a
structure-aware mutator that mutates one member and rewrites the archive with correct CRCs
(and, for rnnkit files, a correct digest), so that inputs get past the integrity checks into
the config and shape checks behind them.

A finding is anything but the documented error: ``ModelFileError`` for model files,
``OnnxError`` for ONNX (both ValueErrors), or a crash, a hang (``-timeout``) or memory beyond
``--rss-mb`` (RLIMIT_AS and libFuzzer's ``-rss_limit_mb``). A model that loads must also
predict on a small input. Findings are written to ``WORK/findings`` and the process exits
non-zero. CI runs each target for a short budget (``.ci/fuzz``); run longer by hand.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import sys
import tempfile
import zipfile

import atheris
import numpy as np

with atheris.instrument_imports():
    import rnnkit
    from rnnkit import layers
    from rnnkit._training import h5_extract, keras_config, keras_files, saving, untrusted  # noqa: F401
    from rnnkit.models import ModelFileError

    try:  # rnnkit.onnx imports onnx lazily; its modules are ours to instrument
        from rnnkit.onnx import graph, ops, recurrent, session  # noqa: F401
    except ImportError:
        pass

TARGETS = ("rnnkit", "keras", "h5", "onnx")
ONNX_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


# ------------------------------------------------------------------------------ seeds
def _models() -> list[rnnkit.models.Model]:
    rnnkit.utils.set_random_seed(0)
    made = [
        rnnkit.Sequential([layers.LSTM(4, input_shape=(None, 3)), layers.Dense(2)]),
        rnnkit.Sequential(
            [
                layers.GRU(4, return_sequences=True, input_shape=(None, 3)),
                layers.Bidirectional(layers.SimpleRNN(3)),
                layers.Dropout(0.1),
                layers.Dense(1, activation="sigmoid"),
            ]
        ),
        rnnkit.Sequential(
            [layers.Embedding(10, 4, input_shape=(None,)), layers.LSTM(3), layers.Dense(10)]
        ),
        rnnkit.Sequential([layers.GRU(2, reset_after=False, input_shape=(5, 2))]),
    ]
    trained = rnnkit.Sequential([layers.LSTM(3, input_shape=(None, 2)), layers.Dense(1)])
    trained.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x = np.random.default_rng(0).standard_normal((8, 4, 2)).astype(np.float32)
    trained.fit(x, x[:, -1, :1], epochs=1, verbose=0)
    made.append(trained)
    quantized = rnnkit.Sequential([layers.LSTM(16, input_shape=(None, 2)), layers.Dense(1)])
    quantized.quantize("bfloat16")
    made.append(quantized)
    made.append(rnnkit.Sequential([layers.LSTM(3)]))  # unbuilt
    made.append(
        rnnkit.Sequential(
            [
                layers.Input(shape=(8, 2)),
                layers.Conv1D(3, 3, padding="causal"),
                layers.MaxPooling1D(2),
                layers.BatchNormalization(),
                layers.GRU(2, return_sequences=True),
                layers.LayerNormalization(),
                layers.GlobalAveragePooling1D(),
                layers.Dense(1),
            ]
        )
    )
    # graph models (rnnkit and .keras seeds): an encoder-decoder with masks and attention,
    # and two inputs merged into two outputs
    src = layers.Input(shape=(None,), dtype="int32")
    enc, h, c = layers.LSTM(3, return_sequences=True, return_state=True)(
        layers.Embedding(9, 4, mask_zero=True)(src)
    )
    dec_in = layers.Input(shape=(None, 2))
    dec = layers.LSTM(3, return_sequences=True)(dec_in, initial_state=[h, c])
    ctx, weights = layers.Attention()([dec, enc], return_attention_scores=True)
    out = layers.TimeDistributed(layers.Dense(2))(layers.Concatenate()([dec, ctx]))
    seq2seq = rnnkit.Model([src, dec_in], [out, weights])
    seq2seq.compile(optimizer="adam", loss=["mse", "mse"], loss_weights=[1.0, 0.5])
    made.append(seq2seq)
    a, b = layers.Input(shape=(4, 2)), layers.Input(shape=(3,))
    mixed = layers.Add()([layers.GRU(3)(a), layers.Dense(3)(b)])
    made.append(rnnkit.Model([a, b], [layers.Dense(1)(mixed), layers.Dot(axes=1)([mixed, mixed])]))
    return made


def write_seeds(target: str, corpus: str) -> int:
    os.makedirs(corpus, exist_ok=True)
    n = 0
    with tempfile.TemporaryDirectory() as tmp:
        if target == "onnx":
            from rnnkit import onnx as rk_onnx

            sources = [
                rnnkit.LSTM(3, 4, num_layers=2, batch_first=True),
                rnnkit.GRU(3, 4, bidirectional=True),
                rnnkit.LSTM(3, 8, bidirectional=True),
                _models()[0],
                _models()[1],
            ]
            for i, m in enumerate(sources):
                path = os.path.join(tmp, f"{i}.onnx")
                kwargs = {"lengths": True} if i == 0 else {}
                rk_onnx.export(m, path, **kwargs)
                with open(path, "rb") as f:
                    _put(corpus, f"seed{i}.onnx", f.read())
                n += 1
            return n
        ext = {"rnnkit": ".rnnkit", "keras": ".keras", "h5": ".h5"}[target]
        for i, m in enumerate(_models()):
            if target != "rnnkit" and m.quantization_mode is not None:
                continue  # Keras files keep float weights only
            if target == "h5" and isinstance(m, rnnkit.models.Functional):
                continue  # graph models are written as .keras, not legacy .h5
            path = os.path.join(tmp, f"{i}{ext}")
            m.save(path)
            with open(path, "rb") as f:
                _put(corpus, f"seed{i}{ext}", f.read())
            n += 1
    return n


def _put(corpus: str, name: str, data: bytes) -> None:
    with open(os.path.join(corpus, name), "wb") as f:
        f.write(data)


# ------------------------------------------------------------------------- mutators
def _rezip(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return out.getvalue()


def _fix_digest(members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Recompute an rnnkit file's digest over its (mutated) members, where they parse."""
    try:
        d = dict(members)
        meta = np.load(io.BytesIO(d["rnnkit_meta.npy"]), allow_pickle=False)
        arrays = {
            n[:-4]: np.load(io.BytesIO(v), allow_pickle=False)
            for n, v in members
            if n.endswith(".npy") and n not in ("rnnkit_meta.npy", "rnnkit_digest.npy")
        }
        digest = io.BytesIO()
        np.save(digest, np.array(saving._digest(str(meta[()]), arrays)))
    except Exception:
        return members
    return [(n, digest.getvalue() if n == "rnnkit_digest.npy" else v) for n, v in members]


def _mutate_json_member(data: bytes, rng: random.Random) -> bytes | None:
    """A semantic edit of a JSON text (in a .json member or an rnnkit meta npy): a number
    scaled, a value replaced, a key dropped."""
    try:
        meta_npy = data.startswith(b"\x93NUMPY")
        text = str(np.load(io.BytesIO(data))[()]) if meta_npy else data.decode()
        doc = json.loads(text)
    except Exception:
        return None
    nodes: list[tuple[object, object]] = []

    def walk(node: object) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)  # type: ignore[union-attr]
        for k, v in list(items):
            nodes.append((node, k))
            if isinstance(v, (dict, list)):
                walk(v)

    if isinstance(doc, (dict, list)):
        walk(doc)
    if not nodes:
        return None
    parent, key = rng.choice(nodes)
    value = parent[key]  # type: ignore[index]
    choices = [0, -1, 1 << 31, 10**9, 6000, 2.5, "x", None, [], {}, [1 << 20] * 3, True]
    if isinstance(value, int) and not isinstance(value, bool) and rng.random() < 0.5:
        parent[key] = value * rng.choice([0, -1, 2, 1000])  # type: ignore[index]
    elif isinstance(parent, dict) and rng.random() < 0.2:
        del parent[key]
    else:
        parent[key] = rng.choice(choices)  # type: ignore[index]
    text = json.dumps(doc)
    if meta_npy:
        out = io.BytesIO()
        np.save(out, np.array(text))
        return out.getvalue()
    return text.encode()


def _mutate_onnx(data: bytes, rng: random.Random) -> bytes | None:
    """A semantic edit of an ONNX model: an attribute's value, a node's inputs or op type, an
    initializer's dims, or the opset, changed; the protobuf stays well formed."""
    import onnx

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception:
        return None
    g = model.graph
    choice = rng.randrange(5)
    if choice == 0 and g.node:
        node = rng.choice(g.node)
        if node.attribute:
            a = rng.choice(node.attribute)
            if a.type == onnx.AttributeProto.INT:
                a.i = rng.choice([0, -1, 1, 2, 3, a.i * 2, a.i + 1, 1 << 31, -(1 << 40)])
            elif a.type == onnx.AttributeProto.FLOAT:
                a.f = rng.choice([0.0, -1.0, 1e30, float("nan"), float("inf"), a.f * 2])
            elif a.type == onnx.AttributeProto.STRING:
                a.s = rng.choice([b"reverse", b"bidirectional", b"forward", b"x", b""])
            elif a.type == onnx.AttributeProto.INTS and a.ints:
                a.ints[rng.randrange(len(a.ints))] = rng.choice([0, -1, 5, 1 << 20])
            elif a.type == onnx.AttributeProto.STRINGS and a.strings:
                names = [b"Relu", b"Tanh", b"Sigmoid", b"Affine", b"ScaledTanh", b"Nope"]
                a.strings[rng.randrange(len(a.strings))] = rng.choice(names)
        else:
            node.attribute.append(onnx.helper.make_attribute("axis", rng.choice([0, -1, 7])))
    elif choice == 1 and g.node:
        node = rng.choice(g.node)
        if node.input and rng.random() < 0.5:
            outs = list(node.output) or ["x"]
            node.input[rng.randrange(len(node.input))] = rng.choice(["", "x", outs[0]])
        else:
            node.op_type = rng.choice(["LSTM", "GRU", "RNN", "MatMul", "Transpose", "Loop"])
    elif choice == 2 and g.initializer:
        t = rng.choice(g.initializer)
        if t.dims:
            t.dims[rng.randrange(len(t.dims))] = rng.choice([0, 1, 2, 1 << 20, -1])
    elif choice == 3 and model.opset_import:
        model.opset_import[0].version = rng.choice([1, 7, 13, 17, 22, 99])
    elif g.input:
        dims = g.input[0].type.tensor_type.shape.dim
        if dims:
            dims[rng.randrange(len(dims))].dim_value = rng.choice([0, 1, 3, 1 << 20])
    return model.SerializeToString()


def make_mutator(target: str):
    def mutate(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if target == "onnx" and rng.random() < 0.7:
            try:
                new = _mutate_onnx(data, rng)
            except Exception:  # noqa: BLE001 - a mutation that does not apply: mutate bytes
                new = None
            if new is not None:
                return new
        if target in ("rnnkit", "keras") and rng.random() < 0.7:
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as zf:
                    members = [(i.filename, zf.read(i)) for i in zf.infolist()]
            except Exception:
                members = []
            if members:
                k = rng.randrange(len(members))
                name, body = members[k]
                new = _mutate_json_member(body, rng) if rng.random() < 0.5 else None
                if new is None:
                    new = atheris.Mutate(body, max(len(body) * 2, 64))
                members[k] = (name, new)
                if target == "rnnkit" and rng.random() < 0.9:
                    members = _fix_digest(members)
                return _rezip(members)
        return atheris.Mutate(data, max_size)

    return mutate


# --------------------------------------------------------------------------- targets
def make_target(target: str, work: str):
    ext = {"rnnkit": ".rnnkit", "keras": ".keras"}.get(target, ".bin")
    path = os.path.join(work, "input" + ext)

    def load_file(data: bytes) -> None:
        with open(path, "wb") as f:
            f.write(data)
        try:
            model = rnnkit.load_model(path)
        except ModelFileError:
            return
        if not model.built:
            return
        if isinstance(model, rnnkit.models.Functional):  # a graph: one array per Input
            specs = [(t.shape[1:], t.dtype.kind in "iu") for t in model.inputs]
        else:
            first_ids = isinstance(model.layers[0], layers.Embedding)
            specs = [(model._build_input_shape[1:], first_ids)]
        feed = []
        for dims, ids in specs:
            if any(d is not None and d > 64 for d in dims):
                return  # a legal model whose fixed input is too large to feed here
            x = np.zeros((1, *(2 if d is None else d for d in dims)), np.float32)
            feed.append(x.astype(np.int64) if ids else x)
        try:
            model.predict(feed if len(feed) > 1 else feed[0], verbose=0)
        except ValueError as e:
            if "fewer than" not in str(e):  # a convolution's window longer than 2 steps
                raise

    def load_onnx(data: bytes) -> None:
        from rnnkit.onnx import InferenceSession, OnnxError

        try:
            sess = InferenceSession(data)
        except OnnxError:
            return
        feed = {}
        for arg in sess.get_inputs():
            dtype = ONNX_TYPES.get(arg.type)
            if dtype is None:
                return  # an input type our made-up feed does not cover
            shape = [d if isinstance(d, int) and 0 < d <= 8 else 2 for d in arg.shape]
            feed[arg.name] = np.ones(shape, dtype)
        try:
            sess.run(None, feed)
        except OnnxError:
            return
        except (TypeError, ValueError) as e:
            # our made-up feed may not fit the model: a clear error naming the run is right
            if not str(e).startswith("[InferenceSession.run]"):
                raise

    return load_onnx if target == "onnx" else load_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", choices=TARGETS)
    ap.add_argument("--seconds", type=int, default=60, help="time budget (default 60)")
    ap.add_argument("--rss-mb", type=int, default=3072, help="memory limit (default 3072)")
    ap.add_argument("--work", default=None, help="corpus and findings (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=1)
    args, rest = ap.parse_known_args()

    work = args.work or tempfile.mkdtemp(prefix=f"rnnkit-fuzz-{args.target}-")
    corpus = os.path.join(work, "corpus")
    findings = os.path.join(work, "findings")
    os.makedirs(findings, exist_ok=True)
    seeds = write_seeds(args.target, corpus)
    # Address space: what libFuzzer, numpy and the interpreter map, plus the limit.
    limit = (args.rss_mb + 2048) << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    rnnkit.set_num_threads(1)
    print(f"fuzz {args.target}: {seeds} seeds in {corpus}, {args.seconds} s; findings: {findings}")
    sys.stdout.flush()
    argv = [
        sys.argv[0],
        corpus,
        f"-max_total_time={args.seconds}",
        f"-rss_limit_mb={args.rss_mb}",
        "-timeout=60",
        f"-seed={args.seed}",
        f"-artifact_prefix={findings}/",
        "-max_len=200000",
        *rest,
    ]
    atheris.Setup(argv, make_target(args.target, work), custom_mutator=make_mutator(args.target))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
