"""What every model-file reader checks before it trusts a byte: shared by rnnkit's own format
(:mod:`.saving`) and the Keras readers (:mod:`.keras_files`, :mod:`.h5_extract`).

A file may declare anything; a reader must find out what it would cost before paying it. So:

- a zip member is read only if its stored size fits in the archive, its uncompressed size is
  at most ``MAX_EXPANSION`` times its stored size (plus ``MIN_EXPANSION``: DEFLATE reaches
  about 1032:1 on real data, more only on crafted streams) and, for configs, at most
  ``MAX_CONFIG_BYTES``; the read stops at the declared size;
- JSON is parsed with its nesting bounded (``MAX_JSON_DEPTH``), so a crafted config is a
  ModelFileError, not a RecursionError;
- weight shapes are derived from the model's config alone (:func:`weight_plan`, nothing
  built or allocated) and compared with what the file stores before any array is read.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from typing import Any

from .base import Layer
from .core_layers import Dense, Embedding
from .recurrent import _RNN, Bidirectional

#: A compressed entry may expand at most this many times its stored size, plus MIN_EXPANSION.
MAX_EXPANSION = 1024
MIN_EXPANSION = 1 << 20
#: Largest config or metadata entry read (a model config is kilobytes; this stops bombs).
MAX_CONFIG_BYTES = 64 << 20
#: What zipfile raises on a malformed archive besides BadZipFile: NotImplementedError for
#: an unknown compression method or zip version, EOFError/OSError/ValueError for truncation.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    EOFError,
    OSError,
    ValueError,
)
#: What building layers, losses or optimizers from a crafted config may raise; readers turn
#: it into ModelFileError naming the file (after letting ModelFileError itself through).
#: (RecursionError: a graph config too deep to walk.)
CONFIG_ERRORS = (
    TypeError,
    ValueError,
    KeyError,
    AttributeError,
    IndexError,
    NotImplementedError,
    RecursionError,
)
#: Deepest JSON nesting accepted (rnnkit's and Keras's configs nest fewer than 20 levels).
MAX_JSON_DEPTH = 64

Fail = Callable[[str], Exception]
#: General-purpose flag bit 0 of a zip entry: the member is encrypted (zipfile would raise a
#: bare RuntimeError asking for a password when it is opened).
_ENCRYPTED = 0x1


def zip_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive: int, fail: Fail, limit: int | None = None
) -> bytes:
    """The bytes of member ``info`` of ``zf`` (an archive of ``archive`` bytes), after the
    size checks above; ``fail(what)`` makes the exception to raise."""
    name = info.filename
    check_member_size(info, archive, fail, limit)
    with zf.open(info) as f:
        data = f.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise fail(f"has a {name} whose size does not match its zip header")
    return data


def check_member_size(
    info: zipfile.ZipInfo, archive: int, fail: Fail, limit: int | None = None
) -> None:
    name = info.filename
    if info.compress_size > archive:
        raise fail(f"declares a {name} larger than the archive")
    if limit is not None and info.file_size > limit:
        raise fail(f"has a {info.file_size}-byte {name}; at most {limit} is read")
    if info.file_size > MAX_EXPANSION * info.compress_size + MIN_EXPANSION:
        raise fail(
            f"has a {name} that expands {info.compress_size} -> {info.file_size} bytes "
            "(a decompression bomb?)"
        )


def check_archive(zf: zipfile.ZipFile, path: str, fail: Fail) -> list[zipfile.ZipInfo]:
    """The members of ``zf``, after checking that their stored sizes add up to no more than
    the archive (overlapping members are how small zips expand without bound)."""
    infos = zf.infolist()
    for info in infos:
        if info.flag_bits & _ENCRYPTED:
            raise fail(
                f"has an encrypted member {info.filename!r}; model files are never encrypted"
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise fail(
                f"has a member {info.filename!r} compressed with method {info.compress_type}; "
                "only stored and deflated members are read"
            )
    archive = os.path.getsize(path)
    if sum(i.compress_size for i in infos) > archive:
        raise fail("has members whose stored sizes add up to more than the archive")
    return infos


def parse_json(raw: bytes | str, what: str, fail: Fail) -> Any:
    """``json.loads(raw)`` with ``MAX_CONFIG_BYTES`` and ``MAX_JSON_DEPTH`` enforced."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise fail(f"has a {what} that is not UTF-8 ({e})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise fail(f"has a {len(raw)}-byte {what}; at most {MAX_CONFIG_BYTES} is read")
    if _nesting(raw) > MAX_JSON_DEPTH:
        raise fail(f"has a {what} nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as e:
        raise fail(f"has a {what} that is not JSON ({e})") from None


def _nesting(text: str) -> int:
    """The deepest bracket nesting of JSON ``text`` (brackets inside strings ignored)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _recurrent_shapes(layer: _RNN, features: int) -> list[tuple[int, ...]]:
    g, u = layer._gates, layer.units
    shapes: list[tuple[int, ...]] = [(features, g * u), (u, g * u)]
    if layer.use_bias:
        shapes.append((2, g * u) if getattr(layer, "reset_after", False) else (g * u,))
    return shapes


def weight_shapes(layer: Layer, input_shape: tuple[Any, ...], fail: Fail) -> list[tuple[int, ...]]:
    """Keras-layout weight shapes of the unbuilt ``layer`` for inputs of ``input_shape``."""
    features = input_shape[-1]
    planned = layer._planned_weight_shapes(input_shape)
    if planned is not None:
        return planned
    if isinstance(layer, Embedding):
        return [(layer.input_dim, layer.output_dim)]
    if not isinstance(layer, (Dense, _RNN, Bidirectional)):
        return []
    if features is None:
        raise fail(f"layer {layer.name!r} has no known input feature size")
    if isinstance(layer, Dense):
        return [(features, layer.units)] + ([(layer.units,)] if layer.use_bias else [])
    if isinstance(layer, Bidirectional):
        return 2 * _recurrent_shapes(layer.layer, features)
    return _recurrent_shapes(layer, features)


def weight_plan(
    layers: list[Layer], input_shape: tuple[Any, ...] | None, fail: Fail
) -> list[list[tuple[int, ...]]]:
    """Expected Keras-layout weight shapes per layer, from the configs alone (nothing built)."""
    plan = []
    shape = input_shape
    for layer in layers:
        if shape is None:
            plan.append([])
            continue
        plan.append(weight_shapes(layer, shape, fail))
        shape = layer.compute_output_shape(shape)
    return plan
