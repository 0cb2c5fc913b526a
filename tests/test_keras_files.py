"""Keras files in and out: the committed fixtures (written by Keras 3 and tf.keras 2 through
tests/fixtures/make_keras_files.py) load in a process where importing tensorflow, keras or
tf_keras fails, with Keras's saved predictions; unsupported layers and options, and
damaged or crafted files, raise ModelFileError naming the problem before anything is
allocated; files rnnkit writes load in Keras with rnnkit's predictions (when Keras is
installed) and back in rnnkit exactly; the file name's extension picks the format."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from error_record import record_error

h5py = pytest.importorskip("h5py", reason="Keras files need h5py (the keras-files extra)")

import rnnkit  # noqa: E402
from rnnkit import layers, optimizers  # noqa: E402
from rnnkit.models import ModelFileError, Sequential, load_model  # noqa: E402
from rnnkit.utils import set_random_seed  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "keras"
CASES = sorted(p.stem for p in FIXTURES.glob("*.npz"))

#: Blocks imports of the frameworks, records attempts, then runs the fixture comparisons.
_NO_FRAMEWORKS = r"""
import json, os, sys
import numpy as np
tried = []
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras", "torch"):
            tried.append(name)
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Block())
import rnnkit
out = {}
d = sys.argv[1]
for case in sys.argv[2:]:
    ref = np.load(os.path.join(d, case + ".npz"))
    model_file = None
    for ext in (".keras", ".h5"):
        f = os.path.join(d, case + ext)
        if not os.path.exists(f):
            continue
        model_file = model_file or f
        try:
            import warnings
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                m = rnnkit.load_model(f)
            y = m.predict(ref["x"], verbose=0)
            out[case + ext] = {"diff": float(np.abs(y - ref["y"]).max()), "dtype": str(y.dtype),
                               "diff_call": float(np.abs(y - ref["y_call"]).max())
                               if "y_call" in ref.files else None,
                               "layers": [type(l).__name__ for l in m.layers],
                               "warnings": [str(x.message) for x in w]}
        except Exception as e:
            out[case + ext] = {"error": f"{type(e).__name__}: {e}"}
    for ext in (".weights.h5", "_weights.h5"):
        f = os.path.join(d, case + ext)
        if not os.path.exists(f) or model_file is None:
            continue
        try:
            m = rnnkit.load_model(model_file, compile=False)
            m.set_weights([np.zeros_like(w) for w in m.get_weights()])
            m.load_weights(f)
            y = m.predict(ref["x"], verbose=0)
            out[case + ext] = {"diff": float(np.abs(y - ref["y"]).max()), "dtype": str(y.dtype)}
        except Exception as e:
            out[case + ext] = {"error": f"{type(e).__name__}: {e}"}
loaded = [m for m in ("tensorflow", "keras", "tf_keras", "torch") if m in sys.modules]
print(json.dumps({"results": out, "tried": tried, "loaded": loaded}))
"""


@pytest.fixture(scope="module")
def no_framework_run() -> dict:
    assert CASES, f"no fixtures in {FIXTURES}; run tests/fixtures/make_keras_files.py"
    proc = subprocess.run(
        [sys.executable, "-c", _NO_FRAMEWORKS, str(FIXTURES), *CASES],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fixture_files() -> list[str]:
    names = []
    for case in CASES:
        for ext in (".keras", ".h5", ".weights.h5", "_weights.h5"):
            if (FIXTURES / f"{case}{ext}").exists():
                names.append(case + ext)
    return names


def test_nothing_imports_a_framework(no_framework_run):
    assert no_framework_run["tried"] == [], f"rnnkit tried to import {no_framework_run['tried']}"
    assert no_framework_run["loaded"] == []


@pytest.mark.parametrize("name", _fixture_files())
def test_fixture_predictions_equal_keras(no_framework_run, name):
    result = no_framework_run["results"].get(name)
    assert result is not None, f"{name} was not checked"
    assert "error" not in result, f"{name}: {result.get('error')}"
    # Keras's compiled predict is off by ~1e-9 in float64; its eager call is exact.
    tol = 1e-8 if result["dtype"] == "float64" else 1e-5
    record_error(result["diff"])
    assert result["diff"] <= tol, f"{name}: max |rnnkit - Keras predict| = {result['diff']:.3g}"
    if result["dtype"] == "float64" and result.get("diff_call") is not None:
        assert result["diff_call"] <= 1e-13, (
            f"{name}: max |rnnkit - Keras call| = {result['diff_call']:.3g}"
        )
    if name.startswith("k2_") and name.endswith(".keras"):
        # tf.keras 2's optimizer variables are not mapped: reported, not silently dropped
        assert all("Keras 2" in w for w in result["warnings"]), result["warnings"]
    else:
        assert result.get("warnings", []) == [], f"{name}: {result['warnings']}"


def test_fixtures_cover_the_layers_and_formats(no_framework_run):
    results = no_framework_run["results"]
    seen = {lay for r in results.values() for lay in r.get("layers", [])}
    assert {"LSTM", "GRU", "Bidirectional", "Embedding", "Dense", "Dropout", "Flatten"} <= seen
    for case in ("lstm_stack", "k2_lstm_stack"):
        assert {f"{case}.h5", f"{case}.keras"} <= set(results)
    assert "lstm_stack.weights.h5" in results and "k2_bidirectional_weights.h5" in results


def test_keras2_hard_sigmoid_is_refused():
    with pytest.raises(ModelFileError, match=r"hard_sigmoid.*Keras 2.*0\.2 x \+ 0\.5"):
        load_model(FIXTURES / "k2_hard_sigmoid.h5")


def test_loaded_models_are_keras_shaped():
    model = load_model(FIXTURES / "lstm_stack.keras")
    assert [type(lay).__name__ for lay in model.layers] == ["LSTM", "LSTM", "LSTM", "Dense"]
    assert model.layers[1].go_backwards and model.layers[0].return_sequences
    assert isinstance(model.optimizer, optimizers.Adam) and model.loss.name == "mse"
    assert model.optimizer.iterations == 2  # one epoch of two batches, as saved
    gru = load_model(FIXTURES / "gru_reset_after.h5")
    assert [lay.reset_after for lay in gru.layers[:2]] == [True, False]
    assert isinstance(gru.optimizer, optimizers.RMSprop)
    bi = load_model(FIXTURES / "bidirectional.keras", compile=False)
    assert [lay.merge_mode for lay in bi.layers[:4]] == ["concat", "sum", "mul", "ave"]
    assert not bi.compiled


def test_resumed_training_matches_keras_optimizer_state():
    """The Adam slots in lstm_stack.keras continue where Keras left them: one more rnnkit
    step equals the saved Keras state advanced by hand with Keras 3's Adam equations."""
    model = load_model(FIXTURES / "lstm_stack.keras")
    opt = model.optimizer
    assert opt.built and opt.iterations == 2
    slots = opt.get_state()["slots"]
    assert any(np.abs(s).max() > 0 for per in slots for s in per), "slots were not restored"
    # Keras's own file: the Dense kernel's momentum and velocity are vars 20, 21.
    with zipfile.ZipFile(FIXTURES / "lstm_stack.keras") as zf:
        h5 = h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r")
        m_dense = h5["optimizer/vars/20"][()]
        v_dense = h5["optimizer/vars/21"][()]
    dense = model.layers[-1]
    k = [i for i, p in enumerate(model._params) if p is dense.kernel][0]
    np.testing.assert_array_equal(slots[k][0], m_dense)
    np.testing.assert_array_equal(slots[k][1], v_dense)


# ------------------------------------------------------------ crafted and unsupported
def _rewrite_keras(src: Path, out: Path, edit) -> Path:
    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(out, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    return out


def _layer(config: dict, index: int) -> dict:
    return config["config"]["layers"][index]["config"]


UNSUPPORTED = [
    ("embedding", lambda c: _layer(c, 1).update(sparse=True), r"'embedding'.*sparse=True"),
    (
        "lstm_stack",
        lambda c: c["config"]["layers"][2].update(class_name="ConvLSTM1D"),
        r"\(ConvLSTM1D\): layer class 'ConvLSTM1D' is not supported",
    ),
    ("lstm_stack", lambda c: c.update(class_name="Functional"), "input_layers must list"),
    ("lstm_stack", lambda c: c.update(class_name="MyModel"), "model class 'MyModel'"),
    (
        "lstm_stack",
        lambda c: _layer(c, 1).update(dtype="mixed_float16"),
        r"dtype policy 'mixed_float16' is not supported",
    ),
    ("lstm_stack", lambda c: _layer(c, 2).update(foo=3), r"option foo=3 is not known"),
    (
        "lstm_stack",
        lambda c: _layer(c, 1).update(kernel_regularizer={"class_name": "OrthogonalRegularizer"}),
        r"regularizer class 'OrthogonalRegularizer' is not supported",
    ),
    ("lstm_stack", lambda c: _layer(c, 1).update(time_major=True), "time_major=True"),
    (
        "lstm_stack",
        lambda c: _layer(c, 4).update(activation={"class_name": "MyAct", "config": {}}),
        "a custom activation",
    ),
    ("lstm_stack", lambda c: _layer(c, 4).update(activation="gelu"), "unknown activation 'gelu'"),
    ("lstm_stack", lambda c: _layer(c, 1).update(activation="selu"), "activation 'selu'"),
    (
        "bidirectional",
        lambda c: _layer(c, 1).update(merge_mode=None),
        r"merge_mode=None is not supported",
    ),
    (
        "bidirectional",
        lambda c: _layer(c, 1)["backward_layer"]["config"].update(units=7),
        "not the mirror of the forward layer .*differs in units",
    ),
    (
        "bidirectional",
        lambda c: _layer(c, 1)["layer"].update(class_name="Dense"),
        "wraps 'Dense'",
    ),
    (
        "lstm_stack",
        lambda c: c["config"]["layers"].insert(2, json.loads(json.dumps(c))),
        "nested models are not supported",
    ),
    (
        "lstm_stack",
        lambda c: c["config"]["layers"][0]["config"].update(sparse=True),
        "sparse=True is not supported",
    ),
    (
        "lstm_stack",
        lambda c: c["config"]["layers"][0]["config"].update(name=5),
        "name must be a string",
    ),
]


@pytest.mark.parametrize("case, edit, message", UNSUPPORTED)
def test_unsupported_layers_and_options_are_named(tmp_path, case, edit, message):
    bad = _rewrite_keras(FIXTURES / f"{case}.keras", tmp_path / "bad.keras", edit)
    with pytest.raises(ModelFileError, match=message):
        load_model(bad)


def test_unsupported_compile_config_names_compile_false(tmp_path):
    def nadam(c):
        c["compile_config"]["optimizer"]["class_name"] = "Nadam"

    bad = _rewrite_keras(FIXTURES / "lstm_stack.keras", tmp_path / "nadam.keras", nadam)
    with pytest.raises(ModelFileError, match="optimizer 'Nadam' is not supported.*compile=False"):
        load_model(bad)
    ref = np.load(FIXTURES / "lstm_stack.npz")
    model = load_model(bad, compile=False)
    assert not model.compiled
    assert np.abs(model.predict(ref["x"], verbose=0) - ref["y"]).max() <= 1e-5


def test_weights_that_do_not_fit_the_config(tmp_path):
    def grow(c):
        _layer(c, 1)["units"] = 6  # the file's kernel is (3, 20)

    bad = _rewrite_keras(FIXTURES / "lstm_stack.keras", tmp_path / "grow.keras", grow)
    with pytest.raises(ModelFileError, match=r"has shape \(3, 20\); the model expects"):
        load_model(bad)


def test_absurd_sizes_fail_before_allocating(tmp_path):
    """A config declaring huge layers must not make rnnkit allocate them."""

    def huge(c):
        _layer(c, 1)["units"] = 200_000  # a (3, 800000) kernel and a 160 GB recurrent one

    bad = _rewrite_keras(FIXTURES / "lstm_stack.keras", tmp_path / "huge.keras", huge)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="the model expects"):
            load_model(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20, f"peak allocation {peak / 2**20:.1f} MiB while refusing the file"


def _legacy_copy(tmp_path: Path, name: str = "lstm_stack") -> Path:
    out = tmp_path / f"{name}.h5"
    out.write_bytes((FIXTURES / f"{name}.h5").read_bytes())
    return out


def _first_weight(h5) -> tuple:
    group = h5["model_weights"]
    layer = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["layer_names"]][0]
    names = group[layer].attrs["weight_names"]
    name = names[0].decode() if isinstance(names[0], bytes) else names[0]
    return group[layer], name


def test_declared_but_unstored_weights_are_refused(tmp_path):
    """A dataset of the right shape whose bytes are not in the file (an unwritten chunked
    dataset: the shape of a crafted file that claims huge weights) is refused unread."""
    path = _legacy_copy(tmp_path)
    with h5py.File(path, "a") as h5:
        group, name = _first_weight(h5)
        shape, dtype = group[name].shape, group[name].dtype
        del group[name]
        group.create_dataset(name, shape=shape, dtype=dtype, chunks=True)
    with pytest.raises(ModelFileError, match="declares 240 bytes but the file stores 0"):
        load_model(path)


def test_links_and_external_storage_are_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["secret"] = np.zeros((5, 20), np.float32)
    path = _legacy_copy(tmp_path)
    with h5py.File(path, "a") as h5:
        group, name = _first_weight(h5)
        del group[name]
        group[name] = h5py.ExternalLink(str(other), "secret")
    with pytest.raises(ModelFileError, match="is a ExternalLink; only plain groups are read"):
        load_model(path)
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.zeros((3, 20), np.float32).tobytes())
    path = _legacy_copy(tmp_path)
    with h5py.File(path, "a") as h5:
        group, name = _first_weight(h5)
        shape = group[name].shape
        del group[name]
        group.create_dataset(name, shape=shape, dtype="f4", external=[(str(raw), 0, 240)])
    with pytest.raises(ModelFileError, match="stored outside the file"):
        load_model(path)


def test_a_crash_or_hang_of_the_hdf5_library_is_contained(monkeypatch):
    """HDF5 files are parsed in a child process: libhdf5 is not hardened against crafted
    files (fuzzing found a segfault on a corrupted string attribute), so a crash must end
    as an error in the caller, not take the interpreter down."""
    from rnnkit._training import h5_extract

    monkeypatch.setattr(
        h5_extract, "_CHILD", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    )
    with pytest.raises(ModelFileError, match=r"HDF5 library failed on it \(signal 11"):
        load_model(FIXTURES / "lstm_stack.h5")
    monkeypatch.setattr(h5_extract, "_CHILD", "import time; time.sleep(30)")
    monkeypatch.setattr(h5_extract, "TIMEOUT", 0.5)
    with pytest.raises(ModelFileError, match="took over 0 s|took over 1 s"):
        load_model(FIXTURES / "lstm_stack.keras")


def test_a_real_libhdf5_crash_is_contained():
    """A fuzzed file that segfaults libhdf5 (h5py 3.14) when its attributes are read."""
    crafted = Path(__file__).parent / "fixtures" / "crafted" / "hdf5_segfault.h5"
    with pytest.raises(ModelFileError, match="not a valid Keras file|is missing|not read"):
        load_model(crafted)


def test_wrong_dtype_and_missing_weights(tmp_path):
    path = _legacy_copy(tmp_path)
    with h5py.File(path, "a") as h5:
        group, name = _first_weight(h5)
        value = group[name][()]
        del group[name]
        group[name] = value.astype(np.int32)
    with pytest.raises(ModelFileError, match="has dtype int32; expected float"):
        load_model(path)
    path = _legacy_copy(tmp_path)
    with h5py.File(path, "a") as h5:
        group, name = _first_weight(h5)
        del group[name]
    with pytest.raises(ModelFileError, match="is missing"):
        load_model(path)


@pytest.mark.parametrize("fmt", [".keras", ".h5"])
def test_truncated_and_flipped_files(tmp_path, fmt):
    data = (FIXTURES / f"lstm_stack{fmt}").read_bytes()
    for cut in (100, len(data) // 3, len(data) // 2, len(data) - 50):
        bad = tmp_path / f"cut{cut}{fmt}"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="not a valid Keras file|missing|cannot be read"):
            load_model(bad)
    if fmt == ".keras":  # the zip's CRC catches a flipped weight byte
        with zipfile.ZipFile(FIXTURES / "lstm_stack.keras") as zf:
            info = zf.getinfo("model.weights.h5")
        flipped = bytearray(data)
        flipped[info.header_offset + 30 + len(info.filename) + info.file_size // 2] ^= 0x10
        bad = tmp_path / "flipped.keras"
        bad.write_bytes(bytes(flipped))
        with pytest.raises(ModelFileError, match="Bad CRC-32|not a valid Keras file"):
            load_model(bad)


def test_malformed_archives(tmp_path):
    bad = tmp_path / "nocfg.keras"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("metadata.json", "{}")
    with pytest.raises(ModelFileError, match="zip without config.json"):
        load_model(bad)
    bad = tmp_path / "notjson.keras"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("config.json", "{not json")
    with pytest.raises(ModelFileError, match="config.json that is not JSON"):
        load_model(bad)
    bad = tmp_path / "npz.keras"
    with zipfile.ZipFile(FIXTURES / "lstm_stack.keras") as zf:
        config = zf.read("config.json")
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("config.json", config)
        zf.writestr("model.weights.npz", b"")
    with pytest.raises(ModelFileError, match="model.weights.npz; rnnkit reads model.weights.h5"):
        load_model(bad)
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", b" " * (80 << 20))
    with pytest.raises(ModelFileError, match="at most"):
        load_model(bomb)
    with pytest.raises(ModelFileError, match="holds only weights"):
        load_model(FIXTURES / "lstm_stack.weights.h5")


def test_load_weights_checks_before_changing_anything():
    model = load_model(FIXTURES / "gru_reset_after.keras", compile=False)
    before = model.get_weights()
    with pytest.raises(ModelFileError, match=r"no weights for layer 'gru' \(GRU\) at layers/gru"):
        model.load_weights(FIXTURES / "lstm_stack.weights.h5")
    with pytest.raises(ModelFileError, match="holds weights for 5 layers .*the model has 3"):
        model.load_weights(FIXTURES / "k2_bidirectional_weights.h5")
    narrow = Sequential(
        [
            layers.Input((6, 3)),
            layers.GRU(5, return_sequences=True),
            layers.GRU(4, reset_after=False),
            layers.Dense(2),
        ]
    )
    with pytest.raises(ModelFileError, match=r"has shape \(4, 3\); the model expects \(4, 2\)"):
        narrow.load_weights(FIXTURES / "gru_reset_after.h5")
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    unbuilt = Sequential([layers.LSTM(3)])
    with pytest.raises(ValueError, match="build the model first"):
        unbuilt.load_weights(FIXTURES / "lstm_stack.weights.h5")


# ------------------------------------------------------------------------- writing
def _models() -> dict[str, tuple[Sequential, np.ndarray]]:
    """rnnkit models covering every layer and option both libraries have."""
    set_random_seed(7)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 6, 3)).astype(np.float32)
    ids = rng.integers(0, 12, (5, 6))
    specs = {
        "recurrent": (
            [
                layers.Input((6, 3)),
                layers.LSTM(5, return_sequences=True, activation="relu"),
                layers.GRU(4, return_sequences=True, reset_after=False, go_backwards=True),
                layers.LSTM(
                    3,
                    recurrent_activation="hard_sigmoid",
                    unit_forget_bias=False,
                    return_sequences=True,
                    use_bias=False,
                ),
                layers.GRU(3, activation="sigmoid"),
                layers.Dropout(0.2),
                layers.Dense(2, activation="softmax"),
            ],
            x,
        ),
        "bidirectional": (
            [
                layers.Bidirectional(layers.LSTM(4, return_sequences=True), input_shape=(6, 3)),
                layers.Bidirectional(layers.GRU(3, return_sequences=True), merge_mode="sum"),
                layers.Bidirectional(
                    layers.GRU(3, return_sequences=True, reset_after=False), merge_mode="mul"
                ),
                layers.Bidirectional(layers.LSTM(2), merge_mode="ave"),
                layers.Dense(2, activation="tanh"),
            ],
            x,
        ),
        "embedding": (
            [
                layers.Input((6,), dtype="int32"),
                layers.Embedding(12, 4),
                layers.LSTM(4, return_sequences=True),
                layers.Flatten(),
                layers.RepeatVector(2),
                layers.GRU(3),
                layers.Dense(3, activation="relu"),
                layers.Dense(1, activation="sigmoid", use_bias=False),
            ],
            ids,
        ),
        "float64": (
            [
                layers.Input((6, 3), dtype="float64"),
                layers.LSTM(3, return_sequences=True, dtype="float64"),
                layers.Dense(2, activation="elu", dtype="float64"),
            ],
            x.astype(np.float64),
        ),
    }
    out = {}
    for name, (stack, data) in specs.items():
        model = Sequential(stack, name=f"m_{name}")
        model.set_weights([0.5 * rng.standard_normal(w.shape) for w in model.get_weights()])
        out[name] = (model, data)
    return out


MODELS = ["recurrent", "bidirectional", "embedding", "float64"]


@pytest.mark.parametrize("name", MODELS)
def test_rnnkit_round_trip_through_keras_files(tmp_path, name):
    model, x = _models()[name]
    model.compile(optimizer=optimizers.RMSprop(0.01, momentum=0.5), loss="mse", metrics=["mae"])
    y = model.predict(x, verbose=0)
    for fmt in (".keras", ".h5"):
        path = tmp_path / f"m{fmt}"
        model.save(path)
        again = load_model(path)
        assert [type(a) for a in again.layers] == [type(b) for b in model.layers]
        for k, (a, b) in enumerate(zip(model.get_weights(), again.get_weights())):
            np.testing.assert_array_equal(a, b, f"{fmt}: weight {k}")
        np.testing.assert_array_equal(again.predict(x, verbose=0), y, f"{fmt} predictions")
        assert again.optimizer.get_config() == model.optimizer.get_config()
        assert again.loss.name == "mse" and again._metric_ids == [["mae"]]
    other, _ = _models()[name]
    for fmt in (".weights.h5", "_legacy.h5"):
        path = tmp_path / f"w{fmt}"
        model.save_weights(path)
        other.load_weights(path)
        np.testing.assert_array_equal(other.predict(x, verbose=0), y, f"{fmt} predictions")


def test_keras_file_keeps_optimizer_state_for_resumed_training(tmp_path):
    set_random_seed(3)
    x = np.random.default_rng(3).standard_normal((16, 5, 2)).astype(np.float32)
    y = np.random.default_rng(4).standard_normal((16, 1)).astype(np.float32)
    for opt in (optimizers.Adam(0.01, amsgrad=True), optimizers.SGD(0.05, momentum=0.9)):
        model = Sequential(
            [layers.Input((5, 2)), layers.Bidirectional(layers.GRU(3)), layers.Dense(1)]
        )
        model.compile(optimizer=opt, loss="mse")
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        model.save(tmp_path / "m.keras")
        again = load_model(tmp_path / "m.keras")
        assert again.optimizer.iterations == model.optimizer.iterations == 4
        h1 = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        h2 = again.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        assert h1.history["loss"] == pytest.approx(h2.history["loss"], rel=1e-6)
        for k, (p, q) in enumerate(zip(model.get_weights(), again.get_weights())):
            assert np.abs(p - q).max() < 1e-6, f"{type(opt).__name__}: weight {k}"


def test_extension_picks_the_format(tmp_path):
    model, x = _models()["float64"]
    model.save(tmp_path / "m.rnnkit")
    with zipfile.ZipFile(tmp_path / "m.rnnkit") as zf:
        assert "rnnkit_meta.npy" in zf.namelist()
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        assert set(zf.namelist()) == {"config.json", "metadata.json", "model.weights.h5"}
    model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5") as h5:
        assert "model_config" in h5.attrs and "model_weights" in h5
    for bad in ("m.bin", "m", "m.npz", "m.json"):
        with pytest.raises(ValueError, match=r"cannot tell the file format.*\*\.rnnkit.*\*\.keras"):
            model.save(tmp_path / bad)
        with pytest.raises(ValueError, match=r"cannot tell.*\*\.weights\.h5"):
            model.save_weights(tmp_path / bad)
    with pytest.raises(ValueError, match="holds weights only; call save_weights"):
        model.save(tmp_path / "m.weights.h5")
    with pytest.raises(ValueError, match="holds a whole model; call save"):
        model.save_weights(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="cannot tell the file format"):
        rnnkit.callbacks.ModelCheckpoint(tmp_path / "ckpt-{epoch}")
    assert not any(p.name.startswith(("m.bin", ".rnnkit-")) for p in tmp_path.iterdir())
    # loading reads the contents, whatever the name
    (tmp_path / "renamed.bin").write_bytes((tmp_path / "m.keras").read_bytes())
    np.testing.assert_array_equal(
        load_model(tmp_path / "renamed.bin").predict(x, verbose=0), model.predict(x, verbose=0)
    )


def test_keras_writes_are_atomic(tmp_path, monkeypatch):
    model, _ = _models()["recurrent"]
    path = tmp_path / "m.keras"
    model.save(path)
    original = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.save(path, overwrite=False)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("simulated crash while writing")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", crash)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == original, "an interrupted save damaged the existing file"
    assert sorted(os.listdir(tmp_path)) == ["m.keras"], "an interrupted save left a temp file"


_NO_H5PY = r"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "h5py":
            raise ImportError("h5py is blocked in this test")
sys.meta_path.insert(0, Block())
import rnnkit
assert "h5py" not in sys.modules
for call in (lambda: rnnkit.load_model(sys.argv[1]),
             lambda: rnnkit.load_model(sys.argv[1], compile=False).save("x.keras")):
    try:
        call()
    except ImportError as e:
        print(e)
"""


def test_without_h5py_the_message_names_the_extra(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", _NO_H5PY, str(FIXTURES / "lstm_stack.keras")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pip install 'rnnkit[keras-files]'" in proc.stdout, proc.stdout


# ----------------------------------------------------------------- against Keras itself
@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras", reason="Keras 3 is not installed")


@pytest.mark.parametrize("name", MODELS)
def test_keras_opens_what_rnnkit_writes(tmp_path, keras, name):
    model, x = _models()[name]
    model.compile(optimizer=optimizers.Adam(0.003), loss="mse", metrics=["mae"])
    y = model.predict(x, verbose=0)
    worst = {}
    for fmt in (".keras", ".h5"):
        model.save(tmp_path / f"m{fmt}")
        theirs = keras.models.load_model(tmp_path / f"m{fmt}")
        worst[fmt] = float(np.abs(np.asarray(theirs.predict(x, verbose=0)) - y).max())
        assert type(theirs.optimizer).__name__ == "Adam"
        assert float(theirs.optimizer.learning_rate) == pytest.approx(0.003)
    theirs = keras.models.load_model(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    model.save_weights(tmp_path / "legacy.h5")
    for fmt in ("m.weights.h5", "legacy.h5"):
        theirs.set_weights([np.zeros_like(w) for w in theirs.get_weights()])
        theirs.load_weights(tmp_path / fmt)
        worst[fmt] = float(np.abs(np.asarray(theirs.predict(x, verbose=0)) - y).max())
    tol = 1e-12 if y.dtype == np.float64 else 1e-5
    assert max(worst.values()) <= tol, f"{name}: max |Keras - rnnkit| per file {worst}"


def test_keras_resumes_training_from_rnnkit_optimizer_state(tmp_path, keras):
    set_random_seed(5)
    x = np.random.default_rng(5).standard_normal((8, 5, 2)).astype(np.float32)
    y = np.random.default_rng(6).standard_normal((8, 2)).astype(np.float32)
    model = Sequential(
        [
            layers.Input((5, 2)),
            layers.LSTM(4, return_sequences=True),
            layers.GRU(3),
            layers.Dense(2),
        ]
    )
    model.compile(optimizer=optimizers.Adam(0.01), loss="mse")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    model.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    assert int(theirs.optimizer.iterations) == model.optimizer.iterations == 4
    model.train_on_batch(x, y)
    theirs.train_on_batch(x, y)
    worst = max(
        float(np.abs(np.asarray(a) - b).max())
        for a, b in zip(theirs.get_weights(), model.get_weights())
    )
    assert worst < 1e-5, f"weights after one more step differ by {worst:.3g}"


def test_learning_rate_schedules_cross_both_ways(tmp_path, keras):
    schedule = optimizers.ExponentialDecay(0.01, decay_steps=10, decay_rate=0.5)
    model, x = _models()["recurrent"]
    model.compile(optimizer=optimizers.Adam(schedule), loss="mse")
    for fmt in (".keras", ".h5"):
        model.save(tmp_path / f"m{fmt}")
        theirs = keras.models.load_model(tmp_path / f"m{fmt}")
        lr = theirs.optimizer._learning_rate
        assert type(lr).__name__ == "ExponentialDecay", fmt
        assert (lr.initial_learning_rate, lr.decay_steps, lr.decay_rate) == (0.01, 10, 0.5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras's own h5 writer warns (numpy 2 copy=)
            theirs.save(tmp_path / f"back{fmt}")
        again = load_model(tmp_path / f"back{fmt}")
        assert isinstance(again.optimizer._schedule, optimizers.ExponentialDecay), fmt
        assert again.optimizer._schedule.get_config() == schedule.get_config()


def test_embedding_after_a_float_input(tmp_path):
    """Keras casts float ids to int for an Embedding; an InputLayer left at float32 (Keras's
    default) must not stop the model from taking ids."""

    def float_input(c):
        c["config"]["layers"][0]["config"]["dtype"] = "float32"

    path = _rewrite_keras(FIXTURES / "embedding.keras", tmp_path / "f.keras", float_input)
    ref = np.load(FIXTURES / "embedding.npz")
    model = load_model(path)
    y = model.predict(ref["x"].astype(np.float32), verbose=0)
    assert np.abs(y - ref["y"]).max() <= 1e-5
    with pytest.raises(ValueError, match="integer indices"):
        model.predict(ref["x"] + 0.5, verbose=0)


def test_tf_keras_2_opens_the_h5_files_rnnkit_writes(tmp_path):
    tf_keras = pytest.importorskip("tf_keras", reason="tf.keras 2 (tf_keras) is not installed")
    worst = {}
    for name in ("recurrent", "embedding"):
        model, x = _models()[name]
        if name == "recurrent":  # Keras 2's hard_sigmoid differs; keep to shared activations
            model = Sequential(
                [
                    layers.Input((6, 3)),
                    layers.LSTM(4, return_sequences=True, go_backwards=True),
                    layers.Bidirectional(layers.GRU(3, reset_after=False), merge_mode="mul"),
                    layers.Dense(2, activation="softmax"),
                ]
            )
        model.compile(optimizer=optimizers.Adam(0.002), loss="mse")
        y = model.predict(x, verbose=0)
        model.save(tmp_path / f"{name}.h5")
        model.save_weights(tmp_path / f"{name}_weights.h5")
        theirs = tf_keras.models.load_model(tmp_path / f"{name}.h5")
        assert type(theirs.optimizer).__name__ == "Adam"
        worst[name] = float(np.abs(theirs.predict(x, verbose=0) - y).max())
        theirs.set_weights([np.zeros_like(w) for w in theirs.get_weights()])
        theirs.load_weights(tmp_path / f"{name}_weights.h5")
        worst[f"{name} weights"] = float(np.abs(theirs.predict(x, verbose=0) - y).max())
    assert max(worst.values()) <= 1e-5, f"max |tf.keras - rnnkit| {worst}"
