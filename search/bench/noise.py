"""How noisy is one design across training seeds, and does the pruner cut a design against itself?

Confirmation trains each finalist with several seeds and stores every seed's validation curve.
Replaying the median pruner's rule with one seed's curve as the only finished trial and another
seed's as the running trial asks: would the search prune this very design? A late bar tighter
than the seed-to-seed spread prunes good designs by chance after they have paid most epochs.

    python -m search noise studies/mnist-b8000.db studies/mnist-b4000.db
    python -m search noise old/*.db --floors 0 0.1 0.15
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

from optuna.trial import FrozenTrial

from search.errors import UserError
from search.job.pruner import DEFAULT_RULE, first_judged, replay_epochs, stops
from search.store.records import confirm_record
from search.store.storage import load_trials


def seed_curves(trials: list[FrozenTrial]) -> list[list[list[float]]]:
    """Per confirmed design, its seeds' validation curves (a design confirmed in several studies
    with the same seeds, such as a baseline, counts once)."""
    out, seen = [], set()
    for t in trials:
        curves = confirm_record(t).get("val_acc") or []
        key = repr(curves)
        if len(curves) >= 2 and len({len(c) for c in curves}) == 1 and key not in seen:
            seen.add(key)
            out.append(curves)
    return out


def prune_epoch(bar: Sequence[float], curve: Sequence[float], *, floor: float = DEFAULT_RULE.floor,
                schedule: str = "step") -> int | None:
    """The epoch at which the search's pruner (`search.job.pruner.stops`, the median rule with
    tolerance floor `floor`, judging a `schedule` trial from `first_judged`), with `bar` as the
    only finished trial, stops `curve`, or None."""
    rule = replace(DEFAULT_RULE, floor=floor)
    rule = replace(rule, warmup=first_judged(rule, len(curve), schedule))
    for e in replay_epochs(len(curve)):
        if stops(rule, e, len(curve), max(curve[:e]), [bar[e - 1]]):
            return e
    return None


@dataclass(frozen=True)
class SelfPrune:
    floor: float  # lower bound on the tolerance, accuracy points
    pairs: int  # ordered (bar seed, trial seed) pairs of one design
    pruned: list[int]  # the epochs at which pairs were pruned


def self_prunes(designs: list[list[list[float]]], floors: Sequence[float]) -> list[SelfPrune]:
    pairs = [p for curves in designs for p in itertools.permutations(curves, 2)]
    return [SelfPrune(f, len(pairs), sorted(e for a, b in pairs if (e := prune_epoch(a, b, floor=f)) is not None))
            for f in floors]


def format_noise(designs: list[list[list[float]]], floors: Sequence[float]) -> str:
    epochs = len(designs[0][0])
    designs = [d for d in designs if len(d[0]) == epochs]  # both tables compare curves of one length
    late_from = epochs * 2 // 3
    lines = [f"{len(designs)} confirmed designs; seed std of validation accuracy (median over designs, max):"]
    for e in range(max(1, epochs - 3), epochs + 1):
        stds = [statistics.pstdev(c[e - 1] for c in curves) for curves in designs]
        lines.append(f"  epoch {e:>2}: {statistics.median(stds):.3f}, {max(stds):.3f}")
    lines.append("the median pruner with one seed as the only finished trial, another as the running one:")
    for r in self_prunes(designs, floors):
        late = sum(e >= late_from for e in r.pruned)
        lines.append(f"  tolerance floor {r.floor:.2f}: pruned in {len(r.pruned)} of {r.pairs} seed pairs "
                     f"({len(r.pruned) / r.pairs:.0%}), {late} of them at epoch >= {late_from}; epochs {r.pruned}")
    return "\n".join(lines)


def print_noise(storages: list[str], floors: Sequence[float]) -> int:
    if any(f < 0 for f in floors):
        raise UserError("--floors: tolerances are accuracy points >= 0")
    designs = seed_curves(load_trials(storages))
    if not designs:
        raise UserError("no design confirmed with 2 or more seeds in these studies; run a search with --top-k >= 1")
    print(format_noise(designs, floors))
    return 0
