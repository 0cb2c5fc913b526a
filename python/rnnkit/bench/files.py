"""Model files for ``python -m rnnkit.bench``: inputs from a model's signature, one runner each.

A ``.onnx`` file runs through ``rnnkit.onnx.InferenceSession`` and ONNX Runtime. A ``.keras``,
``.h5`` or ``.rnnkit`` file loads with ``rnnkit.load_model``; its peers are Keras
(``keras.models.load_model`` of the file itself, or of a ``.keras`` copy that rnnkit writes
for a ``.rnnkit`` file) and ONNX Runtime (on the graph ``rnnkit.onnx.export`` writes). Each
runner gives the outputs for the agreement check and a zero-argument callable to time.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: Named dynamic dimensions read as the batch size (``--batch``) or the time size (``--time``).
BATCH_NAMES = {"b", "n", "batch", "batch_size", "batchsize", "n_batch", "num_batch"}
TIME_NAMES = {"t", "time", "steps", "seq", "seq_len", "seqlen", "sequence", "sequence_length"}

SUFFIXES = (".onnx", ".keras", ".h5", ".hdf5", ".rnnkit")


@dataclass
class Runner:
    """One framework's way of running the model.

    Attributes
    ----------
    key, label : str
        Framework key (as in :data:`rnnkit.bench.peers.PEERS`) and display name.
    outputs : callable
        Returns the model's outputs as a list of float arrays, for the check.
    fn : callable
        The timed call.
    versions : dict of str to str
        Versions of the framework's packages.
    """

    key: str
    label: str
    outputs: Callable[[], list[np.ndarray]]
    fn: Callable[[], Any]
    versions: dict[str, str] = field(default_factory=dict)


class ModelFileError(ValueError):
    """A model file the benchmark cannot run, or whose input sizes it cannot infer."""


def fill_shape(
    name: str, shape: list[Any], batch: int, steps: int, dims: dict[str, int]
) -> tuple[int, ...]:
    """Concrete sizes for one input: fixed sizes kept, dynamic ones from the options.

    A dynamic size is taken from ``dims`` (``--dim NAME=N`` by dimension name, or
    ``--dim INPUT:AXIS=N``), else from ``batch`` / ``steps`` when its name says batch or time
    (:data:`BATCH_NAMES`, :data:`TIME_NAMES`). For an unnamed size (None) of a rank-3
    input, axis 0 is the batch and axis 1 the time (Keras's and rnnkit's batch-major layout).

    Raises
    ------
    ModelFileError
        For a dynamic size none of these rules gives, naming the ``--dim`` to pass.
    """
    out = []
    for axis, d in enumerate(shape):
        if isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0:
            out.append(int(d))
            continue
        by_axis = f"{name}:{axis}"
        if by_axis in dims:
            out.append(dims[by_axis])
        elif isinstance(d, str) and d in dims:
            out.append(dims[d])
        elif isinstance(d, str) and d.lower() in BATCH_NAMES:
            out.append(batch)
        elif isinstance(d, str) and d.lower() in TIME_NAMES:
            out.append(steps)
        elif d is None and len(shape) == 3 and axis < 2:
            out.append(batch if axis == 0 else steps)
        else:
            what = f"named {d!r}" if isinstance(d, str) else "unnamed"
            hint = f"--dim {d}=N or " if isinstance(d, str) else ""
            raise ModelFileError(
                f"input {name!r} axis {axis} of shape {list(shape)} is dynamic ({what}) and its "
                f"size cannot be inferred: pass {hint}--dim {by_axis}=N"
            )
    return tuple(out)


def make_input(
    name: str, shape: tuple[int, ...], kind: str, rng: np.random.Generator, steps: int
) -> np.ndarray:
    """Seeded input of ``shape``: standard normal floats; integers: lengths or token ids.

    ``kind`` is ``"float"``, ``"int64"``/``"int32"`` (an integer input named like lengths
    gets the full length, ``steps`` or the last size; other integers are 0) or ``"ids:V"``
    (token ids uniform in 0..V-1, for an Embedding).
    """
    if kind == "float":
        return rng.standard_normal(shape).astype(np.float32)
    if kind.startswith("ids:"):
        return rng.integers(0, int(kind[4:]), shape).astype(np.int64)
    dtype = np.int32 if kind == "int32" else np.int64
    if "len" in name.lower():
        return np.full(shape, steps, dtype=dtype)
    return np.zeros(shape, dtype=dtype)


def _onnx_kind(type_str: str) -> str:
    kinds = {"tensor(float)": "float", "tensor(int64)": "int64", "tensor(int32)": "int32"}
    if type_str not in kinds:
        raise ModelFileError(f"input type {type_str} is not supported by the benchmark")
    return kinds[type_str]


def _ort_runner(path: str | bytes, feeds: dict[str, np.ndarray], threads: int) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return Runner(
        "onnxruntime",
        "ONNX Runtime",
        lambda: [np.asarray(a) for a in sess.run(names, feeds)],
        lambda: sess.run(names, feeds),
        {"onnxruntime": ort.__version__},
    )


def _keras_runner(path: str, x: np.ndarray, threads: int) -> Runner:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already ran in this process: its pools are fixed
        pass
    model = keras.models.load_model(path, compile=False)
    xt = tf.constant(x)
    fn = tf.function(
        lambda v: model(v, training=False), input_signature=[tf.TensorSpec(xt.shape, xt.dtype)]
    )
    return Runner(
        "keras",
        "Keras",
        lambda: [np.asarray(fn(xt).numpy(), dtype=np.float32)],
        lambda: fn(xt),
        {"keras": keras.__version__, "tensorflow": tf.__version__},
    )


def onnx_runners(
    path: Path,
    frameworks: list[str],
    threads: int,
    batch: int,
    steps: int,
    dims: dict[str, int],
    skip: Callable[[str, str], None],
) -> tuple[dict[str, tuple[int, ...]], list[Runner]]:
    """Runners for an ONNX file: rnnkit's InferenceSession, then ONNX Runtime.

    Returns
    -------
    inputs : dict of str to tuple
        The concrete shape of every graph input.
    runners : list of Runner
    """
    import rnnkit
    from rnnkit.onnx import InferenceSession

    sess = InferenceSession(str(path))
    rng = np.random.default_rng(0)
    feeds = {}
    for arg in sess.get_inputs():
        shape = fill_shape(arg.name, arg.shape, batch, steps, dims)
        feeds[arg.name] = make_input(arg.name, shape, _onnx_kind(arg.type), rng, steps)
    names = [o.name for o in sess.get_outputs()]
    runners = []
    if "rnnkit" in frameworks:
        runners.append(
            Runner(
                "rnnkit",
                "rnnkit",
                lambda: [np.asarray(a) for a in sess.run(names, feeds)],
                lambda: sess.run(names, feeds),
                {"rnnkit": rnnkit.__version__},
            )
        )
    if "onnxruntime" in frameworks:
        runners.append(_ort_runner(str(path), feeds, threads))
    if "keras" in frameworks:
        skip("keras", "an ONNX file has no Keras model")
    if "torch" in frameworks:
        skip("torch", "an ONNX file has no PyTorch model")
    return {k: v.shape for k, v in feeds.items()}, runners


def sequential_runners(
    path: Path,
    frameworks: list[str],
    threads: int,
    batch: int,
    steps: int,
    dims: dict[str, int],
    skip: Callable[[str, str], None],
    tmpdir: str,
) -> tuple[dict[str, tuple[int, ...]], list[Runner]]:
    """Runners for a ``.keras``/``.h5``/``.rnnkit`` file: rnnkit, Keras, ONNX Runtime.

    The input shape is the model's (``model.input_shape``, batch first) with the batch, and
    the time size when it is dynamic, from ``batch``/``steps``. A model starting with an
    Embedding gets token ids in its vocabulary.
    """
    import rnnkit

    model = rnnkit.load_model(path, compile=False)
    if not model.built:
        raise ModelFileError(f"{path} holds a model that is not built: it has no input shape")
    shape = fill_shape("x", list(model.input_shape), batch, steps, dims)
    first = model.layers[0]
    kind = f"ids:{first.input_dim}" if type(first).__name__ == "Embedding" else "float"
    x = make_input("x", shape, kind, np.random.default_rng(0), steps)
    runners = []
    if "rnnkit" in frameworks:
        runners.append(
            Runner(
                "rnnkit",
                "rnnkit",
                lambda: [np.asarray(model(x))],
                lambda: model(x),
                {"rnnkit": rnnkit.__version__},
            )
        )
    if "keras" in frameworks:
        keras_path = str(path)
        if path.suffix == ".rnnkit":
            keras_path = str(Path(tmpdir) / (path.stem + ".keras"))
            try:
                model.save(keras_path)
            except (ImportError, ValueError) as exc:
                skip("keras", f"rnnkit could not write the model as a .keras file ({exc})")
                keras_path = ""
        if keras_path:
            runners.append(_keras_runner(keras_path, x, threads))
    if "onnxruntime" in frameworks:
        try:
            from rnnkit.onnx import export

            proto = export(model)
        except (ImportError, ValueError) as exc:
            skip("onnxruntime", f"rnnkit.onnx.export could not write the model ({exc})")
        else:
            runners.append(_ort_runner(proto.SerializeToString(), {"x": x}, threads))
    if "torch" in frameworks:
        skip("torch", "a Keras-shaped model has no PyTorch counterpart")
    return {"x": x.shape}, runners


def model_runners(
    path: Path,
    frameworks: list[str],
    threads: int,
    batch: int,
    steps: int,
    dims: dict[str, int],
    skip: Callable[[str, str], None],
    tmpdir: str | None = None,
) -> tuple[dict[str, tuple[int, ...]], list[Runner]]:
    """Runners for the model file at ``path``, by its suffix (see the module docstring).

    ``frameworks`` lists the installed frameworks to run; ``skip(key, reason)`` is told about
    the ones that cannot run this file.

    Raises
    ------
    ModelFileError
        For a missing file, an unknown suffix, or input sizes that cannot be inferred.
    """
    if not path.is_file():
        raise ModelFileError(f"no such model file: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ModelFileError(
            f"{path}: unknown model file type {suffix!r}; expected one of {', '.join(SUFFIXES)}"
        )
    if suffix == ".onnx":
        return onnx_runners(path, frameworks, threads, batch, steps, dims, skip)
    with tempfile.TemporaryDirectory(prefix="rnnkit-bench-") as tmp:
        return sequential_runners(
            path, frameworks, threads, batch, steps, dims, skip, tmpdir or tmp
        )
