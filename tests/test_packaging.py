"""Packaging invariants: the license, the wheel-building configuration and what the sdist holds.

Cheap checks on the repository's own files; the sdist test builds one (a few seconds) when the
`build` frontend and scikit-build-core are installed, and skips otherwise.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.9 and 3.10
    tomllib = pytest.importorskip("tomli")


def _pyproject() -> dict:
    path = ROOT / "pyproject.toml"
    if not path.exists():
        pytest.skip("pyproject.toml is not beside the tests (an installed copy of them)")
    with path.open("rb") as f:
        return tomllib.load(f)


def test_license_file_matches_pyproject() -> None:
    declared = _pyproject()["project"]["license"]["text"]
    license_file = ROOT / "LICENSE"
    assert license_file.is_file(), "LICENSE is missing from the repository root"
    lines = license_file.read_text(encoding="utf-8").splitlines()
    assert lines[0] == f"{declared} License", (
        f"LICENSE starts with {lines[0]!r}; pyproject.toml declares license {declared!r}"
    )
    copyright_lines = [ln for ln in lines if ln.startswith("Copyright")]
    assert copyright_lines == ["Copyright (c) 2026 rnnkit developers"], copyright_lines


def test_cibuildwheel_builds_x86_64_and_aarch64_manylinux() -> None:
    config = _pyproject()["tool"]["cibuildwheel"]
    archs = config["linux"]["archs"]
    assert "x86_64" in archs and "aarch64" in archs, f"cibuildwheel linux archs: {archs}"
    assert "musllinux" in config["skip"], f"cibuildwheel skip: {config['skip']!r}"
    assert config["linux"]["manylinux-x86_64-image"].startswith("manylinux")
    assert config["linux"]["manylinux-aarch64-image"].startswith("manylinux")
    # The test files the wheels are checked with exist.
    named = re.findall(r"\{project\}/(\S+\.py)", " ".join(config["test-command"]))
    assert named, config["test-command"]
    missing = [p for p in named if not (ROOT / p).is_file()]
    assert not missing, f"cibuildwheel's test-command names missing files: {missing}"


def _tracked_files(under: str) -> list[str]:
    """Files git tracks under a directory, or every file there when git is not available."""
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", under],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        out = []
    if out:
        return out
    return [str(p.relative_to(ROOT)) for p in (ROOT / under).rglob("*") if p.is_file()]


def test_sdist_holds_what_building_needs(tmp_path: Path) -> None:
    # Distribution metadata, not find_spec: the build/ directory of a checkout would pass for
    # the `build` package when the tests run from the repository root.
    for dist in ("build", "scikit-build-core"):
        try:
            importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(
                f"building an sdist here needs {dist} (pip install build scikit-build-core)"
            )
    _pyproject()
    out = tmp_path / "dist"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--sdist",
            "--no-isolation",
            # making an sdist compiles nothing: pybind11 and Eigen (the wheel's build
            # requirements) need not be installed, only scikit-build-core
            "--skip-dependency-check",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (
        f"sdist build failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    )
    (sdist,) = out.glob("rnnkit-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    prefix = names[0].split("/")[0]
    files = {n[len(prefix) + 1 :] for n in names if n.startswith(prefix + "/")}

    needed = [
        "pyproject.toml",
        "CMakeLists.txt",
        "cmake/superbuild.cmake",
        "LICENSE",
        "README.md",
        "python/rnnkit/__init__.py",
        "python/rnnkit/py.typed",
        "tests/conftest.py",
        *_tracked_files("cpp"),
    ]
    missing = [f for f in needed if f not in files]
    assert not missing, f"the sdist lacks {missing}"
    unwanted = sorted(
        f for f in files if f.startswith(("build/", "dist/", ".ci-venv/", "bench/results/"))
    )
    assert not unwanted, f"the sdist holds build products or results: {unwanted[:10]}"
