"""Time ``fit`` of real training programs in rnnkit, Keras (TensorFlow) and PyTorch.

Programs (``--program``):

- ``sine``: the sine forecaster (windows of 10, LSTM(50, return_sequences=True) ->
  LSTM(50) -> Dense(1), Adam, mean squared error, 20 epochs at batch size 32 with shuffling).
  Every run must reach a training MSE below 2e-3.
- ``chars``: Keras's character-level text generation example on
  ``examples/data/the_keeper.txt``: one-hot windows of 40 characters (every character) ->
  the next one, LSTM(128) -> Dense(vocabulary, softmax), RMSprop(0.01), categorical
  cross-entropy, batch size 128. Every run must bring the training loss below 2.0 nats.

PyTorch runs the same models as hand-written loops (nn.LSTM, nn.Linear, the same optimizer
with Keras's epsilon). Each framework runs in its own process with its thread pools sized
before import; each repeat builds a fresh model and times the whole ``fit`` (for Keras this
includes tracing its train step, which every Keras user pays). Runs of unequal quality are
refused, so the speeds compare runs of equal accuracy.

rnnkit runs twice: with the environment a user has (``rnnkit``: numpy's BLAS free to start
its threads), and with BLAS pinned to one thread (``rnnkit-blas1``, OPENBLAS_NUM_THREADS=1):
the defaults must never be slower. The peers get their thread counts set as their docs say.

    python bench/bench_fit.py                       # sine, all installed frameworks, all cores
    python bench/bench_fit.py --program chars --threads 1 --repeats 5
    python bench/bench_fit.py --frameworks rnnkit,torch

Prints a markdown table with the ratio of each framework's time to rnnkit's (targets:
Keras >= 2x slower, PyTorch >= 1.3x) and writes it, with the raw numbers, to
``bench/results/fit-<program>-<cpu>.md`` / ``.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent

FRAMEWORKS = ("rnnkit", "rnnkit-blas1", "keras", "torch")
MSE_LIMIT = 2e-3
TIME_STEP, UNITS, BATCH = 10, 50, 32
CHARS_WINDOW, CHARS_UNITS, CHARS_BATCH, CHARS_LR, CHARS_LOSS_LIMIT = 40, 128, 128, 0.01, 2.0


def seed_002_data() -> tuple[np.ndarray, np.ndarray]:
    """Seed 002's dataset: 989 windows of 10 sine values and the value after each."""
    data = np.sin(np.linspace(0, 100, 1000))
    idx = np.arange(len(data) - TIME_STEP - 1)
    x = np.stack([data[i : i + TIME_STEP] for i in idx])[:, :, None]
    return x, data[idx + TIME_STEP]


def chars_data() -> tuple[np.ndarray, np.ndarray]:
    """One-hot windows of 40 characters of the_keeper.txt (N, 40, V) and the next (N, V)."""
    text = (REPO / "examples" / "data" / "the_keeper.txt").read_text(encoding="utf-8")
    text = " ".join(text.lower().split())
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text])
    starts = np.arange(len(ids) - CHARS_WINDOW)
    eye = np.eye(len(chars), dtype=np.float32)
    x = eye[np.stack([ids[s : s + CHARS_WINDOW] for s in starts])]
    return x, eye[ids[starts + CHARS_WINDOW]]


# ----------------------------------------------------------------------- workers
def run_rnnkit(x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> dict[str, Any]:
    import rnnkit
    from rnnkit.callbacks import Callback
    from rnnkit.layers import LSTM, Dense
    from rnnkit.models import Sequential

    rnnkit.utils.set_random_seed(seed)
    model = Sequential(
        [LSTM(UNITS, return_sequences=True, input_shape=(TIME_STEP, 1)), LSTM(UNITS), Dense(1)]
    )
    model.compile(optimizer="adam", loss="mean_squared_error")
    epoch_times = _EpochTimer(Callback)
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=[epoch_times])
    fit_s = time.perf_counter() - start
    mse = float(np.mean((model.predict(x, verbose=0)[:, 0] - y) ** 2))
    return {"fit_s": fit_s, "epoch_s": epoch_times.times, "mse": mse, "version": rnnkit.__version__}


def run_keras(x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> dict[str, Any]:
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((TIME_STEP, 1)),
            keras.layers.LSTM(UNITS, return_sequences=True),
            keras.layers.LSTM(UNITS),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mean_squared_error")
    epoch_times = _EpochTimer(keras.callbacks.Callback)
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=[epoch_times])
    fit_s = time.perf_counter() - start
    mse = float(np.mean((model.predict(x, verbose=0)[:, 0] - y) ** 2))
    import tensorflow as tf

    return {
        "fit_s": fit_s,
        "epoch_s": epoch_times.times,
        "mse": mse,
        "version": f"keras {keras.__version__}, tensorflow {tf.__version__}",
    }


def run_torch(x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> dict[str, Any]:
    import torch

    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm1 = torch.nn.LSTM(1, UNITS, batch_first=True)
            self.lstm2 = torch.nn.LSTM(UNITS, UNITS, batch_first=True)
            self.dense = torch.nn.Linear(UNITS, 1)

        def forward(self, inp: torch.Tensor) -> torch.Tensor:
            seq, _ = self.lstm1(inp)
            _, (h, _) = self.lstm2(seq)
            return self.dense(h[-1])

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    xt = torch.from_numpy(x.astype(np.float32))
    yt = torch.from_numpy(y.astype(np.float32))[:, None]
    n = len(xt)
    epoch_times = []
    start = time.perf_counter()
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n)
        for lo in range(0, n, BATCH):
            idx = order[lo : lo + BATCH]
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        epoch_times.append(time.perf_counter() - t0)
    fit_s = time.perf_counter() - start
    with torch.no_grad():
        mse = float(torch.mean((net(xt) - yt) ** 2))
    return {"fit_s": fit_s, "epoch_s": epoch_times, "mse": mse, "version": torch.__version__}


def chars_rnnkit(x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> dict[str, Any]:
    import rnnkit
    from rnnkit.callbacks import Callback
    from rnnkit.layers import LSTM, Dense
    from rnnkit.models import Sequential
    from rnnkit.optimizers import RMSprop

    rnnkit.utils.set_random_seed(seed)
    model = Sequential(
        [LSTM(CHARS_UNITS, input_shape=x.shape[1:]), Dense(y.shape[1], activation="softmax")]
    )
    model.compile(optimizer=RMSprop(learning_rate=CHARS_LR), loss="categorical_crossentropy")
    epoch_times = _EpochTimer(Callback)
    start = time.perf_counter()
    hist = model.fit(
        x, y, epochs=epochs, batch_size=CHARS_BATCH, verbose=0, callbacks=[epoch_times]
    )
    fit_s = time.perf_counter() - start
    return {
        "fit_s": fit_s,
        "epoch_s": epoch_times.times,
        "quality": hist.history["loss"][-1],
        "version": rnnkit.__version__,
    }


def chars_keras(x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(x.shape[1:]),
            keras.layers.LSTM(CHARS_UNITS),
            keras.layers.Dense(y.shape[1], activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=CHARS_LR),
        loss="categorical_crossentropy",
    )
    epoch_times = _EpochTimer(keras.callbacks.Callback)
    start = time.perf_counter()
    hist = model.fit(
        x, y, epochs=epochs, batch_size=CHARS_BATCH, verbose=0, callbacks=[epoch_times]
    )
    fit_s = time.perf_counter() - start
    return {
        "fit_s": fit_s,
        "epoch_s": epoch_times.times,
        "quality": hist.history["loss"][-1],
        "version": f"keras {keras.__version__}, tensorflow {tf.__version__}",
    }


def chars_torch(x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> dict[str, Any]:
    import torch

    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(x.shape[2], CHARS_UNITS, batch_first=True)
    dense = torch.nn.Linear(CHARS_UNITS, y.shape[1])
    params = [*lstm.parameters(), *dense.parameters()]
    # Keras's RMSprop: rho 0.9, epsilon 1e-7 (inside the root, as torch's is outside: close)
    opt = torch.optim.RMSprop(params, lr=CHARS_LR, alpha=0.9, eps=1e-7)
    xt = torch.from_numpy(x)
    labels = torch.from_numpy(y.argmax(axis=1))
    n = len(xt)
    epoch_times, losses = [], []
    start = time.perf_counter()
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n)
        total = 0.0
        for lo in range(0, n, CHARS_BATCH):
            idx = order[lo : lo + CHARS_BATCH]
            opt.zero_grad()
            _, (h, _) = lstm(xt[idx])
            loss = torch.nn.functional.cross_entropy(dense(h[-1]), labels[idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        losses.append(total / n)
        epoch_times.append(time.perf_counter() - t0)
    fit_s = time.perf_counter() - start
    return {
        "fit_s": fit_s,
        "epoch_s": epoch_times,
        "quality": losses[-1],
        "version": torch.__version__,
    }


class _EpochTimer:
    """A Keras-or-rnnkit callback (built on the given base class) timing each epoch."""

    def __new__(cls, base: type) -> Any:
        class Timer(base):  # type: ignore[misc, valid-type]
            def __init__(self) -> None:
                super().__init__()
                self.times: list[float] = []

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self._t0 = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                self.times.append(time.perf_counter() - self._t0)

        return Timer()


# program: (data, {framework: runner}, quality limit, what the quality is, default epochs)
PROGRAMS: dict[str, tuple[Any, dict[str, Any], float, str, int]] = {
    "sine": (
        seed_002_data,
        {"rnnkit": run_rnnkit, "keras": run_keras, "torch": run_torch},
        MSE_LIMIT,
        "train MSE",
        20,
    ),
    "chars": (
        chars_data,
        {"rnnkit": chars_rnnkit, "keras": chars_keras, "torch": chars_torch},
        CHARS_LOSS_LIMIT,
        "train loss",
        5,
    ),
}


def worker(program: str, framework: str, threads: int, epochs: int, repeats: int) -> dict[str, Any]:
    data, runners, limit, quality, _ = PROGRAMS[program]
    framework_label, framework = framework, framework.split("-")[0]
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
    elif framework == "keras":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    elif framework == "rnnkit":
        import rnnkit

        rnnkit.set_num_threads(threads)
    from rnnkit.bench.machine import other_load

    x, y = data()
    runs = []
    for r in range(repeats):
        result = runners[framework](x, y, epochs, seed=r)
        result.setdefault("quality", result.get("mse"))
        if not result["quality"] < limit:
            raise SystemExit(
                f"{framework} repeat {r}: {quality} {result['quality']:.3e} is not "
                f"below {limit:g}; refusing to time an unequal run"
            )
        runs.append(result)
    return {
        "framework": framework_label,
        "version": runs[0]["version"],
        "threads": threads,
        "fit_s": [r["fit_s"] for r in runs],
        "steady_epoch_s": [statistics.median(r["epoch_s"][1:] or r["epoch_s"]) for r in runs],
        "first_epoch_s": [r["epoch_s"][0] for r in runs],
        "quality": [r["quality"] for r in runs],
        "other_load": other_load(0.5),
    }


# ------------------------------------------------------------------------ driver
def _env(framework: str, threads: int) -> dict[str, str]:
    """The worker's environment: thread counts set as each framework's docs say; for plain
    ``rnnkit`` nothing but its own (numpy's BLAS left as a user has it), for
    ``rnnkit-blas1`` BLAS pinned to one thread."""
    env = dict(os.environ)
    blas = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    if framework == "rnnkit":
        for var in blas:
            env.pop(var, None)
    for var in (*blas, "RNNKIT_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        if framework != "rnnkit" or var == "RNNKIT_NUM_THREADS":
            env[var] = "1" if framework == "rnnkit-blas1" and var in blas else str(threads)
    env["TF_NUM_INTEROP_THREADS"] = str(threads)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def _available(framework: str) -> bool:
    module = {"rnnkit": "rnnkit", "keras": "keras", "torch": "torch"}[framework.split("-")[0]]
    if importlib.util.find_spec(module) is None:
        return False
    return framework != "keras" or importlib.util.find_spec("tensorflow") is not None


def table(program: str, results: list[dict[str, Any]], epochs: int, steps: int) -> str:
    base = next((r for r in results if r["framework"] == "rnnkit"), None)
    base_fit = statistics.median(base["fit_s"]) if base else None
    base_epoch = statistics.median(base["steady_epoch_s"]) if base else None
    quality = PROGRAMS[program][3]
    what = {
        "sine": f"Sine forecaster fit: {epochs} epochs x {steps} steps (batch {BATCH}), "
        f"LSTM({UNITS}, return_sequences) -> LSTM({UNITS}) -> Dense(1), Adam, MSE.",
        "chars": f"Character generator fit: {epochs} epochs x {steps} steps (batch "
        f"{CHARS_BATCH}), one-hot windows of {CHARS_WINDOW} -> LSTM({CHARS_UNITS}) -> "
        "Dense(softmax), RMSprop, categorical cross-entropy.",
    }[program]
    lines = [
        what,
        "",
        "| framework | threads | fit (s, median) | ms/step | steady epoch (s) | "
        f"{quality} | fit time / rnnkit's | steady epoch / rnnkit's |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        fit = statistics.median(r["fit_s"])
        epoch = statistics.median(r["steady_epoch_s"])
        ratio = f"{fit / base_fit:.2f}x" if base_fit else "-"
        eratio = f"{epoch / base_epoch:.2f}x" if base_epoch else "-"
        lines.append(
            f"| {r['framework']} ({r['version']}) | {r['threads']} | {fit:.2f} | "
            f"{fit / (epochs * steps) * 1e3:.2f} | {epoch:.3f} | {max(r['quality']):.3g} | "
            f"{ratio} | {eratio} |"
        )
    loads = [r["other_load"] for r in results if r.get("other_load") is not None]
    if loads and max(loads) > 0.2:
        lines += [
            "",
            f"Note: other processes kept up to {max(loads):.2f} cores busy; the "
            "timings are disturbed.",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--program", choices=sorted(PROGRAMS), default="sine")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--epochs", type=int, default=None, help="default: the program's")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="seconds to wait for other processes to go idle before each worker",
    )
    ap.add_argument("--out", default=None, help="markdown output path (.json beside it)")
    ap.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.epochs is None:
        args.epochs = PROGRAMS[args.program][4]
    if args.worker:
        result = worker(args.program, args.worker, args.threads, args.epochs, args.repeats)
        print(json.dumps(result))
        return

    from rnnkit.bench.machine import cpu_info, machine_description, slugify, wait_quiet

    requested = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = set(requested) - set(FRAMEWORKS)
    if unknown:
        raise SystemExit(f"unknown frameworks {sorted(unknown)}; choose from {FRAMEWORKS}")
    results = []
    for fw in requested:
        if not _available(fw):
            print(f"{fw}: not installed, skipped", file=sys.stderr)
            continue
        wait_quiet(args.wait_quiet)
        print(
            f"{fw}: {args.repeats} x fit({args.epochs} epochs) on {args.threads} thread(s)...",
            file=sys.stderr,
            flush=True,
        )
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                fw,
                "--program",
                args.program,
                "--threads",
                str(args.threads),
                "--epochs",
                str(args.epochs),
                "--repeats",
                str(args.repeats),
            ],
            env=_env(fw, args.threads),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{fw} worker failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    batch = BATCH if args.program == "sine" else CHARS_BATCH
    steps = -(-len(PROGRAMS[args.program][0]()[0]) // batch)
    cpu = cpu_info()
    text = table(args.program, results, args.epochs, steps)
    facts = machine_description(cpu)
    header = "# fit benchmark\n\n" + "".join(f"- {k}: {v}\n" for k, v in facts.items()) + "\n"
    print(text)
    out = (
        Path(args.out)
        if args.out
        else (
            REPO
            / "bench"
            / "results"
            / f"fit-{args.program}-{slugify(str(cpu.get('model', 'cpu')))}.md"
        )
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        header + text + "\n\nCommand: `python bench/bench_fit.py " + " ".join(sys.argv[1:]) + "`\n"
    )
    out.with_suffix(".json").write_text(json.dumps({"cpu": cpu, "results": results}, indent=1))
    print(f"\nwrote {out} and {out.with_suffix('.json').name}", file=sys.stderr)


if __name__ == "__main__":
    main()
