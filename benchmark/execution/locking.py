"""One run at a time per run folder.

``RUN_DIR/.lock`` is held exclusively with ``fcntl.flock`` by the coordinator for the whole run, so a
second ``digitbench run`` on the same folder is refused with one line naming the process that holds
it. The kernel drops the lock when its process ends, even by SIGKILL, so a stale lock file never
blocks anyone: a killed run can be resumed at once. The file stays (removing it would race with a
process about to lock it); it holds the last holder's pid, host and start time, for that message.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from digitbench.common.errors import InputError

try:
    import fcntl
except ImportError:  # pragma: no cover - not a POSIX system: no locking
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


class RunLock:
    """The lock on a run folder: :meth:`acquire`, then :meth:`release`."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._file = None

    def acquire(self) -> RunLock:
        """Lock the folder (creating it) or raise :class:`InputError` naming who holds it."""
        if fcntl is None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another digitbench process"
            self._file.close()
            self._file = None
            raise InputError(f"{self.path.parent} is in use by {holder}: wait for it to finish, "
                             "or use another --out") from None
        started = datetime.now(UTC).isoformat(timespec="seconds")
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"digitbench pid {os.getpid()} on {socket.gethostname()} (started {started})\n")
        self._file.flush()
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None
