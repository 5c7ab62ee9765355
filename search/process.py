"""What every budgetnas process sets up first: signals, warnings, Optuna's log level."""

from __future__ import annotations

import signal
import warnings


def _interrupt_once(signum: int, frame: object) -> None:
    # Ctrl-C reaches every process of the terminal's group, and the parent then also signals its
    # workers: later signals must not land inside Optuna's handling of the first one, which
    # closes the running trial. So the first one interrupts and the rest are ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def setup_process() -> None:
    """SIGINT and SIGTERM close the running trial, once; Optuna's notes and warnings stay quiet."""
    import optuna

    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _interrupt_once)
    warnings.filterwarnings("ignore", message=r".*is an experimental feature|.*is experimental")
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # we print our own line per trial
