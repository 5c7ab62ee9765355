"""Confirmation: retrain the top-k designs with several seeds; rank on validation, report test.

Each seed trains on the training split (the data the search trained on) and is scored after
every epoch on the validation split, which ranks the designs, and on the test set, which is only
reported. The test set chooses nothing. Results are stored on each trial as the user attribute
"confirm"; seed-0 weights go to the study's artifact store.

Then the refit: once validation has chosen, the winner (and the baselines it is compared with)
train again with the same seeds on train + val, every training image, as the seed notebooks
train; their test accuracy is reported as "refit" and their seed-0 weights are what export ships.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial
from tqdm import tqdm

from search.leaderboard import rank_key
from search.storage import set_trial_attr
from search.study import CONFIRM_SEED_BASE, trial_design
from search.trials import completed
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


def trials_to_confirm(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The k best searched designs by validation accuracy (baselines aside), then every finished
    baseline: the hand design a winner must beat is always confirmed the same way, in the same
    study, and never takes a searched design's place (in the run on commit 5871655 seed-004 was the
    best of the search, so top 2 confirmed one searched design)."""
    done = completed(study.get_trials(deepcopy=False))
    searched = [t for t in done if "baseline" not in t.user_attrs]
    top = sorted(searched, key=lambda t: t.value, reverse=True)[:k]
    return top + [t for t in done if "baseline" in t.user_attrs]


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


def train_seeds(
    storage, trial: FrozenTrial, data: DeviceData, seeds: int, artifacts: Path, precision: str, *,
    full: bool, log: Callable[[str], None],
) -> dict:
    """Train `trial`'s design `seeds` times: on the training split (full=False: val + test curves)
    or on train + val (full=True: test curves only, as `retrain` evaluates). Seed-0 weights go to
    the artifact store. Returns "<split>_acc" curves per seed for each split evaluated."""
    spec, recipe = trial_design(trial)
    what = "refit" if full else "confirm"
    precision = resolve_precision(precision, data.train.x.device.type)
    curves: dict[str, list[list[float]]] = {}
    seconds, weights_id = [], None
    for s in range(seeds):
        bar, tick = _bar(trial, s, recipe.epochs, what)
        run = retrain(spec, recipe, data, seed=CONFIRM_SEED_BASE + s, full=full, report=tick, precision=precision)
        bar.close()
        for split in run.result.epochs[-1].evals:
            curves.setdefault(split, []).append([round(a, 4) for a in run.result.curve(split)])
        seconds.append(round(sum(e.seconds for e in run.result.epochs), 2))
        if s == 0:
            weights_id = save_weights(storage, trial, run.state_dict, artifacts)
        finals = ", ".join(f"{k} {c[-1][-1]:.2f}%" for k, c in curves.items())
        log(f"  {what} trial {trial.number} seed {s}: {finals} "
            f"(last {CONSISTENCY_K}: min {consistency(curves['test'][-1], CONSISTENCY_K):.2f}%), {seconds[-1]:.0f}s")
    images = len(data.train) + (len(data.val) if full else 0)
    return {**{f"{k}_acc": c for k, c in curves.items()}, "train_seconds": seconds, "train_images": images,
            "seed_base": CONFIRM_SEED_BASE, "precision": precision, "weights_artifact": weights_id}


def confirm_trial(
    study: optuna.Study,
    storage,
    trial: FrozenTrial,
    data: DeviceData,
    seeds: int,
    artifacts: Path,
    target: float,
    precision: str = "fp32",
    log: Callable[[str], None] = print,
) -> dict:
    """Train `trial`'s design `seeds` times on the training split; store val + test curves."""
    runs = train_seeds(storage, trial, data, seeds, artifacts, precision, full=False, log=log)
    record = {**summarize(runs["val_acc"], runs["test_acc"], target), **runs}
    set_trial_attr(storage, study.study_name, trial.number, "confirm", record)
    return record


def refit_trial(
    study: optuna.Study, storage, trial: FrozenTrial, data: DeviceData, seeds: int, artifacts: Path,
    target: float, precision: str = "fp32", log: Callable[[str], None] = print,
) -> dict:
    """Train `trial`'s design `seeds` times on train + val, the same seeds; store test curves."""
    runs = train_seeds(storage, trial, data, seeds, artifacts, precision, full=True, log=log)
    record = {**summarize([], runs["test_acc"], target), **runs}  # nothing held out: no validation
    set_trial_attr(storage, study.study_name, trial.number, "refit", record)
    return record


def confirm_top(
    study: optuna.Study, storage, data: DeviceData, top_k: int, seeds: int, artifacts: Path,
    target: float, precision: str = "fp32", log: Callable[[str], None] = print,
) -> None:
    """Confirm the top-k trials by validation accuracy and the baselines; confirmed ones are skipped."""
    for t in trials_to_confirm(study, top_k):
        c = t.user_attrs.get("confirm", {})
        if c.get("seeds", 0) >= seeds and "val_acc_mean" in c:
            continue
        log(f"confirming trial {t.number} ({t.user_attrs['params']} params, val {t.value:.2f}%) "
            f"on {len(data.train)} training images x {seeds} seeds")
        confirm_trial(study, storage, t, data, seeds, artifacts, target, precision, log)


def trials_to_refit(study: optuna.Study, which: str) -> list[FrozenTrial]:
    """Confirmed trials to retrain on all training images: the winner (best confirmed validation)
    and every baseline it is compared with ("winner"), every confirmed trial ("all"), or none."""
    done = [t for t in completed(study.get_trials(deepcopy=False)) if rank_key(t)[0]]
    if which == "none" or not done:
        return []
    ranked = sorted(done, key=rank_key, reverse=True)  # the leaderboard's order: its first row wins
    if which == "all":
        return ranked
    return ranked[:1] + [t for t in ranked[1:] if "baseline" in t.user_attrs]


def refit_top(
    study: optuna.Study, storage, data: DeviceData, which: str, seeds: int, artifacts: Path,
    target: float, precision: str = "fp32", log: Callable[[str], None] = print,
) -> None:
    """Refit the chosen confirmed trials (see `trials_to_refit`); refit ones are skipped. The choice
    is already made on validation; the refit only decides which weights are exported and what test
    accuracy a model trained on every training image reaches."""
    for t in trials_to_refit(study, which):
        if (t.user_attrs.get("refit") or {}).get("seeds", 0) >= seeds:
            continue
        log(f"refitting trial {t.number} ({t.user_attrs['params']} params, confirmed val "
            f"{t.user_attrs['confirm']['val_acc_mean']:.2f}%) on {len(data.train) + len(data.val)} "
            f"training images (train + val) x {seeds} seeds")
        refit_trial(study, storage, t, data, seeds, artifacts, target, precision, log)
