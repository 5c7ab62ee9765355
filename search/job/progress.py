"""Terminal progress for the whole run: one bar, over the search's finished trials and then over
confirmation's and the refit's seeds, that also shows the running trial's epoch and latest
validation accuracy and what the run has left (job.eta); one line per finished trial, and a line
each time the best validation accuracy improves, with the wall time it took to get there (the
"anytime" curve)."""

from __future__ import annotations

import sys
import time

from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from search.commands.report_data import clock
from search.store import records
from search.store.records import completed, is_counted, start_label
from trainers.loop import EpochStats


def trial_line(t: FrozenTrial) -> str:
    attrs = t.user_attrs
    secs = records.trial_seconds(t)
    curve = records.val_curve(t)
    acc = f"{curve[-1]:6.2f}%" if curve else "   -   "
    state = t.state.name.lower()
    if records.INFEASIBLE in attrs:
        state = "infeasible (not trained, not counted)"
    elif records.is_surplus(t):
        state = "surplus (not counted)"
    elif t.state == TrialState.FAIL:
        state = f"failed: {records.fail_reason(t)}"
    label = start_label(attrs)
    name = f" [{label}]" if label else ""
    params = records.params(t)
    params_s = f"{params:6d} params" if params is not None else "     - params"
    return f"trial {t.number:4d}{name}  {params_s}  val {acc}  {len(curve):2d} ep  {secs:6.1f}s  {state}"


class Progress:
    """Feed it finished trials (any order, repeats ignored) and epochs; it keeps the bar and the log."""

    def __init__(self, total: int, already: list[FrozenTrial], enabled: bool = True) -> None:
        self.t0 = time.monotonic()
        self.seen = {t.number for t in already}
        self.best: tuple[float, int, int] | None = None  # (val, params, trial)
        self.running = ""
        self.left = ""  # what the whole run has left, as job.eta last estimated it
        for t in already:
            self._improves(t)
        self.anytime: list[tuple[float, float, int]] = []  # (seconds, best val, trial) this run
        self.bar = tqdm(
            total=total, initial=min(total, sum(is_counted(t) for t in already)),
            desc="trials", unit="trial", file=sys.stderr, disable=not enabled, dynamic_ncols=True,
        )
        self._postfix()

    def _improves(self, t: FrozenTrial) -> bool:
        if completed([t]):
            if self.best is None or t.value > self.best[0]:
                self.best = (t.value, records.params(t) or 0, t.number)
                return True
        return False

    def _postfix(self) -> None:
        parts = [self.running] if self.running else []
        if self.best is not None:
            parts.append(f"best val {self.best[0]:.2f}% @ {self.best[1]} params")
        if self.left:
            parts.append(self.left)
        self.bar.set_postfix_str(" | ".join(parts))

    def eta(self, total: float, most: float) -> None:
        """What the whole run has left (seconds), and the most if the race runs to its cap."""
        self.left = f"run ~{clock(total)} left" + (f" (at most {clock(most)})" if most > total + 1 else "")
        self._postfix()

    def stage(self, name: str) -> None:
        """The search is over: the bar counts `name`'s seeds from here."""
        self.running = ""
        self.bar.total = None  # how many seeds the race asks for is not known ahead
        self.bar.initial = 0  # a resumed search began the bar at its finished trials; seeds start at none
        self.bar.reset()
        self.bar.unit = "seed"
        self.bar.set_description(name)
        self._postfix()

    def seed_done(self) -> None:
        self.bar.update(1)

    def writer(self, log):
        """`log` made to print above the bar instead of through it."""
        def write(msg: str) -> None:
            with tqdm.external_write_mode(file=sys.stdout):
                log(msg)
        return write

    def epoch(self, number: int, stats: EpochStats, epochs: int | None = None) -> None:
        """The running trial finished an epoch: show it on the bar."""
        of = f"/{epochs}" if epochs else ""
        self.running = f"trial {number}: epoch {stats.epoch}{of} val {stats.val_acc:.2f}%"
        self._postfix()

    def running_trials(self, trials: list[FrozenTrial]) -> None:
        """Several workers: show each running trial's last reported epoch."""
        self.running = ", ".join(
            f"trial {t.number}: epoch {max(t.intermediate_values)} val {t.intermediate_values[max(t.intermediate_values)]:.2f}%"
            for t in trials if t.intermediate_values)
        self._postfix()

    def update(self, t: FrozenTrial) -> None:
        if t.number in self.seen or not t.state.is_finished():
            return
        self.seen.add(t.number)
        self._log(trial_line(t))
        if self._improves(t):
            elapsed = time.monotonic() - self.t0
            self.anytime.append((elapsed, t.value, t.number))
            self._log(f"new best {t.value:.2f}% val (trial {t.number}, {self.best[1]} params) after {clock(elapsed)}")
        if is_counted(t) and self.bar.n < self.bar.total:
            self.bar.update(1)
        self.running = ""
        self._postfix()

    @staticmethod
    def _log(msg: str) -> None:
        tqdm.write(msg, file=sys.stdout)  # above the bar, not through it

    def close(self) -> None:
        self.bar.close()
