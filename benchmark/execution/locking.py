"""Who may use a run folder: one run at a time, or any number of workers of one shared storage.

``RUN_DIR/.lock`` is held with ``fcntl.flock`` for the whole run: exclusively by a run on its own
(the default SQLite storage), shared by the workers of a shared storage (``--storage
postgresql://...``). So a second run on the same folder is refused with one line naming the process
that holds it, while workers join each other. The kernel drops the lock when its process ends, even
by SIGKILL, so a stale lock file never blocks anyone. The file stays (removing it would race with a
process about to lock it); it holds the last holder's pid, host and start time, for that message.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from models.errors import InputError

try:
    import fcntl
except ImportError:  # pragma: no cover - not a POSIX system: no locking
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


def worker_id() -> str:
    """``host:pid`` of this process, as recorded in lock files and on shared trials."""
    return f"{socket.gethostname()}:{os.getpid()}"


class RunLock:
    """The lock on a run folder; use as a context manager, or :meth:`acquire` / :meth:`release`."""

    def __init__(self, run_dir: Path, *, shared: bool) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.shared = shared
        self._file = None

    def acquire(self, *, exclusive: bool | None = None) -> RunLock:
        """Lock the folder (creating it) or raise :class:`InputError` naming who holds it.

        A worker takes the lock shared unless ``exclusive`` (to start the shared run again with
        --overwrite, which no other worker may be running during); :meth:`share` then lets the
        others join.
        """
        if fcntl is None:
            return self
        exclusive = not self.shared if exclusive is None else exclusive
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(self._file, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another digitbench process"
            self._file.close()
            self._file = None
            raise InputError(self._refusal(holder, exclusive)) from None
        self._write_holder()
        return self

    def _refusal(self, holder: str, exclusive: bool) -> str:
        run_dir = self.path.parent
        if self.shared and exclusive:
            return (f"--overwrite: {run_dir} is in use by other workers (last: {holder}); stop them "
                    "first, or start this worker without --overwrite to join them")
        if self.shared:
            return (f"{run_dir} is in use by {holder}, a run that is not a worker of a shared "
                    "storage: wait for it to finish, or use another --out")
        return (f"{run_dir} is in use by {holder}: wait for it to finish, or use another --out "
                "(workers of one run share a database: --storage postgresql://...)")

    def _write_holder(self) -> None:
        assert self._file is not None
        role = "a worker of a shared storage" if self.shared else "a run"
        started = datetime.now(UTC).isoformat(timespec="seconds")
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"digitbench pid {os.getpid()} on {socket.gethostname()} "
                         f"({role}, started {started})\n")
        self._file.flush()

    def share(self) -> None:
        """Let other workers join (after an exclusive :meth:`acquire`): the workers of a shared
        storage, or the local workers this process starts."""
        if fcntl is not None and self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_SH)

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


class FileLock:
    """A blocking exclusive ``flock`` on ``path`` for a short section (e.g. writing the report)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = None

    def __enter__(self) -> FileLock:
        if fcntl is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a")  # noqa: SIM115 - closed in __exit__
            fcntl.flock(self._file, fcntl.LOCK_EX)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def lock_file(f: IO[Any]) -> None:
    """Hold an exclusive ``flock`` on the open file ``f`` until it is closed (blocking)."""
    if fcntl is not None:
        fcntl.flock(f, fcntl.LOCK_EX)
