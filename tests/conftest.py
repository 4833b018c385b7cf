"""Session-wide fixtures: a tiny dataset made by the real generator, a tiny checkpoint trained on it
by the real trainer, and a real `maskel serve` process on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("ANNY_CACHE_DIR", str(Path.home() / ".cache" / "maskel" / "anny"))
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def run_module(module: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` from the repository root; fail the test with its output on error."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        pytest.fail(f"python -m {module} {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 phantom samples at 64² from `python -m render.dataset`."""
    out = tmp_path_factory.mktemp("tiny_dataset")
    run_module("render.dataset", "--n", "24", "--size", "64", "--out", str(out), "--seed", "7", "--workers", "1")
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stage-2 generator trained for a few steps with the `tiny` preset (path to its .safetensors)."""
    runs = tmp_path_factory.mktemp("tiny_runs")
    run_module("maskel.train", "stage1", "--config", "tiny", "--data", str(tiny_dataset), "--out", str(runs / "s1"))
    run_module(
        "maskel.train", "stage2", "--config", "tiny", "--data", str(tiny_dataset), "--out", str(runs / "s2"),
        "--stage1", str(runs / "s1" / "last.safetensors"),
    )  # fmt: skip
    return runs / "s2" / "last.safetensors"


@pytest.fixture(scope="session")
def maskel_server(tiny_checkpoint: Path):
    """Base URL of a real `maskel serve` on a free 127.0.0.1 port, serving the tiny checkpoint."""
    from tests._server import start_server

    with start_server(checkpoint=tiny_checkpoint) as server:
        yield server.url
