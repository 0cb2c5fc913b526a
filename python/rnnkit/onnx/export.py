"""``rnnkit.onnx.export``: rnnkit modules and Keras-shaped models as ONNX graphs.

A ``rnnkit.LSTM``/``GRU``/``RNN`` becomes one ONNX LSTM/GRU/RNN node per layer, chained:
weights reordered to ONNX's gate order, ``Y (T, D, B, H)`` reshaped to ``(T, B, D·H)``
between layers, the final states concatenated to ``(L·D, B, H)``. ``batch_first`` adds a
Transpose at each end; ``lengths`` becomes a ``sequence_lens`` input; activations go into
the node's ``activations``/``activation_alpha``/``activation_beta`` (rnnkit's ``linear`` is
``Affine(1, 0)``, its Keras ``hard_sigmoid`` is ``HardSigmoid(1/6, 1/2)``); peepholes are
``P``; clip, input_forget and reverse are the node's attributes.

A ``Sequential`` model of Embedding (Gather), Dense (MatMul, Add, activation), Dropout
(nothing at inference), Flatten, RepeatVector, LSTM, GRU and Bidirectional (merge modes
concat, sum, mul, ave) layers becomes the same chain; Keras's ``go_backwards`` reverses
the time axis with a Slice of step -1 before the node (its output stays reversed, as in
Keras).

Batch and time axes are dynamic (named ``batch`` and ``time``) unless sizes are given.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from .graph import import_onnx

_ONNX_OPSETS = (14, 22)  # LSTM-14 (layout) is the oldest form written
_GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN": (0,)}  # rnnkit blocks in ONNX order
_ONNX_NAMES = {
    "tanh": "Tanh",
    "relu": "Relu",
    "sigmoid": "Sigmoid",
    "affine": "Affine",
    "leaky_relu": "LeakyRelu",
    "thresholded_relu": "ThresholdedRelu",
    "scaled_tanh": "ScaledTanh",
    "hard_sigmoid": "HardSigmoid",
    "elu": "Elu",
    "softsign": "Softsign",
    "softplus": "Softplus",
}
#: rnnkit's defaults for the activations that take alpha (and beta)
_PARAM_DEFAULTS: dict[str, tuple[float, ...]] = {
    "affine": (1.0, 0.0),
    "linear": (1.0, 0.0),
    "leaky_relu": (0.01,),
    "thresholded_relu": (1.0,),
    "scaled_tanh": (1.0, 1.0),
    "hard_sigmoid": (1.0 / 6.0, 0.5),
    "elu": (1.0,),
}


def onnx_activation(spec: Any) -> tuple[str, list[float], list[float]]:
    """An rnnkit activation spec as (ONNX name, alphas, betas) for a recurrent node."""
    if isinstance(spec, (tuple, list)):
        name, params = str(spec[0]), [float(p) for p in spec[1:]]
    else:
        name, params = str(spec), []
    defaults = _PARAM_DEFAULTS.get(name, ())
    # as many parameters as the function takes: rnnkit's normal form pads one-parameter
    # functions with a beta of 0.0, which ONNX would read as the next function's
    params = (params + list(defaults[len(params) :]))[: len(defaults)]
    if name == "linear":
        name = "affine"
    if name not in _ONNX_NAMES:
        raise ValueError(f"[rnnkit.onnx.export] activation {spec!r} has no ONNX equivalent")
    alphas = params[:1]
    betas = params[1:2]
    return _ONNX_NAMES[name], alphas, betas


class _Builder:
    """Nodes and initializers of one graph, with unique names."""

    def __init__(self, opset: int, dtype: np.dtype) -> None:
        self.onnx = import_onnx()
        self.opset = opset
        self.dtype = np.dtype(dtype)
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.count = 0

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, value: Any, base: str = "c", dtype: Any = None) -> str:
        arr = np.asarray(value, dtype=dtype if dtype is not None else None)
        name = self.name(base)
        self.inits.append(self.onnx.numpy_helper.from_array(np.array(arr, order="C"), name))
        return name

    def ints(self, values: list[int]) -> str:
        return self.const(np.array(values, dtype=np.int64), "ints")

    def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> list[str]:
        outs = [self.name(op.lower()) for _ in range(n_out)]
        self.nodes.append(self.onnx.helper.make_node(op, inputs, outs, name=self.name(op), **attrs))
        return outs

    def one(self, op: str, inputs: list[str], **attrs: Any) -> str:
        return self.node(op, inputs, 1, **attrs)[0]

    def rename(self, value: str, name: str) -> None:
        """Make the node that produces ``value`` produce ``name`` instead (graph outputs)."""
        for n in self.nodes:
            for k, o in enumerate(n.output):
                if o == value:
                    n.output[k] = name
            for k, i in enumerate(n.input):
                if i == value:
                    n.input[k] = name


# --------------------------------------------------------------------------- recurrent


def _cell(module: Any) -> str:
    return str(getattr(module, "_cell", type(module).__name__))


def _activation_list(module: Any, directions: int) -> tuple[list[str], list[float], list[float]]:
    cell = _cell(module)
    if cell == "LSTM":
        act = getattr(module, "activation", "tanh")
        cell_act = getattr(module, "cell_activation", None) or act
        specs = [getattr(module, "recurrent_activation", "sigmoid"), act, cell_act]
    elif cell == "GRU":
        specs = [getattr(module, "recurrent_activation", "sigmoid"), module.activation]
    else:
        act = getattr(module, "activation", None) or getattr(module, "nonlinearity", "tanh")
        specs = [act]
    names, alphas, betas = [], [], []
    for spec in specs * directions:
        n, a, b = onnx_activation(spec)
        names.append(n)
        alphas += a
        betas += b
    return names, alphas, betas


def _recurrent_layers(
    b: _Builder,
    module: Any,
    x: str,
    seq_lens: str | None,
    h0: str | None,
    c0: str | None,
) -> tuple[str, str, str | None]:
    """Chain one node per layer on time-major ``x (T, B, I)``.

    Returns y (T, B, D·Hout), h_n (L·D, B, Hout) and c_n (LSTM) value names.

    An LSTM with ``proj_size`` P (h = W_hr m, m = o * tanh(c)) has no ONNX node of its own.
    Its gates read U h = (U W_hr) m, so it is an ONNX LSTM of hidden size H over m with
    R = U W_hr (folded once, in float64), followed by MatMuls that project Y and Y_h with
    W_hr. An initial h0 enters as m0 = pinv(W_hr) h0, for which W_hr m0 = h0 whenever W_hr has
    full row rank (PyTorch requires P < H; a trained or random W_hr has it): then the first
    step's U W_hr m0 = U h0 exactly in exact arithmetic, to rounding otherwise.
    """
    cell = _cell(module)
    proj = int(getattr(module, "proj_size", 0) or 0)
    D = module.num_directions
    H = module.hidden_size
    order = _GATE_ORDER[cell]
    params = module.named_parameters()
    names, alphas, betas = _activation_list(module, D)
    attrs: dict[str, Any] = {"hidden_size": H}
    if D == 2:
        attrs["direction"] = "bidirectional"
    elif getattr(module, "reverse", False):
        attrs["direction"] = "reverse"
    default = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
    if names != default[cell] * D:
        attrs["activations"] = names
        if alphas:
            attrs["activation_alpha"] = alphas
        if betas:
            attrs["activation_beta"] = betas
    clip = getattr(module, "clip", None)
    if clip is not None:
        attrs["clip"] = float(clip)
    if cell == "LSTM" and getattr(module, "input_forget", False):
        attrs["input_forget"] = 1
    if cell == "GRU":
        attrs["linear_before_reset"] = int(module.reset_after)

    def blocks(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[g * H : (g + 1) * H] for g in order], axis=0)

    ys, hs, cs = x, [], []
    for layer in range(module.num_layers):
        sfx = [f"_l{layer}", f"_l{layer}_reverse"][:D]
        W = np.stack([blocks(params["weight_ih" + s]) for s in sfx])
        R = np.stack([blocks(params["weight_hh" + s]) for s in sfx])
        if proj:
            Whr = np.stack([params["weight_hr" + s].astype(np.float64) for s in sfx])  # (D, P, H)
            R = (R.astype(np.float64) @ Whr).astype(R.dtype)  # (D, 4H, H): U W_hr
        inputs = [ys, b.const(W, "W"), b.const(R, "R")]
        if module.bias:
            Bv = np.stack(
                [
                    np.concatenate([blocks(params["bias_ih" + s]), blocks(params["bias_hh" + s])])
                    for s in sfx
                ]
            )
            inputs.append(b.const(Bv, "B"))
        else:
            inputs.append("")
        inputs.append(seq_lens or "")

        def layer_state(s: str | None, layer: int = layer) -> str:
            if s is None:
                return ""
            span = [b.ints([layer * D]), b.ints([(layer + 1) * D]), b.ints([0])]
            return b.one("Slice", [s, *span])

        h_init = layer_state(h0)
        if proj and h_init:  # m0 = pinv(W_hr) h0, per direction: (D, B, P) @ (D, P, H)
            pinv_t = np.linalg.pinv(Whr).transpose(0, 2, 1).astype(W.dtype)
            h_init = b.one("MatMul", [h_init, b.const(pinv_t, "Whr_pinv_t")])
        inputs.append(h_init)
        if cell == "LSTM":
            inputs.append(layer_state(c0))
            if getattr(module, "peephole", False):
                P = np.stack(
                    [
                        np.concatenate(
                            [p[:H], p[2 * H :], p[H : 2 * H]]  # rnnkit i, f, o -> ONNX i, o, f
                        )
                        for p in (params["weight_peephole" + s] for s in sfx)
                    ]
                )
                inputs.append(b.const(P, "P"))
        while inputs and inputs[-1] == "":
            inputs.pop()
        n_out = 3 if cell == "LSTM" else 2
        outs = b.node(cell, inputs, n_out, **attrs)
        Y, Y_h = outs[0], outs[1]
        if proj:  # h = W_hr m: (T, D, B, H) @ (D, H, P) and (D, B, H) @ (D, H, P)
            whr_t = b.const(Whr.transpose(0, 2, 1).astype(W.dtype), "Whr_t")
            Y = b.one("MatMul", [Y, whr_t])
            Y_h = b.one("MatMul", [Y_h, whr_t])
        hs.append(Y_h)
        if cell == "LSTM":
            cs.append(outs[2])
        if D == 1:
            ys = b.one("Squeeze", [Y, b.ints([1])])
        else:
            t = b.one("Transpose", [Y], perm=[0, 2, 1, 3])
            ys = b.one("Reshape", [t, b.ints([0, 0, -1])])
    h_n = hs[0] if len(hs) == 1 else b.one("Concat", hs, axis=0)
    c_n = None
    if cs:
        c_n = cs[0] if len(cs) == 1 else b.one("Concat", cs, axis=0)
    return ys, h_n, c_n


def _export_module(
    b: _Builder, module: Any, lengths: bool, initial_states: bool, dims: tuple[Any, Any]
) -> tuple[list, list]:
    onnx = b.onnx
    elem = onnx.helper.np_dtype_to_tensor_dtype(b.dtype)
    batch, time = dims
    cell = _cell(module)
    I = module.input_size
    shape = [batch, time, I] if module.batch_first else [time, batch, I]
    inputs = [onnx.helper.make_tensor_value_info("x", elem, shape)]
    x = "x"
    if module.batch_first:
        x = b.one("Transpose", [x], perm=[1, 0, 2])
    seq = None
    if lengths:
        inputs.append(
            onnx.helper.make_tensor_value_info("lengths", onnx.TensorProto.INT64, [batch])
        )
        seq = b.one("Cast", ["lengths"], to=onnx.TensorProto.INT32)
    h0 = c0 = None
    LD = module.num_layers * module.num_directions
    Hout = int(getattr(module, "proj_size", 0) or 0) or module.hidden_size
    if initial_states:
        inputs.append(onnx.helper.make_tensor_value_info("h0", elem, [LD, batch, Hout]))
        h0 = "h0"
        if cell == "LSTM":
            inputs.append(
                onnx.helper.make_tensor_value_info("c0", elem, [LD, batch, module.hidden_size])
            )
            c0 = "c0"
    y, h_n, c_n = _recurrent_layers(b, module, x, seq, h0, c0)
    if module.batch_first:
        y = b.one("Transpose", [y], perm=[1, 0, 2])
    width = module.num_directions * Hout
    outs = [("y", y, [batch, time, width] if module.batch_first else [time, batch, width])]
    outs.append(("h_n", h_n, [LD, batch, Hout]))
    if c_n is not None:
        outs.append(("c_n", c_n, [LD, batch, module.hidden_size]))
    return inputs, _bind_outputs(b, outs, elem)


def _bind_outputs(b: _Builder, outs: list, elem: int) -> list:
    onnx = b.onnx
    infos = []
    for name, value, shape in outs:
        if any(value in n.output for n in b.nodes):
            b.rename(value, name)
        else:
            b.nodes.append(
                onnx.helper.make_node("Identity", [value], [name], name=b.name("Identity"))
            )
        infos.append(onnx.helper.make_tensor_value_info(name, elem, shape))
    return infos


# --------------------------------------------------------------------------- Keras models


def _dense_activation(b: _Builder, z: str, act: str) -> str:
    if act == "linear":
        return z
    if act == "softmax":
        return b.one("Softmax", [z], axis=-1)
    if act == "hard_sigmoid":
        return b.one("HardSigmoid", [z], alpha=1.0 / 6.0, beta=0.5)
    ops = {
        "relu": "Relu",
        "tanh": "Tanh",
        "sigmoid": "Sigmoid",
        "elu": "Elu",
        "softplus": "Softplus",
    }
    if act not in ops:
        raise ValueError(f"[rnnkit.onnx.export] Dense activation {act!r} has no ONNX op here")
    return b.one(ops[act], [z])


def _keras_rnn(b: _Builder, layer: Any, x: str, merge: str | None) -> str:
    """A Keras-shaped LSTM/GRU (or Bidirectional around one) on batch-first ``x (B, T, F)``."""
    if layer.return_state or layer.stateful:
        raise ValueError(
            f"[rnnkit.onnx.export] layer {layer.name!r}: return_state and stateful layers are "
            "not exported (a Sequential model passes one array between layers)"
        )
    core = layer.core
    xt = b.one("Transpose", [x], perm=[1, 0, 2])
    if layer.go_backwards:
        xt = b.one("Slice", [xt, b.ints([-1]), b.ints([-(2**63)]), b.ints([0]), b.ints([-1])])
    y, h_n, _ = _recurrent_layers(b, core, xt, None, None, None)
    U = layer.units
    if layer.return_sequences:
        out = b.one("Transpose", [y], perm=[1, 0, 2])  # (B, T, D·U)
        if merge in (None, "concat"):
            return out
        f, r = b.node("Split", [out, b.ints([U, U])], 2, axis=2)
    else:
        hb = b.one("Transpose", [h_n], perm=[1, 0, 2])  # (B, D, U)
        if merge in (None, "concat"):
            return b.one("Reshape", [hb, b.ints([0, -1])])
        f, r = (
            b.one("Squeeze", [p, b.ints([1])])
            for p in b.node("Split", [hb, b.ints([1, 1])], 2, axis=1)
        )
    if merge == "sum":
        return b.one("Add", [f, r])
    if merge == "mul":
        return b.one("Mul", [f, r])
    s = b.one("Add", [f, r])
    return b.one("Mul", [s, b.const(np.array(0.5, dtype=b.dtype), "half")])


def _export_sequential(b: _Builder, model: Any, dims: tuple[Any, Any]) -> tuple[list, list]:
    from .._training.core_layers import Dense, Dropout, Embedding, Flatten, InputLayer, RepeatVector
    from .._training.recurrent import GRU, LSTM, Bidirectional

    onnx = b.onnx
    if not model.built:
        raise ValueError(
            "[rnnkit.onnx.export] the model is not built: give it an input shape or call it once"
        )
    layers = model.layers
    batch, time = dims
    shape = list(model.input_shape)
    shape[0] = batch
    if len(shape) > 1 and shape[1] is None:
        shape[1] = time
    shape = [(f"d{k}" if s is None else s) for k, s in enumerate(shape)]
    first = layers[0]
    int_input = isinstance(first, Embedding) or (
        isinstance(model._input_layer, InputLayer)
        and getattr(model._input_layer, "_int_input", False)
    )
    elem_x = onnx.TensorProto.INT64 if int_input else onnx.helper.np_dtype_to_tensor_dtype(b.dtype)
    inputs = [onnx.helper.make_tensor_value_info("x", elem_x, shape)]
    x = "x"
    for layer in layers:
        if isinstance(layer, Embedding) and layer.mask_zero:
            raise ValueError(
                f"[onnx.export] Embedding {layer.name!r} has mask_zero=True: the exported graph "
                "has no masks; export a model without masking (pad to equal lengths, or use "
                "the core modules' lengths=)"
            )
        if isinstance(layer, Embedding):
            x = b.one(
                "Gather", [b.const(layer.embeddings.astype(b.dtype), "embeddings"), x], axis=0
            )
        elif isinstance(layer, Dense):
            z = b.one("MatMul", [x, b.const(layer.kernel.astype(b.dtype), "kernel")])
            if layer.use_bias:
                z = b.one("Add", [z, b.const(layer.bias.astype(b.dtype), "bias")])
            x = _dense_activation(b, z, layer.activation)
        elif isinstance(layer, Dropout):
            continue
        elif isinstance(layer, Flatten):
            x = b.one("Flatten", [x], axis=1)
        elif isinstance(layer, RepeatVector):
            x1 = b.one("Unsqueeze", [x, b.ints([1])])
            x = b.one("Expand", [x1, b.ints([1, layer.n, 1])])
        elif isinstance(layer, Bidirectional):
            x = _keras_rnn(b, layer.layer, x, layer.merge_mode)
        elif isinstance(layer, (LSTM, GRU)):
            x = _keras_rnn(b, layer, x, None)
        else:
            raise ValueError(
                f"[rnnkit.onnx.export] layer {layer.name!r} ({type(layer).__name__}) "
                "is not exported"
            )
    out_shape = [batch] + [
        (f"o{k}" if s is None else s) for k, s in enumerate(model.output_shape[1:], 1)
    ]
    if len(model.output_shape) > 2 and model.output_shape[1] is None:
        out_shape[1] = time
    elem = onnx.helper.np_dtype_to_tensor_dtype(b.dtype)
    return inputs, _bind_outputs(b, [("y", x, out_shape)], elem)


# --------------------------------------------------------------------------- entry point


def export(
    model: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    opset: int = 17,
    lengths: bool = False,
    initial_states: bool = False,
    batch_size: int | None = None,
    steps: int | None = None,
) -> Any:
    """Write ``model`` as an ONNX model; returns the ``onnx.ModelProto``.

    Parameters
    ----------
    model : rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN or rnnkit.Sequential
        A core module (any layers, directions, ``batch_first``, peepholes, activations,
        clip) or a built Keras-shaped ``Sequential`` of Embedding, Dense, Dropout, Flatten,
        RepeatVector, LSTM, GRU and Bidirectional layers.
    path : str or PathLike, optional
        Where to write the file (written to a temporary file, then renamed).
    opset : int
        Default-domain opset, 14 to 22.
    lengths : bool
        Core modules: add an int64 input ``lengths (B,)``, the ONNX ``sequence_lens``.
    initial_states : bool
        Core modules: add inputs ``h0`` (and ``c0``), ``(L·D, B, H)``.
    batch_size, steps : int, optional
        Fix the batch or time size in the graph; by default both are dynamic.

    Graph inputs and outputs. Core modules: ``x`` -> ``y``, ``h_n`` (and ``c_n``) with the
    module's shapes; Sequential: ``x`` -> ``y``.
    """
    onnx = import_onnx()
    import rnnkit

    if (
        isinstance(opset, bool)
        or not isinstance(opset, int)
        or not _ONNX_OPSETS[0] <= opset <= _ONNX_OPSETS[1]
    ):
        raise ValueError(
            f"[rnnkit.onnx.export] opset must be an int in "
            f"{_ONNX_OPSETS[0]}..{_ONNX_OPSETS[1]}; got {opset!r}"
        )
    for label, v in (("batch_size", batch_size), ("steps", steps)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(
                f"[rnnkit.onnx.export] {label} must be a positive int or None; got {v!r}"
            )
    dims = (batch_size or "batch", steps or "time")
    core_types = tuple(c for c in (rnnkit.LSTM, rnnkit.GRU, getattr(rnnkit, "RNN", None)) if c)
    if isinstance(model, core_types):
        if model.weight_dtype == "bfloat16":
            dtype = np.dtype(np.float32)
        else:
            dtype = model.dtype
        b = _Builder(opset, dtype)
        inputs, outputs = _export_module(b, model, lengths, initial_states, dims)
        name = f"rnnkit_{_cell(model).lower()}"
    elif isinstance(model, rnnkit.Sequential):
        if lengths or initial_states:
            raise ValueError(
                "[rnnkit.onnx.export] lengths and initial_states apply to core modules, not "
                "Sequential models"
            )
        dtypes = {layer.dtype for layer in model.layers}
        b = _Builder(opset, dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float32))
        inputs, outputs = _export_sequential(b, model, dims)
        name = model.name
    else:
        raise TypeError(
            "[rnnkit.onnx.export] model must be rnnkit.LSTM, GRU, RNN or a Sequential; got "
            f"{type(model).__name__}"
        )
    graph = onnx.helper.make_graph(b.nodes, name, inputs, outputs, b.inits)
    proto = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid("", opset)],
        producer_name="rnnkit",
        producer_version=str(rnnkit.__version__),
    )
    proto.ir_version = 8 if opset <= 17 else 9 if opset <= 20 else 10
    onnx.checker.check_model(proto)
    if path is not None:
        target = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(target))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".rnnkit-", suffix=".onnx")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(proto.SerializeToString())
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return proto
