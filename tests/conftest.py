"""Run the core correctness tests once per kernel build this machine supports."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import rnnkit

# Modules whose tests exercise the compiled kernels' math; each runs under every ISA.
ISA_MODULES = {
    "test_golden",
    "test_torch_live",
    "test_reference_options",
    "test_gradcheck",
    "test_properties",
    "test_dtypes_layouts",
    "test_fast_paths",
    "test_bf16",
    "test_activations",
    "test_streams",
    "test_train_ops",
}


def kernel_isas() -> list[str]:
    """Every build this machine runs, or only the one RNNKIT_ISA forces (the sanitizer job runs
    the tests once per ISA that way, .ci/sanitize)."""
    forced = os.environ.get("RNNKIT_ISA")
    if forced and forced in rnnkit.available_isas():
        return [forced]
    return rnnkit.available_isas()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__.rpartition(".")[2] in ISA_MODULES:
        metafunc.fixturenames.append("kernel_isa")
        metafunc.parametrize("kernel_isa", kernel_isas(), indirect=True, scope="module")


@pytest.fixture(scope="module")
def kernel_isa(request: pytest.FixtureRequest) -> Iterator[str]:
    """Switch the core to one instruction-set build for the duration of a test module."""
    before = rnnkit.get_isa()
    rnnkit.set_isa(request.param)
    yield request.param
    rnnkit.set_isa(before)
