"""Workers of a shared PostgreSQL storage: one study split between processes, exact trial counts,
finals run once, one results file; and a worker killed mid-trial, whose trial is failed by the
heartbeat and retried by the others."""

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

from benchmark.commands.main import main

TRIALS = 24


def worker_command(tmp_path: Path, tiny_idx: Path, storage: str, seconds: float) -> list[str]:
    return [sys.executable, "-m", "benchmark", "run", "--dataset", f"idx:{tiny_idx}",
            "--model-path", "tinyplugin:SlowCentroid", "--models", "slow-centroid",
            "--tuner", "optuna", "--trials", str(TRIALS), "--cv", "1", "--seeds", "2",
            "--params", json.dumps({"seconds": seconds}), "--storage", storage, "--heartbeat", "2",
            "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")]


def start_workers(command: list[str], n: int, tmp_path: Path) -> list[subprocess.Popen]:
    env = {**os.environ, "TINYPLUGIN_LOG": str(tmp_path / "fits.log")}
    return [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=open(tmp_path / f"worker{i}.err", "w"))  # noqa: SIM115
            for i in range(n)]


def finish(workers: list[subprocess.Popen], tmp_path: Path, timeout: float = 120) -> list[int]:
    codes = []
    for i, worker in enumerate(workers):
        try:
            codes.append(worker.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            for w in workers:
                w.kill()
            pytest.fail(f"worker {i} did not finish: {(tmp_path / f'worker{i}.err').read_text()[-2000:]}")
    return codes


def tuning_study(storage: str) -> optuna.Study:
    names = [n for n in optuna.get_all_study_names(storage) if not n.endswith("__jobs")]
    assert len(names) == 1
    return optuna.load_study(study_name=names[0], storage=storage)


def check_one_run(tmp_path: Path, storage: str) -> tuple[optuna.Study, pd.DataFrame]:
    """Exactly TRIALS finished trials, each a row of the one results file; two finals, once each."""
    study = tuning_study(storage)
    states = [t.state.name for t in study.trials]
    complete = sorted(t.number for t in study.trials if t.state.name == "COMPLETE")
    assert len(complete) == TRIALS and states.count("RUNNING") == 0 and states.count("WAITING") == 0
    frame = pd.read_csv(tmp_path / "run" / "results.csv", dtype={"trial": str, "seed": str})
    trials = frame[frame["trial"] != "final"]
    assert trials["trial"].is_unique and (trials["status"] == "ok").all()
    assert sorted(trials["trial"].astype(int)) == complete, "every finished trial is one row"
    finals = frame[frame["trial"] == "final"]
    assert sorted(finals["seed"]) == ["0", "1"] and (finals["status"] == "ok").all()
    chosen = {json.loads(t)["chosen_trial"] for t in finals["tuning"]}
    assert len(chosen) == 1 and {json.loads(t)["trials_run"] for t in finals["tuning"]} == {TRIALS}
    jobs = optuna.load_study(study_name=f"{study.study_name}__optuna__jobs", storage=storage)
    done = [t.user_attrs["job"] for t in jobs.trials if t.state.name == "COMPLETE"]
    assert sorted(done) == ["seed0", "seed1"], "each final claimed and run once"
    assert (tmp_path / "run" / "report.md").exists()
    return study, frame


def test_three_workers_share_one_study(tmp_path: Path, tiny_idx: Path, plugin_path: Path,
                                       postgres_url: str, capsys: pytest.CaptureFixture) -> None:
    command = worker_command(tmp_path, tiny_idx, postgres_url, seconds=0.25)
    workers = start_workers(command, 3, tmp_path)
    csv, deadline = tmp_path / "run" / "results.csv", time.monotonic() + 60
    while not csv.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    # A run that is not a worker of this storage may not use the folder meanwhile.
    alone = main(["run", "--dataset", f"idx:{tiny_idx}", "--model-path", "tinyplugin:SlowCentroid",
                  "--models", "slow-centroid", "--resume",
                  "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert alone == 2 and "(a worker of a shared storage, started" in err, err
    codes = finish(workers, tmp_path)
    assert codes == [0, 0, 0], [(tmp_path / f"worker{i}.err").read_text()[-1500:] for i in range(3)]
    study, frame = check_one_run(tmp_path, postgres_url)
    assert frame["run_id"].nunique() >= 2, "the trials were shared between workers"
    workers = {t.user_attrs.get("worker") for t in study.trials if t.state.name == "COMPLETE"}
    assert len(workers) >= 2
    fits = (tmp_path / "fits.log").read_text().split()
    assert len(fits) == TRIALS + 2, "each trial and each final trained once, by one worker"
    surplus = [t for t in study.trials if t.user_attrs.get("surplus")]
    assert all(t.state.name == "FAIL" and str(t.number) not in set(frame["trial"]) for t in surplus)

    # Started again when all is done, a worker finds nothing to do.
    again = subprocess.run(command, env={**os.environ, "TINYPLUGIN_LOG": str(tmp_path / "fits.log")},
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-1500:]
    assert len((tmp_path / "fits.log").read_text().split()) == TRIALS + 2
    check_one_run(tmp_path, postgres_url)


def test_a_killed_worker_s_trial_is_failed_and_retried(tmp_path: Path, tiny_idx: Path,
                                                      plugin_path: Path, postgres_url: str) -> None:
    command = worker_command(tmp_path, tiny_idx, postgres_url, seconds=0.6)
    workers = start_workers(command, 3, tmp_path)
    victim = workers[0]
    deadline, killed = time.monotonic() + 90, None
    while killed is None and time.monotonic() < deadline:  # the victim's first trial, 0.2 s in
        time.sleep(0.1)
        try:
            study = tuning_study(postgres_url)
        except Exception:  # no study yet
            continue
        mine = [t for t in study.get_trials(deepcopy=False)
                if t.state.name == "RUNNING" and str(t.user_attrs.get("worker", "")).endswith(
                    f":{victim.pid}")]
        if mine:
            time.sleep(0.2)
            victim.send_signal(signal.SIGKILL)
            killed = mine[0].number
    assert killed is not None, "the victim never started a trial"
    assert victim.wait(timeout=10) == -signal.SIGKILL
    assert finish(workers[1:], tmp_path) == [0, 0]
    study, frame = check_one_run(tmp_path, postgres_url)
    dead = study.trials[killed]
    assert dead.state.name == "FAIL", "the heartbeat marked the killed trial failed"
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    assert retries[0].params == dead.params, "retried with the same parameters"
    assert str(killed) not in set(frame["trial"]), "the killed trial wrote no row"


def test_job_claims_run_each_job_once(postgres_url: str) -> None:
    from datetime import datetime, timedelta

    from benchmark.execution.shared import Claim, Jobs, open_storage

    storage = open_storage(postgres_url, heartbeat=1)
    started = datetime.now()
    one, two = Jobs(storage, "demo__jobs", started), Jobs(storage, "demo__jobs", started)
    claim = one.claim("seed0")
    assert isinstance(claim, Claim) and two.claim("seed0") == "busy"
    other = two.claim("seed1")
    assert isinstance(other, Claim) and one.claim("seed1") == "busy"
    claim.finish(0.9)
    other.finish(error="ValueError: broken")
    assert one.claim("seed0") == two.claim("seed0") == "done"
    assert one.claim("seed1") == "failed", "not retried by the workers that saw it fail"
    later = Jobs(storage, "demo__jobs", datetime.now() + timedelta(seconds=1))
    retry = later.claim("seed1")
    assert isinstance(retry, Claim), "a worker started later tries a failed job again (--resume)"
    retry.abandon()  # a stop signal gives it back
    again = later.claim("seed1")
    assert isinstance(again, Claim), "an abandoned job is free at once"
    again.finish(0.8)
    jobs = {t.number: (t.user_attrs["job"], t.state.name) for t in one.study.get_trials()}
    assert list(jobs.values()) == [("seed0", "COMPLETE"), ("seed1", "FAIL"), ("seed1", "FAIL"),
                                   ("seed1", "COMPLETE")]


def test_a_trial_taken_by_a_worker_killed_before_its_first_heartbeat_is_retried(
        postgres_url: str) -> None:
    import sqlalchemy

    from benchmark.execution.shared import fail_stale, open_storage

    storage = open_storage(postgres_url, heartbeat=1)
    study = optuna.create_study(study_name="orphans", storage=storage)
    orphan = study.ask()  # RUNNING, and no heartbeat ever
    orphan.suggest_float("x", 0, 1)
    fail_stale(study)
    assert study.trials[0].state.name == "RUNNING", "young: maybe its worker is about to beat"
    with storage.engine.begin() as connection:
        connection.execute(sqlalchemy.text("UPDATE trials SET datetime_start = datetime_start - "
                                           "interval '1 hour' WHERE trial_id = :id"),
                           {"id": orphan._trial_id})
    fail_stale(study)
    states = [t.state.name for t in study.trials]
    assert states == ["FAIL", "WAITING"] and study.trials[1].params == study.trials[0].params
