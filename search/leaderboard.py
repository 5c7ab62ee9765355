"""The leaderboard: confirmed designs by test accuracy, then the rest by validation accuracy."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.study import counted_trials


def leaderboard_rows(study: optuna.Study, limit: int = 10) -> list[dict]:
    """Pure data: one dict per trial, best first (confirmed ones lead)."""
    done = [t for t in counted_trials(study) if t.state == TrialState.COMPLETE]

    def key(t: FrozenTrial) -> tuple:
        c = t.user_attrs.get("confirm")
        return (c is not None, c["test_acc_mean"] if c else 0.0, t.value or 0.0)

    rows = []
    for t in sorted(done, key=key, reverse=True)[:limit]:
        c = t.user_attrs.get("confirm") or {}
        rows.append({
            "trial": t.number, "params": t.user_attrs.get("params"), "val_acc": t.value,
            "baseline": t.user_attrs.get("baseline", ""), "macs": t.user_attrs.get("macs"),
            "test_mean": c.get("test_acc_mean"), "test_std": c.get("test_acc_std"),
            "test_min": c.get("test_acc_min"), "consistency": c.get("consistency"),
            "first_at_target": c.get("first_epoch_at_target"), "seeds": c.get("seeds"),
        })
    return rows


def _fmt(v: object, spec: str = "") -> str:
    return "-" if v is None else format(v, spec)


def format_leaderboard(rows: list[dict], budget: int | None = None) -> str:
    head = (f"{'#':>3} {'trial':>5} {'params':>7} {'val %':>7} {'test % (mean±std)':>18} "
            f"{'min':>6} {'last3':>6} {'@99.4':>5}  note")
    lines = [head, "-" * len(head)]
    for i, r in enumerate(rows, 1):
        test = f"{r['test_mean']:.2f} ± {r['test_std']:.2f}" if r["test_mean"] is not None else "-"
        lines.append(
            f"{i:>3} {r['trial']:>5} {_fmt(r['params'], 'd'):>7} {_fmt(r['val_acc'], '.2f'):>7} "
            f"{test:>18} {_fmt(r['test_min'], '.2f'):>6} {_fmt(r['consistency'], '.2f'):>6} "
            f"{_fmt(r['first_at_target']):>5}  {r['baseline']}"
            + (f" ({r['seeds']} seeds)" if r["seeds"] else "")
        )
    if budget is not None:
        lines.append(f"budget: {budget} params; test = confirmed on the full training set, "
                     "last3 = worst test accuracy over the last 3 epochs of any seed")
    return "\n".join(lines)


def winner_line(rows: list[dict]) -> str:
    if not rows:
        return "no completed trial yet"
    w = rows[0]
    if w["test_mean"] is None:
        return f"best so far: trial {w['trial']}, {w['params']} params, val {w['val_acc']:.2f}% (not confirmed)"
    return (f"winner: trial {w['trial']}, {w['params']} params, test {w['test_mean']:.2f}% ± "
            f"{w['test_std']:.2f} over {w['seeds']} seeds (min {w['test_min']:.2f}%, "
            f"last-3 min {w['consistency']:.2f}%)")
