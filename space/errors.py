"""The root of every "bad input" error in budgetnas.

Anything the user typed or gave us (a flag, a spec file, a recipe, a data folder, a device)
that cannot be used raises a subclass of InputError; the CLI prints its message as one
`error:` line and exits with code 2, by `isinstance`, whichever layer raised it.
"""


class InputError(ValueError):
    """Bad input: the message says what is wrong and, where it can, how to fix it."""
