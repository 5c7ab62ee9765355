"""Many workers and faults: SQLite with 4 workers, a real PostgreSQL server, SIGKILL, SIGINT."""

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import cli_env, counted, run_cli

SMALL = ["--epochs", "1", "--subset", "400", "--sampler", "random", "--top-k", "0", "--budget", "6000"]


def test_four_workers_on_one_sqlite_file_finish_exactly_n(tmp_path, data_dir):
    proc = run_cli(*SMALL, "--trials", "10", "--workers", "4", "--data-dir", str(data_dir),
                   "--study-name", "four", cwd=tmp_path, check=True)
    study = optuna.load_study(study_name="four", storage=f"sqlite:///{tmp_path}/studies/four.db")
    assert len(counted(study)) == 10
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    failed = [t for t in study.trials if t.state == TrialState.FAIL and "surplus" not in t.user_attrs]
    assert failed == [], [t.user_attrs.get("fail_reason") for t in failed]
    assert "locked" not in proc.stdout + proc.stderr


# --- a real PostgreSQL server, started by the test ---------------------------------------------

def _pg_bin() -> Path | None:
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "initdb").exists():
            return d
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql); "
                    "the multi-machine storage test needs a real server")
    base = Path(tempfile.mkdtemp(prefix="budgetnas-pg-", dir="/tmp"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: use the package's postgres account
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    data = base / "data"
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "bn", "--no-sync"],
                   check=True, capture_output=True)
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                    f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://bn@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_two_workers_on_postgresql_finish_exactly_n(tmp_path, data_dir, postgres_url):
    run_cli(*SMALL, "--trials", "6", "--workers", "2", "--storage", postgres_url, "--data-dir", str(data_dir),
            "--study-name", "pg", cwd=tmp_path, check=True)
    study = optuna.load_study(study_name="pg", storage=postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    assert len(counted(study)) == 6
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    again = run_cli("leaderboard", "--study", "pg", "--storage", postgres_url, cwd=tmp_path, check=True)
    assert "trial" in again.stdout


# --- faults -------------------------------------------------------------------------------------

def _start(args, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "search", *args], cwd=cwd, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_running_trial(url: str, name: str, proc: subprocess.Popen, timeout: float = 120) -> int:
    """Poll the SQLite file read-only (never creating a schema beside the CLI) for a trial that
    is RUNNING and has reported at least one epoch."""
    path = url.removeprefix("sqlite:///")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
                row = con.execute(
                    "SELECT t.number FROM trials t JOIN trial_intermediate_values v ON v.trial_id = t.trial_id "
                    "WHERE t.state = 'RUNNING' LIMIT 1").fetchone()
            if row:
                return row[0]
        except sqlite3.Error:
            pass  # not created yet
        time.sleep(0.3)
    raise AssertionError("no trial reached its first epoch in time")


LONG = ["--budget", "8000", "--epochs", "4", "--subset", "4000", "--sampler", "random", "--top-k", "0",
        "--heartbeat", "1", "--no-baselines"]


def _start_until_mid_trial(cwd, data_dir, name: str, *extra: str):
    """Start a long search; return (its args, storage URL, process, number of a trial mid-training)."""
    args = [*LONG, *extra, "--data-dir", str(data_dir), "--study-name", name]
    url = f"sqlite:///{cwd}/studies/{name}.db"
    proc = _start(args, cwd)
    return args, url, proc, _wait_for_running_trial(url, name, proc)


def test_sigkill_mid_trial_leaves_no_running_trial_after_resume(tmp_path, data_dir):
    args, url, proc, victim = _start_until_mid_trial(tmp_path, data_dir, "killed", "--trials", "3")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    study = optuna.load_study(study_name="killed", storage=url)
    assert study.trials[victim].state == TrialState.RUNNING  # what a killed worker leaves behind
    time.sleep(3.5)  # past the grace period (3 x --heartbeat)
    run_cli(*args, cwd=tmp_path, check=True)
    study = optuna.load_study(study_name="killed", storage=url)
    assert study.trials[victim].state == TrialState.FAIL
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    assert len(counted(study)) == 3
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim]
    assert retried and retried[0].params == study.trials[victim].params


def test_sigint_closes_the_trial_exits_130_and_resumes(tmp_path, data_dir):
    args, url, proc, victim = _start_until_mid_trial(tmp_path, data_dir, "ctrlc", "--trials", "2")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert [l for l in err.strip().splitlines() if l.startswith("interrupted:")], err[-2000:]
    assert "Traceback" not in err
    study = optuna.load_study(study_name="ctrlc", storage=url)
    assert study.trials[victim].state == TrialState.FAIL
    assert not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.COMPLETE) and t.number == victim]
    run_cli(*args, cwd=tmp_path, check=True)
    study = optuna.load_study(study_name="ctrlc", storage=url)
    assert len(counted(study)) == 2 and not [t for t in study.trials if t.state == TrialState.RUNNING]


def test_sigterm_to_a_multi_worker_search_exits_130(tmp_path, data_dir):
    _, url, proc, _ = _start_until_mid_trial(tmp_path, data_dir, "term", "--trials", "4", "--workers", "2")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=90)
    assert proc.returncode == 130
    study = optuna.load_study(study_name="term", storage=url)
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]


def test_consecutive_failures_stop_the_search(tmp_path, data_dir):
    # lr so large that every candidate's loss overflows: each trial fails with its reason stored
    env_args = [*SMALL, "--trials", "5", "--max-failures", "2", "--data-dir", str(data_dir), "--study-name", "boom",
                "--no-baselines"]
    code = (
        "import sys, space.sampling as s; from dataclasses import replace\n"
        "orig = s.sample_recipe\n"
        "s.sample_recipe = lambda trial, epochs: replace(orig(trial, epochs), lr=1e12, schedule='step', gamma=1.0)\n"
        "from search.cli import main; sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *env_args], cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "stopped after 2 consecutive failed trials" in proc.stderr
    study = optuna.load_study(study_name="boom", storage=f"sqlite:///{tmp_path}/studies/boom.db")
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 2 and all("NonFiniteLoss" in t.user_attrs["fail_reason"] for t in failed)
