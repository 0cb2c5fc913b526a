"""Scale-out on Dask (rnnkit.dask.predict) and the pickling it depends on.

- models pickle as config plus arrays (no packed copies) in every mode and give the same
  outputs after a round trip;
- predict over a chunked dask array equals local predict bit for bit (threaded scheduler,
  a process pool, and the LocalCluster example on loopback);
- worker processes run the core with one thread, the caller's setting is left alone;
- without dask the error names the extra; bad arguments raise clear errors.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit.layers import GRU, LSTM, Dense

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


# --------------------------------------------------------------------------- pickling


@pytest.mark.parametrize("mode", ["train", "eval", "bfloat16"])
def test_core_modules_pickle_in_every_mode(mode: str) -> None:
    m = rnnkit.LSTM(5, 16, num_layers=2, seed=3)
    if mode == "eval":
        m.eval()
    elif mode == "bfloat16":
        m.bfloat16()
    x = np.random.default_rng(0).standard_normal((7, 3, 5)).astype(np.float32)
    blob = pickle.dumps(m)
    m2 = pickle.loads(blob)
    assert m2.training == m.training and m2.weight_dtype == m.weight_dtype
    m.eval()
    m2.eval()
    assert same_bits(m2(x)[0], m(x)[0]), f"{mode}: outputs differ after a pickle round trip"
    params = sum(p.nbytes for p in m.parameters())
    # parameters (and in training mode their gradients), never packed copies
    limit = (2 if mode == "train" else 1) * params + 8192
    assert len(blob) < limit, f"{mode}: pickle of {len(blob)} bytes for {params} of parameters"
    if mode == "train":
        m3 = pickle.loads(blob)
        m3.zero_grad()
        y, _ = m3(x)
        m3.backward(np.ones_like(y))  # writeable parameters and gradients after unpickling


def test_sequential_pickles_as_config_and_weights() -> None:
    model = rnnkit.Sequential([GRU(8, input_shape=(None, 3)), Dense(2)])
    x = np.random.default_rng(1).standard_normal((4, 6, 3)).astype(np.float32)
    blob = pickle.dumps(model)
    weights = sum(w.nbytes for w in model.get_weights())
    assert len(blob) < weights + 16384, f"pickle of {len(blob)} bytes for {weights} of weights"
    assert same_bits(pickle.loads(blob).predict(x, verbose=0), model.predict(x, verbose=0))


# --------------------------------------------------------------------------- predict


def test_missing_dask_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import rnnkit.dask

    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r"pip install rnnkit\[dask\]"):
        rnnkit.dask.predict(rnnkit.LSTM(2, 3).eval(), np.zeros((1, 1, 2), np.float32))


da = pytest.importorskip("dask.array", reason="dask is not installed (pip install rnnkit[dask])")


def test_predict_equals_local_predict_threaded_scheduler() -> None:
    import dask

    import rnnkit.dask

    model = rnnkit.Sequential([LSTM(12, input_shape=(None, 4)), Dense(3)])
    x = np.random.default_rng(2).standard_normal((300, 9, 4)).astype(np.float32)
    lazy = rnnkit.dask.predict(model, da.from_array(x, chunks=(60, 9, 4)), batch_size=20)
    assert lazy.shape == (300, 3) and lazy.chunks[0] == (60,) * 5
    with dask.config.set(scheduler="threads"):
        got = lazy.compute()
    assert same_bits(got, model.predict(x, batch_size=20, verbose=0)), (
        f"max abs diff {np.abs(got - model.predict(x, batch_size=20, verbose=0)).max():.2e}"
    )


@pytest.mark.parametrize("batch_first", [False, True])
def test_predict_core_module_either_layout(batch_first: bool) -> None:
    import dask

    import rnnkit.dask

    m = rnnkit.GRU(3, 10, num_layers=2, batch_first=batch_first, seed=4)  # training mode
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 6, 3) if batch_first else (6, 40, 3)).astype(np.float32)
    chunks = (10, 6, 3) if batch_first else (6, 10, 3)
    lazy = rnnkit.dask.predict(m, da.from_array(x, chunks=chunks), batch_size=5)
    assert m.training, "predict must not switch the caller's module to eval mode"
    m.eval()
    axis = 0 if batch_first else 1
    parts = [np.ascontiguousarray(np.take(x, range(k, k + 5), axis=axis)) for k in range(0, 40, 5)]
    want = np.concatenate([m(p)[0] for p in parts], axis=axis)
    with dask.config.set(scheduler="threads"):
        assert same_bits(lazy.compute(), want)


class _ThreadsProbe:
    """A model whose predictions are the number of core threads where it runs."""

    def predict(self, x: np.ndarray, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        return np.full((x.shape[0], 1), rnnkit.get_num_threads(), np.int64)


def test_workers_run_one_core_thread_and_the_caller_keeps_its_own() -> None:
    import dask

    import rnnkit.dask

    before = rnnkit.get_num_threads()
    x = da.zeros((8, 2, 1), chunks=(2, 2, 1), dtype=np.float32)
    try:
        rnnkit.set_num_threads(2)
        with dask.config.set(scheduler="threads"):
            here = rnnkit.dask.predict(_ThreadsProbe(), x).compute()
        assert np.all(here == 2), f"caller's process: {here.ravel()}"
        with dask.config.set(scheduler="processes", num_workers=2):
            there = rnnkit.dask.predict(_ThreadsProbe(), x).compute()
            custom = rnnkit.dask.predict(_ThreadsProbe(), x, threads_per_worker=2).compute()
        assert np.all(there == 1), f"worker processes: {there.ravel()}"
        assert np.all(custom == 2), f"threads_per_worker=2: {custom.ravel()}"
        assert rnnkit.get_num_threads() == 2, "the caller's thread count changed"
    finally:
        rnnkit.set_num_threads(before)


def test_predict_bad_arguments() -> None:
    import rnnkit.dask

    m = rnnkit.LSTM(2, 3).eval()
    x = da.zeros((4, 2, 2), chunks=(2, 2, 2), dtype=np.float32)
    with pytest.raises(TypeError, match="model must be an rnnkit.LSTM/GRU or have a predict"):
        rnnkit.dask.predict(object(), x)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        rnnkit.dask.predict(m, x, batch_size=0)
    with pytest.raises(ValueError, match="threads_per_worker must be an int >= 1 or None"):
        rnnkit.dask.predict(m, x, threads_per_worker=0)
    with pytest.raises(ValueError, match="x has 1 dims"):
        rnnkit.dask.predict(rnnkit.Sequential([Dense(1, input_shape=(2,))]), da.zeros(4))


def test_local_cluster_example_equals_local_predict() -> None:
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "dask_scoring.py"),
            *("--series", "1200", "--chunk", "300", "--batch-size", "100", "--check"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    assert proc.returncode == 0, f"example failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "scored 1200 series of 50 steps" in proc.stdout, proc.stdout[-2000:]
    assert "equal to local model.predict bit for bit: True" in proc.stdout, proc.stdout[-2000:]
