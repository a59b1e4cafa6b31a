"""The one exception type for problems a user can fix (bad input, bad flags, missing files)."""


class InputError(Exception):
    """A user-facing error: its message is one line naming the file (and row/column where it applies).

    The CLI prints it as ``digitbench: error: <message>`` on stderr and exits with status 2,
    without a traceback.
    """
