"""What ``fit`` does with bad numbers in its inputs (a ValueError naming the array and index,
nothing trained), what a stopped ``fit`` returns, and its output on consoles that are not
UTF-8 or that redraw (a Jupyter kernel)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from rnnkit import callbacks, layers
from rnnkit._training import progbar
from rnnkit.models import NonFiniteLossWarning, Sequential


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5, 2)).astype(np.float32)
    return x, x[:, -1, :1] * 0.5


def _model(built=True):
    first = layers.LSTM(3, input_shape=(5, 2)) if built else layers.LSTM(3)
    model = Sequential([first, layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


# ----------------------------------------------------------- non-finite inputs
BAD = {
    "x nan": ("x", lambda x, y, xv, yv: x.__setitem__((7, 2, 1), np.nan), r"\(7, 2, 1\)", "nan"),
    "x inf": ("x", lambda x, y, xv, yv: x.__setitem__((0, 0, 0), np.inf), r"\(0, 0, 0\)", "inf"),
    "y -inf": ("y", lambda x, y, xv, yv: y.__setitem__((13, 0), -np.inf), r"\(13, 0\)", "-inf"),
    "validation x": (
        r"validation_data\[0\]",
        lambda x, y, xv, yv: xv.__setitem__((3, 4, 0), np.nan),
        r"\(3, 4, 0\)",
        "nan",
    ),
    "validation y": (
        r"validation_data\[1\]",
        lambda x, y, xv, yv: yv.__setitem__((5, 0), np.nan),
        r"\(5, 0\)",
        "nan",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("built", [True, False], ids=["built", "unbuilt"])
def test_non_finite_inputs_are_bad_input_and_change_nothing(case, built):
    argument, spoil, index, value = BAD[case]
    x, y = _data()
    xv, yv = _data(12, seed=1)
    spoil(x, y, xv, yv)
    model = _model(built)
    before = model.get_weights() if built else None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divergence warning, no numpy warning
        with pytest.raises(ValueError) as info:
            model.fit(x, y, validation_data=(xv, yv), epochs=2, batch_size=8, verbose=0)
    message = str(info.value)
    assert re.search(rf"\[Sequential\.fit\] {argument} holds {value} at index {index}", message), (
        message
    )
    assert "not valid training data" in message and "nothing was trained" in message
    assert model.optimizer.iterations == 0 and model.history is None
    if built:
        for a, b in zip(model.get_weights(), before):
            np.testing.assert_array_equal(a, b)
    else:
        assert not model.built


def test_non_finite_inputs_through_validation_split_and_train_on_batch():
    x, y = _data()
    x[38, 1, 1] = np.nan  # lands in the validation part of validation_split=0.25
    model = _model()
    with pytest.raises(ValueError, match=r"x holds nan at index \(38, 1, 1\) \(1 non-finite"):
        model.fit(x, y, validation_split=0.25, verbose=0)
    y2 = y.copy()
    y2[[2, 9]] = np.inf
    with pytest.raises(ValueError, match=r"train_on_batch\] y holds inf at index \(2, 0\) \(2 non"):
        model.train_on_batch(x[:10] * 0, y2[:10])
    assert model.optimizer.iterations == 0


# ------------------------------------------------------------ stopped fits
def test_a_fit_stopped_by_a_callback_returns_what_it_recorded():
    x, y = _data()
    model = _model()

    def stop(epoch, logs):
        if epoch == 1:
            model.stop_training = True

    history = model.fit(
        x, y, epochs=10, verbose=0, callbacks=[callbacks.LambdaCallback(on_epoch_end=stop)]
    )
    assert history.epoch == [0, 1] and len(history.history["loss"]) == 2
    assert model.history is history


def test_a_fit_stopped_by_divergence_returns_the_epochs_before_it():
    x, y = _data()
    x, y = x.astype(np.float64), y.astype(np.float64)
    model = Sequential(
        [layers.Flatten(input_shape=(5, 2), dtype="float64"), layers.Dense(1, dtype="float64")]
    )
    model.compile(optimizer="sgd", loss="mse")

    def blow_up(epoch, logs):  # the weights diverge at the start of the third epoch
        if epoch == 2:
            model.set_weights([w * 1e200 + 1e200 for w in model.get_weights()])

    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.warns(NonFiniteLossWarning, match=r"at epoch 3, batch 1"):
            history = model.fit(
                x,
                y,
                epochs=6,
                verbose=0,
                callbacks=[
                    callbacks.LambdaCallback(on_epoch_begin=blow_up),
                    callbacks.TerminateOnNaN(),
                ],
            )
    assert history.epoch == [0, 1] and len(history.history["loss"]) == 2
    assert all(np.isfinite(history.history["loss"]))


# -------------------------------------------------------------- encodings
def _run_all_output(stream) -> str:
    """fit (verbose 1 and 2, with a callback that prints), evaluate, predict and summary with
    ``sys.stdout`` replaced by ``stream``; returns what reached the stream."""
    x, y = _data()
    model = _model()
    model.layers[0].name = "lstm_é"  # a name the console cannot show either
    saved = sys.stdout
    sys.stdout = stream
    try:
        model.summary()
        model.fit(x, y, epochs=2, batch_size=8, verbose=1, validation_split=0.2)
        model.fit(
            x,
            y,
            epochs=3,
            verbose=2,
            callbacks=[callbacks.EarlyStopping("loss", patience=0, verbose=1, min_delta=10)],
        )
        model.evaluate(x, y, verbose=1)
        model.predict(x, verbose=1)
        stream.flush()
    finally:
        sys.stdout = saved
    return stream.buffer.getvalue().decode(stream.encoding)


@pytest.mark.parametrize("encoding", ["ascii", "cp1252", "latin-1"])
def test_output_on_a_console_that_is_not_utf8_falls_back_to_ascii(encoding):
    stream = io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors="strict", newline="\n")
    text = _run_all_output(stream)
    assert "Total params:" in text and "Epoch 2/2" in text and "Epoch 2/3" in text
    assert re.search(r"^\| Layer \(type\) +\| Output Shape +\| +Param # \|$", text, re.M), text
    assert re.search(r"^\+=+\+=+\+=+\+$", text, re.M), text
    assert "| lstm_? (LSTM)" in text or "| lstm_\xe9 (LSTM)" in text
    assert re.search(r"^4/4 ==================== \S+ \S+/step - loss: ", text, re.M), text
    assert "early stopping" in text


def test_output_on_utf8_keeps_the_box_characters():
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", newline="\n")
    text = _run_all_output(stream)
    assert "┏━" in text and "│ lstm_é (LSTM)" in text
    assert re.search(r"^4/4 ━{20} ", text, re.M), text


def test_a_subprocess_with_an_ascii_pipe_runs_a_seed_program():
    code = textwrap.dedent(
        """
        import numpy as np
        import rnnkit as tf
        x = np.random.default_rng(0).standard_normal((32, 6, 1)).astype("float32")
        model = tf.keras.Sequential([tf.keras.layers.LSTM(4, input_shape=(6, 1)),
                                     tf.keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        model.summary()
        model.fit(x, x[:, -1], epochs=2, batch_size=8)
        model.predict(x)
        print("done")
        """
    )
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=env, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    text = out.stdout.decode("ascii")  # every byte is ASCII
    assert text.rstrip().endswith("done") and "+====" in text and "4/4 ====" in text


# --------------------------------------------------------- dynamic display
class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_dynamic_display_decision(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.delenv("PYCHARM_HOSTED", raising=False)
    assert progbar.dynamic_display(_Tty())
    assert not progbar.dynamic_display(io.StringIO())  # a pipe or a file
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stdout", pipe)
    assert not progbar.dynamic_display(sys.stdout)
    monkeypatch.setitem(sys.modules, "ipykernel", type(sys)("ipykernel"))
    assert progbar.dynamic_display(sys.stdout)  # Jupyter: stdout is not a tty, yet redraws
    assert not progbar.dynamic_display(io.StringIO())  # only the kernel's stdout does
    monkeypatch.delitem(sys.modules, "ipykernel")
    monkeypatch.setenv("PYCHARM_HOSTED", "1")
    assert progbar.dynamic_display(sys.stdout)
    closed = io.StringIO()
    closed.close()
    assert not progbar.dynamic_display(closed)


def test_progress_redraws_during_the_epoch_in_a_jupyter_kernel(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipykernel", type(sys)("ipykernel"))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    seen: list[str] = []
    x, y = _data(80)
    model = _model()
    model.fit(
        x,
        y,
        epochs=1,
        batch_size=8,
        callbacks=[
            callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(out.getvalue()))
        ],
    )
    assert re.search(r"\r 1/10 \S*━", seen[1]), repr(seen[1])  # drawn while batch 2 ends
    assert "10/10" not in seen[-1]
    final = out.getvalue()
    assert re.search(r"\r10/10 \S*━.* - loss: \d", final) and final.endswith("\n"), repr(final)


def test_progress_in_a_plain_pipe_prints_one_line_per_epoch(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.delenv("PYCHARM_HOSTED", raising=False)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    x, y = _data(80)
    _model().fit(x, y, epochs=2, batch_size=8)
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert re.findall(r"^10/10 ━{20} ", text, re.M) == ["10/10 ━━━━━━━━━━━━━━━━━━━━ "] * 2, text


def test_progbar_with_a_fake_tty_redraws_with_interval_zero():
    tty = _Tty()
    bar = progbar.Progbar(4, stream=tty, interval=0.0)
    for step in range(1, 4):
        bar.update(step, {"loss": 0.5})
        assert tty.getvalue().count("\r") == step
        assert f"{step}/4" in tty.getvalue().rsplit("\r", 1)[1]
    bar.update(4, {"loss": 0.25}, finalize=True)
    assert tty.getvalue().endswith("\n") and "loss: 0.2500" in tty.getvalue()
