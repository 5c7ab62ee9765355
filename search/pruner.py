"""The default pruner: the median rule, with a tolerance that shrinks to zero at the last epoch.

A plain median pruner with the seed-004 baseline as its only finished trial pruned 32 of 32 draws
after epoch 2 in a stopped run (the hand design reaches 98.8% there; the best draws 98.4%), so
nothing finished and TPE only learned "fast at epoch 2". With a tolerance of `margin * (1 - epoch /
epochs)` percentage points, a candidate may trail early and must catch up by the end.
"""

from __future__ import annotations

import statistics

import optuna
from optuna.trial import FrozenTrial, TrialState


class TolerantMedianPruner(optuna.pruners.BasePruner):
    def __init__(self, epochs: int, *, margin: float = 1.0, warmup: int = 2, startup: int = 1) -> None:
        self.epochs = epochs  # the step at which the tolerance reaches zero
        self.margin = margin  # tolerance in accuracy points at step 0
        self.warmup = warmup  # no pruning before this step
        self.startup = startup  # no pruning until this many trials have finished

    def bar(self, study: optuna.Study, step: int) -> float | None:
        """The accuracy a trial must have reached by `step`, or None (not enough finished trials)."""
        done = [t.intermediate_values[step] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if step in t.intermediate_values]
        if len(done) < self.startup:
            return None
        return statistics.median(done) - self.margin * max(0.0, 1 - step / self.epochs)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.warmup:
            return False
        bar = self.bar(study, step)
        return bar is not None and max(trial.intermediate_values.values()) < bar
