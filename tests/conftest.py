"""Shared fixtures: the real MNIST (fetched once into the repo's data/), small device splits."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "data"

warnings.filterwarnings("ignore", message=".*experimental.*")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from trainers import ensure_dataset

    ensure_dataset("mnist", DATA_DIR)
    return DATA_DIR


@pytest.fixture(scope="session")
def small_data(data_dir):
    from trainers import load_data

    return load_data("mnist", data_dir, "cpu", subset=2000, seed=0)


def run_cli(*args: str, cwd: Path, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess:
    """Run `python -m search ARGS` as a user would, from `cwd` (studies/ lands there)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "search", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc
