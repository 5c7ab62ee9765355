"""Errors of the search application and the exit codes they map to (one place: cli._exit_code).
Bad input of any layer subclasses space.InputError."""

from space.errors import InputError

EXIT_BAD_INPUT = 2  # InputError: one `error:` line, nothing stored changed
EXIT_FAILED = 1  # SearchFailed
EXIT_TOO_MANY_FAILURES = 3  # a worker process stopped after --max-failures failed trials in a row
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM: a trial in training is closed as failed


class UserError(InputError):
    """A flag or a study that cannot be used: printed as `error: <message>`, exit code 2."""


class SearchFailed(Exception):
    """The search stopped for a reason that is not bad input (exit code 1)."""


class TooManyFailures(SearchFailed):
    """--max-failures consecutive trials failed; the search stops."""


def first_line(e: BaseException) -> str:
    """An error's message as one line (its type's name when it has none), for `error:` lines."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
