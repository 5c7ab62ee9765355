"""The leaderboard: confirmed designs by mean validation accuracy over the confirmation seeds, then
the rest by the search's validation accuracy. Test accuracy is shown, never used to rank: after
confirmation on the training split ("test"), and after the refit on train + val ("refit")."""

from __future__ import annotations

import optuna

from search.store import records
from search.store.records import start_label
from search.store.selection import rank_key, ranked
from search.store.study import study_config, verdict_lines
from space.budget import KB, Budget, mega
from trainers.datasets import DATASETS, target_accuracy


def leaderboard_rows(study: optuna.Study, limit: int = 10) -> list[dict]:
    """Pure data: one dict per trial, best first (confirmed ones lead)."""
    rows = []
    for t in ranked(study)[:limit]:
        c, r = records.confirm_record(t), records.refit_record(t)
        confirmed, _, val = rank_key(t)
        rows.append({
            "trial": t.number, "params": records.params(t), "val_acc": val,
            "val_std": c.get("val_acc_std") if confirmed else None, "search_val": t.value,
            "baseline": start_label(t.user_attrs), "macs": records.macs(t), "ram": records.ram(t),
            "test_mean": c.get("test_acc_mean") if confirmed else None, "test_std": c.get("test_acc_std"),
            "test_min": c.get("test_acc_min"), "consistency": c.get("consistency"),
            "first_at_target": c.get("first_epoch_at_target"), "seeds": c.get("seeds") if confirmed else None,
            "refit_mean": r.get("test_acc_mean"), "refit_std": r.get("test_acc_std"),
            "refit_images": r.get("train_images"), "raced_out": bool(c.get("raced_out")),
        })
    return rows


def _fmt(v: object, spec: str = "") -> str:
    return "-" if v is None else format(v, spec)


def _pm(mean: float | None, std: float | None) -> str:
    return "-" if mean is None else f"{mean:.2f} ± {std:.2f}"


def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n / KB:.1f}"


def format_leaderboard(rows: list[dict], budget: Budget | int | None = None, target: float | None = None) -> str:
    budget = Budget(budget) if isinstance(budget, int) else budget
    target = target if target is not None else DATASETS["mnist"].target
    at = f"@{target:g}"
    head = (f"{'#':>3} {'trial':>5} {'params':>7} {'MACs':>6} {'RAM KB':>6} {'val %':>7} {'test % (mean±std)':>18} "
            f"{'min':>6} {'last3':>6} {at:>6} {'refit test %':>14}  note")
    lines = [head, "-" * len(head)]
    for i, r in enumerate(rows, 1):
        lines.append(
            f"{i:>3} {r['trial']:>5} {_fmt(r['params'], 'd'):>7} {mega(r['macs']):>6} {_kb(r['ram']):>6} "
            f"{_fmt(r['val_acc'], '.2f'):>7} "
            f"{_pm(r['test_mean'], r['test_std']):>18} {_fmt(r['test_min'], '.2f'):>6} "
            f"{_fmt(r['consistency'], '.2f'):>6} {_fmt(r['first_at_target']):>6} {_pm(r['refit_mean'], r['refit_std']):>14}  "
            f"{r['baseline'] or 'drawn'}"
            + (f" ({r['seeds']} seeds{', stopped by the race' if r['raced_out'] else ''})" if r["seeds"] else "")
        )
    if budget is not None:
        lines.append(f"budget: {budget}; MACs per image; RAM KB = peak int8 activation memory; ranked by val = mean validation accuracy over the confirmation "
                     "seeds (search validation if not confirmed); test is reported, never used to rank; "
                     f"last3 = worst test accuracy over the last 3 epochs of any seed; {at} = first epoch "
                     f"at >= {target:g}% test; refit test = mean test accuracy after training again on "
                     "train + val with the same seeds (chooses nothing; export ships these weights)")
    return "\n".join(lines)


def winner_line(rows: list[dict]) -> str:
    if not rows:
        return "no completed trial yet"
    w = rows[0]
    if w["test_mean"] is None:
        return f"best so far: trial {w['trial']}, {w['params']} params, val {w['val_acc']:.2f}% (not confirmed)"
    return (f"winner: trial {w['trial']}, {w['params']} params, val {w['val_acc']:.2f}% ± {w['val_std']:.2f}, "
            f"test {w['test_mean']:.2f}% ± {w['test_std']:.2f} over {w['seeds']} seeds "
            f"(min {w['test_min']:.2f}%, last-3 min {w['consistency']:.2f}%)"
            + (f"; refit on {w['refit_images']:,} images: test {w['refit_mean']:.2f}% ± {w['refit_std']:.2f}"
               if w["refit_mean"] is not None else ""))


def time_line(study: optuna.Study) -> str:
    """The job's wall time split into search, confirmation and refit, each summed over every run
    (a job resumed across sessions included), and their total."""
    from search.commands.report_data import clock
    from search.store.study import STAGES, search_seconds, stage_seconds

    parts = {"search": search_seconds(study), **stage_seconds(study)}
    read = {"confirmation": records.confirm_record, "refit": records.refit_record}  # each stage's seeds
    trials = study.get_trials(deepcopy=False)
    # studies recorded before the stages were timed hold their seeds but no clock: not "not run"
    ran = {k for k in STAGES if any(read[k](t) for t in trials)}
    shown = [f"{k} {clock(parts[k])}" if k in parts else f"{k} {'not timed' if k in ran else 'not run'}"
             for k in ("search", *STAGES)]
    untimed = ran - parts.keys()
    return f"wall time: {', '.join(shown)}; {'timed parts' if untimed else 'all'} {clock(sum(parts.values()))}"


def search_line(study: optuna.Study) -> str:
    """How the search went: its trials, the best validation accuracy against the search clock
    (the anytime curve, pauses between resumed runs left out where the runs are recorded), and
    where the best drawn design (not a start point) ranks on the leaderboard."""
    from search.commands.report_data import anytime, clock
    from search.store.study import search_runs, search_seconds

    trials = study.get_trials(deepcopy=False)
    counted = [t for t in trials if records.is_counted(t)]
    done = records.completed(counted)
    starts = sum(1 for t in counted if start_label(t.user_attrs))
    line = (f"searched: {len(counted)} trials ({len(done)} complete, {len(counted) - len(done)} pruned; "
            f"{starts} start points, {len(counted) - starts} drawn), {clock(search_seconds(study))} of search clock")
    curve = anytime(trials, search_runs(study))
    if curve:
        line += (f"; best validation against the {curve[0]['clock']} clock: "
                 + ", ".join(f"{clock(p['seconds'])} {p['best']:.2f}% (trial {p['number']})" for p in curve))
    place = {t.number: i for i, t in enumerate(ranked(study), 1)}
    drawn = [t for t in done if not start_label(t.user_attrs)]
    if drawn:
        # the best drawn design is the one the leaderboard places highest (confirmation decides
        # among the finalists), not the one with the best single search score
        best = min(drawn, key=lambda t: place[t.number])
        in_search = 1 + [t.number for t in sorted(done, key=lambda t: t.value, reverse=True)].index(best.number)
        line += (f"; best drawn design: trial {best.number}, leaderboard place {place[best.number]} "
                 f"of {len(place)} (search val {best.value:.2f}%, place {in_search} in the search)")
    else:
        line += "; no drawn design completed"
    return line


def summary_lines(study: optuna.Study, limit: int = 10) -> list[str]:
    """What `leaderboard` prints and a search ends with: the table, the search's and the stages'
    clocks, the winner and the stored verdict."""
    cfg = study_config(study)
    rows = leaderboard_rows(study, limit)
    return [format_leaderboard(rows, cfg.limits, target_accuracy(cfg.dataset, cfg.target)), search_line(study),
            time_line(study), winner_line(rows), *verdict_lines(study)]
