"""`python -m search --budget B --trials N`: the whole job, from data to a confirmed winner."""

from __future__ import annotations

import time

from search.config import SearchConfig, validate
from search.confirm import confirm_top, refit_top
from search.errors import SearchFailed
from search.leaderboard import format_leaderboard, leaderboard_rows, winner_line
from search.progress import Progress, clock
from search.storage import open_annotating_storage
from search.study import artifact_dir, create_or_resume, load_existing, open_search_storage, study_data
from search.worker import TooManyFailures, run_worker, run_workers
from trainers.datasets import target_accuracy
from trainers.loop import resolve_device


def run_search(cfg: SearchConfig, log=print) -> int:
    validate(cfg)
    device = resolve_device(cfg.device)
    storage = open_search_storage(cfg)  # bad storage or a mismatched study: answered before any data
    t0 = time.monotonic()
    data = study_data(cfg, device, log=log)
    study = create_or_resume(storage, cfg)
    log(f"study {cfg.study_name!r} in {cfg.storage}: budget {cfg.budget} params, {cfg.trials} trials "
        f"x {cfg.epochs} epochs on {cfg.dataset} ({len(data.train)} train / {len(data.val)} val images), "
        f"device {device}, {cfg.workers} worker(s)")
    already = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    progress = Progress(cfg.trials, already)
    try:
        if cfg.workers == 1:
            deadline = t0 + cfg.timeout if cfg.timeout else None
            run_worker(study, storage, cfg, data, on_trial=progress.update,
                       on_epoch=lambda n, s: progress.epoch(n, s, cfg.epochs), deadline=deadline)
        else:
            codes = run_workers(cfg, study, progress.update, progress.running_trials)
            if any(c == 3 for c in codes):
                raise TooManyFailures(f"a worker stopped after {cfg.max_failures} consecutive failed trials")
            if any(c not in (0, 3) for c in codes):
                raise SearchFailed(f"worker exit codes {codes}; run the same command to resume")
    except TooManyFailures as e:
        raise SearchFailed(str(e)) from None
    finally:
        progress.close()
    log(f"search: {time.monotonic() - t0:.0f}s")
    if progress.anytime:
        log("best validation accuracy against wall time (this run): "
            + ", ".join(f"{clock(s)} {v:.2f}% (trial {n})" for s, v, n in progress.anytime))
    if cfg.top_k > 0:
        annotating = open_annotating_storage(cfg.storage)
        study = load_existing(cfg.study_name, cfg.storage, storage=annotating)
        target = target_accuracy(cfg.dataset, cfg.target)
        confirm_top(study, annotating, data, cfg.top_k, cfg.confirm_seeds, artifact_dir(study), target,
                    cfg.precision, log)
        # loaded again: the Study caches finished trials, so it would not see the "confirm" results
        refit_top(load_existing(cfg.study_name, cfg.storage, storage=annotating), annotating, data, cfg.refit,
                  cfg.confirm_seeds, artifact_dir(study), target, cfg.precision, log)
    final = load_existing(cfg.study_name, cfg.storage)
    rows = leaderboard_rows(final)
    log(format_leaderboard(rows, cfg.budget, target_accuracy(cfg.dataset, cfg.target)))
    log(winner_line(rows))
    log(f"total wall time: {time.monotonic() - t0:.0f}s; "
        f"dashboard: optuna-dashboard {cfg.storage} --artifact-dir {artifact_dir(final)}")
    return 0
