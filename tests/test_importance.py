"""`importance`: what matters, measured on stored trials at an early epoch, pruned ones included."""

import datetime
import random

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from conftest import run_cli
from search.bench.importance import by_choice, importances, scored_trials

DISTS = {"lr": FloatDistribution(0.01, 0.3, log=True), "noise": FloatDistribution(0.0, 1.0),
         "bn": CategoricalDistribution(["affine", "plain"]), "step_size": IntDistribution(2, 15)}
T0 = datetime.datetime(2026, 1, 1)


def make_study(path, n=40, seed=0):
    """A real SQLite study whose epoch-3 accuracy depends on lr (and bn), never on `noise`; every
    third trial is pruned after epoch 3, having paid 100 s; step_size appears only with bn=affine;
    one failed trial has no curve."""
    rng = random.Random(seed)
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{path}", direction="maximize")
    for i in range(n):
        params = {"lr": 0.01 * 30 ** rng.random(), "noise": rng.random(), "bn": rng.choice(["affine", "plain"])}
        if params["bn"] == "affine":
            params["step_size"] = rng.randint(2, 15)
        at3 = 90 + 30 * params["lr"] + (1.0 if params["bn"] == "affine" else 0.0)
        pruned = i % 3 == 0
        curve = {1: at3 - 2, 2: at3 - 1, 3: at3} if pruned else {e: at3 + e - 3 for e in range(1, 11)}
        study.add_trial(optuna.trial.FrozenTrial(
            number=i, trial_id=i, params=params, distributions={k: DISTS[k] for k in params},
            intermediate_values=curve, state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
            value=None if pruned else curve[10], datetime_start=T0,
            datetime_complete=T0 + datetime.timedelta(seconds=100), user_attrs={}, system_attrs={}))
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
    return study


def test_importance_finds_the_param_that_drives_early_accuracy(tmp_path):
    study = make_study(tmp_path / "a.db")
    scored = scored_trials(study.trials, epoch=3, late=3)
    assert len(scored) == 40  # failed trials (no curve) are left out
    imp = importances(scored)
    assert imp["lr"] > imp["noise"] and set(imp) == {"lr", "noise", "bn"}  # step_size is conditional
    choice = by_choice(scored)
    assert set(choice) == {"bn", "step_size"}
    affine, plain = choice["bn"]["'affine'"], choice["bn"]["'plain'"]
    assert affine.trials + plain.trials == 40 and affine.median > plain.median
    pruned = [s for s in scored if s.final is None]
    assert sum(c.late_seconds for c in choice["bn"].values()) == 100 * len(pruned)
    assert sum(c.complete for c in choice["bn"].values()) == 40 - len(pruned)
    assert sum(c.trials for c in choice["step_size"].values()) == affine.trials


def test_the_command_pools_studies_and_rejects_bad_input(tmp_path):
    make_study(tmp_path / "a.db", seed=1)
    make_study(tmp_path / "b.db", seed=2)
    out = run_cli("importance", str(tmp_path / "a.db"), str(tmp_path / "b.db"), "--epoch", "3",
                  cwd=tmp_path, check=True).stdout
    assert out.startswith("80 trials reached epoch 3") and "lr" in out and "'affine'" in out
    for args, needle in [(["--epoch", "0"], "--epoch must be >= 1"),
                         (["--epoch", "11"], "only 0 finished trial(s) reached epoch 11")]:
        proc = run_cli("importance", str(tmp_path / "a.db"), *args, cwd=tmp_path)
        err = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(err) == 1 and needle in err[0], proc.stderr
    proc = run_cli("importance", str(tmp_path / "missing.db"), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and not (tmp_path / "missing.db").exists()
