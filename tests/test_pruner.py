import optuna
import pytest

from search.pruner import TolerantMedianPruner


SCHEDULE = optuna.distributions.CategoricalDistribution(["step", "onecycle"])


def _frozen(curve, schedule=None):
    params = {"params": {"schedule": schedule}, "distributions": {"schedule": SCHEDULE}} if schedule else {}
    return optuna.trial.create_trial(value=curve[-1], intermediate_values=dict(enumerate(curve, 1)), **params)


@pytest.fixture
def study():
    s = optuna.create_study(direction="maximize")
    s.add_trial(_frozen([98.0, 98.8, 99.1, 99.2, 99.4]))  # the finished baseline
    return s


def test_a_candidate_may_trail_early_but_must_catch_up(study):
    pruner = TolerantMedianPruner(epochs=5, margin=1.0, warmup=2)
    assert pruner.bar(study, 2) == pytest.approx(98.8 - 0.6)
    assert not pruner.prune(study, _frozen([97.0, 98.3]))  # 0.5 behind at epoch 2: within 0.6
    assert pruner.prune(study, _frozen([97.0, 98.1]))  # 0.7 behind: pruned
    assert pruner.prune(study, _frozen([97.0, 98.3, 98.7, 98.9]))  # 0.3 behind at epoch 4: over 0.2
    assert not pruner.prune(study, _frozen([50.0]))  # before the warm-up nothing is judged


def test_nothing_is_pruned_before_enough_trials_finish():
    pruner = TolerantMedianPruner(epochs=5, warmup=1, startup=1)
    assert not pruner.prune(optuna.create_study(direction="maximize"), _frozen([10.0, 10.0]))


def test_a_schedule_is_judged_only_against_finished_trials_of_the_same_schedule():
    study = optuna.create_study(direction="maximize")
    study.add_trial(_frozen([98.0, 98.8, 99.1, 99.2, 99.4], "step"))
    pruner = TolerantMedianPruner(epochs=5, margin=1.0, warmup=2)
    slow_start = [90.0, 95.0, 97.0]
    assert pruner.prune(study, _frozen(slow_start, "step"))
    assert not pruner.prune(study, _frozen(slow_start, "onecycle"))  # no finished OneCycle trial yet
    study.add_trial(_frozen([92.0, 96.0, 98.0, 99.0, 99.3], "onecycle"))
    assert pruner.prune(study, _frozen(slow_start, "onecycle"))  # 1 behind at epoch 3: over 0.4
    on_pace = _frozen([92.0, 96.0], "onecycle")  # the finished OneCycle curve itself
    assert not pruner.prune(study, on_pace)
    assert TolerantMedianPruner(epochs=5, warmup=2, by=None).prune(study, on_pace)  # pooled with StepLR
