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
from search.store.selection import trials_to_confirm, trials_to_refit
from search.store.storage import set_trial_attr
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
    seeds: int  # seeds per design (confirmation's --confirm-seeds; the refit uses the same ones)
    artifacts: Path  # the study's artifact folder (seed-0 weights)
    target: float  # accuracy (%) for "first epoch at target"
    precision: str = "fp32"  # fp32 | bf16 | auto
    log: Callable[[str], None] = field(default=print)


def train_seeds(r: Retrainer, trial: FrozenTrial, *, full: bool) -> dict:
    """Train `trial`'s design `r.seeds` times: on the training split (full=False: val + test
    curves) or on train + val (full=True: test curves only, as `retrain` evaluates). Seed-0
    weights go to the artifact store. Returns "<split>_acc" curves per seed for each split."""
    spec, recipe = records.design(trial)
    what = records.REFIT if full else records.CONFIRM
    precision = resolve_precision(r.precision, r.data.train.x.device.type)
    curves: dict[str, list[list[float]]] = {}
    seconds, weights_id = [], None
    for s in range(r.seeds):
        bar, tick = _bar(trial, s, recipe.epochs, what)
        run = retrain(spec, recipe, r.data, seed=records.CONFIRM_SEED_BASE + s, full=full, report=tick,
                      precision=precision)
        bar.close()
        for split in run.result.epochs[-1].evals:
            curves.setdefault(split, []).append([round(a, 4) for a in run.result.curve(split)])
        seconds.append(round(sum(e.seconds for e in run.result.epochs), 2))
        if s == 0:
            weights_id = save_weights(r.storage, trial, run.state_dict, r.artifacts)
        finals = ", ".join(f"{k} {c[-1][-1]:.2f}%" for k, c in curves.items())
        r.log(f"  {what} trial {trial.number} seed {s}: {finals} "
              f"(last {CONSISTENCY_K}: min {consistency(curves['test'][-1], CONSISTENCY_K):.2f}%), {seconds[-1]:.0f}s")
    images = len(r.data.train) + (len(r.data.val) if full else 0)
    return {**{f"{k}_acc": c for k, c in curves.items()}, "train_seconds": seconds, "train_images": images,
            "seed_base": records.CONFIRM_SEED_BASE, "precision": precision, "weights_artifact": weights_id}


def confirm_trial(r: Retrainer, study: optuna.Study, trial: FrozenTrial) -> dict:
    """Train `trial`'s design on the training split with each seed; store val + test curves."""
    runs = train_seeds(r, trial, full=False)
    record = {**summarize(runs["val_acc"], runs["test_acc"], r.target), **runs}
    set_trial_attr(r.storage, study.study_name, trial.number, records.CONFIRM, record)
    return record


def refit_trial(r: Retrainer, study: optuna.Study, trial: FrozenTrial) -> dict:
    """Train `trial`'s design on train + val with the same seeds; store test curves."""
    runs = train_seeds(r, trial, full=True)
    record = {**summarize([], runs["test_acc"], r.target), **runs}  # nothing held out: no validation
    set_trial_attr(r.storage, study.study_name, trial.number, records.REFIT, record)
    return record


def confirm_top(r: Retrainer, study: optuna.Study, top_k: int) -> None:
    """Confirm the top-k trials by validation accuracy and the baselines; confirmed ones are skipped."""
    for t in trials_to_confirm(study, top_k):
        if records.is_confirmed(t, r.seeds):
            continue
        r.log(f"confirming trial {t.number} ({records.params(t)} params, val {t.value:.2f}%) "
              f"on {len(r.data.train)} training images x {r.seeds} seeds")
        confirm_trial(r, study, t)


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
