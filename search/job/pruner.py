"""`--pruner median`: the median rule, with a tolerance that shrinks by the last epoch to a floor.

A plain median pruner with the hand design as its only finished trial prunes nearly every draw
after epoch 2 (the hand design is ahead there; good draws catch up later), so nothing finishes and
TPE only learns "fast at epoch 2". With a tolerance of `margin * (1 - epoch / epochs)` percentage
points, a candidate may trail early and must catch up by the end. The tolerance is floored above
one design's seed-to-seed spread, so a design is not pruned against another seed of itself late in
its run (RESULTS.md, "Noise and the pruner's floor").

`stops` is the rule itself, a pure function: the pruner applies it to the study, and the replays
(`bench fidelity`, `noise`) apply it to stored curves, so all three judge alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import optuna
from optuna.trial import FrozenTrial, TrialState

from space.recipe import ONECYCLE_RISE


@dataclass(frozen=True)
class PruneRule:
    margin: float = 0.0  # accuracy points a trial may trail the bar by at step 0, closing linearly
    floor: float = 0.0  # the tolerance never falls below this (accuracy points)
    warmup: int = 1  # first step at which a trial may be stopped
    startup: int = 1  # finished trials needed before any stop
    keep: float = 0.5  # share of the finished trials a trial must stay among (0.5: the median)


# About three seed standard deviations late in the run (RESULTS.md, "Noise and the pruner's
# floor"); judged from epoch 2, whose ranking is nearly that of epoch 3 (RESULTS.md, "Fidelity");
# after one finished trial: with baselines, the hand design.
DEFAULT_RULE = PruneRule(margin=1.0, floor=0.15, warmup=2, startup=1)


def rule_for(epochs: int, rule: PruneRule = DEFAULT_RULE) -> PruneRule:
    """The rule a run of `epochs` epochs is judged by: one too short for the warm-up is judged from
    its first epoch (the search's pruner and the replays both use this)."""
    return replace(rule, warmup=max(1, min(rule.warmup, epochs - 1)))


def tolerance(step: int, epochs: int, *, margin: float, floor: float) -> float:
    """Accuracy points a trial may trail the bar by at `step`: margin closing linearly, floored."""
    return max(floor, margin * max(0.0, 1 - step / epochs))


def quantile(xs: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics, as numpy.percentile (what Optuna uses)."""
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def bar(rule: PruneRule, step: int, epochs: int, finished: Sequence[float]) -> float | None:
    """The value a trial must have reached by `step`, given the finished trials' values there;
    None while too few trials have finished."""
    if len(finished) < max(rule.startup, 1):
        return None
    return quantile(finished, 1 - rule.keep) - tolerance(step, epochs, margin=rule.margin, floor=rule.floor)


def stops(rule: PruneRule, step: int, epochs: int, best: float, finished: Sequence[float]) -> bool:
    """Whether a trial whose best value up to `step` is `best` stops there (never before the
    warm-up). The objective never asks at the last epoch: a trial that paid for every epoch
    completes; the replays skip it too (`replay_epochs`)."""
    if step < rule.warmup:
        return False
    b = bar(rule, step, epochs, finished)
    return b is not None and best < b


def first_judged(rule: PruneRule, epochs: int, schedule: str = "step") -> int:
    """The first epoch at which a trial is judged: the rule's warm-up, and for a OneCycle trial
    not before its learning rate has peaked. Its curve rises late, so against StepLR curves it
    would be stopped at epoch 2 for a slow start that says nothing of where it ends (RESULTS.md,
    "Recipes": every Adam + OneCycle run was, though it finished above the StepLR bar)."""
    if schedule == "onecycle":
        return max(rule.warmup, math.ceil(ONECYCLE_RISE * epochs))
    return rule.warmup


def replay_epochs(epochs: int) -> range:
    """The epochs at which the search asks the pruner: every one but the last."""
    return range(1, epochs)


class TolerantMedianPruner(optuna.pruners.BasePruner):
    def __init__(self, epochs: int, rule: PruneRule = DEFAULT_RULE,
                 schedule_of: Callable[[FrozenTrial], str] = lambda t: "step") -> None:
        self.epochs = epochs  # the step at which the closing margin reaches zero (the floor remains)
        self.rule = rule
        self.schedule_of = schedule_of  # the learning-rate schedule a trial trains with

    def finished_at(self, study: optuna.Study, step: int, schedule: str = "step") -> list[float]:
        """The finished trials' values at `step`, of those that trained with `schedule` only.

        Like with like: a OneCycle curve is still climbing mid-run, when a StepLR curve has
        already dropped its rate, and trails it by more than the tolerance even where it ends
        above (RESULTS.md, "Recipes": Adam + OneCycle on the 4,000 winner, stopped at epoch 5 or 6
        against its own StepLR curve in 2 of 3 seeds, finished 0.02 above it). Until a trial of its
        own schedule finishes, a trial is not judged; in the default space every trial is StepLR."""
        return [t.intermediate_values[step] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if step in t.intermediate_values and self.schedule_of(t) == schedule]

    def bar(self, study: optuna.Study, step: int, schedule: str = "step") -> float | None:
        """The accuracy a `schedule` trial must have reached by `step`, or None (not enough finished
        trials of that schedule)."""
        return bar(self.rule, step, self.epochs, self.finished_at(study, step, schedule))

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        schedule = self.schedule_of(trial)
        rule = replace(self.rule, warmup=first_judged(self.rule, self.epochs, schedule))
        best = max(trial.intermediate_values.values())
        return stops(rule, step, self.epochs, best, self.finished_at(study, step, schedule))
