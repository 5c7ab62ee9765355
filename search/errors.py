"""Errors that mean "the user asked for something that cannot be done": one line, exit code 2."""


class UserError(Exception):
    """Printed as `error: <message>` with exit code 2, never with a traceback."""

    exit_code = 2
