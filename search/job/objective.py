"""The Optuna objective: sample (never over budget) -> describe -> train with pruning -> score."""

from __future__ import annotations

from collections.abc import Callable

import optuna
from optuna.trial import TrialState

from search.config import SearchConfig
from search.store import records
from search.store.records import is_counted, start_label
from space.recipe import Recipe
from space.sampling import Infeasible, sample
from space.spec import ArchSpec
from trainers.data import DeviceData
from trainers.loop import EpochStats, train

EpochHook = Callable[[int, EpochStats], None]  # (trial number, stats) after every epoch


class OverBudget(RuntimeError):
    """A candidate over the budget reached the trainer's door: a bug, never trained."""


class Surplus(RuntimeError):
    """Other workers already hold the requested number of finished or running trials."""


def _step_aside(trial: optuna.Trial, why: str) -> None:
    records.mark_surplus(trial, why)
    raise Surplus(why)


def _refuse_surplus(trial: optuna.Trial, wanted: int) -> None:
    trials = trial.study.get_trials(deepcopy=False)
    done = sum(is_counted(t) for t in trials)
    ahead = sum(t.state == TrialState.RUNNING and t.number < trial.number for t in trials)
    if done + ahead >= wanted:
        _step_aside(trial, f"{done} finished + {ahead} running >= {wanted} requested")


def _refuse_duplicate_start(trial: optuna.Trial, name: str) -> None:
    """Two processes may enqueue the same start point (a race on resume): the later one steps aside."""
    for t in trial.study.get_trials(deepcopy=False):
        if t.number == trial.number or start_label(t.user_attrs) != name or records.is_surplus(t):
            continue
        if is_counted(t) or (t.state == TrialState.RUNNING and t.number < trial.number):
            _step_aside(trial, f"{name} already ran as trial {t.number}")


def candidate(trial: optuna.Trial, cfg: SearchConfig, data: DeviceData) -> tuple[ArchSpec, Recipe, int]:
    """Draw the trial's design (never over budget) and record it; returns (spec, recipe, params)."""
    start = start_label(trial.user_attrs)
    if start:  # enqueued with a preset's params: sampled like any other trial
        _refuse_duplicate_start(trial, start)
    fixed = records.fixed_design(trial.user_attrs)
    if fixed is not None:  # a user's baseline outside the sampled space: trained as it is
        spec, recipe = fixed
        return spec, recipe, records.record_candidate(trial, spec, recipe, cfg.budget, None)
    try:
        draw = sample(trial, cfg.limits, cfg.epochs, **cfg.space(), **data.io)
    except Infeasible as e:
        records.mark_infeasible(trial, str(e))
        raise optuna.TrialPruned(f"infeasible draw, not trained: {e}") from None
    return draw.spec, draw.recipe, records.record_candidate(trial, draw.spec, draw.recipe, cfg.budget,
                                                            draw.drawn_params)


def make_objective(cfg: SearchConfig, data: DeviceData, on_epoch: EpochHook | None = None) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        try:
            return _run(trial)
        except (optuna.TrialPruned, Surplus):
            raise
        except Exception as e:  # stored on the trial, so the dashboard shows why it failed
            records.mark_failed(trial, f"{type(e).__name__}: {e}")
            raise

    def _run(trial: optuna.Trial) -> float:
        _refuse_surplus(trial, cfg.trials)
        spec, recipe, _ = candidate(trial, cfg, data)
        over = cfg.limits.over(spec)
        if over:  # the hard promise: checked right before any training
            raise OverBudget("; ".join(over))
        recipe = recipe.compressed(cfg.trial_epochs)  # the record keeps the protocol's recipe
        curve: list[float] = []
        seconds: list[float] = []

        def report(stats: EpochStats) -> bool:
            curve.append(round(stats.val_acc, 4))
            seconds.append(round(stats.seconds, 3))
            trial.report(stats.val_acc, stats.epoch)
            if on_epoch is not None:
                on_epoch(trial.number, stats)
            # the last epoch is paid for: the trial completes with its value instead of being pruned
            return stats.epoch < recipe.epochs and trial.should_prune()

        try:
            result = train(
                spec, data.train, recipe, evals={"val": data.val}, norm=(data.mean, data.std),
                seed=cfg.seed + trial.number, report=report, compile=cfg.compile, precision=cfg.precision,
            )
        finally:
            records.record_curve(trial, curve, seconds)
        if result.stopped:
            raise optuna.TrialPruned(f"pruned after epoch {len(curve)}")
        return curve[-1]

    return objective
