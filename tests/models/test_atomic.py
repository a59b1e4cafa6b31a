"""The one atomic-write helper: a file appears whole or not at all."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from digitbench.common.atomic import atomic_path, write_bytes, write_text


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = write_text(tmp_path / "report.md", "old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_the_temporary_name_keeps_the_suffix_and_the_folder_is_made(tmp_path: Path) -> None:
    target = tmp_path / "new" / "folder" / "p.npz"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".npz" and tmp.parent == target.parent and tmp.name.startswith(".")
        tmp.write_bytes(b"x")
    assert write_bytes(target, b"yz").read_bytes() == b"yz"
    assert [p.name for p in target.parent.iterdir()] == ["p.npz"]


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),  # a write()
                                     "open"])  # opening the temporary file: the error names it
def test_a_write_that_finds_no_room_names_the_file_being_written(tmp_path: Path, failure: object) -> None:
    """Not the temporary file, which is gone: the error says what could not be written."""
    target = write_text(tmp_path / "report.md", "old\n")
    with pytest.raises(OSError) as caught, atomic_path(target) as tmp:
        if failure == "open":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
        raise failure
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(target))
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_an_error_naming_another_file_is_left_as_it_is(tmp_path: Path) -> None:
    other = tmp_path / "source.png"
    with pytest.raises(FileNotFoundError) as caught, atomic_path(tmp_path / "copy.png") as tmp:
        tmp.write_bytes(other.read_bytes())
    assert caught.value.filename == str(other)
