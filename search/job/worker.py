"""Running trials until the study holds the requested number: one process, or several.

Exactly N: before each trial a worker checks finished + running against N, and the objective
checks again after its trial got its number (two workers can pass the first check together;
the later-numbered one then steps aside as a "surplus" trial that trained nothing and does not
count). Running trials whose worker died are failed by Optuna's heartbeat check and retried.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.config import SearchConfig
from search.errors import EXIT_INTERRUPTED, EXIT_TOO_MANY_FAILURES, TooManyFailures
from search.job.objective import EpochHook, make_objective
from search.process import deferred_interrupts, interruptible, setup_process, stop_workers, worker_context
from search.store.records import counted_trials, fail_reason, is_counted, is_surplus
from search.store.storage import open_storage, trial_id
from trainers.data import DeviceData

POLL_S = 1.0


class _Orphans:
    """RUNNING trials that never got a heartbeat row (their worker died right after creating them).

    Optuna's stale check only sees trials with a heartbeat, so such a trial would count as
    running for ever and could keep the search waiting. Recording one heartbeat for each running
    trial we have not seen before makes it visible: a live worker keeps beating, a dead one's
    trial goes stale after the grace period and is failed and retried like any other.
    """

    def __init__(self) -> None:
        self.seen: set[int] = set()

    def adopt(self, study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
        if not hasattr(storage, "record_heartbeat") or storage.get_heartbeat_interval() is None:
            return
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.number not in self.seen:
                self.seen.add(t.number)
                storage.record_heartbeat(trial_id(storage, study.study_name, t.number))


def _wait_or_run(study: optuna.Study, storage, wanted: int, orphans: _Orphans) -> str:
    done = len(counted_trials(study))
    if done >= wanted:
        return "done"
    orphans.adopt(study, storage)
    optuna.storages.fail_stale_trials(study)  # a dead worker's trial must not block us
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return "wait" if done + len(running) >= wanted else "run"


def run_worker(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    cfg: SearchConfig,
    data: DeviceData,
    on_trial: Callable[[FrozenTrial], None] = lambda t: None,
    on_epoch: EpochHook | None = None,
    deadline: float | None = None,
) -> str:
    """Run trials in this process until the study holds cfg.trials counted trials.

    Returns "done" or "timeout"; raises TooManyFailures, or KeyboardInterrupt after Optuna has
    closed the running trial as failed.
    """
    objective = make_objective(cfg, data, on_epoch)

    def training(trial: optuna.Trial) -> float:
        with interruptible():  # a signal during ask() interrupts here, and Optuna fails the trial
            return objective(trial)

    orphans = _Orphans()
    failures = 0
    while True:
        if deadline is not None and time.monotonic() > deadline:
            return "timeout"
        finished: list[FrozenTrial] = []
        with deferred_interrupts():  # a signal during the storage writes waits for them
            step = _wait_or_run(study, storage, cfg.trials, orphans)
            if step == "run":
                study.optimize(
                    training, n_trials=1, catch=(Exception,),
                    callbacks=[lambda s, t: (finished.append(t), on_trial(t))],
                )
        if step == "done":
            return "done"
        if step == "wait":
            time.sleep(POLL_S)
            continue
        t = finished[-1]
        if t.state == TrialState.FAIL and not is_surplus(t):
            failures += 1
            if failures >= cfg.max_failures:
                raise TooManyFailures(
                    f"stopped after {failures} consecutive failed trials; last: trial {t.number}: {fail_reason(t)}"
                )
        elif is_counted(t):
            failures = 0


def worker_main(cfg_dict: dict, index: int) -> None:
    """Entry point of one worker process (spawned by run_workers)."""
    import torch

    from trainers.data import load_data
    from search.job.policy import make_pruner, make_sampler
    from search.store.study import open_or_create
    from trainers.loop import resolve_device

    setup_process()
    cfg = SearchConfig.from_dict(cfg_dict)
    try:  # a signal may come while the worker still loads its data: the same quiet exit
        device = resolve_device(cfg.device)
        if device.type == "cpu":
            torch.set_num_threads(1)  # N single-thread workers beat one N-thread process on CPU
        storage = open_storage(cfg.storage, heartbeat=cfg.heartbeat)
        # the parent created the study and enqueued its start points; each worker its own sampler seed
        sampler = make_sampler(cfg.sampler, cfg.seed + 7919 * index, cfg.trials)
        study = open_or_create(storage, cfg, sampler, make_pruner(cfg.pruner, cfg.trial_epochs))
        data = load_data(**cfg.data_args(), device=device)
        deadline = time.monotonic() + cfg.timeout if cfg.timeout else None
        run_worker(study, storage, cfg, data, deadline=deadline)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except TooManyFailures as e:
        print(f"worker {index}: {e}", file=sys.stderr)
        sys.exit(EXIT_TOO_MANY_FAILURES)


def run_workers(cfg: SearchConfig, study: optuna.Study, on_trial: Callable[[FrozenTrial], None],
                on_running: Callable[[list[FrozenTrial]], None] = lambda ts: None) -> list[int]:
    """Spawn cfg.workers processes on the study; relay their trials; return their exit codes."""
    ctx = worker_context()
    procs = [ctx.Process(target=worker_main, args=(cfg.to_dict(), i), daemon=False) for i in range(cfg.workers)]
    for p in procs:
        p.start()

    def relay() -> None:
        trials = study.get_trials(deepcopy=False)
        for t in trials:
            if t.state.is_finished():
                on_trial(t)
        on_running([t for t in trials if t.state == TrialState.RUNNING])

    try:
        while any(p.is_alive() for p in procs):
            relay()
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        stop_workers(procs)
        relay()
        raise
    relay()
    return [p.exitcode if p.exitcode is not None else -1 for p in procs]
