"""The one exception type for problems a user can fix (bad input, bad flags, missing files), and
the path checks every reader of user files starts with."""

from __future__ import annotations

import errno
from pathlib import Path

#: The errors of a write that found no room: the disk is full, or the user's quota.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class InputError(Exception):
    """A user-facing error: its message is one line naming the file (and row/column where it applies).

    The CLI prints it as ``digitbench: error: <message>`` on stderr and exits with status 2,
    without a traceback.
    """


class NoSpaceLeft(Exception):
    """A run stopped because a file of it could not be written (:data:`NO_SPACE`): its message is one
    line saying what could not be written, that the results so far are safe, and the command that
    finishes the run. The CLI prints it as ``digitbench: error: <message>`` and exits with status 1.
    """


def require_dir(folder: Path) -> Path:
    """``folder``, or an InputError if it is missing or a file."""
    if not folder.exists():
        raise InputError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise InputError(f"{folder}: is a file, expected a folder")
    return folder


def require_file(path: Path, expected: str = "a file", missing: str = "no such file") -> Path:
    """``path``, or an InputError if it is missing or a folder (``expected``: what should be there,
    e.g. "an image file"; ``missing``: what to say when nothing is)."""
    if not path.exists():
        raise InputError(f"{path}: {missing}")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected {expected}")
    return path


def message_line(exc: BaseException) -> str:
    """An exception's message on one line of at most 200 characters (its type where it has none):
    what a one-line error shows of an exception it explains."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, at most 500 characters: an error as a row records it."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]


def one_line_each(caught: list) -> str | None:
    """Distinct warnings (``warnings.WarningMessage``) as ``Category: first line``, joined by "; "
    (None when there are none)."""
    lines = dict.fromkeys(
        f"{w.category.__name__}: {str(w.message).strip().splitlines()[0]}" for w in caught
    )
    return "; ".join(lines) or None
