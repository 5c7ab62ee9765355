"""Which trials count: the ones that trained a candidate, and among them the ones with a value."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
NOT_COUNTED_ATTRS = ("infeasible", "surplus")  # trials that never trained a candidate


def is_counted(t: FrozenTrial) -> bool:
    """A finished trial that trained a candidate: what --trials counts."""
    return t.state in COUNTED_STATES and not any(a in t.user_attrs for a in NOT_COUNTED_ATTRS)


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=COUNTED_STATES) if is_counted(t)]


def completed(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Counted trials that completed with a value (what can be ranked, confirmed, exported)."""
    return [t for t in trials if is_counted(t) and t.state == TrialState.COMPLETE and t.value is not None]


def start_label(attrs: dict) -> str:
    """The preset a trial started from ("seed-004" baseline, "seed-000 fitted" start point), or ""."""
    return attrs.get("baseline") or attrs.get("start") or ""


def load_trials(storages: list[str]) -> list[FrozenTrial]:
    """Every trial of every study in the given SQLite files or storage URLs."""
    from search.storage import open_storage

    trials: list[FrozenTrial] = []
    for where in storages:
        url = where if "://" in where else f"sqlite:///{where}"
        storage = open_storage(url, create=False)
        for name in optuna.get_all_study_names(storage):
            trials += optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    return trials
