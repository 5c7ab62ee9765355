"""Pure data extraction for the report: plain trials in, plain lists and dicts out (no plotting)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from optuna.trial import FrozenTrial

from search.store import records
from search.store.records import completed, is_counted


def trained(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if is_counted(t)]


def history(trials: Sequence[FrozenTrial]) -> list[dict]:
    """Completed trials in order with the best value so far."""
    out, best = [], None
    for t in sorted(completed(trials), key=lambda t: t.number):
        best = t.value if best is None else max(best, t.value)
        out.append({"number": t.number, "value": t.value, "best": best})
    return out


def pareto_front(points: Sequence[tuple[int, float, int]]) -> list[tuple[int, float, int]]:
    """(params, accuracy, number) points no other point beats on both: fewer params, higher acc."""
    front, best_acc = [], float("-inf")
    for p in sorted(points, key=lambda p: (p[0], -p[1])):
        if p[1] > best_acc:
            front.append(p)
            best_acc = p[1]
    return front


COSTS = {"params": records.params, "macs": records.macs, "ram": records.ram}  # what a trial's cost can be


def cost_vs_accuracy(trials: Sequence[FrozenTrial], cost: str = "params") -> dict:
    """(cost, validation, trial) of each completed trial and their Pareto front; cost: params,
    macs or ram (peak int8 activation bytes)."""
    read = COSTS[cost]
    pts = [(read(t), t.value, t.number) for t in completed(trials) if read(t) is not None]
    return {"points": pts, "front": pareto_front(pts)}


def curves(trials: Sequence[FrozenTrial]) -> list[dict]:
    """Per-epoch validation accuracy of every trained trial, pruned ones included."""
    return [{"number": t.number, "state": t.state.name.lower(),
             "epochs": sorted(t.intermediate_values), "values": [t.intermediate_values[k] for k in sorted(t.intermediate_values)]}
            for t in trained(trials) if t.intermediate_values]


def numeric_params(trials: Sequence[FrozenTrial]) -> dict:
    """Columns for parallel coordinates: numeric params present in every completed trial + value."""
    done = [t for t in completed(trials) if t.params]
    if not done:
        return {"columns": {}, "value": []}
    names = sorted(set.intersection(*(set(t.params) for t in done)))
    names = [n for n in names if all(isinstance(t.params[n], (int, float)) and not isinstance(t.params[n], bool) for t in done)]
    return {"columns": {n: [t.params[n] for t in done] for n in names}, "value": [t.value for t in done]}


def confirmed(trials: Sequence[FrozenTrial]) -> list[dict]:
    """Test curves of the confirmed designs, then of the refit ones, one entry per seed."""
    out = []
    for stage, record in ((records.CONFIRM, records.confirm_record), (records.REFIT, records.refit_record)):
        for t in trials:
            c = record(t)
            if c:
                for seed, curve in enumerate(c["test_acc"]):
                    out.append({"number": t.number, "seed": seed, "stage": stage, "images": c.get("train_images"),
                                "params": records.params(t), "test_acc": curve})
    return out


def clock(seconds: float) -> str:
    """h:mm:ss, as the anytime curve is printed."""
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def search_clock(when: datetime, runs: Sequence[tuple[datetime, datetime]]) -> float | None:
    """Seconds the search had run by `when`: the parts of its runs (search_runs) before it, so
    the pauses between resumed runs do not count. None when `when` falls outside every run."""
    if not any(start <= when <= end for start, end in runs):
        return None
    return sum((min(end, when) - start).total_seconds() for start, end in runs if start <= when)


def anytime(trials: Sequence[FrozenTrial], runs: Sequence[tuple[datetime, datetime]] = ()) -> list[dict]:
    """Best validation accuracy against the time the search took to reach it.

    With the study's search runs (search.store.study.search_runs) the time is the search clock,
    pauses between resumed runs left out, and "clock" is "search"; otherwise (runs not recorded,
    or a trial outside them, as while a run is still going) it is the wall time since the study's
    first trial started, every pause included, and "clock" is "wall". Every worker counts.
    """
    done = [t for t in completed(trials) if t.datetime_complete is not None]
    starts = [t.datetime_start for t in trained(trials) if t.datetime_start is not None]
    if not done or not starts:
        return []
    on_clock = [search_clock(t.datetime_complete, runs) for t in done]
    if None not in on_clock:
        seconds, clock = on_clock, "search"
    else:
        t0 = min(starts)
        seconds, clock = [(t.datetime_complete - t0).total_seconds() for t in done], "wall"
    out, best = [], None
    for s, t in sorted(zip(seconds, done), key=lambda p: p[0]):
        if best is None or t.value > best:
            best = t.value
            out.append({"seconds": s, "best": best, "number": t.number, "clock": clock})
    return out
