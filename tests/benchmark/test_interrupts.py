"""SIGINT and SIGTERM stop a run at a safe point (exit 130 / 143, rows flushed, how to resume said),
and a second run on a folder in use is refused with one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

from benchmark.commands.main import main


def command(tmp_path: Path, tiny_idx: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "benchmark", "run", "--dataset", f"idx:{tiny_idx}",
            "--model-path", "tinyplugin:EpochModel", "--models", "epoch-model",
            "--tuner", "optuna", "--pruner", "none", "--trials", "5",
            "--params", '{"seconds_per_epoch": 0.1}',
            "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), *extra]


def start_and_wait_for_trials(tmp_path: Path, tiny_idx: Path, rows: int) -> subprocess.Popen:
    """A run in a child process, once ``rows`` trials are written and the next one has begun."""
    log = tmp_path / "fits.log"
    env = {**os.environ, "TINYPLUGIN_LOG": str(log)}
    child = subprocess.Popen(command(tmp_path, tiny_idx), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    csv, deadline = tmp_path / "run" / "results.csv", time.monotonic() + 90
    while time.monotonic() < deadline and child.poll() is None:
        if csv.exists() and len(csv.read_text().splitlines()) > rows and \
                log.read_text().count("trial-start") > rows:
            return child
        time.sleep(0.02)
    child.kill()
    pytest.fail(f"the run did not get to trial {rows}: {child.communicate()[1][-2000:]}")


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_ends_the_run_cleanly_and_it_resumes(tmp_path: Path, tiny_idx: Path,
                                                           plugin_path: Path, signum: int,
                                                           status: int) -> None:
    child = start_and_wait_for_trials(tmp_path, tiny_idx, rows=2)
    time.sleep(0.15)  # in the middle of the third trial's epochs
    child.send_signal(signum)
    _, err = child.communicate(timeout=60)
    assert child.returncode == status, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert f"stopped by {signal.Signals(signum).name}" in last and "Traceback" not in err
    assert f"continue with: digitbench run --dataset idx:{tiny_idx}" in last and last.endswith("--resume")

    csv = tmp_path / "run" / "results.csv"
    assert csv.read_bytes().endswith(b"\n"), "no row cut in half"
    rows = pd.read_csv(csv, dtype={"trial": str})
    assert len(rows) >= 2 and (rows["status"] == "ok").all() and "final" not in set(rows["trial"])
    storage = f"sqlite:///{tmp_path / 'run' / 'optuna.db'}"
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    states = [t.state.name for t in study.trials]
    assert "RUNNING" not in states, "the abandoned trial is told, not left running"
    abandoned = [t for t in study.trials if t.user_attrs.get("interrupted")]
    assert len(abandoned) == 1 and abandoned[0].state.name == "FAIL"
    assert str(abandoned[0].number) not in set(rows["trial"])
    if signum == signal.SIGINT:
        return  # resuming is the same after either signal: tested once

    resumed = subprocess.run(command(tmp_path, tiny_idx, "--resume"), capture_output=True, text=True,
                             env={**os.environ, "TINYPLUGIN_LOG": str(tmp_path / "fits.log")})
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    frame = pd.read_csv(csv, dtype={"trial": str})
    trials = frame[frame["trial"] != "final"]
    assert len(trials) == 5 and trials["trial"].is_unique and (frame["trial"] == "final").sum() == 1


def test_a_second_run_on_a_folder_in_use_is_refused(tmp_path: Path, tiny_idx: Path,
                                                    plugin_path: Path, capsys) -> None:
    child = start_and_wait_for_trials(tmp_path, tiny_idx, rows=1)
    try:
        code = main(["run", "--dataset", f"idx:{tiny_idx}", "--model-path", "tinyplugin:EpochModel",
                     "--models", "epoch-model", "--out", str(tmp_path / "run"), "--resume",
                     "--cache-dir", str(tmp_path / "cache")])
        err = capsys.readouterr().err
    finally:
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=60)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{tmp_path / 'run'} is in use by digitbench pid {child.pid} on " in err
    assert "wait for it to finish, or use another --out" in err
    # The lock goes with its process: the folder is free again.
    assert main(["run", "--dataset", f"idx:{tiny_idx}", "--model-path", "tinyplugin:EpochModel",
                 "--models", "epoch-model", "--out",
                 str(tmp_path / "run"), "--resume", "--cache-dir", str(tmp_path / "cache"),
                 "--tuner", "optuna", "--pruner", "none", "--trials", "5",
                 "--params", '{"seconds_per_epoch": 0.0}']) == 0
