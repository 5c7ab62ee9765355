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

from search.store import records
from search.store.selection import ranked, trials_to_confirm, trials_to_refit
from search.store.storage import set_trial_attr
from search.job.seeds import InProcess, SeedJob, SeedResult, Workers, weights
from search.verdict import compare, format_line, race_round
from trainers.data import DeviceData
from trainers.loop import consistency, first_epoch_at
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
    runner: InProcess | Workers | None = None  # who trains the seeds (None: this process, one by one)
    after_seed: Callable[[], None] | None = None  # called once each seed is stored (progress, estimate)

    @property
    def resolved_precision(self) -> str:
        return resolve_precision(self.precision, self.data.train.x.device.type)

    def run(self, jobs: list[SeedJob]):
        return (self.runner or InProcess(self.data, self.resolved_precision)).run(jobs)


def _fold(r: Retrainer, study: optuna.Study, trial: FrozenTrial, record: dict, job: SeedJob,
          res: SeedResult) -> dict:
    """`record` with seed `job.index` (the next one) added, stored on the trial."""
    out = {k: list(v) if isinstance(v, list) else v for k, v in record.items()}
    for split, curve in res.curves.items():
        out.setdefault(f"{split}_acc", []).append(curve)
    if res.correct is not None and len(out.get("test_correct", [])) == job.index:  # kept aligned with the seeds
        out.setdefault("test_correct", []).append(res.correct)
    out.setdefault("train_seconds", []).append(res.seconds)
    if res.state is not None:
        out["weights_artifact"] = save_weights(r.storage, trial, weights(res), r.artifacts)
    test = out["test_acc"]
    finals = ", ".join(f"{k.removesuffix('_acc')} {out[k][-1][-1]:.2f}%" for k in ("val_acc", "test_acc") if k in out)
    r.log(f"  {job.what} trial {trial.number} seed {job.index}: {finals} "
          f"(last {CONSISTENCY_K}: min {consistency(test[-1], CONSISTENCY_K):.2f}%), {res.seconds:.0f}s")
    out.update(train_images=len(r.data.train) + (len(r.data.val) if job.full else 0),
               seed_base=records.CONFIRM_SEED_BASE, precision=r.resolved_precision)
    summary = {**out, **summarize(out.get("val_acc", []), out["test_acc"], r.target)}
    set_trial_attr(r.storage, study.study_name, trial.number, job.what, summary)
    if r.after_seed is not None:
        r.after_seed()
    return summary


def train_seeds(r: Retrainer, study: optuna.Study, wanted: list[tuple[FrozenTrial, dict, int]], *,
                full: bool) -> dict[int, dict]:
    """Each (trial, record, upto) of `wanted` with its record grown to `upto` seeds: every seed not
    in it yet trains the trial's design on the training split (full=False: the confirm record,
    val + test curves and which test images it gets right) or on train + val (full=True: the refit
    record, test curves only, as `retrain` evaluates). All the seeds go to the runner together
    (side by side with --workers); each is stored as soon as the seeds before it are, so a stopped
    run loses only the seeds in progress. Seed-0 weights go to the artifact store."""
    what = records.REFIT if full else records.CONFIRM
    trials = {t.number: t for t, _, _ in wanted}
    out = {t.number: rec for t, rec, _ in wanted}
    jobs = [SeedJob(t.number, s, *records.design(t), full=full, what=what)
            for t, rec, upto in wanted for s in range(len(rec.get("test_acc", [])), upto)]
    early: dict[tuple[int, int], tuple[SeedJob, SeedResult]] = {}  # finished before a seed ahead of them
    for job, res in r.run(jobs):
        early[job.trial, job.index] = job, res
        n = job.trial
        while (key := (n, len(out[n].get("test_acc", [])))) in early:
            out[n] = _fold(r, study, trials[n], out[n], *early.pop(key))
    return out


def grow(r: Retrainer, study: optuna.Study, trial: FrozenTrial, record: dict, upto: int) -> dict:
    """Confirmation's record of `trial` grown to `upto` seeds on the training split, stored."""
    return train_seeds(r, study, [(trial, record, upto)], full=False)[trial.number]


def confirm_top(r: Retrainer, study: optuna.Study, top_k: int) -> None:
    """Race the top-k searched designs and the baselines over seeds (search.verdict.race_round):
    each gets the first-round seeds, then only the ones still in contention on validation get
    more, up to `r.cap`. Seeds already recorded are kept (a resumed run goes on from them)."""
    contenders = {t.number: t for t in trials_to_confirm(study, top_k)}
    recs = {n: records.confirm_record(t) for n, t in contenders.items()}
    first = [(t, recs[n], r.seeds) for n, t in contenders.items() if len(recs[n].get("val_acc", [])) < r.seeds]
    for t, rec, _ in first:
        r.log(f"confirming trial {t.number} ({records.params(t)} params, val {t.value:.2f}%) "
              f"on {len(r.data.train)} training images x {r.seeds} seeds")
    recs.update(train_seeds(r, study, first, full=False))
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
        recs.update(train_seeds(r, study, [(contenders[n], recs[n], len(recs[n]["val_acc"]) + 1) for n in more],
                                full=False))


def refit_top(r: Retrainer, study: optuna.Study, which: str) -> None:
    """Refit the chosen confirmed trials (`trials_to_refit`) on train + val with the first-round
    seeds; seeds already refit are kept. The choice is already made on validation; the refit only
    decides which weights are exported and what test accuracy a model trained on every training
    image reaches."""
    wanted = [(t, records.refit_record(t), r.seeds) for t in trials_to_refit(study, which)
              if records.refit_record(t).get("seeds", 0) < r.seeds]
    for t, _, _ in wanted:
        r.log(f"refitting trial {t.number} ({records.params(t)} params, confirmed val "
              f"{records.confirm_record(t)['val_acc_mean']:.2f}%) on {len(r.data.train) + len(r.data.val)} "
              f"training images (train + val) x {r.seeds} seeds")
    train_seeds(r, study, wanted, full=True)


def study_verdicts(study) -> list[dict]:
    """The winner against each other confirmed baseline. When the winner is itself a baseline, a
    line says so, and the best confirmed searched design is compared with every baseline too.
    Where no baseline was confirmed (none fits the budget), the winner against the runner-up."""
    confirmed = [t for t in ranked(study) if records.is_confirmed(t)]
    baselines = [t for t in confirmed if records.is_baseline(t)]
    searched = [t for t in confirmed if not records.is_baseline(t)]
    if baselines:
        rivals = [(b, records.start_label(b.user_attrs)) for b in baselines]
    elif len(confirmed) >= 2:
        other = records.start_label(confirmed[1].user_attrs)
        rivals = [(confirmed[1], f"runner-up ({other + ', ' if other else ''}trial {confirmed[1].number})")]
    else:
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
        for b, b_label in rivals:
            if b.number == a.number:
                continue
            v = compare(records.confirm_record(a), records.confirm_record(b))
            v.update(a=a.number, b=b.number, a_label=a_label, b_label=b_label)
            out.append({**v, "line": format_line(v)})
    return out
