"""``python -m rnnkit.bench`` (``rnnkit-bench``): shapes and model files against the peers.

Tiny shapes and two rounds of sub-millisecond blocks: these tests check what the command
computes and reports (the agreement check, the paired ratios, the JSON, the errors), not speed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit.bench import cli, files
from rnnkit.bench.reference import rel_err

REPO = Path(__file__).resolve().parent.parent
TINY = ["-B", "2", "-T", "5", "-I", "3", "-H", "4", "--repeats", "3", "--min-ms", "0.2"]
LABELS = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "keras": "Keras"}


def installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


HAVE = {
    "torch": installed("torch"),
    "onnxruntime": installed("onnx", "onnxruntime"),
    "keras": installed("tensorflow", "keras"),
}
needs_torch = pytest.mark.skipif(not HAVE["torch"], reason="needs torch")
needs_ort = pytest.mark.skipif(not HAVE["onnxruntime"], reason="needs onnx and onnxruntime")
needs_keras = pytest.mark.skipif(
    not (HAVE["keras"] and installed("h5py")), reason="needs tensorflow, keras and h5py"
)


@pytest.fixture(autouse=True)
def _restore_environ():
    """The command sizes thread pools through os.environ: keep this process's as it was."""
    saved = dict(os.environ)
    threads = rnnkit.get_num_threads()
    yield
    os.environ.clear()
    os.environ.update(saved)
    rnnkit.set_num_threads(threads)


def run_json(argv: list[str], tmp_path: Path) -> tuple[int, dict]:
    out = tmp_path / "r.json"
    status = cli.main([*argv, "--json", str(out)])
    return status, json.loads(out.read_text())


def check_ratios(results: dict) -> None:
    """Every timed row's ratio is the median over rounds of its time / rnnkit's time."""
    rows = [r for r in results["results"] if r["status"] == "ok"]
    for mode in {r["mode"] for r in rows}:
        here = {r["framework"]: r for r in rows if r["mode"] == mode}
        base = np.array(here["rnnkit"]["round_ms"])
        for r in here.values():
            t = np.array(r["round_ms"])
            assert len(t) == results["repeats"]
            assert r["median_ms"] == pytest.approx(np.median(t))
            assert r["ratio"] == pytest.approx(np.median(t / base))
            assert r["ratio_q1"] <= r["ratio"] <= r["ratio_q3"]
        assert here["rnnkit"]["ratio"] == 1.0


def test_table_lists_rnnkit_and_every_installed_peer(tmp_path, capsys):
    status, res = run_json(["--cell", "gru", *TINY], tmp_path)
    out = capsys.readouterr().out
    assert status == 0, out
    assert "| rnnkit | inference |" in out and "1 (base)" in out
    for key, have in HAVE.items():
        if have:
            info = res["frameworks"][key]
            assert info["status"] == "ok" and info["max_rel_err"] <= 1e-4, info
            ratio = next(r["ratio"] for r in res["results"] if r["framework"] == key)
            assert f"| {LABELS[key]} | inference |" in out
            assert f"| {ratio:.2f} |" in out
        else:
            assert f"skipped {key}: not installed" in out
            assert "pip install" in res["skipped"][key]
    assert res["frameworks"]["rnnkit"]["max_rel_err"] <= 1e-4
    assert res["what"]["case"] == {
        "cell": "gru",
        "batch": 2,
        "steps": 5,
        "input_size": 3,
        "hidden_size": 4,
        "layers": 1,
        "bidirectional": False,
        "dtype": "float32",
    }
    check_ratios(res)


def test_subprocess_json_to_stdout_has_the_ratios():
    peers = [k for k in ("torch", "onnxruntime") if HAVE[k]]
    cmd = [sys.executable, "-m", "rnnkit.bench", *TINY, "-L", "2", "--bidirectional"]
    cmd += ["--frameworks", ",".join(["rnnkit", *peers]), "--threads", "1", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)  # the table went to stderr
    assert "| rnnkit | inference |" in proc.stderr
    assert [r["framework"] for r in res["results"]] == ["rnnkit", *peers]
    assert res["what"]["case"]["layers"] == 2 and res["what"]["case"]["bidirectional"]
    # FLOPs: 2 layers x 2 directions of 2·B·T·G·H·(in + H), layer 1 reading D·H = 8
    gflop = 2 * (2 * 2 * 5 * 4 * 4 * (3 + 4)) + 2 * (2 * 2 * 5 * 4 * 4 * (8 + 4))
    assert res["what"]["gflop"]["inference"] == pytest.approx(gflop / 1e9)
    check_ratios(res)


@needs_torch
def test_training_mode_checks_gradients_and_times(tmp_path):
    status, res = run_json([*TINY, "--frameworks", "rnnkit,torch", "--modes", "training"], tmp_path)
    assert status == 0
    checked = res["frameworks"]["rnnkit"]["check"]
    assert "train.dx" in checked and "train.grad.weight_hh_l0" in checked
    assert max(checked.values()) <= 1e-4
    assert {r["mode"] for r in res["results"]} == {"training"}
    check_ratios(res)


@needs_torch
def test_bfloat16_skips_float32_only_peers(tmp_path):
    status, res = run_json([*TINY, "--dtype", "bfloat16", "-H", "16"], tmp_path)
    assert status == 0
    for key in ("onnxruntime", "keras"):
        if HAVE[key]:
            assert "bfloat16 is not supported" in res["skipped"][key]
    # bfloat16 weights against the float32 reference: visibly lossy, within the tolerance
    for key in ("rnnkit", "torch"):
        err = res["frameworks"][key]["max_rel_err"]
        assert 1e-5 < err <= 3e-2, (key, err)
    check_ratios(res)


@pytest.mark.parametrize("peer", ["torch", "onnxruntime"])
def test_a_peer_that_disagrees_fails_loudly_and_is_not_timed(peer, tmp_path, capsys, monkeypatch):
    if not HAVE[peer]:
        pytest.skip(f"needs {peer}")
    from rnnkit.bench.peers import load_peer

    cls = load_peer(peer)
    forward = cls.forward

    def wrong(self, x):
        out = forward(self, x)
        out["y"] = out["y"] * 1.5
        return out

    monkeypatch.setattr(cls, "forward", wrong)
    status, res = run_json([*TINY, "--frameworks", f"rnnkit,{peer}"], tmp_path)
    captured = capsys.readouterr()
    assert status == 1
    pattern = rf"{LABELS[peer]} and the reference disagree: max rel err (\S+)"
    match = re.search(pattern, captured.err)
    assert match, captured.err
    assert float(match.group(1)) == pytest.approx(0.5, rel=1e-3)  # |1.5 y - y| / |y|
    assert "CHECK FAILED" in captured.out
    assert res["frameworks"][peer]["status"] == "check failed"
    assert [r["framework"] for r in res["results"]] == ["rnnkit"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-B", "0"], "expected a positive integer, got 0"),
        (["-H", "x"], "expected a positive integer, got 'x'"),
        (["--cell", "rnn"], "invalid choice: 'rnn'"),
        (["--frameworks", "rnnkit,mxnet"], "unknown framework 'mxnet'"),
        (["--modes", "fit"], "--modes: expected inference and/or training"),
        (["--dtype", "bfloat16", "--modes", "training"], "shapes in float32 only"),
        (["--dim", "batch=8"], "--dim sizes a model file's inputs"),
        (["--dim", "batch"], "expected NAME=N"),
        (["--threads", "0"], "expected a positive integer"),
        (["--min-ms", "-1"], "expected a positive number"),
        (["m.onnx", "-H", "8", "--cell", "gru"], "--cell, --hidden-size: a model file brings"),
        (["m.onnx", "--dtype", "bfloat16"], "--dtype: a model file brings its own shape"),
    ],
)
def test_bad_arguments_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_unusable_model_files_exit_with_the_reason(tmp_path, capsys):
    assert cli.main([str(tmp_path / "missing.onnx")]) == 2
    assert "no such model file" in capsys.readouterr().err
    (tmp_path / "m.pt").write_bytes(b"x")
    assert cli.main([str(tmp_path / "m.pt")]) == 2
    assert "unknown model file type '.pt'" in capsys.readouterr().err


def test_dynamic_sizes_come_from_names_dims_or_an_error():
    dims = {"x:0": 9, "seq": 11}
    assert files.fill_shape("x", ["time", "batch", 3], 2, 5, {}) == (5, 2, 3)
    assert files.fill_shape("x", [None, None, 3], 2, 5, {}) == (2, 5, 3)
    assert files.fill_shape("x", ["N", "seq", 3], 2, 5, dims) == (9, 11, 3)
    with pytest.raises(files.ModelFileError, match=r"--dim unk__1=N or --dim x:1=N"):
        files.fill_shape("x", [2, "unk__1", 3], 2, 5, {})
    with pytest.raises(files.ModelFileError, match=r"unnamed.*--dim h0:0=N"):
        files.fill_shape("h0", [None, 4], 2, 5, {})


@needs_ort
def test_onnx_file_runs_rnnkit_against_onnxruntime(tmp_path):
    import onnxruntime as ort

    from rnnkit.onnx import export

    path = tmp_path / "gru.onnx"
    export(rnnkit.GRU(3, 4, num_layers=2, seed=1), path)  # x: (time, batch, 3), dynamic
    status, res = run_json([str(path), "-B", "2", "--dim", "time=7", "--repeats", "3",
                            "--min-ms", "0.2"], tmp_path)  # fmt: skip
    assert status == 0
    assert res["what"]["inputs"] == {"x": [7, 2, 3]}
    assert set(res["frameworks"]) == {"rnnkit", "onnxruntime"}
    # the agreement the command reports, recomputed here on the same seeded input
    x = files.make_input("x", (7, 2, 3), "float", np.random.default_rng(0), 7)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = rnnkit.onnx.InferenceSession(str(path)).run(None, {"x": x})
    errs = res["frameworks"]["onnxruntime"]["check"]
    assert len(errs) == len(want) == 2  # y and h_n
    for i, (a, b) in enumerate(zip(want, got)):
        assert errs[f"output {i}"] == pytest.approx(rel_err(a, b), abs=1e-12)
        assert errs[f"output {i}"] <= 1e-5
    check_ratios(res)


@needs_ort
def test_onnx_file_whose_runtime_disagrees_fails(tmp_path, monkeypatch, capsys):
    from rnnkit.onnx import export

    path = tmp_path / "lstm.onnx"
    export(rnnkit.LSTM(3, 4, seed=2), path)
    make = files._ort_runner

    def off(*args, **kwargs):
        runner = make(*args, **kwargs)
        right = runner.outputs
        runner.outputs = lambda: [a + 0.25 * np.abs(a).max() for a in right()]
        return runner

    monkeypatch.setattr(files, "_ort_runner", off)
    status = cli.main([str(path), "-B", "2", "-T", "5", "--repeats", "2", "--min-ms", "0.2"])
    err = capsys.readouterr().err
    assert status == 1
    assert re.search(r"ONNX Runtime and rnnkit disagree: max rel err 2\.50\d*e-01", err), err


def small_sequential() -> rnnkit.Sequential:
    from rnnkit.layers import GRU, LSTM, Dense

    model = rnnkit.Sequential([LSTM(5, return_sequences=True, input_shape=(None, 3)), GRU(4),
                               Dense(2)])  # fmt: skip
    model.build((None, None, 3))
    return model


@needs_keras
def test_keras_file_saved_by_rnnkit_runs_against_keras(tmp_path):
    import keras

    path = tmp_path / "m.keras"
    model = small_sequential()
    model.save(path)
    argv = [str(path), "-B", "3", "-T", "6", "--repeats", "2", "--min-ms", "0.2"]
    status, res = run_json([*argv, "--frameworks", "rnnkit,keras"], tmp_path)
    assert status == 0
    assert res["what"]["inputs"] == {"x": [3, 6, 3]}
    x = files.make_input("x", (3, 6, 3), "float", np.random.default_rng(0), 6)
    want = keras.models.load_model(path, compile=False)(x, training=False).numpy()
    err = res["frameworks"]["keras"]["check"]["output 0"]
    assert err == pytest.approx(rel_err(want, model(x)), abs=1e-9)
    assert err <= 1e-4
    check_ratios(res)


@needs_ort
def test_rnnkit_file_runs_against_its_onnx_export(tmp_path):
    path = tmp_path / "m.rnnkit"
    small_sequential().save(path)
    argv = [str(path), "-B", "2", "-T", "4", "--repeats", "2", "--min-ms", "0.2"]
    status, res = run_json([*argv, "--frameworks", "rnnkit,onnxruntime,torch"], tmp_path)
    assert status == 0
    assert res["frameworks"]["onnxruntime"]["max_rel_err"] <= 1e-4
    assert "no PyTorch counterpart" in res["skipped"]["torch"]
    check_ratios(res)


def test_plot(tmp_path, capsys):
    png = tmp_path / "r.png"
    argv = [*TINY, "--frameworks", "rnnkit", "--plot", str(png)]
    if not installed("matplotlib"):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "--plot needs matplotlib" in err and "pip install 'rnnkit[bench]'" in err
        assert not png.exists()  # refused before anything ran
        return
    assert cli.main(argv) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not (REPO / "bench" / "run.py").exists(), reason="needs a source checkout")
def test_bench_run_py_drives_the_package_suite(tmp_path):
    cmd = [sys.executable, str(REPO / "bench" / "run.py"), "--check-only", "--cases"]
    cmd += ["gru_b1_t100_i32_h128", "--frameworks", "rnnkit", "--threads", "1"]
    cmd += ["--wait-quiet", "0", "--wait-budget", "0"]  # a shared test machine is never quiet
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all checks passed" in proc.stdout
    assert re.search(r"\| gru_b1_t100_i32_h128 \| rnnkit \| 1 \| \S+ \| \S+ \| yes \|", proc.stdout)
