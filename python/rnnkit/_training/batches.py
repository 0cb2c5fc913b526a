"""Batches from a Python generator or a ``keras.utils.PyDataset``-shaped object, for ``fit``,
``evaluate`` and ``predict`` (arrays are sliced by the model itself).

A PyDataset-shaped object has ``__len__`` (batches per epoch) and ``__getitem__(i)`` (batch
``i``), and optionally ``on_epoch_end()``, called after every epoch; ``fit(shuffle=True)``
visits its batches in a new random order each epoch, as Keras does. A generator (any
iterator) yields batches until it stops. A batch is a tuple ``(x, y)`` or
``(x, y, sample_weight)``; for ``predict``, ``x`` alone or such a tuple (its ``x`` is used).
Each batch is checked as ``fit``'s arrays are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


class PyDataset:
    """Base class of a dataset of batches, as ``keras.utils.PyDataset``: implement
    ``__len__`` and ``__getitem__(index) -> (x, y)`` or ``(x, y, sample_weight)``, and
    optionally ``on_epoch_end`` (e.g. to reshuffle). The worker arguments Keras takes
    (``workers``, ``use_multiprocessing``, ``max_queue_size``) are accepted and ignored:
    batches are fetched in order on the calling thread."""

    def __init__(
        self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10
    ):
        self.workers, self.use_multiprocessing = workers, use_multiprocessing
        self.max_queue_size = max_queue_size

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError("PyDataset subclasses implement __getitem__(index)")

    def __len__(self) -> int:
        raise NotImplementedError("PyDataset subclasses implement __len__()")

    def on_epoch_end(self) -> None:
        """Called after every epoch."""


def source_kind(x: Any) -> str | None:
    """ "dataset" (PyDataset-shaped), "generator" (an iterator), or None (arrays)."""
    if x is None or isinstance(x, (np.ndarray, list, tuple, dict, str, bytes)):
        return None
    if hasattr(x, "__array__"):  # array-likes (DataFrames, tensors) have both methods too
        return None
    if hasattr(x, "__getitem__") and hasattr(x, "__len__"):
        return "dataset"
    if hasattr(x, "__next__"):
        return "generator"
    return None


class BatchSource:
    """The batches of one ``fit``/``evaluate``/``predict`` call. ``steps``: batches per epoch
    (None: a generator's, until it stops). ``epoch()`` yields the raw batches of one epoch."""

    def __init__(self, data: Any, kind: str, steps: int | None, owner: str, argument: str) -> None:
        self.data, self.kind, self.owner, self.argument = data, kind, owner, argument
        if kind == "dataset":
            try:
                n = len(data)
            except TypeError as e:
                raise TypeError(f"[{owner}] {argument}: len() failed: {e}") from None
            if not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"[{owner}] {argument} has {n!r} batches; it needs at least 1")
            steps = int(n) if steps is None else steps
        self.steps = steps
        self._pending: list[Any] = []
        self.exhausted = False
        self.last_steps = 0

    def peek(self) -> Any:
        """The first batch, fetched once (the model builds from it)."""
        if self.kind == "dataset":
            return self._fetch(0)
        if not self._pending:
            try:
                self._pending.append(next(self.data))
            except StopIteration:
                raise ValueError(f"[{self.owner}] {self.argument} yielded no batch") from None
        return self._pending[0]

    def _fetch(self, i: int) -> Any:
        return self.data[i % len(self.data)]

    def epoch(self, order: Any = None) -> Iterator[Any]:
        """One epoch's batches; a dataset's in ``order`` (a permutation of its indices, as
        fit(shuffle=True) gives, like Keras) if given."""
        self.last_steps = 0  # batches this epoch has yielded
        if self.kind == "dataset":
            for i in range(self.steps or 0):
                self.last_steps += 1
                yield self._fetch(i if order is None else int(order[i % len(order)]))
            return
        i = 0
        while self.steps is None or i < self.steps:
            if self._pending:
                item = self._pending.pop(0)
            else:
                try:
                    item = next(self.data)
                except StopIteration:
                    self.exhausted = True
                    return
            self.last_steps += 1
            yield item
            i += 1

    def end_epoch(self) -> None:
        hook = getattr(self.data, "on_epoch_end", None)
        if self.kind == "dataset" and callable(hook):
            hook()

    def unpack(self, item: Any, step: int, need_y: bool) -> tuple[Any, Any, Any]:
        """``(x, y, sample_weight)`` of a batch (y and the weights may be None)."""
        where = f"{self.argument} batch {step}"
        if isinstance(item, tuple):
            if len(item) == 1 and not need_y:
                return item[0], None, None
            if len(item) in (2, 3):
                return item[0], item[1], item[2] if len(item) == 3 else None
            raise ValueError(
                f"[{self.owner}] {where} is a tuple of {len(item)}; expected (x, y) or "
                "(x, y, sample_weight)"
            )
        if need_y:
            raise ValueError(
                f"[{self.owner}] {where} is a {type(item).__name__}; expected a tuple (x, y) or "
                "(x, y, sample_weight)"
            )
        return item, None, None
