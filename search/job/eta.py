"""What the whole run will take, stage by stage, from the stages' own measured costs.

The search is most of the trials but not most of the time: at the defaults the 15-epoch seeds of
confirmation and refit take longer than the 2-epoch search, so the estimate names every stage:

- a search trial costs what this study's trained trials cost on average (within --timeout);
- a confirmation seed of a design costs what its own seeds have cost, and before its first, its
  search trial's seconds scaled from the trial's epochs to the protocol's;
- the race may give each design still in contention seeds up to its cap: the estimate counts the
  first round and states the most the race can add;
- a refit seed costs a confirmation seed of the same design scaled by the images it trains on
  (train + val), or what its refit seeds have cost.

The designs confirmed and refit are the ones that would be chosen now (the current top k and the
baselines; while fewer than k searched designs have finished, the rest at the average trial's
cost), so the estimate firms up as the search goes on. Pure: a study's trials in, seconds out.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from optuna.trial import FrozenTrial

from search.commands.report_data import clock
from search.config import SearchConfig
from search.store import records
from search.store.selection import trials_to_confirm, trials_to_refit
from search.store.study import stage_seconds


@dataclass(frozen=True)
class Stages:
    """What the run still has to do, as the study and its config say."""

    trials: int  # finished trials the search should reach (--trials)
    top_k: int  # searched designs confirmed (--top-k)
    seeds: int  # first-round seeds per confirmed design, and refit seeds (--confirm-seeds)
    cap: int  # most seeds the race gives one design
    refit: str  # winner | all | none (--refit)
    scale: float  # a protocol seed's epochs over a search trial's (--epochs / --search-epochs)
    refit_scale: float  # a refit seed's training images over a confirmation seed's ((train + val) / train)
    workers: int = 1  # processes training side by side
    timeout_left: float | None = None  # seconds of --timeout the search has left (None: no timeout)

    @classmethod
    def of(cls, cfg: SearchConfig, train_images: int, val_images: int, searched: float) -> Stages:
        """A search's stages, `searched` seconds into its --timeout."""
        return cls(trials=cfg.trials, top_k=cfg.top_k, seeds=cfg.confirm_seeds,
                   cap=cfg.race_cap, refit=cfg.refit,
                   scale=cfg.epochs / cfg.trial_epochs, refit_scale=(train_images + val_images) / train_images,
                   workers=cfg.workers, timeout_left=None if cfg.timeout is None else cfg.timeout - searched)


@dataclass(frozen=True)
class Estimate:
    """Seconds still to go in each stage; `race` is the most the race can add to confirmation."""

    search: float
    confirmation: float
    race: float
    refit: float

    @property
    def total(self) -> float:
        return self.search + self.confirmation + self.refit

    def line(self) -> str:
        race = f" (the race may add up to {clock(self.race)})" if self.race >= 1 else ""
        most = f", at most {clock(self.total + self.race)}" if self.race >= 1 else ""
        return (f"estimate: search {clock(self.search)}, confirmation {clock(self.confirmation)}{race}, "
                f"refit {clock(self.refit)}: about {clock(self.total)} left{most}")

    def to_dict(self) -> dict[str, float]:
        return {k: round(getattr(self, k), 1) for k in ("search", "confirmation", "race", "refit")}

    def kept(self, study) -> dict[str, float]:
        """What the study keeps of it: the stages' seconds, and how long confirmation and refit
        had already run (an earlier, stopped run) when it was made."""
        return {**self.to_dict(), "stages_before": round(sum(stage_seconds(study).values()), 1)}


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def _trained(t: FrozenTrial) -> bool:
    return records.is_counted(t) and records.trial_seconds(t) > 0


def seed_seconds(t: FrozenTrial, scale: float) -> float:
    """One confirmation seed of `t`'s design: its own seeds' mean, else its trial's seconds x scale."""
    own = _mean(records.confirm_record(t).get("train_seconds", []))
    return own if own is not None else records.trial_seconds(t) * scale


def refit_seconds(t: FrozenTrial, s: Stages) -> float:
    own = _mean(records.refit_record(t).get("train_seconds", []))
    return own if own is not None else seed_seconds(t, s.scale) * s.refit_scale


def _to_refit(study, contenders: list[FrozenTrial], which: str) -> list[FrozenTrial]:
    """The confirmed trials the refit will train; before confirmation, those it would train if the
    best contender on validation won."""
    if any(records.is_confirmed(t) for t in contenders):
        return trials_to_refit(study, which)
    if which == "none" or not contenders:
        return []
    if which == "all":
        return contenders
    best = max(contenders, key=lambda t: t.value)
    return [best] + [t for t in contenders if records.is_baseline(t) and t is not best]


def estimate(study, s: Stages) -> Estimate | None:
    """The run's remaining seconds per stage, or None before any trial has trained (no cost
    measured yet)."""
    trials = study.get_trials(deepcopy=False)
    per_trial = _mean([records.trial_seconds(t) for t in trials if _trained(t)])
    if per_trial is None:
        return None
    side = max(1, s.workers)  # trials and seeds train this many at a time
    left = max(0, s.trials - sum(records.is_counted(t) for t in trials))
    search = left * per_trial / side
    if s.timeout_left is not None:
        search = min(search, max(0.0, s.timeout_left))
    contenders = trials_to_confirm(study, s.top_k) if s.top_k > 0 else []
    # early on fewer than top k searched designs have finished: the trials still to run will fill
    # the list, each priced as the average trial scaled to the protocol
    unseen = min(left, max(0, s.top_k - sum(not records.is_baseline(t) for t in contenders)))
    first = unseen * s.seeds * per_trial * s.scale
    race = unseen * max(0, s.cap - s.seeds) * per_trial * s.scale
    for t in contenders:
        record = records.confirm_record(t)
        done = len(record.get("val_acc", []))
        cost = seed_seconds(t, s.scale)
        first += max(0, s.seeds - done) * cost
        if not record.get("raced_out"):
            race += max(0, s.cap - max(done, s.seeds)) * cost
    refit = sum(max(0, s.seeds - records.refit_record(t).get("seeds", 0)) * refit_seconds(t, s)
                for t in (_to_refit(study, contenders, s.refit) if s.top_k > 0 else []))
    return Estimate(search, first / side, race / side, refit / side)


def check_line(study, estimated: dict | None) -> str | None:
    """How the estimate made at the end of the search compares with what confirmation and refit
    then took (the study's stage_seconds), once both have run."""
    taken = stage_seconds(study)
    if not estimated or not taken:
        return None
    guess = estimated["confirmation"] + estimated["refit"]
    spent = sum(taken.values()) - estimated.get("stages_before", 0.0)
    ratio = f" ({spent / guess:.2f}x the estimate)" if guess > 0 else ""
    return (f"confirmation and refit took {clock(spent)}; estimated at the end of the search: {clock(guess)}"
            f" (the race could add {clock(estimated['race'])}){ratio}")

