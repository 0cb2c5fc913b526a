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

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

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

    metrics = [m if isinstance(m, str) else m.name for m in model._metric_ids]
    return {
        "optimizer": optimizers.serialize(model.optimizer),
        "loss": None if model.loss is None else losses.serialize(model.loss),
        "metrics": metrics,
    }


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


def _read(filepath: str | os.PathLike) -> dict[str, Any]:
    """Read and verify a file: returns {"meta": dict, "arrays": dict}."""
    path = os.fspath(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(f"[load_model] no such file: {path!r}")
    bad = f"[load_model] {path!r} is not a valid rnnkit model file"
    try:
        with open(path, "rb") as fh:
            loaded = np.load(fh, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ModelFileError(f"{bad}: not an .npz archive")
            with loaded as z:
                files = set(z.files)
                if "rnnkit_meta" not in files or "rnnkit_digest" not in files:
                    raise ModelFileError(
                        f"{bad}: the rnnkit_meta/rnnkit_digest entries are missing"
                    )
                arrays = {k: z[k] for k in files}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise ModelFileError(f"{bad} (truncated or corrupt): {type(e).__name__}: {e}") from None
    meta_arr = arrays.pop("rnnkit_meta")
    digest_arr = arrays.pop("rnnkit_digest")
    if meta_arr.shape != () or meta_arr.dtype.kind != "U" or digest_arr.dtype.kind != "U":
        raise ModelFileError(f"{bad}: malformed meta entries")
    meta_json = str(meta_arr[()])
    if _digest(meta_json, arrays) != str(digest_arr[()]):
        raise ModelFileError(
            f"{bad}: its contents do not match the stored digest (the file was modified or damaged)"
        )
    try:
        meta = json.loads(meta_json)
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{bad}: meta is not JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ModelFileError(f"{bad}: unknown format {found!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{bad}: format version {meta.get('format_version')} is not "
            f"supported (this rnnkit reads {FORMAT_VERSION})"
        )
    declared = list(meta.get("weights", []))
    for rec in meta.get("optimizer", {}).get("slots", []):
        declared.extend(rec)
    keys = set()
    for rec in declared:
        key = rec.get("key")
        if key not in arrays:
            raise ModelFileError(f"{bad}: entry {key!r} is missing")
        a = arrays[key]
        if (
            list(a.shape) != list(rec.get("shape", []))
            or a.dtype.name != rec.get("dtype")
            or a.dtype.name not in _ALLOWED_DTYPES
        ):
            raise ModelFileError(
                f"{bad}: entry {key!r} has shape {a.shape} and dtype "
                f"{a.dtype}; the meta says {rec.get('shape')} "
                f"{rec.get('dtype')}"
            )
        keys.add(key)
    extra = set(arrays) - keys
    if extra:
        raise ModelFileError(f"{bad}: unexpected entries {sorted(extra)}")
    return {"meta": meta, "arrays": arrays, "path": path}


def _apply_weights(model: Sequential, data: dict[str, Any]) -> None:
    path = data["path"]
    records = data["meta"]["weights"]
    layers = model.layers
    expected = [
        (lay, n, s) for lay in layers for n, s in zip(lay._weight_labels(), lay.weight_shapes())
    ]
    if len(records) != len(expected):
        raise ModelFileError(
            f"[load] {path!r} holds {len(records)} weight arrays; the model has {len(expected)}"
        )
    for rec, (layer, name, shape) in zip(records, expected):
        if tuple(rec["shape"]) != tuple(shape):
            raise ModelFileError(
                f"[load] {path!r}: weight {rec['layer']}/{rec['name']} has shape "
                f"{tuple(rec['shape'])}; layer {layer.name!r} expects {name} "
                f"of shape {tuple(shape)}"
            )
    model.set_weights([data["arrays"][rec["key"]] for rec in records])


def _restore(data: dict[str, Any], compile: bool) -> Sequential:
    from ..models import Sequential

    meta = data["meta"]
    path = data["path"]
    if meta.get("kind") != "model":
        raise ModelFileError(
            f"[load_model] {path!r} holds only weights; build the model and "
            "call model.load_weights(path)"
        )
    try:
        model = Sequential.from_config(meta["model"])
    except (TypeError, ValueError, KeyError) as e:
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

        try:
            model.compile(
                optimizer=optimizers.deserialize(comp["optimizer"]),
                loss=None if comp["loss"] is None else losses.deserialize(comp["loss"]),
                metrics=comp.get("metrics") or None,
            )
        except (TypeError, ValueError, KeyError) as e:
            raise ModelFileError(f"[load_model] {path!r}: bad compile config: {e}") from None
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
    data = _read(filepath)
    if not model.built:
        raise ValueError(
            "[load_weights] build the model first (give an input shape or call it on data)"
        )
    _apply_weights(model, data)


def model_from_state(state: dict[str, Any]) -> Sequential:
    """Unpickling entry point: ``state`` is ``model_state(model)`` (arrays in memory)."""
    arrays = dict(state["arrays"])
    return _restore({"meta": state["meta"], "arrays": arrays, "path": "<pickle>"}, True)
