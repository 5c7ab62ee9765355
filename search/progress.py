"""Terminal progress for a search: a bar over finished trials and one line per finished trial."""

from __future__ import annotations

import sys

from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from search.study import is_counted


def trial_line(t: FrozenTrial) -> str:
    attrs = t.user_attrs
    secs = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else 0
    curve = attrs.get("val_acc") or []
    acc = f"{curve[-1]:6.2f}%" if curve else "   -   "
    state = t.state.name.lower()
    if "infeasible" in attrs:
        state = "infeasible (not trained, not counted)"
    elif "surplus" in attrs:
        state = "surplus (not counted)"
    elif t.state == TrialState.FAIL:
        state = f"failed: {attrs.get('fail_reason', 'see log')}"
    name = f" [{attrs['baseline']}]" if "baseline" in attrs else ""
    params = attrs.get("params")
    params_s = f"{params:6d} params" if params is not None else "     - params"
    return f"trial {t.number:4d}{name}  {params_s}  val {acc}  {len(curve):2d} ep  {secs:6.1f}s  {state}"


class Progress:
    """Feed it finished trials (any order, repeats ignored); it keeps the bar and the log."""

    def __init__(self, total: int, already: list[FrozenTrial], enabled: bool = True) -> None:
        self.seen = {t.number for t in already}
        self.best: tuple[float, int] | None = None
        for t in already:
            self._track_best(t)
        self.bar = tqdm(
            total=total, initial=min(total, sum(is_counted(t) for t in already)),
            desc="trials", unit="trial", file=sys.stderr, disable=not enabled, dynamic_ncols=True,
        )
        self._postfix()

    def _track_best(self, t: FrozenTrial) -> None:
        if t.state == TrialState.COMPLETE and t.value is not None:
            if self.best is None or t.value > self.best[0]:
                self.best = (t.value, t.user_attrs.get("params", 0))

    def _postfix(self) -> None:
        if self.best is not None:
            self.bar.set_postfix_str(f"best val {self.best[0]:.2f}% @ {self.best[1]} params")

    def update(self, t: FrozenTrial) -> None:
        if t.number in self.seen or not t.state.is_finished():
            return
        self.seen.add(t.number)
        tqdm.write(trial_line(t), file=sys.stdout)
        self._track_best(t)
        if is_counted(t) and self.bar.n < self.bar.total:
            self.bar.update(1)
        self._postfix()

    def close(self) -> None:
        self.bar.close()
