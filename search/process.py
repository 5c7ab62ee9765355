"""What every budgetnas process sets up first (signals, warnings, Optuna's log level), and the
environment of a `python -m search` child process."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout: `search`, `space`, `trainers` import from here


# Worker processes fork from a server that has imported these once. A fresh interpreter per worker
# ("spawn") imports torch again, and torch._dynamo, which the first optimizer pulls in: seconds per
# worker on a 2-core CPU. The server only imports (no CUDA context, no threads at work), so forking
# it is safe, and each worker then sets itself up as a spawned one would.
WORKER_PRELOAD = ("torch", "torch._dynamo", "torch.optim", "optuna", "sqlalchemy", "numpy")


def worker_context():
    """The multiprocessing context worker processes start from: forkserver with torch preloaded
    where the platform has it, else spawn."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(WORKER_PRELOAD))
    return ctx


def child_env() -> dict[str, str]:
    """The environment for a `python -m search` child: the checkout importable ahead of the caller's
    PYTHONPATH, which is kept (on a GPU box the other packages may sit in a --target folder), and
    warnings quiet."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PYTHONPATH=path, PYTHONWARNINGS="ignore")


# How deep the running code is in writes a signal must not cut (see deferred_interrupts), and
# whether a signal came meanwhile.
_deferring = 0
_pending = False


def _interrupt_once(signum: int, frame: object) -> None:
    # Ctrl-C reaches every process of the terminal's group, and the parent then also signals its
    # workers: later signals must not land inside Optuna's handling of the first one, which
    # closes the running trial. So the first one interrupts and the rest are ignored.
    global _pending
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if _deferring:
        _pending = True
        return
    raise KeyboardInterrupt


def _raise_pending() -> None:
    global _pending
    if _pending:
        _pending = False
        raise KeyboardInterrupt


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """A signal that comes inside this block interrupts when the block ends, not where it lands.

    Optuna opens a trial (ask) and closes it (tell) outside the objective's try: an interrupt cut
    into either would leave the trial RUNNING until a later run's heartbeat check fails it. So a
    worker's storage writes run deferred, and its training inside `interruptible()`.
    """
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring:
        _raise_pending()


@contextmanager
def interruptible() -> Iterator[None]:
    """Inside a deferred block, the part a signal may cut at once (a trial's training): a signal
    that came while deferred interrupts on entry."""
    global _deferring
    outer, _deferring = _deferring, 0
    try:
        _raise_pending()
        yield
    finally:
        _deferring = outer


def setup_process() -> None:
    """SIGINT and SIGTERM close the running trial, once; Optuna's notes and warnings stay quiet."""
    import optuna

    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _interrupt_once)
    warnings.filterwarnings("ignore", message=r".*is an experimental feature|.*is experimental")
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # we print our own line per trial


def stop_workers(procs: list) -> None:
    """After an interrupt: Ctrl-C reached the workers too (same process group), a SIGTERM sent to
    the parent alone did not. Give each a moment to close what it is running, then pass the
    signal on to any still running (workers ignore a second one) and wait for them."""
    for p in procs:
        p.join(timeout=5)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=60)
