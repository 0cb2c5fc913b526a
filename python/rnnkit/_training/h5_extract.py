"""Read an HDF5 file from an untrusted source in a child process, as plain data.

The HDF5 C library is not hardened against crafted files: a damaged attribute can crash the
process that reads it (found by fuzzing the Keras readers: a bad global-heap reference in a
variable-length string segfaults inside libhdf5). So the parent never opens such a file with
h5py; a child process (``python -c`` with only numpy and h5py imported) walks it and sends back
its tree: groups with their attributes, and datasets with their metadata and, for those that
pass the checks below, their values. A crash or a hang of the child becomes an error in the
parent.

Checks in the child, before a dataset is read: hard links only (no external or soft links),
no external or virtual storage, a numeric dtype, and the bytes it declares stored in the file
(for a filtered, e.g. compressed, dataset: at most ``MAX_EXPANSION`` times what is stored).
So a read allocates at most about that factor times the file's size.

Wire format (child to parent, on stdout): an ``.npz`` archive of the dataset values
(``a0``, ``a1``, ...) and ``index``, a 0-d unicode array holding JSON::

    {"groups": {path: {"attrs": {name: value}, "children": [names]}},
     "datasets": {path: {"shape": [...], "dtype": "<f4", "stored": n, "filtered": bool,
                         "key": "a3" | null, "problem": str | null}},
     "links": {path: "SoftLink" | "ExternalLink"},
     "error": str | null}

Attribute values are JSON: strings, lists of strings, numbers, lists of numbers (others are
null). The parent loads the archive with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import numpy as np

from .untrusted import MAX_EXPANSION, MIN_EXPANSION

#: Limits on the tree the child walks (a crafted file can loop its groups through links).
MAX_DEPTH = 64
MAX_NODES = 200_000
#: Seconds the child may take (a crafted file can make libhdf5 loop or crawl: the fuzzer found
#: a 13 KB file that keeps it busy for minutes): TIMEOUT_BASE plus TIMEOUT_PER_MB for each MiB
#: of the file, at most TIMEOUT. Reading a real file takes about a second plus its bytes.
TIMEOUT_BASE = 30.0
TIMEOUT_PER_MB = 2.0
TIMEOUT = 600.0


def timeout_for(nbytes: int) -> float:
    """The seconds the child may take on a file of ``nbytes``."""
    return min(TIMEOUT, TIMEOUT_BASE + TIMEOUT_PER_MB * nbytes / 2**20)


_CHILD = r"""
import io, json, sys
import numpy as np
import h5py

MAX_EXPANSION, MIN_EXPANSION, MAX_DEPTH, MAX_NODES = (int(v) for v in sys.argv[1:5])

def plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSUifub" and value.size <= 1 << 16:
            if value.ndim == 0:
                return plain(value[()])
            return [plain(v) for v in value.reshape(-1).tolist()]
    return None

def main():
    image = sys.stdin.buffer.read()
    index = {"groups": {}, "datasets": {}, "links": {}, "error": None}
    arrays = {}
    try:
        f = h5py.File(io.BytesIO(image), "r")
        count = [0]

        def visit(group, path, depth):
            count[0] += 1
            if depth > MAX_DEPTH or count[0] > MAX_NODES:
                raise ValueError("the file's groups nest too deep or are too many")
            attrs = {}
            for name in group.attrs:
                try:
                    attrs[name] = plain(group.attrs[name])
                except (OSError, ValueError, TypeError, KeyError, RuntimeError):
                    attrs[name] = None
            children = list(group)
            index["groups"][path] = {"attrs": attrs, "children": children}
            for name in children:
                sub = f"{path}/{name}" if path else name
                link = group.get(name, getlink=True)
                if not isinstance(link, h5py.HardLink):
                    index["links"][sub] = type(link).__name__
                    continue
                obj = group[name]
                if isinstance(obj, h5py.Group):
                    visit(obj, sub, depth + 1)
                elif isinstance(obj, h5py.Dataset):
                    dataset(obj, sub)

        def dataset(ds, path):
            count[0] += 1
            dtype = ds.dtype
            meta = {"shape": list(ds.shape), "dtype": dtype.str, "key": None, "problem": None,
                    "stored": int(ds.id.get_storage_size()),
                    "filtered": ds.id.get_create_plist().get_nfilters() > 0}
            index["datasets"][path] = meta
            declared = int(np.prod(ds.shape, dtype=object)) * dtype.itemsize
            if dtype.kind not in "fiu":
                meta["problem"] = f"dtype {dtype} is not numeric"
            elif ds.is_virtual or ds.external:
                meta["problem"] = "it is stored outside the file (virtual or external)"
            elif meta["stored"] > len(image) or (
                declared > MAX_EXPANSION * meta["stored"] + MIN_EXPANSION
                if meta["filtered"]
                else meta["stored"] < declared
            ):
                meta["problem"] = (f"it declares {declared} bytes but the file stores "
                                   f"{meta['stored']} for it (in {len(image)} bytes)")
            else:
                key = f"a{len(arrays)}"
                arrays[key] = np.asarray(ds[()])
                meta["key"] = key

        visit(f, "", 0)
        f.close()
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as e:
        index["error"] = f"{type(e).__name__}: {e}"
    out = io.BytesIO()
    np.savez(out, index=np.array(json.dumps(index)), **arrays)
    sys.stdout.buffer.write(out.getvalue())

main()
"""


class H5Error(ValueError):
    """The child could not read the file (the message says why)."""


class Group:
    """A group of the extracted tree: ``name`` (absolute path), ``attrs``, ``keys()``."""

    def __init__(self, path: str, entry: dict[str, Any]) -> None:
        self.name = "/" + path
        attrs = entry.get("attrs")
        self.attrs: dict[str, Any] = attrs if isinstance(attrs, dict) else {}
        children = entry.get("children")
        self._children = [c for c in children if isinstance(c, str)] if children else []

    def keys(self) -> list[str]:
        return list(self._children)


class Dataset:
    """A dataset of the extracted tree: metadata, and its value when it passed the checks."""

    def __init__(self, path: str, entry: dict[str, Any], value: np.ndarray | None) -> None:
        self.name = "/" + path
        self.shape = tuple(int(s) for s in entry.get("shape", ()))
        self.dtype = np.dtype(entry.get("dtype", "V1"))
        self.problem: str | None = entry.get("problem")
        self.value = value
        if value is not None and (tuple(value.shape) != self.shape or value.dtype != self.dtype):
            self.problem = "its value does not match its metadata"
            self.value = None


class Tree:
    """The extracted file: ``get(path)`` gives a Group, a Dataset or None; a path through a
    link that is not a plain (hard) one raises H5Error."""

    def __init__(self, index: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self._groups = index.get("groups") or {}
        self._datasets = index.get("datasets") or {}
        self._links = index.get("links") or {}
        self._arrays = arrays

    def get(self, path: str) -> Group | Dataset | None:
        parts = [p for p in path.split("/") if p]
        for k in range(1, len(parts) + 1):
            prefix = "/".join(parts[:k])
            if prefix in self._links:
                raise H5Error(f"{prefix!r} is a {self._links[prefix]}; only plain groups are read")
        key = "/".join(parts)
        if key in self._groups:
            return Group(key, self._groups[key])
        entry = self._datasets.get(key)
        if entry is None:
            return None
        value = self._arrays.get(entry.get("key")) if entry.get("key") else None
        return Dataset(key, entry, value)


def extract(image: bytes) -> Tree:
    """Walk the HDF5 file held in ``image`` in a child process; raises H5Error if it cannot."""
    args = [str(v) for v in (MAX_EXPANSION, MIN_EXPANSION, MAX_DEPTH, MAX_NODES)]
    limit = timeout_for(len(image))
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, *args],
            input=image,
            capture_output=True,
            timeout=limit,
        )
    except subprocess.TimeoutExpired:
        raise H5Error(f"reading it took over {limit:.0f} s (a crafted file?)") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        if "No module named 'h5py'" in tail[0]:
            raise ImportError(tail[0])
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        raise H5Error(f"the HDF5 library failed on it ({how}: {tail[0]}): damaged or crafted")
    try:
        with np.load(io.BytesIO(proc.stdout), allow_pickle=False) as z:
            index = json.loads(str(z["index"][()]))
            arrays = {k: z[k] for k in z.files if k != "index"}
    except (ValueError, OSError, KeyError, json.JSONDecodeError) as e:
        raise H5Error(f"the reader returned no readable tree ({e})") from None
    if index.get("error"):
        raise H5Error(index["error"])
    return Tree(index, arrays)
