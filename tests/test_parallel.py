"""Many workers and faults: SQLite with 4 workers, a real PostgreSQL server, SIGKILL, SIGINT."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import cli_env, counted, require, run_cli, run_patched, wait_for_running_trial
from search.store.storage import open_storage
from search.store.records import start_label

SMALL = ["--epochs", "1", "--subset", "400", "--sampler", "random", "--top-k", "0", "--budget", "6000"]


def test_four_workers_on_one_sqlite_file_finish_exactly_n(tmp_path, data_dir):
    # with the start points queued first: each queued trial must run exactly once
    proc = run_cli(*SMALL, "--trials", "10", "--workers", "4", "--data-dir", str(data_dir),
                   "--study-name", "four", cwd=tmp_path, check=True)
    study = optuna.load_study(study_name="four", storage=f"sqlite:///{tmp_path}/studies/four.db")
    assert len(counted(study)) == 10
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    failed = [t for t in study.trials if t.state == TrialState.FAIL and "surplus" not in t.user_attrs]
    assert failed == [], [t.user_attrs.get("fail_reason") for t in failed]
    assert "locked" not in proc.stdout + proc.stderr
    starts = [label for t in study.trials if (label := start_label(t.user_attrs))]
    assert starts and len(starts) == len(set(starts))


def test_each_queued_trial_is_claimed_by_exactly_one_of_four_racing_storages(tmp_path):
    # Optuna's own claim (read WAITING, then write RUNNING) let two SQLite connections both win
    # (dozens of 300 claims twice, in threads and in processes, before this storage); ours never.
    url = f"sqlite:///{tmp_path}/claims.db"
    study = optuna.create_study(study_name="claims", storage=open_storage(url))
    for x in range(300):
        study.enqueue_trial({"x": x}, skip_if_exists=False)
    storages = [open_storage(url, create=False) for _ in range(4)]
    study_id = storages[0].get_study_id_from_name("claims")

    def claim_all(storage) -> list[int]:
        waiting = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,))
        return [t.number for t in waiting if storage.set_trial_state_values(t._trial_id, TrialState.RUNNING)]

    with ThreadPoolExecutor(len(storages)) as pool:
        claims = [n for won in pool.map(claim_all, storages) for n in won]
    assert sorted(claims) == list(range(300))
    finished = study.trials[0]
    storages[0].set_trial_state_values(finished._trial_id, TrialState.COMPLETE, [1.0])
    assert not storages[1].set_trial_state_values(finished._trial_id, TrialState.RUNNING)  # no exception


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
    require(bindir is not None, "PostgreSQL server binaries not found (apt-get install postgresql); "
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
    rows = [l for l in again.stdout.splitlines() if l.split() and l.split()[0].isdigit()]
    complete = [t for t in counted(study) if t.state == TrialState.COMPLETE]
    assert len(rows) == len(complete) > 0
    assert {int(l.split()[1]) for l in rows} == {t.number for t in complete}


def test_two_machines_start_the_same_fresh_study_at_once(tmp_path, data_dir, postgres_url):
    """Both see a fresh study; the baselines must still be trained once each, not twice."""
    args = ["--budget", "10000", "--trials", "3", "--epochs", "1", "--subset", "400", "--sampler", "random",
            "--top-k", "0", "--storage", postgres_url, "--study-name", "race", "--data-dir", str(data_dir)]
    cwds = [tmp_path / "m0", tmp_path / "m1"]
    for c in cwds:
        c.mkdir()
    procs = [_start(args, c) for c in cwds]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name="race", storage=postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    baselines = [t.user_attrs["baseline"] for t in counted(study) if "baseline" in t.user_attrs]
    assert sorted(baselines) == ["seed-000", "seed-004"]  # each preset that fits 10,000, exactly once
    assert len(counted(study)) == 3


# --- faults -------------------------------------------------------------------------------------

def _start(args, cwd, new_group: bool = False) -> subprocess.Popen:
    """Start the CLI; new_group=True gives it its own process group, as a terminal does."""
    return subprocess.Popen([sys.executable, "-m", "search", *args], cwd=cwd, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=new_group)


LONG = ["--budget", "8000", "--epochs", "4", "--search-epochs", "4", "--subset", "4000", "--sampler", "random", "--top-k", "0",
        "--heartbeat", "1", "--no-baselines"]


def _start_until_mid_trial(cwd, data_dir, name: str, *extra: str, base=LONG, new_group: bool = False):
    """Start a long search; return (its args, storage URL, process, number of a trial mid-training)."""
    args = [*base, *extra, "--data-dir", str(data_dir), "--study-name", name]
    url = f"sqlite:///{cwd}/studies/{name}.db"
    proc = _start(args, cwd, new_group)
    return args, url, proc, wait_for_running_trial(url, proc)


@pytest.mark.slow  # test_running_trial_without_heartbeat_is_recovered covers the recovery path faster
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
    assert proc.returncode == 130, err[-3000:]
    assert [l for l in err.strip().splitlines() if l.startswith("interrupted:")], err[-2000:]
    assert "Traceback" not in err
    study = optuna.load_study(study_name="ctrlc", storage=url)
    assert study.trials[victim].state == TrialState.FAIL
    assert not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.COMPLETE) and t.number == victim]
    run_cli(*args, cwd=tmp_path, check=True)
    study = optuna.load_study(study_name="ctrlc", storage=url)
    assert len(counted(study)) == 2 and not [t for t in study.trials if t.state == TrialState.RUNNING]


def test_an_interrupt_whose_clean_up_fails_still_exits_130_without_a_traceback(tmp_path, data_dir):
    """Ctrl-C can land inside a storage write; the clean-up's own write (here the search clock)
    may then fail. That is still an interrupt: one line naming what failed, exit code 130."""
    patch = (
        "import sqlite3, search.job.run as r\n"
        "def interrupted(*a, **k): raise KeyboardInterrupt\n"
        "def locked(*a, **k): raise sqlite3.OperationalError('database is locked')\n"
        "r.run_worker, r.set_search_seconds = interrupted, locked\n"
    )
    args = [*SMALL, "--trials", "2", "--no-baselines", "--data-dir", str(data_dir), "--study-name", "late"]
    proc = run_patched(patch, args, tmp_path, timeout=120)
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    (line,) = [l for l in proc.stderr.splitlines() if l.startswith("interrupted:")]
    assert line.endswith("closing up failed: OperationalError: database is locked")


def test_sigterm_to_a_multi_worker_search_exits_130(tmp_path, data_dir):
    _, url, proc, _ = _start_until_mid_trial(tmp_path, data_dir, "term", "--trials", "4", "--workers", "2")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err[-2000:]
    study = optuna.load_study(study_name="term", storage=url)
    assert not [t for t in study.trials if t.state == TrialState.RUNNING], err[-2000:]


# A signal sent by the process to itself right at the storage write, so that it lands where a
# real one lands by chance (a worker asked to stop while it opens or closes a trial).
_SIGNAL_AT_WRITE = (
    "import os, signal\n"
    "from optuna.trial import TrialState\n"
    "import search.store.storage as s\n"
    "sent = []\n"
    "def once():\n"
    "    if not sent:\n"
    "        sent.append(1)\n"
    "        os.kill(os.getpid(), signal.SIGINT)\n"
    "create, transit = s.ClaimingStorage._create_new_trial, s.ClaimingStorage.set_trial_state_values\n"
)


@pytest.mark.parametrize("where", ["opened", "closing"])
def test_a_signal_at_a_trial_s_storage_write_leaves_no_running_trial(tmp_path, data_dir, where):
    """A signal right after a trial is opened (inside Optuna's ask) or right before its result is
    written (inside its tell) used to cut those writes and leave the trial RUNNING. The signal
    waits for the write: an opened trial is closed as FAIL, a finished one keeps its result."""
    hook = {
        "opened": ("def opened(self, study_id, template_trial=None):\n"
                   "    trial = create(self, study_id, template_trial)\n"
                   "    if template_trial is None:\n"
                   "        once()\n"
                   "    return trial\n"
                   "s.ClaimingStorage._create_new_trial = opened\n"),
        "closing": ("def closing(self, trial_id, state, values=None):\n"
                    "    if state == TrialState.COMPLETE:\n"
                    "        once()\n"
                    "    return transit(self, trial_id, state, values)\n"
                    "s.ClaimingStorage.set_trial_state_values = closing\n"),
    }[where]
    args = [*SMALL, "--trials", "2", "--no-baselines", "--data-dir", str(data_dir),
            "--study-name", where]
    proc = run_patched(_SIGNAL_AT_WRITE + hook, args, tmp_path, timeout=120)
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    study = optuna.load_study(study_name=where, storage=f"sqlite:///{tmp_path}/studies/{where}.db")
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL if where == "opened" else TrialState.COMPLETE], proc.stderr[-2000:]
    run_cli(*args, cwd=tmp_path, check=True)
    assert len(counted(optuna.load_study(study_name=where, storage=f"sqlite:///{tmp_path}/studies/{where}.db"))) == 2


@pytest.mark.slow  # the SIGTERM multi-worker and the SIGINT tests cover its two halves faster
def test_ctrl_c_to_the_whole_process_group_of_a_multi_worker_search(tmp_path, data_dir):
    """A terminal's Ctrl-C reaches the parent and every worker at once; the parent then also
    signals its workers. Nothing may be left RUNNING, and no traceback shown."""
    args, url, proc, _ = _start_until_mid_trial(tmp_path, data_dir, "group", "--trials", "4", "--workers", "2",
                                                new_group=True)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err + out
    study = optuna.load_study(study_name="group", storage=url)
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    run_cli(*args, cwd=tmp_path, check=True)
    assert len(counted(optuna.load_study(study_name="group", storage=url))) == 4


def test_running_trial_without_heartbeat_is_recovered(tmp_path, data_dir):
    """A worker killed between creating its trial and its first heartbeat leaves a RUNNING trial
    that Optuna's stale check cannot see; the search must neither count it for ever nor hang."""
    args = [*SMALL, "--heartbeat", "1", "--no-baselines", "--data-dir", str(data_dir), "--study-name", "orphan"]
    run_cli(*args, "--trials", "1", cwd=tmp_path, check=True)
    url = f"sqlite:///{tmp_path}/studies/orphan.db"
    orphan = optuna.load_study(study_name="orphan", storage=url).ask()  # RUNNING, never beats
    proc = run_cli(*args, "--trials", "2", cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = optuna.load_study(study_name="orphan", storage=url)
    assert study.trials[orphan.number].state == TrialState.FAIL
    assert len(counted(study)) == 2 and not [t for t in study.trials if t.state == TrialState.RUNNING]


def test_readers_in_other_processes_do_not_break_a_running_search(tmp_path, data_dir):
    """leaderboard, report, show --trial and optuna.load_study, from other processes, all through a
    search and its confirmation: the search still ends with exit code 0."""
    name = "busy"
    args = ["--budget", "6000", "--trials", "5", "--epochs", "2", "--subset", "1500", "--sampler", "random",
            "--top-k", "2", "--confirm-seeds", "2", "--confirm-cap", "2", "--data-dir", str(data_dir), "--study-name", name]
    db = tmp_path / "studies" / f"{name}.db"
    readers = [
        ["leaderboard", "--study", name],
        ["report", "--study", name, "--out", str(tmp_path / "report.html")],
        ["show", "--study", name, "--trial", "0"],
    ]
    script = f"import optuna; print(len(optuna.load_study(study_name={name!r}, storage={f'sqlite:///{db}'!r}).trials))"
    proc = _start(args, tmp_path)
    ok, i = 0, 0
    while proc.poll() is None:
        if db.exists():
            cmd = ([sys.executable, "-c", script] if i % 4 == 3 else [sys.executable, "-m", "search", *readers[i % 4]])
            r = subprocess.run(cmd, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
            ok += r.returncode == 0
            i += 1
        else:
            time.sleep(0.2)
    out, err = proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    assert "winner: trial" in out
    assert ok >= 4, f"only {ok} of {i} reads succeeded"


def test_consecutive_failures_stop_the_search(tmp_path, data_dir):
    # an infinite learning rate turns every weight non-finite after the first step, whatever the
    # design: each trial fails with its reason stored
    env_args = [*SMALL, "--trials", "5", "--max-failures", "2", "--data-dir", str(data_dir), "--study-name", "boom",
                "--no-baselines"]
    patch = (
        "import space.sampling as s; from dataclasses import replace\n"
        "orig = s.sample_recipe\n"
        "s.sample_recipe = lambda trial, epochs, **kw: replace(orig(trial, epochs, **kw), lr=float('inf'), schedule='step', gamma=1.0)\n"
    )
    proc = run_patched(patch, env_args, tmp_path, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "stopped after 2 consecutive failed trials" in proc.stderr
    study = optuna.load_study(study_name="boom", storage=f"sqlite:///{tmp_path}/studies/boom.db")
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 2 and all("NonFiniteLoss" in t.user_attrs["fail_reason"] for t in failed)
