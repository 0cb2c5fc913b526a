"""Load a PyTorch-shaped LSTM state dict into rnnkit and run it.

The weights here come from a seeded generator standing in for ``torch_model.state_dict()``;
with PyTorch installed, the script also runs torch on the same weights and prints the
largest difference.

    python examples/quickstart.py
"""

from __future__ import annotations

import time

import numpy as np

import rnnkit

I, H, L, B, T = 32, 128, 2, 8, 100
rng = np.random.default_rng(0)

# A state dict with PyTorch's keys and shapes (what torch.nn.LSTM(32, 128, 2).state_dict() holds).
k = 1 / np.sqrt(H)
state = {}
for layer in range(L):
    fan_in = I if layer == 0 else H
    state[f"weight_ih_l{layer}"] = rng.uniform(-k, k, (4 * H, fan_in)).astype(np.float32)
    state[f"weight_hh_l{layer}"] = rng.uniform(-k, k, (4 * H, H)).astype(np.float32)
    state[f"bias_ih_l{layer}"] = rng.uniform(-k, k, 4 * H).astype(np.float32)
    state[f"bias_hh_l{layer}"] = rng.uniform(-k, k, 4 * H).astype(np.float32)

model = rnnkit.LSTM(I, H, num_layers=L, batch_first=True).eval()
model.load_state_dict(state)
x = rng.standard_normal((B, T, I)).astype(np.float32)

y, (h_n, c_n) = model(x)
times = []
for _ in range(20):
    t0 = time.perf_counter()
    model(x)
    times.append(time.perf_counter() - t0)
print(f"rnnkit {model}: x {x.shape} -> y {y.shape}, h_n {h_n.shape}, c_n {c_n.shape}")
print(
    f"median forward time: {1e3 * float(np.median(times)):.3f} ms "
    f"({rnnkit.get_isa()}, {rnnkit.get_num_threads()} threads)"
)

try:
    import torch
except ImportError:
    print("PyTorch not installed: skipping the cross-check")
else:
    ref = torch.nn.LSTM(I, H, num_layers=L, batch_first=True)
    ref.load_state_dict({key: torch.from_numpy(v) for key, v in state.items()})
    with torch.inference_mode():
        y_ref, (h_ref, c_ref) = ref(torch.from_numpy(x))
    err = float(np.abs(y - y_ref.numpy()).max())
    print(f"max |rnnkit - torch| over y: {err:.2e}")
    assert err < 1e-5, err
