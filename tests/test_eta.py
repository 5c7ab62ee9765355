"""The whole run's estimate (search.job.eta): each stage priced from the study's own measured costs."""

from datetime import datetime, timedelta

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from search.job.eta import Stages, check_line, estimate
from search.store.records import BASELINE, CONFIRM, REFIT, VAL_CURVE

T0 = datetime(2026, 1, 1)
STAGES = Stages(trials=10, top_k=1, seeds=3, cap=6, refit="winner", scale=7.5, refit_scale=1.2)


def trial(number: int, value: float, seconds: float, **attrs) -> FrozenTrial:
    return FrozenTrial(number=number, state=TrialState.COMPLETE, value=value, values=None, datetime_start=T0,
                       datetime_complete=T0 + timedelta(seconds=seconds), params={"x": value},
                       distributions={"x": FloatDistribution(0, 100)}, user_attrs={VAL_CURVE: [value], **attrs},
                       system_attrs={}, intermediate_values={}, trial_id=number)


def study_of(*trials: FrozenTrial) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    study.add_trials(trials)
    return study


def confirm(seconds: list[float], **more) -> dict:
    return {"val_acc": [[90.0]] * len(seconds), "test_acc": [[90.0]] * len(seconds), "train_seconds": seconds,
            "seeds": len(seconds), "val_acc_mean": 90.0, **more}


def test_no_estimate_before_a_trial_has_trained():
    assert estimate(study_of(), STAGES) is None


def test_every_stage_is_priced_from_the_trials_seconds_before_any_seed():
    # a baseline (20 s a trial) and three searched trials (10 s each; the best is trial 1)
    study = study_of(trial(0, 80.0, 20.0, **{BASELINE: "seed-004"}), trial(1, 95.0, 10.0), trial(2, 90.0, 10.0),
                     trial(3, 85.0, 10.0))
    est = estimate(study, STAGES)
    assert est.search == pytest.approx(6 * 12.5)  # six trials left at the mean trial's 12.5 s
    # the best searched design and the baseline, 3 seeds each at their trial's seconds x 7.5
    assert est.confirmation == pytest.approx(3 * 75 + 3 * 150)
    assert est.race == pytest.approx((6 - 3) * 75 + (6 - 3) * 150)  # up to the cap of 6 each
    assert est.refit == pytest.approx(3 * 75 * 1.2 + 3 * 150 * 1.2)  # the likely winner and the baseline
    assert est.total == pytest.approx(est.search + est.confirmation + est.refit)
    assert "about 0:" in est.line() and "the race may add up to" in est.line()
    with_timeout = estimate(study, Stages(**{**STAGES.__dict__, "timeout_left": 30.0}))
    assert with_timeout.search == 30.0  # the search stops at its --timeout
    two = estimate(study, Stages(**{**STAGES.__dict__, "workers": 2}))
    assert two.search == pytest.approx(est.search / 2) and two.refit == pytest.approx(est.refit / 2)


def test_before_top_k_searched_designs_have_finished_the_rest_are_priced_at_the_average_trial():
    study = study_of(trial(0, 80.0, 20.0, **{BASELINE: "seed-004"}), trial(1, 95.0, 10.0))
    est = estimate(study, Stages(**{**STAGES.__dict__, "top_k": 3}))
    # trial 1 and the baseline as they are, and two designs yet to come at the mean 15 s x 7.5
    assert est.confirmation == pytest.approx(3 * 75 + 3 * 150 + 2 * 3 * 112.5)
    assert est.race == pytest.approx(3 * 75 + 3 * 150 + 2 * 3 * 112.5)
    few = estimate(study, Stages(**{**STAGES.__dict__, "top_k": 3, "trials": 3}))  # only one trial to come
    assert few.confirmation == pytest.approx(3 * 75 + 3 * 150 + 1 * 3 * 112.5)


def test_measured_seeds_replace_the_scaled_guess_and_finished_stages_cost_nothing():
    study = study_of(
        trial(0, 80.0, 20.0, **{BASELINE: "seed-004", CONFIRM: confirm([100.0, 110.0, 120.0], raced_out=True)}),
        *[trial(n, 90.0 + n, 10.0) for n in range(1, 10)],
        trial(10, 99.5, 10.0, **{CONFIRM: confirm([50.0, 70.0])}))
    est = estimate(study, STAGES)
    assert est.search == 0  # ten trials finished
    assert est.confirmation == pytest.approx(60.0)  # one seed of trial 10 left, at its own seeds' mean
    assert est.race == pytest.approx(3 * 60.0)  # the baseline is raced out: only trial 10 may get more
    done = study_of(
        trial(0, 80.0, 20.0, **{BASELINE: "seed-004", CONFIRM: confirm([100.0] * 3), REFIT: {"seeds": 1, "train_seconds": [130.0]}}),
        trial(1, 99.0, 10.0, **{CONFIRM: confirm([50.0] * 3), REFIT: {"seeds": 3, "train_seconds": [60.0] * 3}}))
    est = estimate(done, Stages(**{**STAGES.__dict__, "trials": 2}))
    assert (est.search, est.confirmation) == (0, 0)
    assert est.refit == pytest.approx(2 * 130.0)  # only the baseline's two refit seeds, at its own cost


def test_the_check_compares_the_estimate_with_what_the_stages_then_took():
    study = study_of(trial(0, 80.0, 20.0))
    assert check_line(study, None) is None
    study.set_user_attr("stage_seconds", {"confirmation": 300.0, "refit": 150.0})
    line = check_line(study, {"search": 0, "confirmation": 200.0, "race": 100.0, "refit": 100.0, "stages_before": 150.0})
    assert "took 0:05:00" in line and "end of the search: 0:05:00" in line and "1.00x" in line


def test_a_resumed_run_counts_confirmations_seeds_from_none_at_a_rate_that_is_not_negative():
    import optuna

    from search.job.progress import Progress

    study = optuna.create_study()
    for v in (1.0, 2.0):
        study.add_trial(optuna.trial.create_trial(value=v))
    p = Progress(2, study.trials, enabled=True)  # a resume that finds the search done
    p.stage("confirmation")
    p.seed_done()
    d = p.bar.format_dict
    assert d["n"] == 1 and d["n"] - d["initial"] == 1  # the rate tqdm shows is (n - initial) / elapsed
    p.bar.close()
