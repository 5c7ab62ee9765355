"""Selection: the one rule that orders designs, and which of them confirmation and the refit train.

Validation chooses; test accuracy is stored beside it and never read here. The leaderboard, the
search's confirmation and refit, and `export --best` all call these functions.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial

from search.store.records import completed, confirm_record, is_baseline, is_confirmed


def rank_key(t: FrozenTrial) -> tuple[bool, bool, float]:
    """Confirmed first, and among them the ones the race kept to its end (they hold the most
    seeds, so the winner has at least as many as any design it was compared with); within each
    group, the validation figure the leaderboard's `val` column shows: the mean over the
    confirmation seeds, else the search's one-seed value."""
    c = confirm_record(t)
    if "val_acc_mean" in c:
        return True, not c.get("raced_out", False), c["val_acc_mean"]
    return False, False, t.value or 0.0



def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """Every completed trial, best first: the leaderboard's order; its first row is the winner."""
    return sorted(completed(study.get_trials(deepcopy=False)), key=rank_key, reverse=True)


def trials_to_confirm(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The k best searched designs by validation accuracy (baselines aside), then every finished
    baseline: the hand design a winner must beat is always confirmed the same way, in the same
    study, and never takes a searched design's place."""
    done = completed(study.get_trials(deepcopy=False))
    searched = [t for t in done if not is_baseline(t)]
    top = sorted(searched, key=lambda t: t.value, reverse=True)[:k]
    return top + [t for t in done if is_baseline(t)]


def trials_to_refit(study: optuna.Study, which: str) -> list[FrozenTrial]:
    """Confirmed trials to retrain on all training images: the winner (best confirmed validation)
    and every baseline it is compared with ("winner"), every confirmed trial ("all"), or none."""
    confirmed = [t for t in ranked(study) if is_confirmed(t)]
    if which == "none" or not confirmed:
        return []
    if which == "all":
        return confirmed
    return confirmed[:1] + [t for t in confirmed[1:] if is_baseline(t)]
