"""``digitbench run --cluster``: the jobs run on the workers of a Dask cluster (a LocalCluster on
127.0.0.1 here), which need neither the run folder nor a database; a worker killed mid-run loses only
its running job, which runs again elsewhere, and every study and final still happens exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import distributed
import optuna
import pandas as pd
import pytest

TRIALS = 8


@pytest.fixture()
def cluster(plugin_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Two single-threaded worker processes (each behind a nanny, which restarts it if it dies),
    whose models log their trials to tmp_path/fits.log."""
    monkeypatch.setenv("TINYPLUGIN_LOG", str(tmp_path / "fits.log"))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as local:
        yield local


def test_a_run_on_a_cluster_survives_a_killed_worker(cluster, tmp_path: Path, tiny_idx: Path) -> None:
    log = tmp_path / "fits.log"
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "digitbench", "run", "--cluster", cluster.scheduler_address,
               "--dataset", f"idx:{tiny_idx}", "--model-path", "tinyplugin:NearestCentroid",
               "--model-path", "tinyplugin:EpochModel", "--models", "nearest-centroid,epoch-model",
               "--tuner", "optuna", "--trials", str(TRIALS), "--seeds", "2",
               "--params", '{"seconds_per_epoch": 0.25}',
               "--out", str(run_dir), "--cache-dir", str(tmp_path / "cache")]
    coordinator = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and coordinator.poll() is None:
        if log.exists() and log.read_text().count("trial-start") >= 3:
            break
        time.sleep(0.05)
    else:
        coordinator.kill()
        pytest.fail(f"no epoch-model trial started: {coordinator.communicate()[1][-2000:]}")
    running = int(log.read_text().split()[-1])  # the worker running that trial (0.5 s at least)
    os.kill(running, signal.SIGKILL)
    _, err = coordinator.communicate(timeout=240)
    assert coordinator.returncode == 0, err[-3000:]

    frame = pd.read_csv(run_dir / "results.csv", dtype={"trial": str, "seed": str})
    storage = f"sqlite:///{run_dir / 'optuna.db'}"
    for model in ("nearest-centroid", "epoch-model"):
        mine = frame[frame["model"] == model]
        trials = mine[mine["trial"] != "final"]
        assert trials["trial"].is_unique and set(trials["status"]) <= {"ok", "pruned"}
        assert len(trials) == TRIALS, f"{model}: exactly {TRIALS} finished trials"
        primary = mine[(mine["trial"] == "final") & mine["refit_trial"].isna()]
        assert sorted(primary["seed"]) == ["0", "1"], "each final once"
        assert not mine[mine["trial"] == "final"].duplicated(["seed", "refit_trial"]).any()
        name = next(n for n in optuna.get_all_study_names(storage) if n.endswith(model))
        states = [t.state.name for t in optuna.load_study(study_name=name, storage=storage).trials]
        assert states.count("COMPLETE") + states.count("PRUNED") == TRIALS and "RUNNING" not in states
    assert frame["status"].isin(["ok", "pruned"]).all()
    starts = log.read_text().splitlines()
    finals = frame[(frame["model"] == "epoch-model") & (frame["trial"] == "final")]
    trained = sum("final_copied_from" not in json.loads(t) for t in finals["tuning"])
    assert len(starts) == TRIALS + trained + 1, "the killed trial ran once more, nothing else did"
    assert running not in {int(line.split()[-1]) for line in starts[3:]}, "elsewhere"
