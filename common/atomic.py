"""Atomic file writes, for every layer (``models`` is the lowest, so all may import it).

A file written through :func:`atomic_path` appears whole under its name or not at all: the data go to
a temporary file in the same folder, are flushed to disk, and the temporary file is renamed over the
target in one ``os.replace``. A write that fails, or a process killed meanwhile, leaves the old file
(or no file) and no temporary file behind (a SIGKILL may leave a hidden ``.NAME.PID.tmp``, never a
half-written ``NAME``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block ends
    without an exception (after an ``fsync``), removed otherwise. The folder is created if needed.

    The temporary name keeps ``path``'s suffix, for writers that choose the format by it (numpy's
    ``savez`` adds ``.npz`` to any other name, matplotlib reads the format from it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        with writing(path, tmp):
            yield tmp
            with open(tmp, "rb") as written:
                os.fsync(written.fileno())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def writing(path: str | Path, *temporary: Path) -> Iterator[None]:
    """A block that writes ``path``: an OSError in it that names no file (a failed ``write`` on a
    full disk) or only a ``temporary`` one is raised again naming ``path``, what a user must be told
    could not be written."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None or (exc.filename is not None and exc.filename not in map(str, temporary)):
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    return Path(path)
