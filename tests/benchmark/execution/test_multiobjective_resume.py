"""A two-objective run (``--objectives accuracy,fit-cpu``) killed with SIGKILL mid-study resumes as a
single-objective one does (test_interrupts.py): every row written before the kill kept, only the
trials still owed run, and the Optuna study holds exactly the asked trials, each COMPLETE with both
values."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import optuna
import pandas as pd
from test_interrupts import command, fitted_finals, start_and_wait_for_trials

OBJECTIVES = ("--objectives", "accuracy,fit-cpu")


def test_a_killed_two_objective_run_resumes_and_redoes_nothing(tmp_path: Path, tiny_idx: Path,
                                                                plugin_path: Path) -> None:
    child = start_and_wait_for_trials(tmp_path, tiny_idx, 2, "--workers", "2", *OBJECTIVES)
    child.kill()
    child.communicate(timeout=30)
    csv = tmp_path / "run" / "results.csv"
    before = pd.read_csv(csv, dtype={"trial": str})
    assert 2 <= len(before) < 5 and (before["trial"] != "final").all(), "the kill must land mid-study"
    log = tmp_path / "fits.log"
    log.write_text("")
    resumed = subprocess.run(command(tmp_path, tiny_idx, "--resume", *OBJECTIVES), capture_output=True,
                             text=True, env={**os.environ, "TINYPLUGIN_LOG": str(log)})
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    frame = pd.read_csv(csv, dtype={"trial": str, "seed": str})
    assert frame.iloc[: len(before)][["trial", "status"]].equals(before[["trial", "status"]])
    trials = frame[frame["trial"] != "final"]
    assert len(trials) == 5 and trials["trial"].is_unique, "5 trials, none recorded twice"
    assert log.read_text().count("trial-start") == 5 - len(before) + fitted_finals(frame), \
        "the trials not finished before the kill, then the finals: nothing finished runs again"
    storage = f"sqlite:///{tmp_path / 'run' / 'optuna.db'}"
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    assert len(study.directions) == 2
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.number for t in done) == sorted(trials["trial"].astype(int)), \
        "the study holds the recorded trials as COMPLETE (the killed ones failed and replaced)"
    assert all(len(t.values) == 2 for t in done)
    by_number = trials.set_index(trials["trial"].astype(int))
    assert all(t.values[1] == by_number.loc[t.number, "fit_cpu_s"] for t in done), \
        "trials settled from their rows after the kill are told their recorded cost"
