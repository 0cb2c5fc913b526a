"""Keras files without TensorFlow: ``.keras``, legacy ``.h5`` and ``.weights.h5``, read and
written with h5py (the ``keras-files`` extra), imported only when a Keras file is touched.

Layouts (Keras 3's saving code and its legacy HDF5 format):

- ``.keras``: a zip of ``metadata.json`` (``keras_version``), ``config.json`` (the model's
  serialised config with ``compile_config``) and ``model.weights.h5``.
- ``model.weights.h5`` / ``.weights.h5``: one group per layer of the Sequential, named by its
  class in snake case and numbered per class (``layers/lstm``, ``layers/lstm_1``,
  ``layers/dense``); a layer's own variables sit in ``<path>/vars/0``, ``/1``, ...; a
  recurrent layer keeps them in its cell (``layers/lstm/cell/vars``); a Bidirectional in
  ``forward_layer/cell/vars`` and ``backward_layer/cell/vars``; the optimizer's in
  ``optimizer/vars`` (iteration, learning rate, then its slots). Files from tf.keras 2.13-2.15
  say ``_layer_checkpoint_dependencies`` where Keras 3 says ``layers``.
- legacy ``.h5``: root attributes ``model_config`` and ``training_config`` (JSON) and
  ``keras_version``; group ``model_weights`` with attribute ``layer_names``, one group per
  layer with attribute ``weight_names`` (in the layer's weight order) and one dataset per
  name. A legacy weights-only file is that group at the root.

Weights are Keras's layout, which is what rnnkit layers' ``get_weights`` speak. Reading
checks, before anything is allocated: the member sizes of the zip (no bombs), the config's
size, every dataset's shape against the one the config implies and its dtype. The HDF5 part
is parsed in a child process (:mod:`.h5_extract`: libhdf5 is not hardened against crafted
files), which refuses links out of the file, external or virtual storage and datasets whose
declared bytes are not stored. Problems raise :class:`~rnnkit.models.ModelFileError` naming
the file and the piece. Writing uses h5py in this process (rnnkit's own data).
"""

from __future__ import annotations

import datetime
import io
import json
import os
import zipfile
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import Layer
from .core_layers import InputLayer
from .h5_extract import Dataset, Group, H5Error, Tree, extract
from .keras_config import (
    compile_args_from_keras,
    functional_from_keras_config,
    is_functional,
    keras_compile_config,
    keras_major,
    keras_model_config,
    keras_snake_case,
    layers_from_keras_config,
)
from .recurrent import _RNN, Bidirectional
from .saving import ModelFileError, atomic_write
from .untrusted import (
    CONFIG_ERRORS,
    MAX_CONFIG_BYTES,
    ZIP_ERRORS,
    check_archive,
    parse_json,
    weight_plan,
    zip_member,
)

if TYPE_CHECKING:
    from ..models import Sequential

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
CONFIG_JSON = "config.json"
METADATA_JSON = "metadata.json"
WEIGHTS_H5 = "model.weights.h5"
#: What walking a malformed extracted tree may raise besides ModelFileError.
_H5_ERRORS = (OSError, KeyError, RuntimeError, ValueError)
#: What rnnkit writes as ``keras_version``: the Keras whose semantics its layers follow.
WRITTEN_KERAS_VERSION = "3.0.0"


def _need_h5py(owner: str) -> None:
    """Raise the extra's ImportError unless h5py can be imported (reading runs it in a child)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("h5py") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        _h5py(owner)


def _h5py(owner: str) -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportError(
            f"[{owner}] Keras .keras/.h5 files need h5py: pip install 'rnnkit[keras-files]' "
            "(neither TensorFlow nor Keras is needed)"
        ) from None
    return h5py


def sniff(filepath: str | os.PathLike) -> str | None:
    """``"keras"`` for a ``.keras`` zip, ``"h5"`` for an HDF5 file, else None (rnnkit's
    format or not a model). A zip named ``*.keras`` counts as Keras even when damaged."""
    path = os.fspath(filepath)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if head == HDF5_MAGIC:
        return "h5"
    if head[:4] in ZIP_MAGIC:
        if path.endswith(".keras"):
            return "keras"
        try:
            with zipfile.ZipFile(path) as zf:
                return "keras" if CONFIG_JSON in zf.namelist() else None
        except ZIP_ERRORS:
            return None
    return None


# --------------------------------------------------------------------- weight walks
def _snake_names(model_layers: list[Layer]) -> list[str]:
    """Keras's per-class numbering of a Sequential's layers: lstm, lstm_1, dense, ..."""
    used: dict[str, int] = {}
    names = []
    for layer in model_layers:
        base = keras_snake_case(type(layer).__name__)
        if base in used:
            used[base] += 1
            names.append(f"{base}_{used[base]}")
        else:
            used[base] = 0
            names.append(base)
    return names


def _var_groups(layer: Layer) -> list[tuple[str, str, bool]]:
    """The variable groups Keras 3 keeps under a layer's path: ``(sub-path, Keras object
    name, whether it holds the layer's weights)``, weight holders in weight order."""
    # the layer's own variables (Dense, Embedding, Conv1D, the normalizations ...); a
    # recurrent layer's live in its cell's group
    from .merge import TimeDistributed

    wrapper = isinstance(layer, (_RNN, Bidirectional, TimeDistributed))
    groups = [("vars", layer.name, not wrapper)]
    if isinstance(layer, TimeDistributed):
        groups.append(("layer/vars", layer.layer.name, True))
    elif isinstance(layer, Bidirectional):
        cell = f"{keras_snake_case(type(layer.layer).__name__)}_cell"
        inner = layer.layer.name.removeprefix(f"{layer.name}_")
        for side in ("forward", "backward"):
            groups += [
                (f"{side}_layer/vars", f"{side}_{inner}", False),
                (f"{side}_layer/cell/vars", cell, True),
            ]
    elif isinstance(layer, _RNN):
        groups.append(("cell/vars", f"{keras_snake_case(type(layer).__name__)}_cell", True))
    return groups


class _Store:
    """The datasets of an HDF5 file, as extracted by a child process (see h5_extract)."""

    def __init__(self, tree: Tree, where: str) -> None:
        self.tree = tree
        self.where = where

    def fail(self, what: str) -> ModelFileError:
        return ModelFileError(f"[load] {self.where}: {what}")

    def get(self, path: str) -> Group | Dataset | None:
        """The group or dataset at ``path`` (None if absent); plain (hard) links only."""
        try:
            return self.tree.get(path)
        except H5Error as e:
            raise self.fail(str(e)) from None

    def dataset(self, node: Any, name: str, shape: tuple[int, ...], label: str) -> Dataset:
        """The checked dataset ``node/name`` holding weight ``label`` of ``shape``."""
        ds = self.get(f"{node.name}/{name}") if node is not None else None
        if not isinstance(ds, Dataset):
            raise self.fail(f"weight {label} ({node.name if node else '?'}/{name}) is missing")
        if tuple(ds.shape) != tuple(shape):
            raise self.fail(
                f"weight {label} has shape {tuple(ds.shape)}; the model expects {shape}"
            )
        if ds.dtype.kind != "f" or ds.dtype.itemsize not in (2, 4, 8):
            raise self.fail(f"weight {label} has dtype {ds.dtype}; expected float16/32/64")
        if ds.problem is not None or ds.value is None:
            raise self.fail(f"weight {label} is not read: {ds.problem or 'no value'}")
        return ds


def _read(ds: Dataset) -> np.ndarray:
    assert ds.value is not None  # _Store.dataset checked it
    return ds.value


def _keras3_weights(
    store: _Store, layers: list[Layer], plan: list[list[tuple[int, ...]]]
) -> list[list[Any]]:
    """Datasets per layer from a Keras 3 store (``.keras`` member or ``.weights.h5``)."""
    root = "layers"
    if store.get("layers") is None and store.get("_layer_checkpoint_dependencies") is not None:
        root = "_layer_checkpoint_dependencies"  # tf.keras 2.13-2.15
    found = []
    for layer, snake, shapes in zip(layers, _snake_names(layers), plan):
        datasets: list[Any] = []
        holders = [sub for sub, _, holds in _var_groups(layer) if holds]
        if shapes:
            per = len(shapes) // len(holders)
            for g, sub in enumerate(holders):
                node = store.get(f"{root}/{snake}/{sub}")
                if node is None:
                    raise store.fail(
                        f"no weights for layer {layer.name!r} ({type(layer).__name__}) at "
                        f"{root}/{snake}/{sub}"
                    )
                names = sorted(node.keys(), key=lambda k: (len(k), k))
                want = [str(k) for k in range(per)]
                if names != want:
                    raise store.fail(
                        f"layer {layer.name!r} ({type(layer).__name__}) stores variables "
                        f"{names} at {root}/{snake}/{sub}; expected {want}"
                    )
                for k in range(per):
                    shape = shapes[g * per + k]
                    label = f"{layer.name}/{layer._weight_labels()[g * per + k]}"
                    datasets.append(store.dataset(node, str(k), shape, label))
        found.append(datasets)
    return found


def _attr_list(node: Any, name: str) -> list[str]:
    """A string-list attribute, also when Keras split it into ``name0``, ``name1``, ..."""
    attrs = node.attrs
    if name in attrs:
        chunks = [attrs[name]]
    else:
        chunks = []
        while f"{name}{len(chunks)}" in attrs:
            chunks.append(attrs[f"{name}{len(chunks)}"])
    out: list[str] = []
    for chunk in chunks:
        items = chunk if isinstance(chunk, list) else [chunk]
        if not all(isinstance(item, str) for item in items):
            raise ModelFileError(
                f"[load] attribute {name!r} of {node.name!r} is not a list of names"
            )
        out += items
    return out


def _legacy_weights(
    store: _Store, group: Any, layers: list[Layer], plan: list[list[tuple[int, ...]]]
) -> list[list[Any]]:
    """Datasets per layer from a legacy HDF5 group (``model_weights`` or a weights file):
    the saved layers that hold weights are matched in order to the model's, as Keras does."""
    saved = []
    for name in _attr_list(group, "layer_names"):
        node = store.get(f"{group.name}/{name}")
        if node is None:
            raise store.fail(f"layer group {name!r} listed in layer_names is missing")
        weight_names = _attr_list(node, "weight_names")
        if weight_names:
            saved.append((name, node, weight_names))
    wanted = [k for k, shapes in enumerate(plan) if shapes]
    if len(saved) != len(wanted):
        raise store.fail(
            f"the file holds weights for {len(saved)} layers ({', '.join(s[0] for s in saved)}); "
            f"the model has {len(wanted)} layers with weights"
        )
    found: list[list[Any]] = [[] for _ in layers]
    for k, (name, node, weight_names) in zip(wanted, saved):
        layer, shapes = layers[k], plan[k]
        if len(weight_names) != len(shapes):
            raise store.fail(
                f"layer {name!r} holds {len(weight_names)} weights; layer {layers[k].name!r} "
                f"({type(layer).__name__}) has {len(shapes)}"
            )
        labels = layer._weight_labels()
        found[k] = [
            store.dataset(node, wname, shape, f"{name}/{labels[j]}")
            for j, (wname, shape) in enumerate(zip(weight_names, shapes))
        ]
    return found


# ------------------------------------------------------------------------ opening
class _Opened:
    """An opened Keras file: its config (if a model), version, and weight store."""

    def __init__(self, path: str, owner: str) -> None:
        self.path = path
        self.where = repr(path)
        self.owner = owner
        self.config: Any = None
        self.compile_config: Any = None
        self.keras_version: Any = None
        self.legacy_group: Any = None  # legacy layout: the group holding layer_names
        self._zip: zipfile.ZipFile | None = None
        self.store: _Store | None = None

    def fail(self, what: str) -> ModelFileError:
        return ModelFileError(f"[{self.owner}] {self.where} {what}")

    def open(self) -> _Opened:
        _need_h5py(self.owner)
        kind = sniff(self.path)
        try:
            if kind == "keras":
                self._open_zip()
            elif kind == "h5":
                with open(self.path, "rb") as f:
                    self.store = _Store(extract(f.read()), self.where)
                self._read_h5_attrs()
            else:
                raise self.fail("is neither a .keras zip nor an HDF5 file")
        except ModelFileError:
            self.close()
            raise
        except H5Error as e:
            self.close()
            raise self.fail(f"is not a valid Keras file (truncated or corrupt): {e}") from None
        except (*ZIP_ERRORS, KeyError, RecursionError) as e:
            self.close()
            raise self.fail(
                f"is not a valid Keras file (truncated or corrupt): {type(e).__name__}: {e}"
            ) from None
        return self

    def _member(self, zf: zipfile.ZipFile, name: str, limit: int | None) -> bytes:
        return zip_member(zf, zf.getinfo(name), os.path.getsize(self.path), self.fail, limit)

    def _open_zip(self) -> None:
        self._zip = zf = zipfile.ZipFile(self.path)
        names = {i.filename for i in check_archive(zf, self.path, self.fail)}
        if CONFIG_JSON not in names:
            raise self.fail(f"is a zip without {CONFIG_JSON}: not a .keras model file")
        self.config = self._json(self._member(zf, CONFIG_JSON, MAX_CONFIG_BYTES), CONFIG_JSON)
        if METADATA_JSON in names:
            meta = self._json(self._member(zf, METADATA_JSON, MAX_CONFIG_BYTES), METADATA_JSON)
            if isinstance(meta, dict):
                self.keras_version = meta.get("keras_version")
        if isinstance(self.config, dict):
            self.compile_config = self.config.get("compile_config")
        if WEIGHTS_H5 not in names:
            other = sorted(n for n in names if n.startswith("model.weights"))
            if other:
                raise self.fail(
                    f"keeps its weights as {', '.join(other)}; rnnkit reads {WEIGHTS_H5} "
                    "(Keras's default weights_format='h5')"
                )
            return  # an unbuilt model: no weights
        image = self._member(zf, WEIGHTS_H5, None)
        self.store = _Store(extract(image), f"{self.where} ({WEIGHTS_H5})")

    def _json(self, raw: bytes | str, what: str) -> Any:
        return parse_json(raw, what, self.fail)

    def _attr_text(self, node: Any, name: str) -> str | None:
        if name not in node.attrs:
            return None
        value = node.attrs[name]
        if not isinstance(value, str):
            raise self.fail(f"has a {name} attribute that is not text")
        return value

    def _read_h5_attrs(self) -> None:
        assert self.store is not None
        h5 = self.store.get("")
        text = self._attr_text(h5, "model_config")
        if text is not None:
            self.config = self._json(text, "model_config")
            training = self._attr_text(h5, "training_config")
            self.compile_config = (
                None if training is None else self._json(training, "training_config")
            )
            self.legacy_group = self.store.get("model_weights")
            if self.legacy_group is None:
                raise self.fail("has a model_config but no model_weights group")
        elif "layer_names" in h5.attrs or "layer_names0" in h5.attrs:
            self.legacy_group = h5
        self.keras_version = self._attr_text(h5, "keras_version")
        if self.keras_version is None and self.legacy_group is not None:
            self.keras_version = self._attr_text(self.legacy_group, "keras_version")

    def weights_for(
        self, layers: list[Layer], input_shape: tuple[Any, ...] | None
    ) -> list[list[Any]]:
        return self.weights_for_plan(layers, weight_plan(layers, input_shape, self.fail))

    def weights_for_plan(
        self, layers: list[Layer], plan: list[list[tuple[int, ...]]]
    ) -> list[list[Any]]:
        """The checked datasets of ``layers``' weights, whose shapes ``plan`` gives."""
        if not any(plan):
            return [[] for _ in layers]
        if self.store is None:
            raise self.fail("holds no weights for a model that has some")
        try:
            if self.legacy_group is not None:
                return _legacy_weights(self.store, self.legacy_group, layers, plan)
            return _keras3_weights(self.store, layers, plan)
        except _H5_ERRORS as e:
            if isinstance(e, ModelFileError):
                raise
            raise self.fail(f"cannot be read (truncated or corrupt): {e}") from None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __enter__(self) -> _Opened:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _set_from(model: Sequential, datasets: list[list[Any]], where: str) -> None:
    weights = []
    for layer, per in zip(model.layers, datasets):
        arrays = [_read(ds) for ds in per]
        if [tuple(a.shape) for a in arrays] != [tuple(s) for s in layer.weight_shapes()]:
            raise ModelFileError(
                f"[load] {where}: layer {layer.name!r} expects weights of shapes "
                f"{layer.weight_shapes()}; the file has {[a.shape for a in arrays]}"
            )
        weights += arrays
    model.set_weights(weights)


def _declared_shape(layers: list[Layer]) -> tuple[Any, ...] | None:
    """The input shape a Sequential of ``layers`` would build with (InputLayer first, or
    the first layer's ``input_shape``)."""
    return layers[0].input_shape_hint if layers else None


def _sequential_from(opened: _Opened, path: str) -> Sequential:
    from ..models import Sequential

    try:
        name, layers, build_shape = layers_from_keras_config(
            opened.config, opened.keras_version, repr(path)
        )
    except ModelFileError:
        raise
    except CONFIG_ERRORS as e:
        raise opened.fail(f"has a config rnnkit cannot read ({type(e).__name__}: {e})") from None
    body = [lay for lay in layers if not isinstance(lay, InputLayer)]
    shape = _declared_shape(layers) or build_shape
    # Every weight is checked against the config before the model allocates any.
    datasets = opened.weights_for(body, shape)
    model = Sequential(name=name)
    try:
        for layer in layers:
            model.add(layer)  # builds once an input shape is declared
        if not model.built and shape is not None:
            model.build(shape)
    except CONFIG_ERRORS as e:
        raise ModelFileError(f"[load_model] {path!r}: {e}") from None
    if model.built:
        _set_from(model, datasets, repr(path))
    return model


def load_model(filepath: str | os.PathLike, compile: bool = True) -> Sequential:
    """Rebuild the Keras Sequential model in a ``.keras`` or legacy ``.h5`` file."""

    path = os.fspath(filepath)
    with _Opened(path, "load_model") as opened:
        if opened.config is None:
            raise opened.fail(
                "holds only weights; build the model and call model.load_weights(path)"
            )
        if is_functional(opened.config):
            try:
                model: Any = functional_from_keras_config(
                    opened.config, opened.keras_version, repr(path)
                )
            except ModelFileError:
                raise
            except CONFIG_ERRORS as e:
                raise opened.fail(
                    f"has a config rnnkit cannot read ({type(e).__name__}: {e})"
                ) from None
            # a graph is built from its Input shapes (sizes bounded at build); its weights
            # are checked against the built layers before any is set
            layers = model.layers
            datasets = opened.weights_for_plan(layers, [lay.weight_shapes() for lay in layers])
            _set_from(model, datasets, repr(path))
        else:
            model = _sequential_from(opened, path)
        if compile and opened.compile_config:
            try:
                model.compile(
                    **compile_args_from_keras(opened.compile_config, repr(path), model._n_outputs)
                )
            except CONFIG_ERRORS as e:
                raise ModelFileError(
                    f"[load_model] {path!r}: its compile config is not supported ({e}); "
                    "pass compile=False to load the model without it"
                ) from None
            if opened.store is not None and opened.legacy_group is None:
                try:
                    _restore_optimizer(model, opened.store, keras_major(opened.keras_version))
                except ModelFileError:
                    raise
                except _H5_ERRORS as e:
                    raise opened.fail(f"has an unreadable optimizer state: {e}") from None
    return model


def load_weights(model: Sequential, filepath: str | os.PathLike) -> None:
    """Load weights from a Keras ``.weights.h5``, legacy ``.h5`` or ``.keras`` file."""
    if not model.built:
        raise ValueError(
            "[load_weights] build the model first (give an input shape or call it on data)"
        )
    path = os.fspath(filepath)
    with _Opened(path, "load_weights") as opened:
        if hasattr(model, "_graph"):  # a graph model: its layers are built
            plan = [lay.weight_shapes() for lay in model.layers]
            datasets = opened.weights_for_plan(model.layers, plan)
        else:
            datasets = opened.weights_for(model.layers, model._build_input_shape)
        _set_from(model, datasets, repr(path))


# ---------------------------------------------------------------------- optimizers
#: Keras 3's optimizer variables after ``iteration`` (and ``learning_rate`` unless a
#: schedule): groups of slots, each group created for every trainable variable in turn with
#: its slots interleaved (Adam: m0, v0, m1, v1, ..., then v_hat0, v_hat1, ...). rnnkit's
#: slot names; a slot the optimizer does not have (no momentum, no amsgrad) is skipped.
_SLOT_GROUPS: dict[str, tuple[tuple[str, ...], ...]] = {
    "SGD": (("momentum",),),
    "Adam": (("m", "v"), ("v_hat",)),
    "AdamW": (("m", "v"), ("v_hat",)),
    "RMSprop": (("velocity",), ("momentum",), ("average_gradient",)),
}


def _slot_groups(opt: Any) -> list[tuple[str, ...]]:
    names = opt._slot_names()
    groups = _SLOT_GROUPS.get(type(opt).__name__, ())
    return [g for g in (tuple(n for n in grp if n in names) for grp in groups) if g]


def _train_layers(model: Sequential) -> list[Layer]:
    model._training_setup()
    return list(model._train_layers)


def _optimizer_variables(model: Sequential) -> list[np.ndarray]:
    """The optimizer's state as Keras 3 lists its variables (zeros for unbuilt slots, which is
    how Keras starts them)."""
    opt = model.optimizer
    assert opt is not None
    out: list[np.ndarray] = [np.asarray(np.int64(opt.iterations))]
    if opt._schedule is None:
        out.append(np.asarray(np.float32(opt.learning_rate)))
    names = opt._slot_names()
    state = opt.get_state()["slots"] if opt.built else []
    keras_slots: dict[str, list[np.ndarray]] = {n: [] for n in names}
    index = 0
    for layer in _train_layers(model):
        params = layer.parameters()
        for j, name in enumerate(names):
            arrays = [
                state[index + i][j] if state else np.zeros_like(p) for i, p in enumerate(params)
            ]
            keras_slots[name] += layer._keras_from_parameters(arrays)
        index += len(params)
    for group in _slot_groups(opt):
        for v in range(len(keras_slots[group[0]])):
            out += [keras_slots[name][v] for name in group]
    return out


def _restore_optimizer(model: Sequential, store: _Store, major: int) -> None:
    """Restore the optimizer's iteration count and, from Keras 3 files whose variables match
    this optimizer one for one, its slots. Anything else keeps fresh slots, with a warning."""
    import warnings

    opt = model.optimizer
    node = store.get("optimizer/vars")
    if opt is None or node is None or not model.built:
        return
    keys = set(node.keys())
    if "0" in keys:
        it = store.get(f"{node.name}/0")
        if not isinstance(it, Dataset) or it.shape != () or it.dtype.kind not in "iu":
            raise store.fail("optimizer/vars/0 (the iteration count) is not an integer scalar")
        if it.value is None or not 0 <= int(it.value[()]) < 2**62:
            raise store.fail(f"optimizer/vars/0 (the iteration count) is not read: {it.problem}")
        opt.iterations = int(it.value[()])
    layers = _train_layers(model)

    def trained_shapes(layer: Layer) -> list[tuple[int, ...]]:
        # the trainable weights in Keras's layout (not BatchNormalization's moving statistics)
        return [tuple(a.shape) for a in layer._keras_from_parameters(layer.parameters())]

    shapes = [s for layer in layers for s in trained_shapes(layer)]
    groups = _slot_groups(opt)
    first = 1 if opt._schedule is not None else 2
    expected = first + sum(len(g) for g in groups) * len(shapes)
    if len(keys) <= 2 or not groups:
        return  # Keras saved an unbuilt optimizer (or one without slots): nothing to restore
    if major < 3 or keys != {str(k) for k in range(expected)}:
        why = (
            f"was written by Keras {major}, whose optimizer variables rnnkit does not map"
            if major < 3
            else f"has {len(keys)} variables where this {type(opt).__name__} has {expected}"
        )
        warnings.warn(
            f"[load_model] {store.where}: the saved {opt.name} state {why}; the iteration "
            "count is restored, the optimizer's slots start fresh",
            UserWarning,
            stacklevel=3,
        )
        return
    keras_slots: dict[str, list[np.ndarray]] = {n: [] for g in groups for n in g}
    k = first
    for group in groups:
        for shape in shapes:
            for name in group:
                ds = store.dataset(node, str(k), shape, f"optimizer/vars/{k}")
                keras_slots[name].append(_read(ds))
                k += 1
    names = opt._slot_names()
    per_param: list[list[np.ndarray]] = []
    start = 0
    for layer in layers:
        n = len(trained_shapes(layer))
        converted = {
            name: layer._parameters_from_keras(keras_slots[name][start : start + n])
            for name in names
        }
        for i in range(len(layer.parameters())):
            per_param.append([converted[name][i] for name in names])
        start += n
    try:
        opt.set_state({"iterations": opt.iterations, "slots": per_param}, model._params)
    except ValueError as e:
        raise store.fail(f"optimizer state does not fit the model: {e}") from None


# ------------------------------------------------------------------------ writing
def _write_keras3_store(h5: Any, model: Sequential) -> None:
    h5.create_group("vars").attrs["name"] = model.name
    for layer, snake in zip(model.layers, _snake_names(model.layers)):
        weights = layer.get_weights()
        groups = _var_groups(layer)
        per = len(weights) // max(1, sum(holds for _, _, holds in groups))
        for sub, obj_name, holds in groups:
            node = h5.create_group(f"layers/{snake}/{sub}")
            node.attrs["name"] = obj_name
            if holds:
                for k, w in enumerate(weights[:per]):
                    node.create_dataset(str(k), data=w)
                weights = weights[per:]
    if model.compiled and model.optimizer is not None:
        node = h5.create_group("optimizer/vars")
        node.attrs["name"] = model.optimizer.name
        for k, value in enumerate(_optimizer_variables(model)):
            node.create_dataset(str(k), data=value)


def _h5_image(write: Any) -> bytes:
    """Build an HDF5 file in memory with ``write(h5file)``; returns its bytes."""
    h5py = _h5py("save")
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        write(h5)
    return buf.getvalue()


def save_keras(model: Sequential, filepath: str | os.PathLike, overwrite: bool = True) -> None:
    """Write a Keras 3 ``.keras`` file (config, compile config, weights in Keras's layout)."""
    from .. import __version__

    config = keras_model_config(model, keras3=True)
    compiled = keras_compile_config(model, keras3=True)
    if compiled is not None:
        config["compile_config"] = compiled
    image = _h5_image(lambda h5: _write_keras3_store(h5, model))
    metadata = {
        "keras_version": WRITTEN_KERAS_VERSION,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        "rnnkit_version": __version__,
    }

    def write(f: Any) -> None:
        with zipfile.ZipFile(f, "w") as zf:
            zf.writestr(METADATA_JSON, json.dumps(metadata))
            zf.writestr(CONFIG_JSON, json.dumps(config))
            zf.writestr(WEIGHTS_H5, image)

    atomic_write(filepath, overwrite, write)


def save_keras_weights(
    model: Sequential, filepath: str | os.PathLike, overwrite: bool = True
) -> None:
    """Write a Keras 3 ``.weights.h5`` file."""
    image = _h5_image(lambda h5: _write_keras3_store(h5, model))
    atomic_write(filepath, overwrite, lambda f: f.write(image))


def _legacy_names(model: Sequential, layer: Layer) -> list[str]:
    labels = layer._weight_labels()
    if isinstance(layer, Bidirectional):
        inner = layer.layer.name.removeprefix(f"{layer.name}_")
        cell = f"{keras_snake_case(type(layer.layer).__name__)}_cell"
        sides = [lab.split("_", 1) for lab in labels]  # ("forward", "kernel"), ...
        return [f"{model.name}/{layer.name}/{side}_{inner}/{cell}/{w}" for side, w in sides]
    if isinstance(layer, _RNN):
        cell = f"{keras_snake_case(type(layer).__name__)}_cell"
        return [f"{model.name}/{layer.name}/{cell}/{lab}" for lab in labels]
    return [f"{model.name}/{layer.name}/{lab}" for lab in labels]


def _write_legacy_weights(group: Any, model: Sequential) -> None:
    group.attrs["layer_names"] = [layer.name.encode("utf-8") for layer in model.layers]
    group.attrs["backend"] = b"tensorflow"
    group.attrs["keras_version"] = WRITTEN_KERAS_VERSION.encode()
    for layer in model.layers:
        node = group.create_group(layer.name)
        names = _legacy_names(model, layer)
        node.attrs["weight_names"] = [n.encode("utf-8") for n in names]
        for name, w in zip(names, layer.get_weights()):
            node.create_dataset(name, data=w)
    group.create_group("top_level_model_weights").attrs["weight_names"] = np.zeros(0)


def save_legacy_h5(model: Sequential, filepath: str | os.PathLike, overwrite: bool = True) -> None:
    """Write a legacy Keras ``.h5`` model file (Keras 2 style config, read by Keras 3 too)."""
    from .. import __version__

    def fill(h5: Any) -> None:
        h5.attrs["backend"] = "tensorflow"
        h5.attrs["keras_version"] = WRITTEN_KERAS_VERSION
        h5.attrs["rnnkit_version"] = __version__
        h5.attrs["model_config"] = json.dumps(keras_model_config(model, keras3=False))
        training = keras_compile_config(model, keras3=False)
        if training is not None:
            h5.attrs["training_config"] = json.dumps(training)
        _write_legacy_weights(h5.create_group("model_weights"), model)

    image = _h5_image(fill)
    atomic_write(filepath, overwrite, lambda f: f.write(image))


def save_legacy_weights(
    model: Sequential, filepath: str | os.PathLike, overwrite: bool = True
) -> None:
    """Write a legacy Keras weights-only ``.h5`` file."""
    image = _h5_image(lambda h5: _write_legacy_weights(h5, model))
    atomic_write(filepath, overwrite, lambda f: f.write(image))


__all__ = [
    "keras_major",
    "load_model",
    "load_weights",
    "save_keras",
    "save_keras_weights",
    "save_legacy_h5",
    "save_legacy_weights",
    "sniff",
]
