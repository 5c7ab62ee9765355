"""Errors that mean "the user asked for something that cannot be done" (one line, exit code 2),
and the signal/warning set-up every budgetnas process shares."""


import signal
import warnings


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def setup_process() -> None:
    """SIGTERM closes the running trial like Ctrl-C does; Optuna's "experimental" notes stay quiet."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    warnings.filterwarnings("ignore", message=r".*is an experimental feature|.*is experimental")


class UserError(Exception):
    """Printed as `error: <message>` with exit code 2, never with a traceback."""

    exit_code = 2
