"""A disk that fills up during a run: one line saying what could not be written, that the results so
far are safe and the command that finishes the run, exit status 1; that command then finishes it
without training again what was recorded."""

from __future__ import annotations

import errno
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest

from digitbench.benchmark import store as store_module
from digitbench.benchmark.commands.main import main
from digitbench.benchmark.store import PREDICTIONS_DIR, load_results

FULL = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a write() on a full disk raises it


class FullFile:
    """A file whose disk fills up during the next write: half the data fit, then the write fails."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f

    def __enter__(self) -> FullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.f.close()

    def write(self, data: bytes) -> int:
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        raise FULL

    def __getattr__(self, name: str) -> object:
        return getattr(self.f, name)


def fill_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """results.csv takes its header and first row; the disk is full when the second is appended."""
    appended = []

    def opening(path: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        f = open(path, mode, *args, **kwargs)
        if mode != "ab+":
            return f
        appended.append(path)
        return FullFile(f) if len(appended) == 2 else f

    monkeypatch.setattr(store_module, "open", opening, raising=False)


def fill_predictions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk is full when the first final's predictions are written (to the atomic writer's
    temporary file)."""
    savez = np.savez_compressed

    def saving(file: Path, **arrays: np.ndarray) -> None:
        if Path(file).parent.name != PREDICTIONS_DIR:
            return savez(file, **arrays)
        with open(file, "wb") as f:
            FullFile(f).write(b"PK\x03\x04 an npz archive")

    monkeypatch.setattr(np, "savez_compressed", saving)


@pytest.mark.parametrize(("spoil", "unwritten", "rows"), [
    (fill_results, "results.csv", ["0"]),  # the row of trial 1 did not fit
    (fill_predictions, f"{PREDICTIONS_DIR}/idx-", ["0", "1"]),  # the final's files come before its row
])
def test_a_full_disk_ends_in_one_line_and_the_command_it_names_finishes_the_run(
        spoil: Callable, unwritten: str, rows: list[str], tmp_path: Path, tiny_idx: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["run", "--dataset", f"idx:{tiny_idx}", "--models", "logreg", "--tuner", "optuna",
            "--trials", "2", "--cv", "2", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    with monkeypatch.context() as patch:
        spoil(patch)
        assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip("\n").split("\n")[-1]
    start = f"digitbench: error: could not write {out}/{unwritten}"
    assert last.startswith(start), last
    safe = f": No space left on device; the results so far are safe in {out / 'results.csv'}: " \
           "free some space, then finish the run with: "
    assert safe in last
    again = shlex.split(last.split(safe, 1)[1])
    assert again == ["digitbench", *argv, "--resume"]
    assert not (out / "report.md").exists(), "no report of a run that stopped"
    assert not [p for p in out.rglob("*") if ".tmp" in p.name], "no temporary file left"
    torn = not (out / "results.csv").read_bytes().endswith(b"\n")
    assert torn == (spoil is fill_results), "half a row fit on the disk"
    recorded = load_results(out / "results.csv")  # a row cut short by the full disk is not one
    assert list(recorded["trial"]) == rows

    assert main(again[1:]) == 0
    finished = load_results(out / "results.csv")
    kept = ["run_id", "utc", "trial", "params", "val_accuracy"]
    assert finished[kept].iloc[: len(recorded)].equals(recorded[kept]), "what was recorded stays"
    trials = finished[finished["trial"] != "final"]
    primary = (finished["trial"] == "final") & finished["refit_trial"].isna()
    assert len(trials) == 2 and primary.sum() == 1, \
        "the study ends with its two trials (a trial whose row was lost is asked again), then its final"
    assert (finished["status"] == "ok").all() and (out / "report.md").exists()
