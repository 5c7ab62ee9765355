"""Which search dimensions matter, measured on stored studies (the evidence for narrowing the space).

A study has few complete trials (4-5 in an afternoon at 8,000 params), too few for importances of
the final accuracy. Validation accuracy at an early epoch exists for pruned trials too, and ranked
the epoch-15 result well in `bench fidelity` (rho 0.96 at epoch 3), so this scores every trial that
reached `--epoch`, pooled over any number of stored studies:

    python -m search importance studies/mnist-b8000.db --epoch 3
    python -m search importance studies/mnist-b8000.db old/mnist-b8000.db --epoch 3
"""

from __future__ import annotations

import statistics
import warnings
from collections import defaultdict
from dataclasses import dataclass

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from search.errors import UserError
from search.store.records import trial_seconds
from search.store.storage import load_trials


@dataclass(frozen=True)
class Scored:
    params: dict  # the trial's params
    distributions: dict[str, BaseDistribution]  # their distributions
    value: float  # validation accuracy (%) at the chosen epoch
    final: float | None  # the objective, for a complete trial
    late_seconds: float  # wall time of a trial pruned at or after the `late` epoch, else 0


def scored_trials(trials: list[FrozenTrial], epoch: int, late: int = 8) -> list[Scored]:
    """Finished trials (complete or pruned) that reported `epoch` (the objective's report step), with
    the accuracy reported there."""
    return [Scored(t.params, t.distributions, t.intermediate_values[epoch],
                   t.value if t.state == TrialState.COMPLETE else None, _late_seconds(t, late))
            for t in trials
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and epoch in t.intermediate_values]


def _late_seconds(t: FrozenTrial, late: int) -> float:
    if t.state != TrialState.PRUNED or max(t.intermediate_values) < late:
        return 0.0
    return trial_seconds(t)


def _merged(dists: list[BaseDistribution]) -> BaseDistribution | None:
    """One distribution covering every study's version of a param (ranges change between versions of the space)."""
    first = dists[0]
    if all(isinstance(d, CategoricalDistribution) for d in dists):
        return CategoricalDistribution(list(dict.fromkeys(c for d in dists for c in d.choices)))
    for kind in (IntDistribution, FloatDistribution):
        if all(isinstance(d, kind) and d.log == first.log and d.step == first.step for d in dists):
            return kind(min(d.low for d in dists), max(d.high for d in dists), log=first.log, step=first.step)
    return None


def shared_params(scored: list[Scored]) -> dict[str, BaseDistribution]:
    """Params every scored trial has (conditional ones drop out), with merged distributions."""
    names = set.intersection(*(set(s.params) for s in scored)) if scored else set()
    merged = {n: _merged([s.distributions[n] for s in scored]) for n in sorted(names)}
    return {n: d for n, d in merged.items() if d is not None and _varies(n, scored)}


def _varies(name: str, scored: list[Scored]) -> bool:
    return len({repr(s.params[name]) for s in scored}) > 1


def importances(scored: list[Scored]) -> dict[str, float]:
    """PED-ANOVA importances (Optuna's default evaluator) of the shared params for the scores."""
    dists = shared_params(scored)
    study = optuna.create_study(direction="maximize")
    for s in scored:
        study.add_trial(optuna.trial.create_trial(
            params={n: s.params[n] for n in dists}, distributions=dists, value=s.value))
    with warnings.catch_warnings():  # "some regimes have less than 2 trials": the table shows counts
        warnings.simplefilter("ignore")
        return optuna.importance.get_param_importances(study, params=list(dists))


@dataclass(frozen=True)
class Choice:
    trials: int  # scored trials with this value
    median: float  # their median accuracy at the epoch
    best: float  # and the best
    complete: int  # how many of them completed
    best_final: float | None  # the best complete one's objective
    late_seconds: float  # seconds paid to those pruned late


def by_choice(scored: list[Scored], max_values: int = 16) -> dict[str, dict[str, Choice]]:
    """For each categorical param, and each integer one with few values, among the trials that have
    it (conditional ones such as StepLR's step too): value -> Choice."""
    out: dict[str, dict[str, Choice]] = {}
    for name in sorted({n for s in scored for n in s.params}):
        groups: dict[str, list[Scored]] = defaultdict(list)
        for s in scored:
            if name in s.params:
                groups[repr(s.params[name])].append(s)
        first = next(iter(groups.values()))[0]
        if not isinstance(first.distributions[name], FloatDistribution) and 1 < len(groups) <= max_values:
            out[name] = {c: _choice(g) for c, g in groups.items()}
    return out


def _choice(group: list[Scored]) -> Choice:
    values, finals = [s.value for s in group], [s.final for s in group if s.final is not None]
    return Choice(len(group), statistics.median(values), max(values), len(finals),
                  max(finals) if finals else None, sum(s.late_seconds for s in group))


def format_importance(scored: list[Scored], epoch: int, late: int) -> str:
    imp = importances(scored)
    lines = [f"{len(scored)} trials reached epoch {epoch}; PED-ANOVA importance of validation accuracy there:"]
    lines += [f"  {name:<18} {value:.3f}" for name, value in imp.items()]
    lines.append(f"by value: trials, median and best % at epoch {epoch}, complete, best complete %, "
                 f"seconds of trials pruned at epoch >= {late}")
    for name, groups in by_choice(scored).items():
        for value, c in sorted(groups.items(), key=lambda kv: _sort_key(kv[0])):
            final = "-" if c.best_final is None else f"{c.best_final:.2f}"
            lines.append(f"  {name:<18} {value:<10} {c.trials:>4} {c.median:7.2f} {c.best:7.2f} {c.complete:>4} "
                         f"{final:>7} {c.late_seconds:>7.0f}")
    return "\n".join(lines)


def _sort_key(value: str) -> tuple[int, float | str]:
    try:
        return 0, float(value)
    except ValueError:
        return 1, value


def print_importance(storages: list[str], epoch: int, late: int = 8) -> int:
    if epoch < 1:
        raise UserError(f"--epoch must be >= 1, got {epoch}")
    scored = scored_trials(load_trials(storages), epoch, late)
    if len(scored) < 2:
        raise UserError(f"only {len(scored)} finished trial(s) reached epoch {epoch}; importances need at least 2")
    print(format_importance(scored, epoch, late))
    return 0
