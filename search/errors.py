"""Errors of the search application. Bad input of any layer subclasses space.InputError."""

from space.errors import InputError


class UserError(InputError):
    """A flag or a study that cannot be used: printed as `error: <message>`, exit code 2."""


class SearchFailed(Exception):
    """The search stopped for a reason that is not bad input (exit code 1)."""
