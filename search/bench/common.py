"""What several benches share: the designs they draw, rank statistics, their stored files' check
and the space's name. Every bench imports from here and none from another bench."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

from search.errors import UserError


def space_name(separable: bool) -> str:
    return "the space with separable blocks" if separable else "the plain space"


# --- statistics (pure) --------------------------------------------------------------------------

def ranks(xs: Sequence[float]) -> list[float]:
    """1-based ranks, ties get their average rank."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var if var else float("nan")


def draw_designs(n: int, budget: int, epochs: int, seed: int,
                 separable: bool = True, recipes: bool = False) -> list[tuple[str, object, object]]:
    """(label, spec, recipe): the search's start points at `budget` (the presets that fit it, the
    others fitted to it, and with `separable` their separable variants), then n random draws
    ("draw-N") from the search's space (with `recipes`, every recipe, as the default search
    draws). Nothing over budget: a preset is what the search would train."""
    import optuna

    from search.job.starts import start_points
    from search.store.records import start_label
    from space import Infeasible, sample

    def drawn(trial) -> tuple[object, object]:
        d = sample(trial, budget, epochs, separable=separable, recipes=recipes)
        return d.spec, d.recipe

    out = [(start_label(attrs), *drawn(optuna.trial.FixedTrial(params)))
           for params, attrs in start_points(budget, epochs, separable, recipes=recipes)]
    starts = len(out)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    while len(out) < n + starts:
        trial = study.ask()
        try:
            out.append((f"draw-{trial.number}", *drawn(trial)))
        except Infeasible:
            pass
        study.tell(trial, 0.0)
    return out


def mixed_designs(n: int, budget: int, epochs: int, seed: int) -> list[tuple[str, object, object]]:
    """(label, spec, recipe): the default search's start points at `budget` and n random draws
    from its space (separable blocks, every recipe), alternated, so that the designs finished when
    a long run is stopped are a fair sample of both."""
    designs = draw_designs(n, budget, epochs, seed, separable=True, recipes=True)
    starts = [d for d in designs if not d[0].startswith("draw-")]
    draws = designs[len(starts):]
    mixed = [d for pair in zip(starts, draws) for d in pair]
    return mixed + starts[len(draws):] + draws[len(starts):]


def stored_file(out: Path, what: str) -> dict | None:
    """A bench's raw file as stored (None if absent); one line for a file that is not one."""
    if not out.exists():
        return None
    try:
        stored = json.loads(out.read_text())
        stored["records"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{out}: not a {what} file (expected JSON with 'records'); pick another --out") from None
    return stored
