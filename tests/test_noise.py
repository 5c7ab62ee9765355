"""`noise`: the seed spread of confirmed designs and the pruner replayed on a design against itself."""

import random

import optuna
import pytest
from optuna.trial import TrialState

from conftest import run_cli
from search.bench.noise import prune_epoch, seed_curves, self_prunes
from search.job.policy import make_pruner
from search.job.pruner import PruneRule, TolerantMedianPruner


def curve(rng, shift=0.0, epochs=15):
    """A learning curve rising to ~99.2% with seed-like noise of about 0.1 points."""
    return [round(99.2 - 3.0 * 0.7 ** e + shift + rng.gauss(0, 0.1), 2) for e in range(1, epochs + 1)]


@pytest.mark.parametrize("pruner, floor", [
    (make_pruner("median", 15), None),  # the search's default pruner against the replay's defaults
    (TolerantMedianPruner(15, PruneRule(margin=1.0, warmup=2, startup=1)), 0.0),  # no floor
])
def test_the_replay_stops_a_curve_where_the_real_pruner_does(tmp_path, pruner, floor):
    """On a real SQLite study, the pruner with one finished trial prunes each running curve at the
    epoch prune_epoch names (or never), for curves that stop early, late and never."""
    rng = random.Random(0)
    replay = dict(floor=floor) if floor is not None else {}
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize", pruner=pruner)
    bar = curve(rng)
    study.add_trial(optuna.trial.create_trial(value=bar[-1], intermediate_values=dict(enumerate(bar, 1))))
    outcomes = set()
    for shift in (-1.5, -0.3, -0.12, -0.05, 0.0, 0.2) * 3:
        running = curve(rng, shift)
        trial, stopped = study.ask(), None
        for e, v in enumerate(running[:-1], 1):
            trial.report(v, e)
            if trial.should_prune():
                stopped = e
                break
        study.tell(trial, state=TrialState.PRUNED)
        assert stopped == prune_epoch(bar, running, **replay), (shift, running)
        outcomes.add("never" if stopped is None else "late" if stopped >= 10 else "early")
    assert outcomes == {"never", "late", "early"}


def test_a_floor_on_the_tolerance_spares_a_design_trailing_itself_by_noise():
    bar = [97.0 + 0.15 * e for e in range(1, 16)]
    trailing = [v - 0.1 for v in bar]  # the same design, 0.1 points behind at every epoch
    assert prune_epoch(bar, trailing, floor=0.0) == 14  # the tolerance is 0.07 there
    assert prune_epoch(bar, trailing, floor=0.15) is None
    assert prune_epoch(bar, [v - 2.0 for v in bar], floor=0.15) == 2  # a poor curve still goes early
    rows = self_prunes([[bar, trailing]], [0.0, 0.15])
    assert [(r.pairs, r.pruned) for r in rows] == [(2, [14]), (2, [])]


def test_the_command_reads_confirmed_seed_curves_and_rejects_bad_input(tmp_path):
    rng = random.Random(1)
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'a.db'}", direction="maximize")
    for i in range(4):
        seeds = [curve(rng) for _ in range(3)]
        attrs = {"confirm": {"val_acc": seeds}} if i < 3 else {}
        study.add_trial(optuna.trial.create_trial(value=99.0, user_attrs=attrs))
    study.add_trial(optuna.trial.create_trial(value=99.0, user_attrs={"confirm": {"val_acc": seeds}}))  # a repeat
    assert len(seed_curves(study.trials)) == 4
    out = run_cli("noise", str(tmp_path / "a.db"), "--floors", "0", "0.15", cwd=tmp_path, check=True).stdout
    assert out.startswith("4 confirmed designs") and "of 24 seed pairs" in out and "floor 0.15" in out
    optuna.create_study(study_name="e", storage=f"sqlite:///{tmp_path / 'empty.db'}")
    for args, needle in [([str(tmp_path / "empty.db")], "no design confirmed"),
                         ([str(tmp_path / "a.db"), "--floors", "-1"], "--floors")]:
        proc = run_cli("noise", *args, cwd=tmp_path)
        err = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(err) == 1 and needle in err[0], proc.stderr
