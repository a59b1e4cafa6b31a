"""``--workers N``: N processes on one machine share a run through its SQLite storage. Every trial and
final runs once, in one of them; each records its own CPU time; a stop signal to the process the
user started stops them all, and the run resumes."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

TRIALS = 12


def command(tmp_path: Path, tiny_idx: Path, *extra: str, seconds: float = 0.3) -> list[str]:
    return [sys.executable, "-m", "benchmark", "run", "--dataset", f"idx:{tiny_idx}",
            "--model-path", "tinyplugin:SlowCentroid", "--models", "slow-centroid",
            "--tuner", "optuna", "--trials", str(TRIALS), "--cv", "1", "--seeds", "3",
            "--params", json.dumps({"seconds": seconds}), "--heartbeat", "2",
            "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), *extra]


def environment(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "TINYPLUGIN_LOG": str(tmp_path / "fits.log")}


def study_of(tmp_path: Path) -> optuna.Study:
    storage = f"sqlite:///{tmp_path / 'run' / 'optuna.db'}"
    name = next(n for n in optuna.get_all_study_names(storage) if not n.endswith("__jobs"))
    return optuna.load_study(study_name=name, storage=storage)


def test_three_workers_share_one_run_and_each_job_runs_once(tmp_path: Path, tiny_idx: Path,
                                                            plugin_path: Path) -> None:
    done = subprocess.run(command(tmp_path, tiny_idx, "--workers", "3"), env=environment(tmp_path),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "3 workers of 1 thread(s) each share the jobs" in done.stderr
    assert {line.split(":")[0] for line in done.stderr.splitlines() if line[:2] in ("w1", "w2", "w3")} \
        == {"w1", "w2", "w3"}, "each worker's lines are marked"

    study = study_of(tmp_path)
    complete = sorted(t.number for t in study.trials if t.state.name == "COMPLETE")
    assert len(complete) == TRIALS and not [t for t in study.trials if t.state.name == "RUNNING"]
    frame = pd.read_csv(tmp_path / "run" / "results.csv", dtype={"trial": str, "seed": str})
    trials, finals = frame[frame["trial"] != "final"], frame[frame["trial"] == "final"]
    assert sorted(trials["trial"].astype(int)) == complete and trials["trial"].is_unique
    assert sorted(finals["seed"]) == ["0", "1", "2"] and (finals["status"] == "ok").all()
    fits = (tmp_path / "fits.log").read_text().split()
    assert len(fits) == TRIALS + 3, "each trial and each final trained once, in one process"
    assert frame["run_id"].nunique() >= 2, "the jobs were shared"
    assert (frame["threads"] == 1).all()
    assert {json.loads(s)["workers"] for s in frame["settings"]} == {3}
    # Each worker's CPU is its own: the per-process totals are recorded row by row, never summed.
    per_worker = frame.groupby("run_id")["process_cpu_s"].max()
    assert len(per_worker) >= 2 and (per_worker > 0).all()
    report = (tmp_path / "run" / "report.md").read_text()
    assert report.count("--workers 3") >= 2, "the Run section lists every worker"


def test_a_stop_signal_stops_every_worker_and_the_run_resumes(tmp_path: Path, tiny_idx: Path,
                                                              plugin_path: Path) -> None:
    first = subprocess.Popen(command(tmp_path, tiny_idx, "--workers", "2", seconds=0.8),
                             env=environment(tmp_path), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    csv, deadline = tmp_path / "run" / "results.csv", time.monotonic() + 90
    while time.monotonic() < deadline and first.poll() is None:
        if csv.exists() and len(csv.read_text().splitlines()) > 3:
            break
        time.sleep(0.05)
    else:
        first.kill()
        pytest.fail(f"the run wrote no rows: {first.communicate()[1][-2000:]}")
    first.send_signal(signal.SIGINT)  # to the user's process only: it passes the signal on
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err[-2000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1].endswith("--resume")
    with open(tmp_path / "run" / ".lock") as lock:  # every worker holds it while it runs
        deadline = time.monotonic() + 30
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "a worker is still running"
                time.sleep(0.1)
    assert "RUNNING" not in [t.state.name for t in study_of(tmp_path).trials]

    resumed = subprocess.run(command(tmp_path, tiny_idx, "--workers", "2", "--resume", seconds=0.8),
                             env=environment(tmp_path), capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    frame = pd.read_csv(csv, dtype={"trial": str, "seed": str})
    trials = frame[frame["trial"] != "final"]
    assert len(trials) == TRIALS and trials["trial"].is_unique
    assert sorted(frame.loc[frame["trial"] == "final", "seed"]) == ["0", "1", "2"]


def test_workers_stop_a_study_at_its_cpu_budget_together(tmp_path: Path, tiny_idx: Path,
                                                         plugin_path: Path) -> None:
    """Each worker counts the others' finished trials, and their running ones at the mean cost of
    a trial, so two workers overshoot the budget by at most one trial each."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmark", "run", "--dataset", f"idx:{tiny_idx}",
         "--model-path", "tinyplugin:BusyCentroid", "--models", "busy-centroid", "--tuner", "optuna",
         "--trials", "40", "--budget", "8", "--cv", "1", "--workers", "2",
         "--params", json.dumps({"cpu_seconds": 0.5}),
         "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    frame = pd.read_csv(tmp_path / "run" / "results.csv", dtype={"trial": str})
    trials = frame[frame["trial"] != "final"]
    cost = trials["fit_cpu_s"] + trials["predict_cpu_s"]
    assert cost.sum() >= 8, "the budget was used"
    assert cost.sum() - 2 * cost.max() < 8, "at most one trial per worker past the budget"
    assert len(trials) < 40 and trials["run_id"].nunique() == 2
    tuning = json.loads(frame.loc[frame["trial"] == "final", "tuning"].iloc[0])
    assert tuning["stopped_by"] == "budget"
