"""SIGINT, SIGTERM and SIGHUP during a run: stop at the next safe point instead of dying mid-write.

While :func:`stop_on_signals` is active, the first SIGINT, SIGTERM or SIGHUP (a closed terminal)
raises :class:`Interrupted` in the coordinator's main thread, which abandons the jobs in progress
(nothing of them is written; their trials are told failed), stops the workers, says how to resume
and exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM). Inside a
:func:`deferred` block (appending a row and telling its tuner, asking a trial) the signal waits
until the block ends, so a row is never cut in half and a tuner never half-told. A second signal
while stopping ends the process at once.

``Interrupted`` derives from ``BaseException``: the ``except Exception`` that turns a failing job
into an error row must not catch it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """A stop signal arrived; ``signum`` is its number."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class _State:
    depth = 0                 # nesting of deferred() blocks
    pending: int | None = None  # a signal that arrived inside one
    received: int | None = None  # the first signal of this run, if any


def _handler(signum: int, frame: Any) -> None:
    if _State.received is not None:  # a second signal: the user means now
        print(f"digitbench: {signal.Signals(signum).name} again: stopping at once", file=sys.stderr)
        os._exit(128 + signum)
    _State.received = signum
    if _State.depth > 0:
        _State.pending = signum
    else:
        raise Interrupted(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` for the duration (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in STOP_SIGNALS}
    _State.depth, _State.pending, _State.received = 0, None, None
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def deferred() -> Iterator[None]:
    """A block a stop signal must not cut: the signal is acted on when the block ends."""
    _State.depth += 1
    try:
        yield
    except BaseException:
        _State.depth -= 1
        raise
    _State.depth -= 1
    if _State.depth == 0 and _State.pending is not None:
        signum, _State.pending = _State.pending, None
        raise Interrupted(signum)


def stopped(stop: Interrupted, run_dir: Any, command: str) -> int:
    """Say what a stop signal left behind and how to go on; returns the exit status (128 + signal)."""
    print(f"digitbench: {stop}: finished trials and finals are saved in {run_dir}/results.csv; "
          f"continue with: {resume_command(command)}", file=sys.stderr, flush=True)
    return stop.exit_status


def resume_command(command: str) -> str:
    """The command that continues the run ``command`` started: the same, with ``--resume`` and
    without ``--overwrite``."""
    import shlex

    words = shlex.split(command)
    again = [w for w in words if w != "--overwrite"] + ([] if "--resume" in words else ["--resume"])
    return shlex.join(again)
