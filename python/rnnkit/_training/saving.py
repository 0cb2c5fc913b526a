"""One-file model storage without pickle: an ``.npz`` archive of plain arrays plus a JSON
config entry and a SHA-256 digest.

Entries:

- ``rnnkit_meta``: 0-d unicode array holding JSON: ``format``, ``format_version``,
  ``kind`` ("model" or "weights"), ``model`` (``Sequential.get_config()``), ``compile``
  (optimizer, loss, metrics), and one record per stored array (key, layer, name, shape,
  dtype), plus the optimizer's iteration count.
- ``weight_NNNNN``: the weights in ``model.get_weights()`` order (Keras layout).
- ``optimizer_NNNNN``: optimizer slot arrays, parameter by parameter.
- ``rnnkit_digest``: SHA-256 over the meta JSON and every array's dtype, shape and bytes.

Writing goes to a temporary file in the target directory, fsync'd and renamed over the
target with ``os.replace``. Loading reads with ``allow_pickle=False``, verifies the zip
CRCs, the digest, the declared and actual shapes and dtypes, and the shapes the rebuilt
model expects, before any weight is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tempfile
import tokenize
import zipfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from .._checks import MAX_ELEMENTS
from . import untrusted

if TYPE_CHECKING:
    from ..models import Sequential

FORMAT = "rnnkit.keras-model"
FORMAT_VERSION = 1
_ALLOWED_DTYPES = ("float32", "float64")


class ModelFileError(ValueError):
    """A model file is missing pieces, truncated, modified, or does not fit the model."""


def _digest(meta_json: str, arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    h.update(meta_json.encode("utf-8"))
    for key in sorted(arrays):
        a = arrays[key]
        h.update(f"\0{key}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _compile_config(model: Sequential) -> dict[str, Any] | None:
    if not model.compiled or model.optimizer is None:
        return None
    from .. import losses, optimizers

    def names(ids: list[list[Any]]) -> list[list[str]]:
        return [[m if isinstance(m, str) else m.name for m in group] for group in ids]

    groups, wgroups = names(model._metric_ids), names(model._weighted_metric_ids)
    if model._n_outputs == 1:  # one output: a loss and a list of metrics, as ever
        loss = None if model.loss is None else losses.serialize(model.loss)
        metrics: Any = groups[0] if groups else []
        weighted: Any = wgroups[0] if wgroups else []
    else:  # several: a list of each, in output order
        loss = [None if v is None else losses.serialize(v) for v in model._losses]
        metrics, weighted = groups, wgroups
    out = {"optimizer": optimizers.serialize(model.optimizer), "loss": loss, "metrics": metrics}
    if any(wgroups):
        out["weighted_metrics"] = weighted
    if model._loss_weights is not None:
        out["loss_weights"] = list(model._loss_weights)
    return out


def model_state(model: Sequential, kind: str = "model") -> dict[str, Any]:
    """Everything a saved model holds, as JSON-ready meta plus a dict of arrays."""
    arrays: dict[str, np.ndarray] = {}
    records = []
    index = 0
    for layer in model.layers:
        for wname, w in zip(layer._weight_labels(), layer.get_weights()):
            key = f"weight_{index:05d}"
            arrays[key] = w
            records.append(
                {
                    "key": key,
                    "layer": layer.name,
                    "name": wname,
                    "shape": list(w.shape),
                    "dtype": w.dtype.name,
                }
            )
            index += 1
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "weights": records,
    }
    if kind == "model":
        meta["model"] = model.get_config()
        meta["compile"] = _compile_config(model)
        opt_records = []
        iterations = 0
        if model.optimizer is not None and model.optimizer.built:
            state = model.optimizer.get_state()
            iterations = state["iterations"]
            k = 0
            for per in state["slots"]:
                keys = []
                for a in per:
                    key = f"optimizer_{k:05d}"
                    arrays[key] = a
                    keys.append({"key": key, "shape": list(a.shape), "dtype": a.dtype.name})
                    k += 1
                opt_records.append(keys)
        meta["optimizer"] = {"iterations": iterations, "slots": opt_records}
    return {"meta": meta, "arrays": arrays}


def atomic_write(
    filepath: str | os.PathLike, overwrite: bool, write: Callable[[BinaryIO], Any]
) -> None:
    """Write a file through ``write(f)`` into a temporary file beside it, fsync, then rename
    it over ``filepath``: an interrupted save never leaves a partial file."""
    path = os.fspath(filepath)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"[save] {path!r} exists and overwrite=False")
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".rnnkit-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write(state: dict[str, Any], filepath: str | os.PathLike, overwrite: bool) -> None:
    meta_json = json.dumps(state["meta"], sort_keys=True)
    arrays = dict(state["arrays"])
    payload = {
        "rnnkit_meta": np.array(meta_json),
        "rnnkit_digest": np.array(_digest(meta_json, arrays)),
        **arrays,
    }
    atomic_write(filepath, overwrite, lambda f: np.savez(f, **payload))


def save_model(model: Sequential, filepath: str | os.PathLike, overwrite: bool = True) -> None:
    _write(model_state(model, "model"), filepath, overwrite)


def save_weights(model: Sequential, filepath: str | os.PathLike, overwrite: bool = True) -> None:
    _write(model_state(model, "weights"), filepath, overwrite)


_ENTRY = re.compile(r"(rnnkit_meta|rnnkit_digest|(weight|optimizer)_[0-9]{5,})\.npy")
#: Most arrays a file may hold (a model has a few per layer; this bounds the checks' cost).
MAX_ENTRIES = 100_000
_RECORD_KEYS = {"key": str, "shape": list, "dtype": str}


def _read(filepath: str | os.PathLike, model: Sequential | None = None) -> dict[str, Any]:
    """Read and verify a file: returns {"meta": dict, "arrays": dict, "path": str}.

    Everything is checked before it costs memory (see :mod:`.untrusted`): member sizes, the
    meta's structure, every array's npy header against the meta, and the meta's shapes
    against those the model (``model``, or the one the file's config describes, built or
    not) expects. Only then are the arrays read; then the digest is verified.
    """
    path = os.fspath(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(f"[load_model] no such file: {path!r}")
    bad = f"[load_model] {path!r} is not a valid rnnkit model file"

    def fail(what: str) -> ModelFileError:
        return ModelFileError(f"{bad}: {what}")

    try:
        with zipfile.ZipFile(path) as zf:
            return _read_zip(zf, path, fail, model)
    except ModelFileError:
        raise
    except (*untrusted.ZIP_ERRORS, KeyError) as e:
        raise ModelFileError(f"{bad} (truncated or corrupt): {type(e).__name__}: {e}") from None


def _read_zip(
    zf: zipfile.ZipFile, path: str, fail: Callable[[str], ModelFileError], model: Sequential | None
) -> dict[str, Any]:
    infos = untrusted.check_archive(zf, path, fail)
    if len(infos) > MAX_ENTRIES + 2:
        raise fail(f"has {len(infos)} entries; at most {MAX_ENTRIES} arrays are read")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if info.filename in members:
            raise fail(f"has two entries named {info.filename!r}")
        members[info.filename] = info
    if "rnnkit_meta.npy" not in members or "rnnkit_digest.npy" not in members:
        raise fail("the rnnkit_meta/rnnkit_digest entries are missing")
    odd = sorted(n for n in members if not _ENTRY.fullmatch(n))
    if odd:
        raise fail(f"unexpected entries {odd}")
    archive = os.path.getsize(path)
    meta_limit = 4 * untrusted.MAX_CONFIG_BYTES  # npy stores unicode as UCS-4
    meta_arr = _small_array(zf, members["rnnkit_meta.npy"], archive, fail, meta_limit)
    digest_arr = _small_array(zf, members["rnnkit_digest.npy"], archive, fail, 4096)
    meta_json = _text(meta_arr, "rnnkit_meta", fail)
    digest = _text(digest_arr, "rnnkit_digest", fail)
    meta = untrusted.parse_json(meta_json, "meta", fail)
    _check_meta(meta, fail)
    declared = list(meta["weights"])
    for per in meta["optimizer"]["slots"]:
        declared.extend(per)
    entries = {}
    for rec in declared:
        key = rec["key"]
        info = members.get(f"{key}.npy")
        if info is None:
            raise fail(f"entry {key!r} is missing")
        if key in entries:
            raise fail(f"entry {key!r} is declared twice")
        entries[key] = (info, _check_header(zf, info, archive, rec, fail))
    extra = {n[:-4] for n in members} - set(entries) - {"rnnkit_meta", "rnnkit_digest"}
    if extra:
        raise fail(f"unexpected entries {sorted(extra)}")
    _check_shapes(meta, model, path)
    arrays = {}
    for key, (info, _) in entries.items():
        with _npy_errors(key, fail), zf.open(info) as f:
            arrays[key] = np.lib.format.read_array(f, allow_pickle=False)
    if _digest(meta_json, arrays) != digest:
        raise fail("its contents do not match the stored digest (the file was modified or damaged)")
    return {"meta": meta, "arrays": arrays, "path": path}


#: What numpy's npy reader raises on a malformed header or body (its header is a Python
#: literal, parsed with tokenize and ast: TokenError and SyntaxError are not ValueErrors).
_NPY_ERRORS = (
    ValueError,
    TypeError,
    SyntaxError,
    tokenize.TokenError,
    EOFError,
    OSError,
    zipfile.BadZipFile,
    RecursionError,
)


@contextlib.contextmanager
def _npy_errors(key: str, fail: Callable[[str], ModelFileError]) -> Iterator[None]:
    try:
        yield
    except ModelFileError:
        raise
    except _NPY_ERRORS as e:
        raise fail(f"entry {key!r} is not a valid npy array ({type(e).__name__}: {e})") from None


def _small_array(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    archive: int,
    fail: Callable[[str], ModelFileError],
    limit: int,
) -> np.ndarray:
    raw = untrusted.zip_member(zf, info, archive, fail, limit)
    with _npy_errors(info.filename[:-4], fail):
        return np.load(io.BytesIO(raw), allow_pickle=False)


def _text(a: np.ndarray, what: str, fail: Callable[[str], ModelFileError]) -> str:
    """The string in 0-d unicode array ``a``. Its code points are checked first: numpy turns
    UCS-4 values above U+10FFFF into a broken Python str (SystemError when it is read)."""
    if a.shape != () or a.dtype.kind != "U":
        raise fail(f"malformed meta entries: {what} is a {a.dtype} array of shape {a.shape}")
    codes = a.reshape(1).view(np.uint32)
    if codes.size and int(codes.max()) > 0x10FFFF:
        raise fail(f"malformed meta entries: {what} holds code points beyond U+10FFFF")
    return str(a[()])


def _check_meta(meta: Any, fail: Callable[[str], ModelFileError]) -> None:
    """The meta's structure: every field the reader uses, of the type it uses."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise fail(f"unknown format {found!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise fail(
            f"format version {meta.get('format_version')!r} is not supported (this rnnkit "
            f"reads {FORMAT_VERSION})"
        )
    kind = meta.get("kind")
    if kind not in ("model", "weights"):
        raise fail(f"kind must be 'model' or 'weights'; got {kind!r}")

    def records(value: Any, what: str, extra: dict[str, type]) -> None:
        if not isinstance(value, list):
            raise fail(f"{what} must be a list; got {type(value).__name__}")
        for i, rec in enumerate(value):
            want = {**_RECORD_KEYS, **extra}
            typed = isinstance(rec, dict) and all(
                isinstance(rec.get(k), t) for k, t in want.items()
            )
            if not typed:
                fields = ", ".join(f"{k} ({t.__name__})" for k, t in want.items())
                raise fail(f"{what}[{i}] must be a record with {fields}; got {rec!r:.200}")
            shape = rec["shape"]
            if any(type(d) is not int or d < 0 for d in shape):
                raise fail(f"{what}[{i}] has shape {shape!r:.200}; expected non-negative ints")
            n = int(np.prod(shape, dtype=object))
            if n > MAX_ELEMENTS:
                raise fail(f"{what}[{i}] declares {n} elements; at most {MAX_ELEMENTS} per array")

    records(meta.get("weights"), "weights", {"layer": str, "name": str})
    opt = meta.setdefault("optimizer", {"iterations": 0, "slots": []})
    if not isinstance(opt, dict):
        raise fail(f"optimizer must be a record; got {type(opt).__name__}")
    slots = opt.setdefault("slots", [])
    if not isinstance(slots, list):
        raise fail(f"optimizer slots must be a list; got {type(slots).__name__}")
    for j, per in enumerate(slots):
        records(per, f"optimizer slots[{j}]", {})
    iterations = opt.setdefault("iterations", 0)
    if type(iterations) is not int or iterations < 0:
        raise fail(f"optimizer iterations must be a non-negative int; got {iterations!r:.100}")
    if kind == "model":
        config = meta.get("model")
        if not isinstance(config, dict) or not isinstance(config.get("layers", []), list):
            raise fail(
                f"model must be a Sequential config (a record with a layers list); "
                f"got {config!r:.200}"
            )
        comp = meta.get("compile")
        if comp is not None and not (
            isinstance(comp, dict) and "optimizer" in comp and "loss" in comp
        ):
            raise fail(
                f"compile must be null or a record with optimizer and loss; got {comp!r:.200}"
            )
        for key in ("metrics", "weighted_metrics"):
            if comp is not None and not isinstance(comp.get(key) or [], list):
                raise fail(f"compile {key} must be a list; got {comp.get(key)!r:.200}")


def _check_header(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    archive: int,
    rec: dict[str, Any],
    fail: Callable[[str], ModelFileError],
) -> tuple[int, ...]:
    """Check entry ``info``'s npy header against its record, and its size against both,
    reading only the header."""
    key = rec["key"]
    untrusted.check_member_size(info, archive, fail)
    with _npy_errors(key, fail), zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise fail(f"entry {key!r} has npy format version {version}; expected 1.0 or 2.0")
        offset = f.tell()
    if (
        list(shape) != rec["shape"]
        or dtype.name != rec["dtype"]
        or dtype.name not in _ALLOWED_DTYPES
    ):
        raise fail(
            f"entry {key!r} has shape {shape} and dtype {dtype}; the meta says "
            f"{tuple(rec['shape'])} {rec['dtype']}"
        )
    size = offset + int(np.prod(shape, dtype=object)) * dtype.itemsize
    if info.file_size != size:
        raise fail(f"entry {key!r} holds {info.file_size} bytes; its header declares {size}")
    return tuple(shape)


def _check_shapes(meta: dict[str, Any], model: Sequential | None, path: str) -> None:
    """The stored weights' shapes against those ``model`` has or, without one, those the
    file's config implies, computed without building it."""
    if model is None and meta["kind"] == "model" and "input_layers" in meta["model"]:
        from ..models import Functional

        try:  # a graph's weight shapes follow from building it (sizes are bounded by build)
            model = Functional.from_config(meta["model"])
        except untrusted.CONFIG_ERRORS as e:
            raise ModelFileError(
                f"[load_model] {path!r}: cannot rebuild the model from its config: {e}"
            ) from None
    if model is not None:
        expected = [
            (lay.name, n, s)
            for lay in model.layers
            for n, s in zip(lay._weight_labels(), lay.weight_shapes())
        ]
    elif meta["kind"] == "model":
        from .. import layers as layers_module
        from .core_layers import InputLayer

        config = meta["model"]
        try:
            layers = [layers_module.deserialize(e) for e in config.get("layers", [])]
            shape = layers[0].input_shape_hint if layers else None
            if shape is None and config.get("build_input_shape") is not None:
                shape = tuple(config["build_input_shape"])
            body = [lay for lay in layers if not isinstance(lay, InputLayer)]
            plan = untrusted.weight_plan(body, shape, lambda what: ValueError(what))
        except untrusted.CONFIG_ERRORS as e:
            raise ModelFileError(
                f"[load_model] {path!r}: cannot rebuild the model from its config: {e}"
            ) from None
        expected = [
            (lay.name, n, s)
            for lay, shapes in zip(body, plan)
            for n, s in zip(lay._weight_labels() if shapes else [], shapes)
        ]
    else:
        return
    records = meta["weights"]
    if len(records) != len(expected):
        raise ModelFileError(
            f"[load] {path!r} holds {len(records)} weight arrays; the model has {len(expected)}"
        )
    for rec, (layer, name, shape) in zip(records, expected):
        if tuple(rec["shape"]) != tuple(shape):
            raise ModelFileError(
                f"[load] {path!r}: weight {rec['layer']}/{rec['name']} has shape "
                f"{tuple(rec['shape'])}; layer {layer!r} expects {name} of shape {tuple(shape)}"
            )


def _apply_weights(model: Sequential, data: dict[str, Any]) -> None:
    # _read checked the shapes against the config's plan (or the model); the built model is
    # checked again, cheaply, before its weights change
    _check_shapes(data["meta"], model, data["path"])
    records = data["meta"]["weights"]
    model.set_weights([data["arrays"][rec["key"]] for rec in records])


def _restore(data: dict[str, Any], compile: bool) -> Sequential:
    from ..models import Functional, Sequential

    meta = data["meta"]
    path = data["path"]
    if meta.get("kind") != "model":
        raise ModelFileError(
            f"[load_model] {path!r} holds only weights; build the model and "
            "call model.load_weights(path)"
        )
    try:
        if "input_layers" in meta["model"]:
            model = Functional.from_config(meta["model"])
        else:
            model = Sequential.from_config(meta["model"])
    except untrusted.CONFIG_ERRORS as e:
        raise ModelFileError(
            f"[load_model] {path!r}: cannot rebuild the model from its config: {e}"
        ) from None
    if not model.built:
        if meta["weights"]:
            raise ModelFileError(f"[load_model] {path!r}: weights stored for an unbuilt model")
        return model
    _apply_weights(model, data)
    mode = meta["model"].get("quantization")
    if mode is not None:
        try:
            model.quantize(mode)
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"[load_model] {path!r}: quantization {mode!r}: {e}") from None
    comp = meta.get("compile")
    if compile and comp:
        from .. import losses, optimizers

        def loss_of(entry: Any) -> Any:
            return None if entry is None else losses.deserialize(entry)

        try:
            loss = comp["loss"]
            model.compile(
                optimizer=optimizers.deserialize(comp["optimizer"]),
                loss=[loss_of(v) for v in loss] if isinstance(loss, list) else loss_of(loss),
                metrics=comp.get("metrics") or None,
                weighted_metrics=comp.get("weighted_metrics") or None,
                loss_weights=comp.get("loss_weights"),
            )
        except untrusted.CONFIG_ERRORS as e:
            raise ModelFileError(
                f"[load_model] {path!r}: bad compile config: {e}; load_model(..., "
                "compile=False) loads the model without it"
            ) from None
        opt = meta.get("optimizer", {})
        if opt.get("slots"):
            model._training_setup()
            slots = [[data["arrays"][r["key"]] for r in per] for per in opt["slots"]]
            try:
                model.optimizer.set_state(  # type: ignore[union-attr]
                    {"iterations": opt.get("iterations", 0), "slots": slots}, model._params
                )
            except ValueError as e:
                raise ModelFileError(f"[load_model] {path!r}: {e}") from None
        elif model.optimizer is not None:
            model.optimizer.iterations = int(opt.get("iterations", 0))
    return model


def load_model(filepath: str | os.PathLike, compile: bool = True) -> Sequential:
    return _restore(_read(filepath), compile)


def load_weights(model: Sequential, filepath: str | os.PathLike) -> None:
    # a built model's shapes are checked before any array is read
    data = _read(filepath, model if model.built else None)
    if not model.built:
        raise ValueError(
            "[load_weights] build the model first (give an input shape or call it on data)"
        )
    _apply_weights(model, data)


def model_from_state(state: dict[str, Any]) -> Sequential:
    """Unpickling entry point: ``state`` is ``model_state(model)`` (arrays in memory)."""
    arrays = dict(state["arrays"])
    return _restore({"meta": state["meta"], "arrays": arrays, "path": "<pickle>"}, True)
