"""Print the worst relative error of rnnkit against PyTorch, per dtype.

    python tests/worst_error_vs_torch.py

Runs every configuration of tests/test_torch_live.py (outputs, final states, and the
gradients of every parameter, the input and the initial states) and prints, per dtype,
the worst error relative to each tensor's scale, max|a - b| / max|b|, and where it was.
"""

from __future__ import annotations

from test_torch_live import DTYPES, LIVE_CONFIGS, live_results, worst_error


def main() -> None:
    for dtype in DTYPES:
        worst = (-1.0, "")
        for name in LIVE_CONFIGS:
            _, actual, expected = live_results(name, dtype)
            err, key = worst_error(actual, expected)
            print(f"  {dtype} {name:26s} {err:.3e}  ({key})")
            worst = max(worst, (err, f"{name}: {key}"))
        print(f"{dtype}: worst relative error vs torch {worst[0]:.3e} ({worst[1]})")


if __name__ == "__main__":
    main()
