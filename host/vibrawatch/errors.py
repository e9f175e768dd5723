"""The one exception type the CLI turns into a clean message instead of a traceback."""


class VibrawatchError(Exception):
    """A problem the user can fix: the message says what happened and what to do next."""
