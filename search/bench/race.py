"""`bench race`: how the confirmation race (search.verdict.race_round) behaves at a given seed noise.

Simulated, no training: a leader and one rival whose per-seed validation accuracies are normal
around their true means with the measured seed std (RESULTS.md, "Five seeds"). For each true gap it
prints how often the true leader wins and the seeds both get, against fixed 3 and 6 seeds each.
"""

from __future__ import annotations

import numpy as np

from search.verdict import race_round

GAPS = (0.0, 0.03, 0.05, 0.1, 0.2, 0.3)


def simulate(gap: float, std: float, first: int, cap: int, races: int, rng: np.random.Generator) -> tuple[float, float]:
    """(share of races the true leader wins, mean seeds spent on both designs)."""
    wins, seeds = 0, 0
    for _ in range(races):
        means = {0: 0.0, 1: -gap}
        finals = {d: list(rng.normal(m, std, first)) for d, m in means.items()}
        out: set[int] = set()
        while more := race_round(finals, out, cap):
            for d in more:
                finals[d].append(float(rng.normal(means[d], std)))
        alive = [d for d in finals if d not in out]
        wins += max(alive, key=lambda d: (len(finals[d]), np.mean(finals[d]))) == 0
        seeds += sum(len(v) for v in finals.values())
    return wins / races, seeds / races


def fixed(gap: float, std: float, n: int, races: int, rng: np.random.Generator) -> float:
    a = rng.normal(0.0, std, (races, n)).mean(1)
    b = rng.normal(-gap, std, (races, n)).mean(1)
    return float((a > b).mean())


def bench_race(*, seeds: int | None, std: float = 0.07, races: int = 2000, **_) -> int:
    from search.errors import UserError

    seeds = seeds or 3
    if seeds < 2 or std <= 0 or races < 1:
        raise UserError(f"race: --seeds must be >= 2, --std > 0 and --races >= 1, got {seeds}, {std}, {races}")
    cap = 2 * seeds  # the search's default --confirm-cap
    rng = np.random.default_rng(0)
    print(f"race: seed std {std} points, first round {seeds} seeds, cap {cap}, {races} simulated races per gap")
    print("gap    leader wins: race / fixed 3 / fixed 6    seeds for both: race (fixed 6: 12)")
    for gap in GAPS:
        won, spent = simulate(gap, std, seeds, cap, races, rng)
        print(f"{gap:4.2f}   {won:8.1%} {fixed(gap, std, 3, races, rng):8.1%} {fixed(gap, std, 6, races, rng):8.1%}"
              f"    {spent:5.1f}")
    return 0
