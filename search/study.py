"""Create, resume and read studies; samplers, pruners, baselines; which trials count."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.config import PRUNERS, SAMPLERS, SearchConfig, default_storage
from search.errors import UserError
from search.storage import open_storage
from space import PRESETS, ArchSpec, Recipe, count_params

COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
NOT_COUNTED_ATTRS = ("infeasible", "surplus")  # trials that never trained a candidate


def make_sampler(name: str, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        # conditional (define-by-run) space: multivariate + group; constant_liar for workers
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True,
            n_startup_trials=max(3, min(10, trials // 4)),
        )
    raise UserError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=epochs // 5)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UserError(f"unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")


def is_counted(t: FrozenTrial) -> bool:
    """A finished trial that trained a candidate: what --trials counts."""
    return t.state in COUNTED_STATES and not any(a in t.user_attrs for a in NOT_COUNTED_ATTRS)


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=COUNTED_STATES) if is_counted(t)]


def baseline_presets(budget: int) -> list[str]:
    return [name for name, (spec, _) in PRESETS.items() if count_params(spec) <= budget]


def _check_resumable(study: optuna.Study, cfg: SearchConfig) -> None:
    stored = study.user_attrs.get("config")
    if stored is None:
        return
    old = SearchConfig.from_dict(stored).identity()
    diff = [f"{k}={old[k]!r} (asked {v!r})" for k, v in cfg.identity().items() if old[k] != v]
    if diff:
        raise UserError(
            f"study {study.study_name!r} was created with " + ", ".join(diff)
            + "; resume it with the same settings or pick another --study-name"
        )


def create_or_resume(cfg: SearchConfig) -> optuna.Study:
    """Open the study for a search; refuse (changing nothing) if it was made for another setup."""
    storage = open_storage(cfg.storage, heartbeat=cfg.heartbeat)
    sampler = make_sampler(cfg.sampler, cfg.seed, cfg.trials)
    pruner = make_pruner(cfg.pruner, cfg.epochs)
    try:
        study = optuna.load_study(study_name=cfg.study_name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:
        study = optuna.create_study(
            study_name=cfg.study_name, storage=storage, sampler=sampler, pruner=pruner,
            direction="maximize", load_if_exists=True,
        )
    _check_resumable(study, cfg)
    if "config" not in study.user_attrs:
        study.set_user_attr("config", cfg.to_dict())
        study.set_user_attr("objective", "validation accuracy (%) after the last epoch")
        if cfg.baselines:
            for name in baseline_presets(cfg.budget):
                study.enqueue_trial({}, user_attrs={"baseline": name})
    return study


def load_existing(study_name: str, storage_url: str, *, annotate: bool = False) -> optuna.Study:
    """Open a study for reading (leaderboard, show, export, report); never creates anything."""
    storage = open_storage(storage_url or default_storage(study_name), create=False, annotate=annotate)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise UserError(
            f"no study named {study_name!r} in that storage; it holds: {', '.join(names) or 'none'}"
        ) from None


def trained_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """Trial `number` of the study, which must have trained a candidate."""
    found = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not found or "spec" not in found[0].user_attrs:
        raise UserError(f"study {study.study_name!r} has no trained trial number {number}")
    return found[0]


def trial_design(t: FrozenTrial) -> tuple[ArchSpec, Recipe]:
    """The spec and recipe a trial trained (stored as user attributes)."""
    return ArchSpec.from_dict(t.user_attrs["spec"]), Recipe.from_dict(t.user_attrs["recipe"])


def study_config(study: optuna.Study) -> SearchConfig:
    stored = study.user_attrs.get("config")
    if stored is None:
        raise UserError(f"study {study.study_name!r} was not made by budgetnas (no stored config)")
    return SearchConfig.from_dict(stored)
