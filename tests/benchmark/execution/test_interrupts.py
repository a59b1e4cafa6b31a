"""Stopping a run: SIGINT and SIGTERM stop it at a safe point (exit 130 / 143, rows flushed, how to
resume said, nothing left RUNNING in the tuner); SIGKILL of the coordinator takes its worker
processes with it and the run resumes at once, doing only what was not finished (the one whole-run
SIGKILL-and-resume test); a second run on a folder in use is refused."""

from __future__ import annotations

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
from conftest import process_alive

from digitbench.benchmark.commands.main import main


def command(tmp_path: Path, tiny_idx: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "digitbench", "run", "--dataset", f"idx:{tiny_idx}",
            "--model-path", "tinyplugin:EpochModel", "--models", "epoch-model",
            "--tuner", "optuna", "--pruner", "none", "--trials", "5", "--seeds", "2",
            "--params", '{"seconds_per_epoch": 0.1}',
            "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), *extra]


def start_and_wait_for_trials(tmp_path: Path, tiny_idx: Path, rows: int, *extra: str) -> subprocess.Popen:
    """A run in a child process, once ``rows`` trials are written and the next one has begun."""
    log = tmp_path / "fits.log"
    env = {**os.environ, "TINYPLUGIN_LOG": str(log)}
    child = subprocess.Popen(command(tmp_path, tiny_idx, *extra), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    csv, deadline = tmp_path / "run" / "results.csv", time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if csv.exists() and len(csv.read_text().splitlines()) > rows and \
                log.read_text().count("trial-start") > rows:
            return child
        time.sleep(0.02)
    child.kill()
    pytest.fail(f"the run did not get to trial {rows}: {child.communicate()[1][-2000:]}")


def trial_states(tmp_path: Path) -> list[str]:
    storage = f"sqlite:///{tmp_path / 'run' / 'optuna.db'}"
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    return [t.state.name for t in study.trials]


def resume_and_check(tmp_path: Path, tiny_idx: Path) -> pd.DataFrame:
    """--resume finishes the run: exactly 5 trials and the tuned finals of seeds 0 and 1, none done
    twice. Where the study chose other parameters than the defaults, the defaults are refit as
    finals too (tuner "none"); which it chooses depends on the order trials finish in on 2 workers."""
    resumed = subprocess.run(command(tmp_path, tiny_idx, "--resume"), capture_output=True, text=True,
                             env={**os.environ, "TINYPLUGIN_LOG": str(tmp_path / "fits.log")})
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "run" / "results.csv", dtype={"trial": str, "seed": str})
    trials = frame[frame["trial"] != "final"]
    assert len(trials) == 5 and trials["trial"].is_unique
    finals = frame[frame["trial"] == "final"]
    primary = finals[finals["refit_trial"].isna()]
    assert sorted(primary.loc[primary["tuner"] == "optuna", "seed"]) == ["0", "1"]
    assert not finals.duplicated(["tuner", "seed", "refit_trial"]).any(), "no final recorded twice"
    assert set(finals["tuner"]) <= {"optuna", "none"}
    assert "RUNNING" not in trial_states(tmp_path)
    return frame


@pytest.mark.parametrize(("signum", "status", "workers"),
                         [(signal.SIGINT, 130, "1"), (signal.SIGTERM, 143, "2")])
def test_a_stop_signal_ends_the_run_cleanly_and_it_resumes(tmp_path: Path, tiny_idx: Path,
                                                           plugin_path: Path, signum: int,
                                                           status: int, workers: str) -> None:
    child = start_and_wait_for_trials(tmp_path, tiny_idx, 2, "--workers", workers)
    child.send_signal(signum)  # in the middle of a trial's epochs (each trial has 2..6 of 0.1 s)
    _, err = child.communicate(timeout=60)
    assert child.returncode == status, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert f"stopped by {signal.Signals(signum).name}" in last and "Traceback" not in err
    assert f"continue with: digitbench run --dataset idx:{tiny_idx}" in last and last.endswith("--resume")

    csv = tmp_path / "run" / "results.csv"
    assert csv.read_bytes().endswith(b"\n"), "no row cut in half"
    rows = pd.read_csv(csv, dtype={"trial": str})
    assert len(rows) >= 2 and (rows["status"] == "ok").all()
    states = trial_states(tmp_path)
    assert "RUNNING" not in states, "the abandoned trials are told, not left running"
    assert states.count("COMPLETE") == len(rows[rows["trial"] != "final"])
    resume_and_check(tmp_path, tiny_idx)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process parents from /proc (Linux)")
def test_sigkill_of_the_coordinator_ends_its_workers_and_the_run_resumes_at_once(
        tmp_path: Path, tiny_idx: Path, plugin_path: Path) -> None:
    """The kill lands mid-study with two trials running; the resumed run keeps every row written
    before, fits only the trials still owed and the finals (none finished is fit again), and leaves
    exactly the asked trials COMPLETE in Optuna."""
    child = start_and_wait_for_trials(tmp_path, tiny_idx, 2, "--workers", "2")
    workers = _children(child.pid)
    assert len(workers) >= 2, "two worker processes run the jobs"
    child.kill()
    child.communicate(timeout=30)
    deadline = time.monotonic() + 15
    while any(process_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(process_alive(w) for w in workers), "every worker ends with its coordinator"
    before = pd.read_csv(tmp_path / "run" / "results.csv", dtype={"trial": str})
    assert 2 <= len(before) < 5 and (before["trial"] != "final").all(), "the kill must land mid-study"
    log = tmp_path / "fits.log"
    log.write_text("")  # no worker is left to write to it
    frame = resume_and_check(tmp_path, tiny_idx)
    assert frame.iloc[: len(before)][["trial", "status"]].equals(before[["trial", "status"]])
    assert (frame["status"] == "ok").all()
    assert log.read_text().count("trial-start") == 5 - len(before) + fitted_finals(frame), \
        "the trials not finished before the kill, then the finals: nothing finished runs again"
    assert trial_states(tmp_path).count("COMPLETE") == 5


def fitted_finals(frame: pd.DataFrame) -> int:
    """The final rows of ``frame`` that trained (not recorded from an identical final)."""
    finals = frame[frame["trial"] == "final"]
    return sum("final_copied_from" not in json.loads(t) for t in finals["tuning"])


def test_sigkill_among_the_extra_finals_and_the_resumed_run_redoes_none_of_them(
        tmp_path: Path, tiny_idx: Path, plugin_path: Path) -> None:
    """Killed once an extra final (refitting another trial than the choice) is written: the resumed
    run plans the same extra finals, trains only those not recorded, and a second resume trains
    nothing."""
    log = tmp_path / "fits.log"
    env = {**os.environ, "TINYPLUGIN_LOG": str(log)}
    child = subprocess.Popen(command(tmp_path, tiny_idx, "--workers", "1"), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    csv, deadline = tmp_path / "run" / "results.csv", time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if csv.exists() and pd.read_csv(csv, usecols=["refit_trial"])["refit_trial"].notna().any():
            break
        time.sleep(0.02)
    child.kill()
    child.communicate(timeout=30)
    before = pd.read_csv(csv, dtype={"trial": str, "seed": str})
    extra = before["refit_trial"].notna()
    assert extra.any() and (before["trial"] == "final").sum() > extra.sum(), "killed among the extras"
    log.write_text("")
    frame = resume_and_check(tmp_path, tiny_idx)
    assert frame.iloc[: len(before)][["trial", "seed", "refit_trial"]].equals(
        before[["trial", "seed", "refit_trial"]]), "every row written before the kill kept"
    assert log.read_text().count("trial-start") == fitted_finals(frame.iloc[len(before):]), \
        "only the finals not recorded before the kill are trained"
    extras = frame[frame["refit_trial"].notna()]
    tunings = [json.loads(t) for t in extras["tuning"]]
    assert all(t["final_roles"] and "chosen" not in t["final_roles"] for t in tunings)
    assert sorted(extras["seed"].unique()) == ["0", "1"], "the extra finals on both seeds"
    log.write_text("")
    again = subprocess.run(command(tmp_path, tiny_idx, "--resume"), capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert log.read_text().count("trial-start") == 0, "nothing left to train"
    assert len(pd.read_csv(csv)) == len(frame)


def test_a_second_run_on_a_folder_in_use_is_refused(tmp_path: Path, tiny_idx: Path,
                                                    plugin_path: Path, capsys) -> None:
    child = start_and_wait_for_trials(tmp_path, tiny_idx, 1)
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
                 "--tuner", "optuna", "--pruner", "none", "--trials", "5", "--seeds", "2",
                 "--params", '{"seconds_per_epoch": 0.0}']) == 0
