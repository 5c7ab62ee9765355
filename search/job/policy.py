"""Search policy: which sampler proposes the trials and which pruner stops them."""

from __future__ import annotations

import optuna

from search.config import PRUNERS, SAMPLERS
from search.errors import UserError
from search.job.pruner import TolerantMedianPruner, rule_for
from search.store import records


def make_sampler(name: str, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        # conditional (define-by-run) space: multivariate + group; constant_liar for workers.
        # Few random start-up trials (the enqueued start points count among them): random draws
        # trail the hand designs far, TPE's proposals come close (RESULTS.md, "Fidelity").
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True,
            n_startup_trials=max(3, min(5, trials // 4)),
        )
    raise UserError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    if name == "median":
        # the tolerant median rule (search/job/pruner.py): keep pace with the median of the finished trials
        # (with baselines, the hand design) within a tolerance that closes to a floor
        return TolerantMedianPruner(epochs, rule_for(epochs),
                                    lambda t: records.design_recipe_field(t, "schedule", "step"))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UserError(f"unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")
