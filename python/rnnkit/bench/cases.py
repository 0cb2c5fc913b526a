"""Benchmark cases, their FLOP counts, and the seeded weights and data they run on.

Every framework in a run sees the same numbers: weights are drawn once per case from a
seeded generator in PyTorch's ``state_dict`` layout (gate rows LSTM i, f, g, o; GRU r, z, n)
and each peer converts them to its own layout. Inputs are time-major, ``x: (T, B, I)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

#: Rows per gate block: LSTM has 4 (i, f, g, o), GRU has 3 (r, z, n).
GATES = {"lstm": 4, "gru": 3}


@dataclass(frozen=True)
class Case:
    """One benchmark shape.

    Attributes
    ----------
    name : str
        Identifier used on the command line and in the report.
    cell : str
        ``"lstm"`` or ``"gru"``.
    batch, steps, input_size, hidden_size, num_layers : int
        B, T, I, H, L.
    bidirectional : bool
        D = 2 when True.
    stream : bool
        Streaming case: one time step per Python call with the state carried between
        calls (B = 1, T = 1 per call). ``steps`` is then the number of calls timed as one
        block, and timings are reported per step.
    dtype : str
        ``"float32"``, or ``"bfloat16"``: bfloat16 weights (rnnkit: float32 activations;
        PyTorch: ``.bfloat16()`` module and input). The suite runs float32 cases.
    """

    name: str
    cell: str
    batch: int
    steps: int
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    stream: bool = False
    dtype: str = "float32"

    @property
    def directions(self) -> int:
        """Number of directions D (1 or 2)."""
        return 2 if self.bidirectional else 1

    @property
    def gates(self) -> int:
        """Gate count G (4 for LSTM, 3 for GRU)."""
        return GATES[self.cell]

    def layer_input_size(self, layer: int) -> int:
        """Input width of ``layer``: I for layer 0, D·H above it."""
        return self.input_size if layer == 0 else self.directions * self.hidden_size

    def flops(self, training: bool = False) -> float:
        """FLOPs of one call (one step for a streaming case).

        Σ over layers and directions of 2·B·T·G·H·(in + H); training (forward plus
        backward through time) counts 3× that.

        Parameters
        ----------
        training : bool
            Count a training step instead of an inference call.

        Returns
        -------
        float
            Floating-point operations.
        """
        steps = 1 if self.stream else self.steps
        total = 0.0
        for layer in range(self.num_layers):
            per_dir = (
                2.0
                * self.batch
                * steps
                * self.gates
                * self.hidden_size
                * (self.layer_input_size(layer) + self.hidden_size)
            )
            total += per_dir * self.directions
        return 3.0 * total if training else total

    def with_steps(self, steps: int) -> Case:
        """Copy of this case with another ``steps`` (used to shorten streaming runs)."""
        return dataclasses.replace(self, steps=steps)

    def describe(self) -> str:
        """One-line shape description, e.g. ``LSTM B=64 T=100 I=128 H=256 L=2``."""
        text = (
            f"{self.cell.upper()} B={self.batch} T={self.steps} I={self.input_size} "
            f"H={self.hidden_size} L={self.num_layers}"
        )
        if self.bidirectional:
            text += " bidirectional"
        if self.stream:
            text += " (streaming, one step per call)"
        if self.dtype != "float32":
            text += f" {self.dtype}"
        return text


CASES: dict[str, Case] = {
    c.name: c
    for c in (
        Case("lstm_b1_t100_i32_h128", "lstm", 1, 100, 32, 128),
        Case("gru_b1_t100_i32_h128", "gru", 1, 100, 32, 128),
        # Not in DESIGN.md's suite: batch 1 with weights (4 MB in float32, 2 MB in bfloat16)
        # beyond one core's L2, where bfloat16 weights pay most.
        Case("lstm_b1_t100_i64_h512", "lstm", 1, 100, 64, 512),
        Case("lstm_b64_t100_i128_h256_l2", "lstm", 64, 100, 128, 256, 2),
        Case("gru_b64_t100_i128_h256_l2", "gru", 64, 100, 128, 256, 2),
        Case("lstm_b32_t50_i64_h128_bi2", "lstm", 32, 50, 64, 128, 2, True),
        Case("lstm_b256_t50_i512_h512", "lstm", 256, 50, 512, 512),
        Case("stream_lstm_i16_h64", "lstm", 1, 1000, 16, 64, stream=True),
    )
}

#: Cases a ``--quick`` run uses unless ``--cases`` is given.
QUICK_CASES = (
    "lstm_b1_t100_i32_h128",
    "gru_b1_t100_i32_h128",
    "lstm_b32_t50_i64_h128_bi2",
    "stream_lstm_i16_h64",
)

#: Streaming steps per timed block in a ``--quick`` run.
QUICK_STREAM_STEPS = 200


def _seed(case: Case) -> int:
    """Stable per-case seed (independent of Python's hash randomization)."""
    return sum((i + 1) * ord(ch) for i, ch in enumerate(case.name)) % (2**31)


def make_weights(case: Case) -> dict[str, np.ndarray]:
    """Seeded float32 weights in PyTorch ``state_dict`` layout.

    Drawn from U(-1/√H, 1/√H) like PyTorch's default initialization.

    Parameters
    ----------
    case : Case
        The shape.

    Returns
    -------
    dict of str to ndarray
        ``weight_ih_l{k}[_reverse]`` (G·H, in), ``weight_hh_l{k}[_reverse]`` (G·H, H),
        ``bias_ih_l{k}[_reverse]``, ``bias_hh_l{k}[_reverse]`` (G·H,).
    """
    rng = np.random.default_rng(_seed(case))
    h, g = case.hidden_size, case.gates
    bound = 1.0 / np.sqrt(h)
    weights: dict[str, np.ndarray] = {}
    for layer in range(case.num_layers):
        for d in range(case.directions):
            sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
            shapes = {
                "weight_ih": (g * h, case.layer_input_size(layer)),
                "weight_hh": (g * h, h),
                "bias_ih": (g * h,),
                "bias_hh": (g * h,),
            }
            for key, shape in shapes.items():
                weights[key + sfx] = rng.uniform(-bound, bound, shape).astype(np.float32)
    return weights


def make_data(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """Seeded input and output gradient for one call.

    Parameters
    ----------
    case : Case
        The shape. A streaming case gets the whole sequence of ``steps`` single steps.

    Returns
    -------
    x : ndarray, float32, (T, B, I)
        Standard normal input.
    dy : ndarray, float32, (T, B, D·H)
        Standard normal gradient of the loss with respect to the output sequence.
    """
    rng = np.random.default_rng(_seed(case) + 1)
    t, b = case.steps, case.batch
    x = rng.standard_normal((t, b, case.input_size)).astype(np.float32)
    dy = rng.standard_normal((t, b, case.directions * case.hidden_size)).astype(np.float32)
    return x, dy


def flat_weights(case: Case, weights: dict[str, np.ndarray], layer: int, d: int) -> tuple:
    """Weights of one layer and direction: ``(w_ih, w_hh, b_ih, b_hh)`` in PyTorch layout."""
    sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
    return tuple(weights[k + sfx] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
