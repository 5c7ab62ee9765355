"""Confirmation: retrain the top-k designs on all training images with several seeds, test them.

This is the only place (with `train`) that touches the test set. Results are stored on each
trial as the user attribute "confirm"; seed-0 weights go to the study's artifact store.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from search.study import counted_trials, trial_design
from trainers import DeviceData, consistency, first_epoch_at, train

TARGET = 99.4  # the seeds' goal: test accuracy (%) to reach and hold
CONSISTENCY_K = 3  # epochs over which "consistently" is measured
CONFIRM_SEED_BASE = 1000  # confirmation seeds differ from every search seed


def artifact_dir(study_name: str) -> Path:
    return Path("studies") / f"{study_name}-artifacts"


def summarize(curves: list[list[float]]) -> dict:
    finals = [c[-1] for c in curves]
    firsts = [first_epoch_at(c, TARGET) for c in curves]
    return {
        "test_acc_mean": round(statistics.fmean(finals), 4),
        "test_acc_std": round(statistics.stdev(finals), 4) if len(finals) > 1 else 0.0,
        "test_acc_min": round(min(finals), 4),
        "consistency": round(min(consistency(c, CONSISTENCY_K) for c in curves), 4),
        "first_epoch_at_target": None if None in firsts else max(firsts),
        "target": TARGET,
        "seeds": len(curves),
    }


def top_trials(study: optuna.Study, k: int) -> list[FrozenTrial]:
    done = [t for t in counted_trials(study) if t.state == TrialState.COMPLETE and t.value is not None]
    return sorted(done, key=lambda t: t.value, reverse=True)[:k]


def save_weights(study: optuna.Study, trial: FrozenTrial, model: torch.nn.Module, artifacts: Path) -> str:
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    artifacts.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.pt"
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, path)
        return upload_artifact(
            artifact_store=FileSystemArtifactStore(str(artifacts)), file_path=str(path),
            study_or_trial=trial, storage=study._storage,
        )


def confirm_trial(
    study: optuna.Study,
    trial: FrozenTrial,
    data: DeviceData,
    seeds: int,
    artifacts: Path,
    log: Callable[[str], None] = print,
) -> dict:
    """Train `trial`'s design `seeds` times on train+val, test after every epoch; store the result."""
    spec, recipe = trial_design(trial)
    full = data.full_train()
    curves, seconds, weights_id = [], [], None
    for s in range(seeds):
        bar = tqdm(total=recipe.epochs, desc=f"confirm trial {trial.number} seed {s}", unit="ep", leave=False)

        def tick(stats, bar=bar) -> bool:
            bar.set_postfix_str(f"test {stats.acc('test'):.2f}%")
            bar.update(1)
            return False

        result = train(spec, full, recipe, evals={"test": data.test}, norm=(data.mean, data.std),
                       seed=CONFIRM_SEED_BASE + s, report=tick)
        bar.close()
        curves.append([round(a, 4) for a in result.curve("test")])
        seconds.append(round(sum(e.seconds for e in result.epochs), 2))
        if s == 0:
            weights_id = save_weights(study, trial, result.model, artifacts)
        log(f"  trial {trial.number} seed {s}: test {curves[-1][-1]:.2f}% "
            f"(last {CONSISTENCY_K}: min {consistency(curves[-1], CONSISTENCY_K):.2f}%), {seconds[-1]:.0f}s")
    record = {**summarize(curves), "test_acc": curves, "train_seconds": seconds,
              "train_images": len(full), "weights_artifact": weights_id}
    study._storage.set_trial_user_attr(trial._trial_id, "confirm", record)
    return record


def confirm_top(
    study: optuna.Study, data: DeviceData, top_k: int, seeds: int, artifacts: Path,
    log: Callable[[str], None] = print,
) -> None:
    """Confirm the top-k trials by validation accuracy; trials already confirmed are skipped."""
    for t in top_trials(study, top_k):
        if t.user_attrs.get("confirm", {}).get("seeds", 0) >= seeds:
            continue
        log(f"confirming trial {t.number} ({t.user_attrs['params']} params, val {t.value:.2f}%) "
            f"on {len(data.train) + len(data.val)} images x {seeds} seeds")
        confirm_trial(study, t, data, seeds, artifacts, log)
