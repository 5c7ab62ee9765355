import optuna
import pytest

from search.job.pruner import PruneRule, TolerantMedianPruner


def _frozen(curve):
    return optuna.trial.create_trial(value=curve[-1], intermediate_values=dict(enumerate(curve, 1)))


@pytest.fixture
def study():
    s = optuna.create_study(direction="maximize")
    s.add_trial(_frozen([98.0, 98.8, 99.1, 99.2, 99.4]))  # the finished baseline
    return s


def test_a_candidate_may_trail_early_but_must_catch_up(study):
    pruner = TolerantMedianPruner(5, PruneRule(margin=1.0, warmup=2))
    assert pruner.bar(study, 2) == pytest.approx(98.8 - 0.6)
    assert not pruner.prune(study, _frozen([97.0, 98.3]))  # 0.5 behind at epoch 2: within 0.6
    assert pruner.prune(study, _frozen([97.0, 98.1]))  # 0.7 behind: pruned
    assert pruner.prune(study, _frozen([97.0, 98.3, 98.7, 98.9]))  # 0.3 behind at epoch 4: over 0.2
    assert not pruner.prune(study, _frozen([50.0]))  # before the warm-up nothing is judged


def test_nothing_is_pruned_before_enough_trials_finish():
    pruner = TolerantMedianPruner(5, PruneRule(warmup=1, startup=1))
    assert not pruner.prune(optuna.create_study(direction="maximize"), _frozen([10.0, 10.0]))


def test_the_floor_keeps_a_late_tolerance(study):
    pruner = TolerantMedianPruner(5, PruneRule(margin=1.0, warmup=2, floor=0.15))
    assert pruner.bar(study, 4) == pytest.approx(99.2 - 0.2)  # the closing margin is above the floor
    assert pruner.bar(study, 5) == pytest.approx(99.4 - 0.15)  # ... and here below it
    assert not pruner.prune(study, _frozen([97.0, 98.3, 98.7, 99.0, 99.3]))  # 0.1 behind at the end
    assert pruner.prune(study, _frozen([97.0, 98.3, 98.7, 99.0, 99.2]))  # 0.2 behind


def test_a_onecycle_trial_is_judged_only_once_its_learning_rate_has_peaked_and_against_its_own_kind():
    """A OneCycle curve starts slow (its learning rate rises for 30% of the run) and is still
    climbing mid-run: judged against a StepLR curve it would be stopped for that alone. So it is
    judged against finished OneCycle trials only, from its peak on; StepLR trials likewise only
    against StepLR ones."""
    from search.job.pruner import first_judged

    rule = PruneRule(margin=1.0, warmup=2)
    assert first_judged(rule, 15, "step") == 2 and first_judged(rule, 15, "onecycle") == 5
    pruner = TolerantMedianPruner(10, rule, schedule_of=lambda t: t.user_attrs.get("schedule", "step"))

    def trial(curve, schedule):
        return optuna.trial.create_trial(value=curve[-1], intermediate_values=dict(enumerate(curve, 1)),
                                         user_attrs={"schedule": schedule})

    s = optuna.create_study(direction="maximize")
    s.add_trial(trial([98.0, 98.8, 99.0, 99.1, 99.2, 99.3, 99.3, 99.4, 99.4, 99.4], "step"))
    slow = [95.0, 96.0, 96.5, 97.0]  # 2.8 points behind the StepLR curve at epoch 2, 2.1 at 4
    assert pruner.prune(s, trial(slow[:2], "step"))
    assert not pruner.prune(s, trial(slow, "onecycle"))  # no OneCycle trial has finished: not judged
    assert pruner.bar(s, 4, "onecycle") is None and pruner.bar(s, 4, "step") == pytest.approx(99.1 - 0.6)

    s.add_trial(trial([94.0, 96.0, 97.0, 97.5, 98.0, 98.5, 99.0, 99.3, 99.4, 99.5], "onecycle"))
    assert not pruner.prune(s, trial(slow[:2], "onecycle"))  # before its peak (epoch 3 of 10)
    assert not pruner.prune(s, trial(slow, "onecycle"))  # within 0.6 of the OneCycle curve at epoch 4
    assert pruner.prune(s, trial([95.0, 95.5, 95.8, 96.0], "onecycle"))  # 1.5 behind it: stopped
    assert pruner.bar(s, 4, "step") == pytest.approx(99.1 - 0.6)  # StepLR trials: the StepLR curve only
