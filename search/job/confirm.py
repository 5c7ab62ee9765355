"""Confirmation: retrain the top-k designs with several seeds; rank on validation, report test.

Each seed trains on the training split (the data the search trained on) and is scored after
every epoch on the validation split, which ranks the designs, and on the test set, which is only
reported. The test set chooses nothing. Results are stored on each trial as its confirm record;
seed-0 weights go to the study's artifact store.

Then the refit: once validation has chosen, the winner (and the baselines it is compared with)
train again with the same seeds on train + val, every training image, as the seed notebooks
train; their test accuracy is stored as the refit record and their seed-0 weights are what export
ships. Which trials each stage trains is `search.store.selection`'s rule.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial
from tqdm import tqdm

from search.store import records
from search.store.selection import ranked, trials_to_confirm, trials_to_refit
from search.store.storage import set_trial_attr
from search.verdict import compare, format_line, pack, race_round
from trainers.data import DeviceData
from trainers.loop import EpochStats, consistency, first_epoch_at, retrain
from trainers.precision import resolve_precision

CONSISTENCY_K = 3  # epochs over which "consistently" is measured


def _mean_std(xs: list[float]) -> tuple[float, float]:
    return round(statistics.fmean(xs), 4), round(statistics.stdev(xs), 4) if len(xs) > 1 else 0.0


def summarize(val: list[list[float]], test: list[list[float]], target: float) -> dict:
    """Per-seed curves -> the figures the leaderboard shows (val ranks, test is reported).
    A refit has no validation curves (val == []) and so no val figures."""
    finals = [c[-1] for c in test]
    firsts = [first_epoch_at(c, target) for c in test]
    test_mean, test_std = _mean_std(finals)
    out = {
        "test_acc_mean": test_mean, "test_acc_std": test_std, "test_acc_min": round(min(finals), 4),
        "consistency": round(min(consistency(c, CONSISTENCY_K) for c in test), 4),
        "first_epoch_at_target": None if None in firsts else max(firsts),
        "target": target, "seeds": len(test),
    }
    if val:
        out["val_acc_mean"], out["val_acc_std"] = _mean_std([c[-1] for c in val])
    return out


def save_weights(storage, trial: FrozenTrial, state: dict[str, torch.Tensor], artifacts: Path) -> str:
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    artifacts.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.pt"
        torch.save(state, path)
        return upload_artifact(artifact_store=FileSystemArtifactStore(str(artifacts)), file_path=str(path),
                               study_or_trial=trial, storage=storage)


def _bar(trial: FrozenTrial, seed: int, epochs: int, what: str) -> tuple[tqdm, Callable[[EpochStats], bool]]:
    bar = tqdm(total=epochs, desc=f"{what} trial {trial.number} seed {seed}", unit="ep", leave=False)

    def tick(stats: EpochStats) -> bool:
        bar.set_postfix_str(" ".join(f"{k} {stats.acc(k):.2f}%" for k in stats.evals))
        bar.update(1)
        return False

    return bar, tick


@dataclass(frozen=True)
class Retrainer:
    """What every confirmation and refit run shares: where it trains, stores and logs."""

    storage: optuna.storages.BaseStorage  # writes the records (an annotating storage: see storage.py)
    data: DeviceData  # the study's data, on the training device
    seeds: int  # first-round seeds per design (--confirm-seeds; the refit uses the same ones)
    artifacts: Path  # the study's artifact folder (seed-0 weights)
    target: float  # accuracy (%) for "first epoch at target"
    precision: str = "fp32"  # fp32 | bf16 | auto
    log: Callable[[str], None] = field(default=print)
    cap: int = 0  # most seeds the race gives one design (0: --confirm-seeds, no race)


def train_seeds(r: Retrainer, study: optuna.Study, trial: FrozenTrial, record: dict, upto: int, *,
                full: bool) -> dict:
    """`record` grown to `upto` seeds: each seed not in it yet trains `trial`'s design on the
    training split (full=False: the confirm record, val + test curves and which test images it
    gets right) or on train + val (full=True: the refit record, test curves only, as `retrain`
    evaluates). The record is stored after every seed, so a stopped run loses at most the seed in
    progress. Seed-0 weights go to the artifact store."""
    spec, recipe = records.design(trial)
    what = records.REFIT if full else records.CONFIRM
    precision = resolve_precision(r.precision, r.data.train.x.device.type)
    out = {k: list(v) if isinstance(v, list) else v for k, v in record.items()}
    summary: dict = {}
    for s in range(len(out.get("test_acc", [])), upto):
        bar, tick = _bar(trial, s, recipe.epochs, what)
        run = retrain(spec, recipe, r.data, seed=records.CONFIRM_SEED_BASE + s, full=full, report=tick,
                      precision=precision)
        bar.close()
        for split in run.result.epochs[-1].evals:
            out.setdefault(f"{split}_acc", []).append([round(a, 4) for a in run.result.curve(split)])
        if not full and len(out.get("test_correct", [])) == s:  # kept aligned with the seeds
            out.setdefault("test_correct", []).append(pack(run.test_correct.numpy()))
        out.setdefault("train_seconds", []).append(round(sum(e.seconds for e in run.result.epochs), 2))
        if s == 0:
            out["weights_artifact"] = save_weights(r.storage, trial, run.state_dict, r.artifacts)
        test = out["test_acc"]
        finals = ", ".join(f"{k.removesuffix('_acc')} {out[k][-1][-1]:.2f}%" for k in ("val_acc", "test_acc") if k in out)
        r.log(f"  {what} trial {trial.number} seed {s}: {finals} "
              f"(last {CONSISTENCY_K}: min {consistency(test[-1], CONSISTENCY_K):.2f}%), {out['train_seconds'][-1]:.0f}s")
        out.update(train_images=len(r.data.train) + (len(r.data.val) if full else 0),
                   seed_base=records.CONFIRM_SEED_BASE, precision=precision)
        summary = {**out, **summarize(out.get("val_acc", []), out["test_acc"], r.target)}
        set_trial_attr(r.storage, study.study_name, trial.number, what, summary)
    return summary or record


def grow(r: Retrainer, study: optuna.Study, trial: FrozenTrial, record: dict, upto: int) -> dict:
    """Confirmation's record of `trial` grown to `upto` seeds on the training split, stored."""
    return train_seeds(r, study, trial, record, upto, full=False)


def refit_trial(r: Retrainer, study: optuna.Study, trial: FrozenTrial) -> dict:
    """Train `trial`'s design on train + val with the first-round seeds (those already refit are
    kept); store test curves."""
    return train_seeds(r, study, trial, records.refit_record(trial), r.seeds, full=True)


def confirm_top(r: Retrainer, study: optuna.Study, top_k: int) -> None:
    """Race the top-k searched designs and the baselines over seeds (search.verdict.race_round):
    each gets the first-round seeds, then only the ones still in contention on validation get
    more, up to `r.cap`. Seeds already recorded are kept (a resumed run goes on from them)."""
    contenders = {t.number: t for t in trials_to_confirm(study, top_k)}
    recs = {n: records.confirm_record(t) for n, t in contenders.items()}
    for n, t in contenders.items():
        if len(recs[n].get("val_acc", [])) < r.seeds:
            r.log(f"confirming trial {n} ({records.params(t)} params, val {t.value:.2f}%) "
                  f"on {len(r.data.train)} training images x {r.seeds} seeds")
            recs[n] = grow(r, study, t, recs[n], r.seeds)
    out = {n for n, rec in recs.items() if rec.get("raced_out")}
    while True:
        finals = {n: [c[-1] for c in rec["val_acc"]] for n, rec in recs.items()}
        more = race_round(finals, out, max(r.cap, r.seeds))
        for n in out:
            if not recs[n].get("raced_out"):
                recs[n] = {**recs[n], "raced_out": True}
                set_trial_attr(r.storage, study.study_name, n, records.CONFIRM, recs[n])
                r.log(f"  race: trial {n} stops at {len(finals[n])} seeds, clearly behind on validation")
        if not more:
            return
        r.log(f"  race: trials {', '.join(map(str, more))} still in contention; one more seed each")
        for n in more:
            recs[n] = grow(r, study, contenders[n], recs[n], len(recs[n]["val_acc"]) + 1)


def refit_top(r: Retrainer, study: optuna.Study, which: str) -> None:
    """Refit the chosen confirmed trials (`trials_to_refit`); refit ones are skipped. The choice
    is already made on validation; the refit only decides which weights are exported and what test
    accuracy a model trained on every training image reaches."""
    for t in trials_to_refit(study, which):
        if records.refit_record(t).get("seeds", 0) >= r.seeds:
            continue
        r.log(f"refitting trial {t.number} ({records.params(t)} params, confirmed val "
              f"{records.confirm_record(t)['val_acc_mean']:.2f}%) on {len(r.data.train) + len(r.data.val)} "
              f"training images (train + val) x {r.seeds} seeds")
        refit_trial(r, study, t)


def study_verdicts(study) -> list[dict]:
    """The winner against each other confirmed baseline. When the winner is itself a baseline, a
    line says so, and the best confirmed searched design is compared with every baseline too."""
    confirmed = [t for t in ranked(study) if records.is_confirmed(t)]
    baselines = [t for t in confirmed if records.is_baseline(t)]
    searched = [t for t in confirmed if not records.is_baseline(t)]
    if not confirmed or not baselines:
        return []
    winner = confirmed[0]
    name = records.start_label(winner.user_attrs)
    out: list[dict] = []
    pairs = [(winner, f"winner ({name + ', ' if name else ''}trial {winner.number})")]
    if records.is_baseline(winner):
        out.append({"line": f"winner: the baseline {name} (trial {winner.number}); "
                            "no searched design led it on mean validation accuracy"})
        if searched:
            pairs.append((searched[0], f"best searched design (trial {searched[0].number})"))
    for a, a_label in pairs:
        for b in baselines:
            if b.number == a.number:
                continue
            v = compare(records.confirm_record(a), records.confirm_record(b))
            v.update(a=a.number, b=b.number, a_label=a_label, b_label=records.start_label(b.user_attrs))
            out.append({**v, "line": format_line(v)})
    return out
