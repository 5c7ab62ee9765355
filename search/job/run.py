"""`python -m search --budget B --trials N`: the whole job, from data to a confirmed winner; and
`python -m search frontier --budgets 2000,4000,...`: that job once per budget, on one data load, then
the accuracy-for-budget frontier, drawn and linked from each study (its report shows the link).

It follows the README's "How a search runs": checks first, the data on the device once, the study
with its start points, the trials (one process or several workers), confirmation over seeds,
the refit of the winner, then the leaderboard.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import optuna

from search.baselines import resolve
from search.commands.frontier import format_frontier, frontier_points, write_frontier_figure
from search.commands.leaderboard import summary_lines
from search.commands.report_data import clock
from search.config import SearchConfig, validate
from search.errors import EXIT_TOO_MANY_FAILURES, SearchFailed, TooManyFailures
from search.job.confirm import Retrainer, confirm_top, refit_top, study_verdicts
from search.job.eta import Estimate, Stages, check_line, estimate
from search.job.progress import Progress
from search.job.seeds import Workers
from search.job.starts import create_or_resume
from search.job.worker import run_worker, run_workers
from search.store.archive import Keeper
from search.store.storage import open_annotating_storage
from search.store.study import (
    DATA_ATTR, FRONTIER_ATTR, add_stage_seconds, artifact_dir, data_facts, load_existing, open_search_storage,
    search_seconds, set_search_seconds, store_estimate, store_verdict, stored_estimate,
)
from trainers.data import DeviceData, load_data
from trainers.datasets import target_accuracy
from trainers.loop import resolve_device


def _epochs_phrase(cfg: SearchConfig) -> str:
    if cfg.trial_epochs == cfg.epochs:
        return f"{cfg.epochs} epochs"
    return f"{cfg.trial_epochs} epochs (confirmation and refit: {cfg.epochs})"


def run_search(cfg: SearchConfig, log=print, data: DeviceData | None = None) -> int:
    """The search; `data` already loaded (the frontier shares one load between its budgets)."""
    validate(cfg)  # 1. every check that needs no data and no storage
    resolve(cfg.baseline, cfg.limits, cfg.epochs)  # each --baseline readable, a design, within budget
    device = resolve_device(cfg.device)
    storage = open_search_storage(cfg, log)  # a bad storage or a mismatched study: answered before any data
    t0 = time.monotonic()
    data = data or load_data(**cfg.data_args(), device=device, log=log)  # 1. the data on the device, once
    resolve(cfg.baseline, cfg.limits, cfg.epochs, data.io)  # ... and made for these images
    study = create_or_resume(storage, cfg, data.io)  # 2. baselines and start points first
    study.set_user_attr(DATA_ATTR, data_facts(data))  # what export and predict need to know
    log(f"study {cfg.study_name!r} in {cfg.storage}: budget {cfg.limits}, {cfg.trials} trials "
        f"x {_epochs_phrase(cfg)} on {cfg.dataset} ({len(data.train)} train / {len(data.val)} val images), "
        f"device {device}, {cfg.workers} worker(s)")
    progress = Progress(cfg.trials, [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()])
    say = progress.writer(log)
    clock_ = RunClock(cfg, data, progress, say)
    if clock_.tell(study) is None:  # a resumed run says at once what is left
        say("estimate: after the first trial, from its measured seconds")
    try:
        run_trials(study, storage, cfg, data, say, progress, clock_)  # 3-4. sample, train, prune
        say(f"search: {time.monotonic() - t0:.0f}s")
        if cfg.top_k > 0:
            # 5-7. race the finalists, the verdict, the winner on every image
            confirm_and_refit(cfg, data, say, progress, clock_)
    finally:
        progress.close()
    final = load_existing(cfg.study_name, cfg.storage)
    for line in summary_lines(final):
        log(line)
    checked = check_line(final, stored_estimate(final))
    if checked:
        log(checked)
    kept = f"; archive (commit it to resume elsewhere): {cfg.archive}" if cfg.archive else ""
    log(f"total wall time: {time.monotonic() - t0:.0f}s; "
        f"dashboard: optuna-dashboard {cfg.storage} --artifact-dir {artifact_dir(final)}{kept}")
    return 0


@dataclass
class RunClock:
    """Keeps the whole run's estimate (job.eta) on the progress bar, says it on its own line when
    the first one is known and when the search ends, and stores that last one with the study."""

    cfg: SearchConfig
    data: DeviceData
    progress: Progress
    say: Callable[[str], None]
    told: bool = False  # an estimate has had its own line in this run

    def tell(self, study: optuna.Study, searched: float | None = None, announce: bool = False) -> Estimate | None:
        """Estimate from the study as stored now (None before any trial has trained); on its own
        line the first time, or when `announce`d. `searched`: the search clock now, where it runs."""
        stages = Stages.of(self.cfg, len(self.data.train), len(self.data.val),
                           search_seconds(study) if searched is None else searched)
        est = estimate(study, stages)
        if est is None:
            return None
        self.progress.eta(est.total, est.total + est.race)
        if announce or not self.told:
            self.told = True
            self.say(est.line())
        return est

    def search_ended(self, study: optuna.Study, trained: bool) -> None:
        """The search's trials are done: say what confirmation and refit will take, and keep it
        with the study (where this run trained trials, or none was kept) to check against the end."""
        est = self.tell(study, announce=True)
        if est is not None and (trained or stored_estimate(study) is None):
            store_estimate(study, est.kept(study))


def run_trials(study: optuna.Study, storage, cfg: SearchConfig, data: DeviceData, log, progress: Progress,
               clock_: RunClock) -> None:
    """Trials until the study holds cfg.trials finished ones or has searched for cfg.timeout
    seconds over all its runs; progress as they end."""
    spent = search_seconds(study)
    if cfg.timeout is not None:
        if spent >= cfg.timeout:
            log(f"search: the study has searched {spent:.0f}s of its --timeout {cfg.timeout:.0f}s; "
                "nothing left to search (raise --timeout to search longer)")
            clock_.search_ended(study, trained=False)
            return
        cfg = replace(cfg, timeout=cfg.timeout - spent)  # what is left, for this run's workers too
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    keeper = Keeper(storage, cfg.study_name, cfg.archive, seen=(t.number for t in finished))
    t0, started = time.monotonic(), datetime.now()  # now(): the clock Optuna stamps trials with
    before = len(progress.seen)

    def on_trial(t: optuna.trial.FrozenTrial) -> None:
        progress.update(t)
        keeper.trial(t)
        clock_.tell(study, searched=spent + time.monotonic() - t0)

    try:
        if cfg.workers == 1:
            run_worker(study, storage, cfg, data, on_trial=on_trial,
                       on_epoch=lambda n, s: progress.epoch(n, s, cfg.trial_epochs),
                       deadline=t0 + cfg.timeout if cfg.timeout else None)
        else:
            codes = run_workers(cfg, study, on_trial, progress.running_trials)
            if EXIT_TOO_MANY_FAILURES in codes:
                raise TooManyFailures(f"a worker stopped after {cfg.max_failures} consecutive failed trials")
            if any(c not in (0, EXIT_TOO_MANY_FAILURES) for c in codes):
                raise SearchFailed(f"worker exit codes {codes}; run the same command to resume")
    finally:
        set_search_seconds(study, spent + time.monotonic() - t0, run=(started, datetime.now()))
        keeper.write()  # with the clock, and any trial closed by an interrupt
    if progress.anytime:
        log("best validation accuracy against wall time (this run): "
            + ", ".join(f"{clock(s)} {v:.2f}% (trial {n})" for s, v, n in progress.anytime))
    clock_.search_ended(study, trained=len(progress.seen) > before)


def confirm_and_refit(cfg: SearchConfig, data: DeviceData, log, progress: Progress, clock_: RunClock) -> None:
    annotating = open_annotating_storage(cfg.storage)  # may add records to finished trials

    def fresh() -> optuna.Study:
        # a Study caches finished trials, so each stage reads the records the one before wrote
        return load_existing(cfg.study_name, cfg.storage, storage=annotating)

    def seed_done() -> None:
        progress.seed_done()
        clock_.tell(fresh())

    study = fresh()
    r = Retrainer(annotating, data, cfg.confirm_seeds, artifact_dir(study),
                  target_accuracy(cfg.dataset, cfg.target), cfg.precision, log,
                  cap=cfg.race_cap, after_seed=seed_done)
    if cfg.workers > 1:  # the seeds train side by side, as the search's trials did
        device = str(data.train.x.device)
        r = replace(r, runner=Workers(cfg.workers, cfg.data_args(), device, r.resolved_precision))
    keeper = Keeper(annotating, cfg.study_name, cfg.archive)
    try:
        with _stage("confirmation", fresh, keeper, log):
            progress.stage("confirmation")
            confirm_top(r, study, cfg.top_k)
            study = fresh()
            store_verdict(study, study_verdicts(study))  # winner vs each baseline (or the runner-up), stored
        with _stage("refit", fresh, keeper, log):
            progress.stage("refit")
            refit_top(r, fresh(), cfg.refit)
    finally:
        if r.runner is not None:
            r.runner.close()
    if keeper.path:
        log(f"archive: {keeper.path}")


@contextlib.contextmanager
def _stage(name: str, fresh, keeper: Keeper, log):
    """One stage after the search. Stopped or not, its wall seconds are added to the study (so a
    job resumed across runs keeps its whole split, stage_seconds) and the archive is rewritten (so
    the seeds it stored go on from a committed archive on another machine)."""
    t0 = time.monotonic()
    try:
        yield
    finally:
        spent = time.monotonic() - t0
        add_stage_seconds(fresh(), name, spent)
        keeper.write()
        log(f"{name}: {spent:.0f}s (this run)")


def frontier_figure_path(cfgs: list[SearchConfig]) -> Path:
    """studies/frontier-<name>.html, <name> the studies' name without -b<budget> (--study-name, or
    the data set's and any caps): frontiers under other names or caps keep their own figures, and
    a folder data set gives its folder's name, not its path."""
    first = cfgs[0]
    return Path("studies") / f"frontier-{''.join(first.study_name.rsplit(f'-b{first.budget}', 1))}.html"


def run_frontier(cfgs: list[SearchConfig], log=print) -> int:
    for cfg in cfgs:
        open_search_storage(cfg)  # every storage and stored study checked before any data
    device = resolve_device(cfgs[0].device)
    t0 = time.monotonic()
    data = load_data(**cfgs[0].data_args(), device=device, log=log)  # the budgets share data, split, subset
    walls = []
    for cfg in cfgs:
        log(f"--- budget {cfg.budget:,}: study {cfg.study_name!r} ---")
        t = time.monotonic()
        run_search(cfg, log, data=data)
        walls.append(f"{cfg.budget:,}: {time.monotonic() - t:.0f}s")
    studies = [load_existing(cfg.study_name, cfg.storage) for cfg in cfgs]
    target = target_accuracy(cfgs[0].dataset, cfgs[0].target)
    points = frontier_points(studies)
    log(format_frontier(points, target))
    out = write_frontier_figure(points, target, frontier_figure_path(cfgs)).resolve()
    by_macs = write_frontier_figure(points, target, out.with_name(f"{out.stem}-macs.html"), x="macs")
    for study in studies:
        study.set_user_attr(FRONTIER_ATTR, str(out))
    log(f"frontier figure: {out} (against MACs: {by_macs.name}); wall time per budget: {', '.join(walls)}; "
        f"total {time.monotonic() - t0:.0f}s")
    return 0
