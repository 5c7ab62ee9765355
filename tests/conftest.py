"""Shared fixtures and helpers: the real MNIST (fetched once into the repo's data/), small device
splits, the CLI in its own process, optuna-dashboard started for real."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import forked_cli
from search.process import child_env as cli_env  # tests import it from here

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


def require(ok: bool, reason: str) -> None:
    """A test whose tool is missing skips with the reason; in CI (CI=true) it fails instead, so CI
    cannot go green with that feature untested."""
    if ok:
        return
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI=true and a required tool is missing: {reason}")
    pytest.skip(reason)


def counted(study) -> list:
    """Trials --trials counts, written out independently of search.store.study.is_counted."""
    from optuna.trial import TrialState

    return [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            and "infeasible" not in t.user_attrs and "surplus" not in t.user_attrs]


def run_cli(*args: str, cwd: Path, timeout: float = 600, check: bool = False,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python -m search ARGS` as a user would, from `cwd` (studies/ lands there), in its own
    process (forked_cli: without paying torch's import again)."""
    proc = forked_cli.run(list(args), cwd, {**cli_env(), **(env or {})}, timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def run_patched(patch: str, args: list[str], cwd, timeout: float) -> subprocess.CompletedProcess:
    """The CLI run as a user would, after `patch` (Python source) has replaced some of its parts."""
    return forked_cli.run(list(args), cwd, cli_env(), timeout, patch=patch)


def wait_for_running_trial(url: str, proc: subprocess.Popen, timeout: float = 180) -> int:
    """Poll the SQLite file read-only (never creating a schema beside the CLI) for a trial that is
    RUNNING and has reported at least one epoch; return its number."""
    import sqlite3

    path = url.removeprefix("sqlite:///")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
                row = con.execute(
                    "SELECT t.number FROM trials t JOIN trial_intermediate_values v ON v.trial_id = t.trial_id "
                    "WHERE t.state = 'RUNNING' LIMIT 1").fetchone()
            if row:
                return row[0]
        except sqlite3.Error:
            pass  # not created yet
        time.sleep(0.3)
    raise AssertionError("no trial reached its first epoch in time")


def get_json(url: str) -> dict:
    req = urllib.request.Request(url, headers={"Accept": "application/json", "Accept-Encoding": "identity"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@contextlib.contextmanager
def dashboard(storage: str) -> Iterator[str]:
    """optuna-dashboard started for real on a free local port over `storage` (a database URL or a
    journal file); yields its base URL once its API answers, and stops it after."""
    exe = Path(sys.executable).with_name("optuna-dashboard")
    found = str(exe) if exe.exists() else shutil.which("optuna-dashboard")
    require(bool(found), "optuna-dashboard is not installed (pip install 'budgetnas[dashboard]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([found, storage, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get_json(f"{base}/api/studies")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
