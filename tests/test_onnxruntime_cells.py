"""The core's ONNX options against ONNX Runtime, on single-node LSTM / GRU / RNN graphs.

This pins the semantics the ONNX importer relies on: ``clip`` (every activation's input
bounded, c' before h not), ``input_forget`` (f = 1 - i), peepholes, every activation of the
spec in every slot with alpha/beta, ``direction`` forward / reverse / bidirectional with
``sequence_lens``, and GRU ``linear_before_reset``. Each rnnkit module's state dict is
converted here, independently of rnnkit's importer: gate blocks reordered (LSTM i,f,g,o ->
ONNX i,o,f,c; GRU r,z,n -> z,r,h; peepholes i,f,o -> i,o,f), biases concatenated [Wb|Rb].

How ONNX Runtime reads the attributes (onnxruntime/core/providers/cpu/rnn/): LSTM and GRU
consume ``activation_alpha`` / ``activation_beta`` in the order of the activations, one entry
per function that takes that parameter (none for Tanh, Sigmoid, ...); RNN takes one alpha and
one beta per direction. Its RNN kernel runs the reverse direction from step T-1 whatever
``sequence_lens`` says, so RNN cases with a reverse direction have no lengths.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from error_record import record_error
from reference import assert_close

import rnnkit

onnx = pytest.importorskip("onnx", reason="needs the onnx package (pip install rnnkit[onnx])")
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

T, B, I, H = 6, 3, 4, 8
LENGTHS = np.array([6, 2, 4], np.int32)
# rnnkit name -> (ONNX name, takes alpha, takes beta)
ONNX_ACTIVATIONS = {
    "tanh": ("Tanh", False, False),
    "relu": ("Relu", False, False),
    "sigmoid": ("Sigmoid", False, False),
    "hard_sigmoid": ("HardSigmoid", True, True),
    "affine": ("Affine", True, True),
    "leaky_relu": ("LeakyRelu", True, False),
    "thresholded_relu": ("ThresholdedRelu", True, False),
    "scaled_tanh": ("ScaledTanh", True, True),
    "elu": ("Elu", True, False),
    "softsign": ("Softsign", False, False),
    "softplus": ("Softplus", False, False),
}
# parameters off ONNX's and rnnkit's defaults
PARAMS = {
    "hard_sigmoid": (0.25, 0.45),
    "affine": (0.8, 0.1),
    "leaky_relu": (0.15,),
    "thresholded_relu": (0.2,),
    "scaled_tanh": (1.1, 0.9),
    "elu": (0.7,),
}
# linear has no ONNX name: Affine(1, 0) is the identity
ALL = [*ONNX_ACTIVATIONS, "linear"]
TOL = (1e-5, 5e-6)  # rtol, atol: float32 against float32, different tanh/sigmoid approximations


def spec_of(name: str) -> Any:
    return (name, *PARAMS[name]) if name in PARAMS else name


def onnx_activations(specs: list[Any]) -> tuple[list[str], list[float], list[float]]:
    """ONNX names and the alpha / beta lists as LSTM and GRU consume them (by need)."""
    names, alphas, betas = [], [], []
    for s in specs:
        name, alpha, beta = (s, 0.0, 0.0) if isinstance(s, str) else s
        if name == "linear":
            name, alpha, beta = "affine", 1.0, 0.0
        onnx_name, takes_alpha, takes_beta = ONNX_ACTIVATIONS[name]
        names.append(onnx_name)
        if takes_alpha:
            alphas.append(alpha)
        if takes_beta:
            betas.append(beta)
    return names, alphas, betas


def blocks(a: np.ndarray, order: list[int], n: int) -> np.ndarray:
    """The gate blocks of a (n * H, ...) array in another order."""
    return np.concatenate([a[g * H : (g + 1) * H] for g in order], axis=0)[: n * H]


def onnx_weights(m: Any) -> dict[str, np.ndarray]:
    """W, R, B (and P) of an rnnkit module in ONNX's layout, directions stacked."""
    order = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}[m._cell]
    G = len(order)
    sd = m.state_dict()
    out: dict[str, list[np.ndarray]] = {"W": [], "R": [], "B": [], "P": []}
    for sfx in ["_l0", "_l0_reverse"][: m.num_directions]:
        out["W"].append(blocks(sd["weight_ih" + sfx], order, G))
        out["R"].append(blocks(sd["weight_hh" + sfx], order, G))
        out["B"].append(
            np.concatenate(
                [blocks(sd["bias_ih" + sfx], order, G), blocks(sd["bias_hh" + sfx], order, G)]
            )
        )
        if m._cell == "LSTM" and m.peephole:
            p = sd["weight_peephole" + sfx]
            out["P"].append(np.concatenate([p[:H], p[2 * H :], p[H : 2 * H]]))  # i,f,o -> i,o,f
    return {k: np.stack(v).astype(np.float32) for k, v in out.items() if v}


def run_onnxruntime(
    m: Any, x: np.ndarray, lengths: np.ndarray | None, h0: np.ndarray, c0: np.ndarray | None
) -> list[np.ndarray]:
    """Y (T, B, D*H) and Y_h [, Y_c] of the module as one ONNX node run by ONNX Runtime."""
    D = m.num_directions
    direction = "bidirectional" if D == 2 else ("reverse" if m.reverse else "forward")
    w = onnx_weights(m)
    if m._cell == "LSTM":
        cact = m.activation if m.cell_activation is None else m.cell_activation
        specs = [m.recurrent_activation, m.activation, cact]
    elif m._cell == "GRU":
        specs = [m.recurrent_activation, m.activation]
    else:
        specs = [m.activation]
    names, alphas, betas = onnx_activations(specs * D)
    attrs: dict[str, Any] = {"hidden_size": H, "direction": direction, "activations": names}
    if m._cell == "RNN":  # ONNX Runtime's RNN reads alpha[direction], beta[direction]
        s = m.activation
        _, a, b = (s, 0.0, 0.0) if isinstance(s, str) else s
        if s == "linear":
            a, b = 1.0, 0.0
        attrs |= {"activation_alpha": [a] * D, "activation_beta": [b] * D}
    else:
        if alphas:
            attrs["activation_alpha"] = alphas
        if betas:
            attrs["activation_beta"] = betas
    if m.clip is not None:
        attrs["clip"] = m.clip
    if m._cell == "LSTM":
        attrs["input_forget"] = int(m.input_forget)
    if m._cell == "GRU":
        attrs["linear_before_reset"] = int(m.reset_after)
    inputs = ["X", "W", "R", "B", "sequence_lens" if lengths is not None else "", "initial_h"]
    if m._cell == "LSTM":
        inputs += ["initial_c", "P" if "P" in w else ""]
    outputs = ["Y", "Y_h"] + (["Y_c"] if m._cell == "LSTM" else [])
    node = helper.make_node(m._cell, inputs, outputs, **attrs)
    feeds = {"X": x, "initial_h": h0}
    if c0 is not None:
        feeds["initial_c"] = c0
    if lengths is not None:
        feeds["sequence_lens"] = lengths
    graph_inputs = [
        helper.make_tensor_value_info(
            k, TensorProto.INT32 if k == "sequence_lens" else TensorProto.FLOAT, v.shape
        )
        for k, v in feeds.items()
    ]
    graph = helper.make_graph(
        [node],
        "cell",
        graph_inputs,
        [
            helper.make_tensor_value_info(
                o, TensorProto.FLOAT, [T, D, B, H] if o == "Y" else [D, B, H]
            )
            for o in outputs
        ],
        initializer=[onnx.numpy_helper.from_array(v, k) for k, v in w.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    res = sess.run(None, feeds)
    res[0] = res[0].transpose(0, 2, 1, 3).reshape(T, B, D * H)  # [T, D, B, H] -> (T, B, D*H)
    return res


def compare(cell: str, kw: dict[str, Any], lengths: np.ndarray | None, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = getattr(rnnkit, cell)(I, H, seed=seed, **kw).eval()
    D = m.num_directions
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = (0.5 * rng.standard_normal((D, B, H))).astype(np.float32)
    c0 = (0.5 * rng.standard_normal((D, B, H))).astype(np.float32) if cell == "LSTM" else None
    if cell == "LSTM":
        y, (h, c) = m(x, (h0, c0), lengths=lengths)
        ours = [y, h, c]
    else:
        y, h = m(x, h0, lengths=lengths)
        ours = [y, h]
    theirs = run_onnxruntime(m, x, lengths, h0, c0)
    assert float(np.abs(theirs[0]).max()) > 1e-3, f"{cell} {kw}: ONNX Runtime's Y is all ~0"
    for name, a, b in zip(("Y", "Y_h", "Y_c"), ours, theirs):
        record_error(float(np.abs(a - b).max()) / max(1.0, float(np.abs(b).max())))
        assert_close(a, b, f"{cell} {kw} lengths={lengths is not None}: {name}", *TOL)


OPTIONS = [
    ("LSTM", {"clip": 0.5}),
    ("LSTM", {"clip": 0.3, "peephole": True, "bidirectional": True}),
    ("LSTM", {"input_forget": True}),
    ("LSTM", {"input_forget": True, "peephole": True, "clip": 0.8}),
    ("LSTM", {"reverse": True, "peephole": True}),
    (
        "LSTM",
        {
            "bidirectional": True,
            "clip": 0.7,
            "input_forget": True,
            "recurrent_activation": ("hard_sigmoid", 0.2, 0.5),
            "activation": ("scaled_tanh", 0.9, 1.3),
            "cell_activation": ("leaky_relu", 0.3),
        },
    ),
    ("GRU", {"clip": 0.5}),
    ("GRU", {"clip": 0.5, "reset_after": False}),
    ("GRU", {"reverse": True, "reset_after": False}),
    ("GRU", {"bidirectional": True, "clip": 0.6, "activation": ("elu", 0.5)}),
    ("RNN", {"clip": 0.4}),
    ("RNN", {"nonlinearity": "relu", "bidirectional": True}),
    ("RNN", {"reverse": True, "activation": ("affine", 0.5, 0.2)}),
]


@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize(("cell", "kw"), OPTIONS)
def test_options_match_onnxruntime(cell: str, kw: dict[str, Any], with_lengths: bool) -> None:
    reverse_rnn = cell == "RNN" and (kw.get("reverse") or kw.get("bidirectional"))
    if with_lengths and reverse_rnn:
        pytest.skip("ONNX Runtime's RNN kernel ignores sequence_lens in the reverse direction")
    compare(cell, kw, LENGTHS if with_lengths else None, seed=len(kw) + 10 * with_lengths)


SLOTS = [
    ("LSTM", "recurrent_activation"),
    ("LSTM", "activation"),
    ("LSTM", "cell_activation"),
    ("GRU", "recurrent_activation"),
    ("GRU", "activation"),
    ("RNN", "activation"),
]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(("cell", "slot"), SLOTS)
def test_every_activation_in_every_slot_matches_onnxruntime(
    cell: str, slot: str, name: str
) -> None:
    kw: dict[str, Any] = {slot: spec_of(name)}
    if cell == "GRU":
        kw["reset_after"] = len(name) % 2 == 0
    compare(cell, kw, None if cell == "RNN" else LENGTHS, seed=len(name))
