"""End to end: the CLI on small subsets, real SQLite files, real Optuna."""

import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from conftest import counted, run_cli
from space import ArchSpec, count_params

BASE = ["--epochs", "2", "--subset", "1500", "--sampler", "random", "--seed", "1"]


def load(cwd, name):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{cwd}/studies/{name}.db")


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, data_dir):
    cwd = tmp_path_factory.mktemp("e2e")
    proc = run_cli("--budget", "8000", "--trials", "10", *BASE, "--data-dir", str(data_dir),
                   "--study-name", "e2e", "--top-k", "1", "--confirm-seeds", "2", "--confirm-cap", "2",
                   "--pruner", "median", cwd=cwd, check=True)  # no race here: tests/test_verdict.py races
    return cwd, proc


def test_study_is_standard_optuna_storage_with_n_trials(e2e):
    cwd, proc = e2e
    study = load(cwd, "e2e")
    assert len(counted(study)) == 10
    assert study.user_attrs["config"]["budget"] == 8000
    assert "winner: trial" in proc.stdout


def test_no_trained_candidate_exceeds_budget(e2e):
    cwd, _ = e2e
    trained = [t for t in load(cwd, "e2e").trials if t.user_attrs.get("val_acc")]
    assert trained
    for t in trained:
        spec = ArchSpec.from_dict(t.user_attrs["spec"])
        assert count_params(spec) == t.user_attrs["params"] <= 8000


def test_trials_carry_spec_cost_and_curves(e2e):
    cwd, _ = e2e
    study = load(cwd, "e2e")
    assert study.trials[0].user_attrs["baseline"] == "seed-004"
    # the presets over budget follow as start points, fitted by the sampler
    assert [t.user_attrs["start"] for t in study.trials[1:3]] == ["seed-000 fitted", "seed-002 fitted"]
    for t in counted(study):
        a = t.user_attrs
        assert {"spec", "recipe", "params", "macs", "receptive_field", "epoch_seconds", "val_acc"} <= set(a)
        assert len(a["val_acc"]) == len(t.intermediate_values) == len(a["epoch_seconds"])
        if t.state == TrialState.COMPLETE:
            assert t.value == a["val_acc"][-1] and len(a["val_acc"]) == 2


def test_pruning_happens(e2e):
    cwd, _ = e2e
    pruned = [t for t in counted(load(cwd, "e2e")) if t.state == TrialState.PRUNED]
    assert pruned and all(len(t.user_attrs["val_acc"]) == 1 for t in pruned)


def test_winner_confirmed_and_leaderboard_reads_storage(e2e):
    cwd, proc = e2e
    study = load(cwd, "e2e")
    searched = [t for t in study.trials if t.state == TrialState.COMPLETE and "baseline" not in t.user_attrs]
    best = max(searched, key=lambda t: t.value)
    baseline = next(t for t in study.trials if t.user_attrs.get("baseline") == "seed-004")
    confirmed = sorted((t for t in study.trials if "confirm" in t.user_attrs), key=lambda t: t.number != best.number)
    assert {t.number for t in confirmed} == {best.number, baseline.number}  # top-1 searched and the baseline
    c = confirmed[0].user_attrs["confirm"]
    assert c["seeds"] == 2 and len(c["test_acc"]) == 2 and len(c["test_acc"][0]) == 2
    assert len(c["val_acc"]) == 2 and c["val_acc_mean"] == round(sum(v[-1] for v in c["val_acc"]) / 2, 4)
    assert c["test_acc_min"] <= c["test_acc_mean"] and c["train_images"] == 1500  # the training split
    winner = max(sorted(confirmed, key=lambda t: t.number), key=lambda t: t.user_attrs["confirm"]["val_acc_mean"])
    again = run_cli("leaderboard", "--study", "e2e", cwd=cwd, check=True)
    assert f"winner: trial {winner.number}" in again.stdout
    line = next(x for x in again.stdout.splitlines() if x.startswith("winner: trial"))
    assert "refit on 1,800 images" in line  # 1,500 train + 300 val


def test_the_winner_and_the_baseline_are_refit_on_train_and_val(e2e):
    cwd, _ = e2e
    study = load(cwd, "e2e")
    refit = [t for t in study.trials if "refit" in t.user_attrs]
    confirmed = [t for t in study.trials if "confirm" in t.user_attrs]
    winner = max(confirmed, key=lambda t: t.user_attrs["confirm"]["val_acc_mean"])
    baseline = next(t for t in study.trials if t.user_attrs.get("baseline") == "seed-004")
    assert {t.number for t in refit} == {winner.number, baseline.number}
    for t in refit:
        r, c = t.user_attrs["refit"], t.user_attrs["confirm"]
        assert r["seeds"] == 2 and len(r["test_acc"]) == 2 and len(r["test_acc"][0]) == 2
        assert r["train_images"] == 1800 and "val_acc" not in r and "val_acc_mean" not in r
        assert r["test_acc_mean"] == round(sum(c[-1] for c in r["test_acc"]) / 2, 4)
        assert r["weights_artifact"] != c["weights_artifact"] and r["seed_base"] == c["seed_base"]
        assert r["test_acc"] != c["test_acc"]  # more images, other weights, other curves


def test_wall_time_is_split_into_search_confirmation_and_refit(e2e):
    from search.commands.report_data import clock

    cwd, proc = e2e
    attrs = load(cwd, "e2e").user_attrs
    stages = attrs["stage_seconds"]
    assert set(stages) == {"confirmation", "refit"} and all(v > 0 for v in stages.values())
    line = next(x for x in proc.stdout.splitlines() if x.startswith("wall time: "))
    total = attrs["search_seconds"] + stages["confirmation"] + stages["refit"]
    assert line == (f"wall time: search {clock(attrs['search_seconds'])}, confirmation "
                    f"{clock(stages['confirmation'])}, refit {clock(stages['refit'])}; all {clock(total)}")
    again = run_cli("leaderboard", "--study", "e2e", cwd=cwd, check=True)
    assert line in again.stdout.splitlines()


def test_a_stage_with_seeds_but_no_clock_reads_not_timed_rather_than_not_run():
    """Studies recorded before the stages were timed hold confirmation seeds and no stage clock."""
    from search.commands.leaderboard import time_line
    from search.store.study import add_stage_seconds, set_search_seconds

    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=99.0, user_attrs={"confirm": {"val_acc": [[99.0]]}}))
    set_search_seconds(study, 60)
    assert time_line(study) == ("wall time: search 0:01:00, confirmation not timed, refit not run; "
                                "timed parts 0:01:00")
    add_stage_seconds(study, "confirmation", 120)
    assert time_line(study) == "wall time: search 0:01:00, confirmation 0:02:00, refit not run; all 0:03:00"


def test_default_search_trains_depthwise_designs_within_budget(tmp_path, data_dir):
    """By default (--separable) the space has separable blocks: separable designs train, exactly
    counted; the baseline is enqueued with its params in that space; a resume with --no-separable
    is refused."""
    args = ["--budget", "8000", "--trials", "5", "--epochs", "1", "--subset", "600", "--sampler", "random",
            "--seed", "2", "--top-k", "0", "--data-dir", str(data_dir), "--study-name", "sep"]
    run_cli(*args, cwd=tmp_path, check=True)
    study = load(tmp_path, "sep")
    assert study.user_attrs["config"]["separable"] is True
    assert study.trials[0].user_attrs["baseline"] == "seed-004" and study.trials[0].params["b1_separable"] is False
    specs = [ArchSpec.from_dict(t.user_attrs["spec"]) for t in counted(study)]
    assert any(b.separable for s in specs for b in s.blocks)
    assert all(count_params(s) <= 8000 for s in specs)
    proc = run_cli(*args, "--trials", "6", "--no-separable", cwd=tmp_path)
    assert proc.returncode == 2 and "separable=True (asked False)" in proc.stderr
    assert len(counted(load(tmp_path, "sep"))) == 5


def test_resume_tops_up_to_exactly_n(tmp_path, data_dir):
    args = ["--budget", "6000", *BASE, "--data-dir", str(data_dir), "--study-name", "topup", "--top-k", "0",
            "--no-separable"]
    run_cli(*args, "--trials", "3", cwd=tmp_path, check=True)
    assert len(counted(load(tmp_path, "topup"))) == 3
    run_cli(*args, "--trials", "5", cwd=tmp_path, check=True)
    study = load(tmp_path, "topup")
    assert len(counted(study)) == 5
    assert sum("baseline" in t.user_attrs for t in study.trials) == 0  # no preset fits 6000
    starts = [t.user_attrs.get("start") for t in study.trials if "start" in t.user_attrs]
    assert starts == ["seed-004 fitted", "seed-000 fitted", "seed-002 fitted"]  # once, not again on resume
    run_cli(*args, "--trials", "5", cwd=tmp_path, check=True)
    assert len(load(tmp_path, "topup").trials) == len(study.trials)  # nothing more to do


def test_timeout_is_summed_over_runs_of_the_study(tmp_path, data_dir):
    from search.store.records import trial_seconds
    from search.store.study import search_seconds

    args = ["--budget", "6000", *BASE, "--data-dir", str(data_dir), "--study-name", "clock", "--top-k", "0",
            "--no-separable", "--trials", "20", "--subset", "4000"]  # trials of a few seconds
    t0 = time.monotonic()
    run_cli(*args, "--timeout", "1", cwd=tmp_path, check=True)  # the first trial outlasts the second
    spent = search_seconds(load(tmp_path, "clock"))
    (trial,) = counted(load(tmp_path, "clock"))
    took = trial_seconds(trial)
    assert took - 0.2 <= spent < min(1.5 * took, time.monotonic() - t0)  # the trial, counted once (to 0.1 s)
    again = run_cli(*args, "--timeout", "1", cwd=tmp_path, check=True)
    assert "nothing left to search" in again.stdout
    assert len(counted(load(tmp_path, "clock"))) == 1 and search_seconds(load(tmp_path, "clock")) == spent
    t0 = time.monotonic()
    run_cli(*args, "--timeout", f"{spent + 0.5}", cwd=tmp_path, check=True)  # half a second more: one trial
    study = load(tmp_path, "clock")
    assert len(counted(study)) == 2 and spent + 0.5 < search_seconds(study) < spent + time.monotonic() - t0


def test_a_study_stored_before_the_search_clock_is_credited_its_trial_durations():
    import datetime

    from search.store.study import search_seconds, set_search_seconds

    study = optuna.create_study(direction="maximize")
    start = datetime.datetime(2026, 1, 1, 12, 0, 0)
    for minutes, state in ((3, TrialState.COMPLETE), (2, TrialState.PRUNED)):
        study.add_trial(optuna.trial.FrozenTrial(
            number=0, state=state, value=99.0 if state == TrialState.COMPLETE else None, values=None,
            datetime_start=start, datetime_complete=start + datetime.timedelta(minutes=minutes), params={},
            distributions={}, user_attrs={}, system_attrs={}, intermediate_values={}, trial_id=0))
    assert search_seconds(study) == 300
    set_search_seconds(study, 60)  # once kept, the stored figure is what counts
    assert search_seconds(study) == 60


def test_a_study_stored_before_the_separable_option_stays_plain():
    from search.config import SearchConfig

    stored = SearchConfig(budget=8000).to_dict()
    del stored["separable"]
    assert SearchConfig.from_dict(stored).separable is False
    assert SearchConfig.from_dict({**stored, "separable": True}).separable is True


def test_resume_with_other_budget_is_refused_and_changes_nothing(tmp_path, data_dir):
    args = [*BASE, "--data-dir", str(data_dir), "--study-name", "same", "--top-k", "0", "--trials", "2"]
    run_cli("--budget", "5000", *args, cwd=tmp_path, check=True)
    db = tmp_path / "studies" / "same.db"
    before = [(t.number, t.state, t.value) for t in load(tmp_path, "same").trials]
    proc = run_cli("--budget", "7000", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert "budget=5000 (asked 7000)" in proc.stderr and "Traceback" not in proc.stderr
    assert [(t.number, t.state, t.value) for t in load(tmp_path, "same").trials] == before
    assert db.exists()


def test_over_budget_candidate_is_never_built(tmp_path, data_dir, monkeypatch):
    """Spy on the trainer's build: every model it builds must fit; tight budget forces repairs."""
    from search.config import SearchConfig
    from search.job.run import run_search
    from space import build as real_build

    train_mod = sys.modules["trainers.loop"]
    built = []

    def spy(spec):
        built.append(count_params(spec))
        assert count_params(spec) <= 900, "an over-budget candidate reached the trainer"
        return real_build(spec)

    monkeypatch.setattr(train_mod, "build", spy)
    monkeypatch.chdir(tmp_path)
    # the plain space: at 900 its draws are often infeasible (separable blocks make more of them fit)
    cfg = SearchConfig(budget=900, trials=8, epochs=1, subset=500, data_dir=str(data_dir), study_name="tight",
                       storage=f"sqlite:///{tmp_path}/tight.db", sampler="random", top_k=0, seed=2, separable=False)
    run_search(cfg, log=lambda *a: None)
    study = optuna.load_study(study_name="tight", storage=cfg.storage)
    assert len(built) == 8
    assert max(built) <= 900
    assert any("infeasible" in t.user_attrs for t in study.trials)


def test_device_caps_bind_every_trained_candidate_and_the_study(tmp_path, data_dir, monkeypatch):
    """With --max-macs and --max-ram every model the trainer builds fits both (a spy on build); a
    preset that fits the parameters but not the caps starts fitted, not as a baseline; the caps
    are the study's identity; the leaderboard shows each design's MACs and peak memory."""
    from search.config import SearchConfig
    from search.job.run import run_search
    from space import Budget, build as real_build

    cap = Budget(8000, macs=300_000, ram=8 * 1024)
    built = []

    def spy(spec):
        assert cap.fits(spec), cap.over(spec)
        built.append(spec)
        return real_build(spec)

    monkeypatch.setattr(sys.modules["trainers.loop"], "build", spy)
    monkeypatch.chdir(tmp_path)
    cfg = SearchConfig(budget=8000, max_macs=cap.macs, max_ram=cap.ram, trials=4, epochs=1, subset=500,
                       data_dir=str(data_dir), study_name="caps", storage=f"sqlite:///{tmp_path}/studies/caps.db",
                       sampler="random", top_k=0, seed=3)
    run_search(cfg, log=lambda *a: None)
    study = optuna.load_study(study_name="caps", storage=cfg.storage)
    assert len(built) == 4 and not any("baseline" in t.user_attrs for t in study.trials)
    assert study.trials[0].user_attrs["start"] == "seed-004 fitted"  # 8,000 params, but 1.07 M MACs
    assert all(t.user_attrs["macs"] <= cap.macs and t.user_attrs["ram"] <= cap.ram for t in counted(study))
    args = ["--budget", "8000", "--trials", "5", "--epochs", "1", "--subset", "500", "--data-dir", str(data_dir),
            "--study-name", "caps", "--max-ram", "8"]
    proc = run_cli(*args, "--max-macs", "400k", cwd=tmp_path)
    assert proc.returncode == 2 and "max_macs=300000 (asked 400000)" in proc.stderr
    assert len(counted(optuna.load_study(study_name="caps", storage=cfg.storage))) == 4
    board = run_cli("leaderboard", "--study", "caps", cwd=tmp_path, check=True).stdout
    assert "MACs" in board and "RAM KB" in board and "at most 300,000 MACs, peak RAM at most 8.0 KB" in board
    first = counted(study)[0].user_attrs
    assert f"{first['macs'] / 1e6:.2f}M" in board and f"{first['ram'] / 1024:.1f}" in board


def test_a_capped_search_is_its_own_study_by_default():
    """The caps are the study's identity, so by default they are in its name too: the capped and
    the uncapped search at one budget do not refuse each other's study."""
    from search.cli import _search_parser
    from search.config import SearchConfig, frontier_configs
    from search.job.run import frontier_figure_path

    name = SearchConfig.from_args(_search_parser().parse_args(["--budget", "8000", "--max-macs", "1.07M",
                                                               "--max-ram", "12.5"])).study_name
    assert name == "mnist-b8000-macs1.07M-ram12.5KB"
    cfgs = frontier_configs(_search_parser("f", frontier=True).parse_args(["--budgets", "2000,8000", "--max-macs", "1M"]))
    assert [c.study_name for c in cfgs] == ["mnist-b2000-macs1M", "mnist-b8000-macs1M"]
    assert frontier_figure_path(cfgs).name == "frontier-mnist-macs1M.html"


def test_objective_refuses_an_over_budget_candidate(tmp_path, small_data, monkeypatch):
    """Even if sampling broke its promise, the objective would not train the candidate."""
    import search.job.objective as obj
    from search.config import SearchConfig
    from space import PRESETS

    calls = []
    spec, recipe = PRESETS["seed-002"]  # 25,290 params
    monkeypatch.setattr(obj, "candidate", lambda trial, cfg, data: (spec, recipe, count_params(spec)))
    monkeypatch.setattr(obj, "train", lambda *a, **k: calls.append(1))
    cfg = SearchConfig(budget=8000, trials=1)
    study = optuna.create_study(direction="maximize")
    study.optimize(obj.make_objective(cfg, small_data), n_trials=1, catch=(Exception,))
    assert study.trials[0].state == TrialState.FAIL and calls == []
    assert study.trials[0].user_attrs["fail_reason"].startswith("OverBudget")


def test_show_a_trial_of_the_study(e2e):
    cwd, _ = e2e
    proc = run_cli("show", "--study", "e2e", "--trial", "0", cwd=cwd, check=True)
    assert "params: 8,000" in proc.stdout and "Total params: 8,000" in proc.stdout
    assert "receptive field" in proc.stdout and "MACs:" in proc.stdout


def test_train_command_reports_test_accuracy_per_epoch(tmp_path, data_dir):
    import json

    proc = run_cli("train", "--preset", "seed-004", "--epochs", "2", "--subset", "1000", "--data-dir", str(data_dir),
                   "--out", str(tmp_path / "run"), cwd=tmp_path, check=True)
    assert proc.stdout.count("test ") >= 2 and "last-3 min" in proc.stdout
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert len(saved["test_acc"]) == 2 and saved["spec"]["head"] == "gap_conv"
    assert (tmp_path / "run" / "weights.pt").exists()


@pytest.mark.parametrize("command", ["", "data", "show", "train", "leaderboard", "export", "predict", "report", "archive",
                                     "bench"])
def test_help_of_every_command(tmp_path, command):
    proc = run_cli(*([command] if command else []), "--help", cwd=tmp_path, check=True)
    assert "usage: python -m search" in proc.stdout


def _study_with(trials):
    from space import PRESETS

    spec, recipe = PRESETS["seed-004"]
    study = optuna.create_study(direction="maximize")
    for value, confirm in trials:
        attrs = {"params": 8000, "spec": spec.to_dict(), "recipe": recipe.to_dict(), "confirm": confirm}
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs=attrs))
    return study


def _confirm(val, test):
    return {"val_acc_mean": val, "val_acc_std": 0.05, "test_acc_mean": test, "test_acc_std": 0.05,
            "test_acc_min": test - 0.1, "consistency": test - 0.1, "first_epoch_at_target": 9, "seeds": 3}


def test_winner_follows_validation_when_test_disagrees():
    from search.commands.export import pick_trial
    from search.commands.leaderboard import format_leaderboard, leaderboard_rows, winner_line

    # trial 0: better validation, worse test; trial 1: the reverse; trial 2 unconfirmed but best search val
    study = _study_with([(99.30, _confirm(99.35, 99.10)), (99.32, _confirm(99.20, 99.60)), (99.50, None)])
    rows = leaderboard_rows(study)
    assert [r["trial"] for r in rows] == [0, 1, 2]
    assert rows[0]["val_acc"] == 99.35  # the val column shows the figure that ranks
    assert winner_line(rows).startswith("winner: trial 0")
    assert pick_trial(study, None).number == 0  # export --best
    assert "never used to rank" in format_leaderboard(rows, 8000)


def test_the_best_drawn_design_is_the_one_the_leaderboard_places_highest():
    from search.commands.leaderboard import format_leaderboard, leaderboard_rows, search_line

    # trial 0 a start point; trial 1 drawn, the best drawn search score but unconfirmed; trial 2
    # drawn and confirmed on top; trial 3 drawn, confirmed lower
    study = optuna.create_study(direction="maximize")
    for value, attrs in [(99.40, {"start": "seed-000 fitted"}), (99.50, {}), (99.30, {"confirm": _confirm(99.45, 99.4)}),
                         (99.35, {"confirm": _confirm(99.30, 99.4)}), (99.0, {"baseline": "seed-004"})]:
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs=attrs))
    line = search_line(study)
    assert "5 trials (5 complete, 0 pruned; 2 start points, 3 drawn)" in line
    assert line.endswith("best drawn design: trial 2, leaderboard place 1 of 5 (search val 99.30%, place 4 in the search)")
    notes = [row.split("  ")[-1] for row in format_leaderboard(leaderboard_rows(study)).splitlines()[2:]]
    assert notes == ["drawn (3 seeds)", "drawn (3 seeds)", "drawn", "seed-000 fitted", "seed-004"]


def test_confirmation_takes_the_top_k_searched_designs_and_every_baseline():
    from search.store.selection import trials_to_confirm

    study = optuna.create_study(direction="maximize")
    for value, baseline in [(99.1, None), (99.4, None), (99.3, None), (98.9, "seed-004"), (99.5, "seed-000")]:
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={"baseline": baseline} if baseline else {}))
    assert [t.number for t in trials_to_confirm(study, 2)] == [1, 2, 3, 4]  # the best baseline takes no place
    assert [t.number for t in trials_to_confirm(study, 4)] == [1, 2, 0, 3, 4]  # never twice
    assert [t.number for t in trials_to_confirm(study, 0)] == [3, 4]


def test_refit_takes_the_confirmed_winner_and_the_baselines():
    from search.store.selection import trials_to_refit

    study = optuna.create_study(direction="maximize")
    rows = [(99.5, None, None), (99.4, None, 99.20), (99.3, None, 99.35), (99.1, "seed-004", 99.30),
            (99.0, "seed-000", None)]  # the best search value (trial 0) was never confirmed
    for value, baseline, val in rows:
        attrs = {"baseline": baseline} if baseline else {}
        if val is not None:
            attrs["confirm"] = _confirm(val, 99.0)
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs=attrs))
    assert [t.number for t in trials_to_refit(study, "winner")] == [2, 3]
    assert [t.number for t in trials_to_refit(study, "all")] == [2, 3, 1]
    assert trials_to_refit(study, "none") == []
    study.add_trial(optuna.trial.create_trial(value=99.2, user_attrs={"baseline": "seed-002", "confirm": _confirm(99.6, 98)}))
    assert [t.number for t in trials_to_refit(study, "winner")] == [5, 3]  # a baseline that wins, once


def test_accuracy_target_follows_the_data_set():
    from search.commands.leaderboard import format_leaderboard
    from trainers.datasets import target_accuracy

    assert target_accuracy("mnist") == 99.4 and target_accuracy("fashion-mnist") == 90.0
    assert target_accuracy("fashion-mnist", 91.5) == 91.5
    assert "@90 " in format_leaderboard([], 8000, target_accuracy("fashion-mnist"))
    assert "@99.4" not in format_leaderboard([], 8000, target_accuracy("fashion-mnist"))


def test_resume_finishes_an_interrupted_baseline(tmp_path, data_dir):
    """Ctrl-C during the seed-004 baseline closes it as failed; the same command runs it again
    (after the two fitted start points that were already waiting)."""
    import signal
    import subprocess

    from conftest import cli_env, wait_for_running_trial

    args = ["--budget", "8000", "--trials", "3", "--epochs", "3", "--search-epochs", "3", "--subset", "3000", "--sampler", "random",
            "--top-k", "0", "--no-separable", "--data-dir", str(data_dir), "--study-name", "base"]
    proc = subprocess.Popen([sys.executable, "-m", "search", *args], cwd=tmp_path, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"sqlite:///{tmp_path}/studies/base.db"
    assert wait_for_running_trial(url, proc) == 0  # the baseline, mid-training
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    study = load(tmp_path, "base")
    assert study.trials[0].user_attrs["baseline"] == "seed-004" and study.trials[0].state == TrialState.FAIL
    run_cli(*args, cwd=tmp_path, check=True)
    study = load(tmp_path, "base")
    finished = [t for t in counted(study) if t.user_attrs.get("baseline") == "seed-004"]
    assert len(finished) == 1 and len(counted(study)) == 3


def test_enqueued_baselines_and_start_points_carry_their_params(tmp_path):
    from dataclasses import replace

    from search.config import SearchConfig
    from search.store.storage import open_storage
    from search.job.starts import create_or_resume
    from search.store.records import start_label
    from space import PRESETS
    from space.count import count_params
    from space.sampling import design_params, sample

    cfg = SearchConfig(budget=10000, epochs=15, study_name="q", storage=f"sqlite:///{tmp_path}/q.db", separable=False,
                       recipes="sgd-step")  # the plain space; every recipe: the test below
    study = create_or_resume(open_storage(cfg.storage), cfg)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    # the presets that fit run first, as drawn; seed-002 (25,290 params) is scaled to the budget
    assert [start_label(t.user_attrs) for t in waiting] == ["seed-004", "seed-000", "seed-002 fitted"]
    for t in waiting:
        spec, recipe = PRESETS[start_label(t.user_attrs).split()[0]]
        params = design_params(spec, replace(recipe, epochs=15))
        if "start" in t.user_attrs:
            params.update(fit="fill", fill=1.0)
        assert t.system_attrs["fixed_params"] == params
    probe = optuna.create_study()
    probe.enqueue_trial(waiting[-1].system_attrs["fixed_params"])
    fitted = sample(probe.ask(), 10000, 15)
    assert 0.95 * 10000 <= count_params(fitted.spec) <= 10000 and fitted.spec.bn == "plain"
    again = create_or_resume(open_storage(cfg.storage), cfg)  # a resume enqueues nothing more
    assert len(again.get_trials(states=(TrialState.WAITING,))) == 3


def test_with_every_recipe_the_start_points_train_under_adam_onecycle_and_the_baselines_as_they_are():
    from search.job.starts import START_RECIPE, start_points
    from search.store.records import start_label
    from space import PRESETS, sample

    points = start_points(8000, 15, separable=True, recipes=True)
    assert [start_label(a) for _, a in points] == [start_label(a) for _, a in start_points(8000, 15, separable=True)]
    for params, attrs in points:
        label = start_label(attrs)
        draw = sample(optuna.trial.FixedTrial(params), 8000, 15, separable=True, recipes=True)
        own = PRESETS[label.split()[0]][1]
        if label == "seed-004":  # the baseline: the hand design with its own recipe
            assert draw.spec == PRESETS["seed-004"][0] and (draw.recipe.optimizer, draw.recipe.lr) == ("sgd", own.lr)
            continue
        r = draw.recipe
        assert (r.optimizer, r.schedule, r.lr) == (START_RECIPE["optimizer"], START_RECIPE["schedule"], START_RECIPE["lr"])
        assert (r.batch_size, r.rotate, r.label_smoothing) == (own.batch_size, own.rotate, 0.0), label


def test_separable_search_starts_from_separable_variants_of_the_presets():
    from search.job.starts import start_points
    from search.store.records import start_label
    from space import PRESETS, sample

    points = start_points(8000, 15, separable=True)
    labels = [start_label(a) for _, a in points]
    assert labels == ["seed-004", "seed-000 fitted", "seed-002 fitted",
                      "seed-004 separable", "seed-000 separable", "seed-002 separable"]
    plain = [({k: v for k, v in p.items() if not k.endswith("_separable")}, a) for p, a in points[:3]]
    assert start_points(8000, 15) == plain  # the default space starts as before
    for params, attrs in points[3:]:
        spec = sample(optuna.trial.FixedTrial(params), 8000, 15, separable=True).spec
        preset = PRESETS[start_label(attrs).split()[0]][0]
        assert [b.separable for b in spec.blocks] == [False] + [True] * (len(preset.blocks) - 1)
        assert [len(b.widths) for b in spec.blocks] == [len(b.widths) for b in preset.blocks]
        assert 0.95 * 8000 <= count_params(spec) <= 8000


def test_baseline_trial_trains_the_preset_from_its_params(e2e):
    from space import PRESETS

    cwd, _ = e2e
    t = load(cwd, "e2e").trials[0]
    assert t.user_attrs["baseline"] == "seed-004" and t.params["b0_w1"] == 14 and t.params["fit"] == "as_drawn"
    assert ArchSpec.from_dict(t.user_attrs["spec"]) == PRESETS["seed-004"][0]


def _copy_of_e2e(e2e, tmp_path, name="copy"):
    """A copy of the e2e study, its annotating storage, and a completed trial not yet confirmed."""
    import shutil

    from search.store.records import completed, is_confirmed
    from search.store.storage import open_annotating_storage

    shutil.copytree(e2e[0] / "studies", tmp_path / name / "studies")
    storage = open_annotating_storage(f"sqlite:///{tmp_path}/{name}/studies/e2e.db")
    study = optuna.load_study(study_name="e2e", storage=storage)
    return storage, study, next(t.number for t in completed(study.trials) if not is_confirmed(t))


def test_a_stopped_confirmation_keeps_every_seed_it_finished(e2e, tmp_path, small_data, monkeypatch):
    """Each confirmation seed is stored when it ends: a run stopped during the second seed keeps
    the first, and the resumed run trains only the missing one (on a copy of the e2e study)."""
    from search.job import confirm, seeds as seed_runs
    from search.store.records import confirm_record

    storage, study, number = _copy_of_e2e(e2e, tmp_path)
    r = confirm.Retrainer(storage, small_data, seeds=2, artifacts=tmp_path / "artifacts", target=99.4,
                          log=lambda line: None)
    real, seeds = seed_runs.retrain, []

    def stopped_at_second_seed(*args, seed, **kwargs):
        seeds.append(seed)
        if len(seeds) == 2:
            raise KeyboardInterrupt
        return real(*args, seed=seed, **kwargs)

    monkeypatch.setattr(seed_runs, "retrain", stopped_at_second_seed)
    with pytest.raises(KeyboardInterrupt):
        confirm.grow(r, study, study.trials[number], {}, 2)
    kept = confirm_record(load(tmp_path / "copy", "e2e").trials[number])
    assert kept["seeds"] == 1 and len(kept["val_acc"]) == 1 and "weights_artifact" in kept

    seeds.clear()
    monkeypatch.setattr(seed_runs, "retrain", lambda *a, seed, **k: seeds.append(seed) or real(*a, seed=seed, **k))
    confirm.grow(r, study, load(tmp_path / "copy", "e2e").trials[number], kept, 2)
    done = confirm_record(load(tmp_path / "copy", "e2e").trials[number])
    assert len(seeds) == 1 and done["seeds"] == 2 and done["val_acc"][0] == kept["val_acc"][0]


def test_seeds_that_finish_out_of_order_are_stored_in_seed_order(e2e, tmp_path, small_data, data_dir):
    """Seed workers finish in any order: the record is the one a single process writes. Here one
    process's results are handed back again last-first, and two worker processes (one thread
    each, as on CPU) train the same seeds with the same result."""
    import torch

    from search.job import confirm
    from search.job.seeds import InProcess, Workers
    from search.store.records import confirm_record

    class Recorded(InProcess):
        got: list = []

        def run(self, jobs):
            for job, res in super().run(jobs):
                self.got.append((job, res))
                yield job, res

    class LastFirst(InProcess):
        def run(self, jobs):
            assert [j.label for j in jobs] == [j.label for j, _ in Recorded.got]
            return reversed(Recorded.got)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers train: the same sums in the same order
    got = {}
    try:
        for name, runner in [("inorder", Recorded(small_data, "fp32")), ("reversed", LastFirst(small_data, "fp32")),
                             ("workers", Workers(2, dict(name="mnist", data_dir=str(data_dir), subset=2000, seed=0),
                                                 "cpu", "fp32"))]:
            storage, study, number = _copy_of_e2e(e2e, tmp_path, name)
            lines = []
            r = confirm.Retrainer(storage, small_data, seeds=2, artifacts=tmp_path / name / "artifacts",
                                  target=99.4, log=lines.append, runner=runner)
            try:
                confirm.grow(r, study, study.trials[number], {}, 3)
            finally:
                runner.close()
            got[name] = confirm_record(load(tmp_path / name, "e2e").trials[number])
            assert [line.split(":")[0].strip() for line in lines] == [f"confirm trial {number} seed {s}" for s in range(3)]
    finally:
        torch.set_num_threads(threads)
    for name in ("reversed", "workers"):
        rec, ref = got[name], got["inorder"]
        assert rec["seeds"] == 3 and "weights_artifact" in rec
        assert rec["val_acc"] == ref["val_acc"] and rec["test_acc"] == ref["test_acc"]
        assert rec["test_correct"] == ref["test_correct"]


def test_bench_recipe_takes_a_studys_trials_and_its_confirmation_seeds(e2e, tmp_path, capsys):
    """`bench recipe --study --trials`: the designs are the study's trials with their own recipes,
    and the seeds confirmation trained count as their own-recipe runs, so nothing is trained again."""
    from search.bench.recipe import bench_recipe, study_designs
    from search.store.records import completed, confirm_record, design, is_confirmed

    cwd, _ = e2e
    storage = f"sqlite:///{cwd}/studies/e2e.db"
    winner = next(t for t in completed(load(cwd, "e2e").trials) if is_confirmed(t, 2))
    chosen, runs = study_designs("e2e", storage, [winner.number], epochs=2)
    assert chosen == {f"trial-{winner.number}": design(winner)}
    assert [r["val"] for r in runs] == confirm_record(winner)["val_acc"] and [r["seed"] for r in runs] == [0, 1]
    assert study_designs("e2e", storage, [winner.number], epochs=15)[1] == []  # other epochs: not the same runs
    other = study_designs("e2e", storage, [winner.number], epochs=2, dataset="fashion-mnist")
    assert other[0] == chosen and other[1] == []  # the same design; its MNIST seeds stand in for nothing

    out = tmp_path / "recipe.json"
    assert bench_recipe(out=out, seeds=2, epochs=2, data_dir=str(tmp_path), device="cpu", variants="sgd-step",
                        study="e2e", storage=storage, trials=str(winner.number)) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"trial-{winner.number} "))
    assert row.split()[1:3] == ["sgd-step", "2"] and not out.exists()  # nothing trained, nothing written
    assert float(row.split()[3]) == pytest.approx(confirm_record(winner)["val_acc_mean"], abs=0.01)
    bad = run_cli("bench", "recipe", "--study", "e2e", "--storage", storage, "--trials", "999", cwd=tmp_path)
    assert bad.returncode != 0 and "no trained trial number 999" in bad.stderr and "Traceback" not in bad.stderr


def test_bench_recipe_fits_a_studys_trial_to_another_budget(e2e, tmp_path):
    """`bench recipe --study --trials --scale-to B`: each trial's drawn shape and recipe, its widths
    fitted to B as the search fits a draw; at the study's own budget, exactly the trial's design."""
    from search.bench.recipe import study_designs
    from search.store.records import completed, design
    from space.spec import ArchSpec

    cwd, _ = e2e
    storage = f"sqlite:///{cwd}/studies/e2e.db"
    trial = next(t for t in completed(load(cwd, "e2e").trials) if t.params.get("fit") == "fill")
    spec, recipe = design(trial)
    assert study_designs("e2e", storage, [trial.number], epochs=2, scale_to=8000) == (
        {f"trial-{trial.number}@8000": (spec, recipe)}, [])
    shape = [(len(b.widths), b.padding, b.separable, b.pool) for b in spec.blocks]
    sizes = {}
    for budget in (4000, 16000):
        chosen, runs = study_designs("e2e", storage, [trial.number], epochs=2, scale_to=budget)
        ((name, (other, other_recipe)),) = chosen.items()
        assert name == f"trial-{trial.number}@{budget}" and runs == [] and other_recipe == recipe
        assert [(len(b.widths), b.padding, b.separable, b.pool) for b in other.blocks] == shape
        sizes[budget] = count_params(other)
        assert sizes[budget] <= budget and isinstance(other, ArchSpec)
    assert sizes[4000] < count_params(spec) < sizes[16000]
    bad = run_cli("bench", "recipe", "--scale-to", "16000", cwd=tmp_path)
    assert bad.returncode != 0 and "--scale-to" in bad.stderr and "Traceback" not in bad.stderr
