"""`python -m search --budget B --trials N`: the whole job, from data to a confirmed winner."""

from __future__ import annotations

import time

import optuna
import torch

from search.confirm import artifact_dir, confirm_top
from search.config import SearchConfig, validate
from search.errors import UserError
from search.leaderboard import format_leaderboard, leaderboard_rows, winner_line
from search.progress import Progress
from search.study import create_or_resume, load_existing
from search.worker import TooManyFailures, run_worker, run_workers
from trainers import load_data, resolve_device


class SearchFailed(Exception):
    """The search stopped for a reason that is not bad input (exit code 1)."""


def device_or_error(name: str) -> torch.device:
    try:
        return resolve_device(name)
    except (ValueError, RuntimeError) as e:
        raise UserError(f"--device {name}: {e}") from None


def run_search(cfg: SearchConfig, log=print) -> int:
    validate(cfg)
    device = device_or_error(cfg.device)
    t0 = time.monotonic()
    data = load_data(cfg.dataset, cfg.data_dir, device, val_size=cfg.val_size, subset=cfg.subset,
                     seed=cfg.seed, log=log)
    study = create_or_resume(cfg)
    log(f"study {cfg.study_name!r} in {cfg.storage}: budget {cfg.budget} params, {cfg.trials} trials "
        f"x {cfg.epochs} epochs on {cfg.dataset} ({len(data.train)} train / {len(data.val)} val images), "
        f"device {device}, {cfg.workers} worker(s)")
    already = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    progress = Progress(cfg.trials, already)
    try:
        if cfg.workers == 1:
            deadline = t0 + cfg.timeout if cfg.timeout else None
            run_worker(study, cfg, data, on_trial=progress.update, deadline=deadline)
        else:
            codes = run_workers(cfg, study, progress.update)
            if any(c == 3 for c in codes):
                raise TooManyFailures(f"a worker stopped after {cfg.max_failures} consecutive failed trials")
            if any(c not in (0, 3) for c in codes):
                raise SearchFailed(f"worker exit codes {codes}; run the same command to resume")
    except TooManyFailures as e:
        raise SearchFailed(str(e)) from None
    finally:
        progress.close()
    log(f"search: {time.monotonic() - t0:.0f}s")
    if cfg.top_k > 0:
        annotating = load_existing(cfg.study_name, cfg.storage, annotate=True)
        confirm_top(annotating, data, cfg.top_k, cfg.confirm_seeds, artifact_dir(cfg.study_name), log)
    final = load_existing(cfg.study_name, cfg.storage)
    rows = leaderboard_rows(final)
    log(format_leaderboard(rows, cfg.budget))
    log(winner_line(rows))
    log(f"total wall time: {time.monotonic() - t0:.0f}s; "
        f"dashboard: optuna-dashboard {cfg.storage}")
    return 0


def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
