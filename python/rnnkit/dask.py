"""Scoring on Dask: ``rnnkit.dask.predict(model, x, batch_size=...)``.

When scoring millions of series outgrows one process or one machine, rnnkit runs on Dask, an
existing engine (``pip install rnnkit[dask]``; dask is imported when ``predict`` is called).

The idiom is ``dask.array.map_blocks`` over blocks of whole samples: each block is one task
that calls the model's own ``predict`` on it, so the result is a lazy dask array like any
other (``.compute()``, ``.persist()``, ``distributed.progress``, ``to_zarr``...). That is what
dask-ml's ``ParallelPostFit.predict`` does for scikit-learn estimators; rnnkit models are not
estimators and need no wrapper class, and dask-ml would be one more dependency.

The model enters the task graph once (``dask.delayed``), pickled as its configuration plus
numpy arrays; each worker process unpickles it once and rebuilds its packed weights there.
Workers default to one core thread each (``threads_per_worker=1``), set inside the worker
process by the first task it runs, so that n single-threaded workers on n cores do not
oversubscribe them; the calling process's own setting is never changed.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import numpy as np

from . import _config

#: Identifies the process that imported this module (a forked child has another pid).
_PROCESS = (os.getpid(), uuid.uuid4().hex)


def _require_dask() -> Any:
    try:
        import dask
        import dask.array as da
    except ImportError as e:
        raise ImportError(
            "rnnkit.dask needs dask: pip install rnnkit[dask] (or pip install 'dask[array]')"
        ) from e
    return dask, da


def _kind(model: Any) -> str:
    from ._rnn import _RNNBase

    if isinstance(model, _RNNBase):
        return "module"
    if callable(getattr(model, "predict", None)):
        return "predict"
    raise TypeError(
        "[rnnkit.dask.predict] model must be an rnnkit.LSTM/GRU or have a predict(x, "
        f"batch_size=...) method (rnnkit.Sequential); got {type(model).__name__}"
    )


def _run(model: Any, kind: str, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's outputs for a block of samples, batch_size samples per call."""
    if kind == "predict":
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    axis = 0 if model.batch_first else 1
    n = x.shape[axis]
    parts = []
    for lo in range(0, n, batch_size):
        part = x[lo : lo + batch_size] if axis == 0 else x[:, lo : lo + batch_size]
        parts.append(model(np.ascontiguousarray(part))[0])
    return np.concatenate(parts, axis=axis)


def _predict_block(
    block: np.ndarray,
    model: Any,
    kind: str,
    batch_size: int,
    threads: int | None,
    caller: tuple[int, str],
) -> np.ndarray:
    """One task: set the worker's core threads (not in the caller's process), then predict."""
    in_caller = (os.getpid(), _PROCESS[1]) == caller  # a forked child has another pid
    if threads is not None and not in_caller and _config.get_num_threads() != threads:
        _config.set_num_threads(threads)
    return _run(model, kind, block, batch_size)


def predict(
    model: Any,
    x: Any,
    batch_size: int = 32,
    threads_per_worker: int | None = 1,
) -> Any:
    """Lazy predictions of ``model`` for every sample of the dask array ``x``.

    Parameters
    ----------
    model : rnnkit.Sequential, rnnkit.LSTM/GRU, or anything with ``predict(x, batch_size=)``
        Modules return their output sequences ``y`` (their ``batch_first`` layout decides the
        sample axis: 0, or 1 for time-major); a module in training mode is copied in eval
        mode for the graph.
    x : dask.array.Array (or an array-like, wrapped as one block)
        ``(N, ...)`` samples first (``(T, N, I)`` for a time-major module). Only the sample
        axis may be chunked; other axes are rechunked into one.
    batch_size : int
        Samples per model call inside a task. With chunks that are multiples of
        ``batch_size`` every batch is the same as in ``model.predict(x.compute(),
        batch_size=batch_size)``, and so are the results, bit for bit.
    threads_per_worker : int or None
        Core threads (``rnnkit.set_num_threads``) in each worker process other than the
        caller's; None leaves them alone.

    Returns
    -------
    dask.array.Array
        ``(N, *output)``: the predictions, chunked like ``x``'s sample axis.
    """
    dask, da = _require_dask()
    kind = _kind(model)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"[rnnkit.dask.predict] batch_size must be an int; got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"[rnnkit.dask.predict] batch_size must be >= 1; got {batch_size}")
    if threads_per_worker is not None and (
        isinstance(threads_per_worker, bool)
        or not isinstance(threads_per_worker, (int, np.integer))
        or threads_per_worker < 1
    ):
        raise ValueError(
            "[rnnkit.dask.predict] threads_per_worker must be an int >= 1 or None; "
            f"got {threads_per_worker!r}"
        )
    if kind == "module" and model.training:
        import copy

        model = copy.deepcopy(model).eval()
    if not isinstance(x, da.Array):
        x = da.from_array(np.asarray(x), chunks=-1)
    axis = 0 if kind == "predict" or model.batch_first else 1
    if x.ndim < max(2, axis + 1):
        raise ValueError(
            f"[rnnkit.dask.predict] x has {x.ndim} dims; expected samples on axis {axis} "
            "and the model's input shape on the others"
        )
    x = x.rechunk({a: -1 for a in range(x.ndim) if a != axis})
    # One sample's output shape and dtype, from a call on one zero sample.
    probe_shape = tuple(1 if a == axis else s for a, s in enumerate(x.shape))
    probe = _run(model, kind, np.zeros(probe_shape, dtype=x.dtype), 1)
    chunks = tuple(x.chunks[axis] if a == axis else (s,) for a, s in enumerate(probe.shape))
    extra: dict[str, Any] = {}
    if probe.ndim < x.ndim:
        extra["drop_axis"] = list(range(probe.ndim, x.ndim))
    elif probe.ndim > x.ndim:
        extra["new_axis"] = list(range(x.ndim, probe.ndim))
    return x.map_blocks(
        _predict_block,
        dask.delayed(model, pure=True),
        kind,
        int(batch_size),
        None if threads_per_worker is None else int(threads_per_worker),
        _PROCESS,
        dtype=probe.dtype,
        chunks=chunks,
        meta=np.empty((0,) * probe.ndim, probe.dtype),
        **extra,
    )


__all__ = ["predict"]
