"""optuna-dashboard, started for real on 127.0.0.1, reads a study the CLI made."""

import optuna
import pytest

from conftest import dashboard, get_json, run_cli


def test_dashboard_serves_the_cli_study(tmp_path, data_dir):
    run_cli("--budget", "8000", "--trials", "3", "--epochs", "2", "--subset", "600", "--top-k", "0",
            "--data-dir", str(data_dir), "--study-name", "dash", cwd=tmp_path, check=True)
    url = f"sqlite:///{tmp_path}/studies/dash.db"
    with dashboard(url) as base:
        studies = get_json(f"{base}/api/studies")["study_summaries"]
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
    with dashboard(str(path)) as base:
        [summary] = get_json(f"{base}/api/studies")["study_summaries"]
        assert summary["study_name"] == "kept"
        detail = get_json(f"{base}/api/studies/{summary['study_id']}")
        assert [t["values"] for t in detail["trials"]] == [[97.5], [98.25]]
        assert all(t["intermediate_values"] for t in detail["trials"])
