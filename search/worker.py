"""Running trials until the study holds the requested number: one process, or several.

Exactly N: before each trial a worker checks finished + running against N, and the objective
checks again after its trial got its number (two workers can pass the first check together;
the later-numbered one then steps aside as a "surplus" trial that trained nothing and does not
count). Running trials whose worker died are failed by Optuna's heartbeat check and retried.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.config import SearchConfig
from search.errors import setup_process
from search.objective import make_objective
from search.study import counted_trials, is_counted
from trainers import DeviceData

POLL_S = 1.0


class TooManyFailures(RuntimeError):
    """--max-failures consecutive trials failed; the search stops."""


def _wait_or_run(study: optuna.Study, wanted: int) -> str:
    done = len(counted_trials(study))
    if done >= wanted:
        return "done"
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if done + len(running) >= wanted:
        optuna.storages.fail_stale_trials(study)  # a dead worker's trial must not block us
        return "wait"
    return "run"


def run_worker(
    study: optuna.Study,
    cfg: SearchConfig,
    data: DeviceData,
    on_trial: Callable[[FrozenTrial], None] = lambda t: None,
    deadline: float | None = None,
) -> str:
    """Run trials in this process until the study holds cfg.trials counted trials.

    Returns "done" or "timeout"; raises TooManyFailures, or KeyboardInterrupt after Optuna has
    closed the running trial as failed.
    """
    objective = make_objective(cfg, data)
    failures = 0
    while True:
        if deadline is not None and time.monotonic() > deadline:
            return "timeout"
        step = _wait_or_run(study, cfg.trials)
        if step == "done":
            return "done"
        if step == "wait":
            time.sleep(POLL_S)
            continue
        finished: list[FrozenTrial] = []
        study.optimize(
            objective, n_trials=1, catch=(Exception,),
            callbacks=[lambda s, t: (finished.append(t), on_trial(t))],
        )
        t = finished[-1]
        if t.state == TrialState.FAIL and "surplus" not in t.user_attrs:
            failures += 1
            if failures >= cfg.max_failures:
                raise TooManyFailures(
                    f"stopped after {failures} consecutive failed trials; last: "
                    f"trial {t.number}: {t.user_attrs.get('fail_reason', 'unknown error')}"
                )
        elif is_counted(t):
            failures = 0


def worker_main(cfg_dict: dict, index: int) -> None:
    """Entry point of one worker process (spawned by run_workers)."""
    import sys

    import torch

    from search.storage import open_storage
    from trainers import load_data, resolve_device

    setup_process()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    cfg = SearchConfig.from_dict(cfg_dict)
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(1)  # N single-thread workers beat one N-thread process on CPU
    from search.study import make_pruner, make_sampler

    storage = open_storage(cfg.storage, heartbeat=cfg.heartbeat)
    study = optuna.load_study(
        study_name=cfg.study_name, storage=storage,
        sampler=make_sampler(cfg.sampler, cfg.seed + 7919 * index, cfg.trials),
        pruner=make_pruner(cfg.pruner, cfg.epochs),
    )
    data = load_data(cfg.dataset, cfg.data_dir, device, val_size=cfg.val_size, subset=cfg.subset, seed=cfg.seed)
    deadline = time.monotonic() + cfg.timeout if cfg.timeout else None
    try:
        run_worker(study, cfg, data, deadline=deadline)
    except KeyboardInterrupt:
        sys.exit(130)
    except TooManyFailures as e:
        print(f"worker {index}: {e}", file=sys.stderr)
        sys.exit(3)


def run_workers(cfg: SearchConfig, study: optuna.Study, on_trial: Callable[[FrozenTrial], None]) -> list[int]:
    """Spawn cfg.workers processes on the study; relay their finished trials; return exit codes."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=worker_main, args=(cfg.to_dict(), i), daemon=False) for i in range(cfg.workers)]
    for p in procs:
        p.start()

    def relay() -> None:
        for t in study.get_trials(deepcopy=False):
            if t.state.is_finished():
                on_trial(t)

    try:
        while any(p.is_alive() for p in procs):
            relay()
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        for p in procs:  # Ctrl-C reached them too; SIGTERM covers a signal sent to us alone
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=60)
        relay()
        raise
    relay()
    return [p.exitcode if p.exitcode is not None else -1 for p in procs]
