"""optuna-dashboard, started for real on 127.0.0.1, reads a study the CLI made."""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from conftest import require, run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    req = urllib.request.Request(url, headers={"Accept": "application/json", "Accept-Encoding": "identity"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def dashboard_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("optuna-dashboard")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("optuna-dashboard")
    require(bool(found), "optuna-dashboard is not installed (pip install 'budgetnas[dashboard]')")
    return [found]


def test_dashboard_serves_the_cli_study(tmp_path, data_dir):
    run_cli("--budget", "8000", "--trials", "3", "--epochs", "2", "--subset", "600", "--top-k", "0",
            "--data-dir", str(data_dir), "--study-name", "dash", cwd=tmp_path, check=True)
    url = f"sqlite:///{tmp_path}/studies/dash.db"
    port = free_port()
    proc = subprocess.Popen([*dashboard_cmd(), url, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                studies = get_json(f"{base}/api/studies")["study_summaries"]
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.5)
        [summary] = [s for s in studies if s["study_name"] == "dash"]
        detail = get_json(f"{base}/api/studies/{summary['study_id']}")
        study = optuna.load_study(study_name="dash", storage=url)
        assert len(detail["trials"]) == len(study.trials) >= 3
        by_number = {t["number"]: t for t in detail["trials"]}
        for t in study.trials:
            d = by_number[t.number]
            assert d["state"].lower() == t.state.name.lower()
            attrs = {a["key"]: a["value"] for a in d["user_attrs"]}
            if "params" in t.user_attrs:
                assert str(t.user_attrs["params"]) in attrs["params"]
            if t.values:
                assert d["values"] == pytest.approx(t.values)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_dashboard_serves_a_study_archive(tmp_path):
    from search.store.archive import write_archive

    url = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(study_name="kept", storage=url, direction="maximize")
    for v in (97.5, 98.25):
        t = study.ask()
        t.report(v - 1, 1)
        t.set_user_attr("params", 7992)
        study.tell(t, v)
    study.set_user_attr("verdict", ["winner vs seed-004: +0.16 test"])
    path = write_archive(study._storage, "kept", tmp_path / "archive" / "kept.jsonl")
    port = free_port()
    proc = subprocess.Popen([*dashboard_cmd(), str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                [summary] = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.5)
        assert summary["study_name"] == "kept"
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}")
        assert [t["values"] for t in detail["trials"]] == [[97.5], [98.25]]
        assert all(t["intermediate_values"] for t in detail["trials"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
