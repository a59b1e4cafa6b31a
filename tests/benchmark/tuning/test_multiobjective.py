"""Two-objective studies (``--objectives accuracy,fit-cpu`` or ``accuracy,predict-ms``) through the
CLI: Optuna studies with two directions told both values of every trial, no pruning, trial 0 the
defaults, the primary final still the most accurate trial; a study resumed with other objectives
refused in one line. A killed two-objective run's resume is in execution/test_interrupts_multi.py."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest

from digitbench.benchmark.commands.main import main
from digitbench.benchmark.config import build_config
from digitbench.benchmark.tuning.optuna_driver import NO_PRUNING, check_objectives
from digitbench.common.errors import InputError

TRIALS = 5


def run_cli(tmp_path: Path, tiny_idx: Path, *args: str) -> int:
    return main(["run", "--dataset", f"idx:{tiny_idx}", "--out", str(tmp_path / "run"),
                 "--cache-dir", str(tmp_path / "cache"), "--model-path", "tinyplugin:EpochModel",
                 "--models", "epoch-model", "--trials", str(TRIALS), "--no-onnx", "--workers", "1",
                 "--params", '{"seconds_per_epoch": 0.0}', *args])


def load_study(tmp_path: Path) -> optuna.Study:
    storage = f"sqlite:///{tmp_path / 'run' / 'optuna.db'}"
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


@pytest.mark.parametrize(("tuner", "objective", "sampler"),
                         [("optuna", "fit-cpu", "TPESampler"), ("random", "predict-ms", "RandomSampler")])
def test_a_two_objective_study_is_told_accuracy_and_cost(tmp_path: Path, tiny_idx: Path,
                                                         plugin_path: Path, tuner: str, objective: str,
                                                         sampler: str, capsys) -> None:
    assert run_cli(tmp_path, tiny_idx, "--tuner", tuner, "--objectives", f"accuracy,{objective}") == 0
    assert "which Optuna does not prune" in capsys.readouterr().err
    study = load_study(tmp_path)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.user_attrs["objectives"] == ["accuracy", objective]
    frame = pd.read_csv(tmp_path / "run" / "results.csv", dtype={"trial": str})
    trials = frame[frame["trial"] != "final"].set_index(frame["trial"][frame["trial"] != "final"].astype(int))
    assert len(trials) == TRIALS and (trials["status"] == "ok").all(), "no trial pruned"
    tuning = json.loads(trials["tuning"].iloc[0])
    assert tuning["pruner"] == NO_PRUNING and tuning["objectives"] == ["accuracy", objective]
    assert tuning["sampler"] == ("random" if tuner == "random" else "tpe")
    for trial in study.trials:
        row = trials.loc[trial.number]
        cost = row["fit_cpu_s"] if objective == "fit-cpu" else \
            1000 * row["predict_cpu_s"] / tuning["scored_images"]
        assert trial.values == pytest.approx([row["val_accuracy"], cost])
    assert study.trials[0].params == {"quality": 0.5, "epochs": 6}, "trial 0 is the defaults"
    final = frame[(frame["trial"] == "final") & (frame["tuner"] == tuner) & frame["refit_trial"].isna()]
    chosen = json.loads(final["tuning"].iloc[0])["chosen_trial"]
    best = trials.loc[trials["val_accuracy"] == trials["val_accuracy"].max()].index
    assert chosen == 0 or chosen in best, "the primary final is still chosen on accuracy alone"


def test_a_single_objective_study_keeps_its_pruner_and_records_no_objectives(
        tmp_path: Path, tiny_idx: Path, plugin_path: Path) -> None:
    assert run_cli(tmp_path, tiny_idx, "--tuner", "optuna", "--pruner", "median") == 0
    study = load_study(tmp_path)
    assert [d.name for d in study.directions] == ["MAXIMIZE"]
    frame = pd.read_csv(tmp_path / "run" / "results.csv", dtype={"trial": str})
    tuning = json.loads(frame["tuning"].iloc[0])
    assert tuning["pruner"] == "median" and "objectives" not in tuning


@pytest.mark.parametrize(("first", "then"), [("accuracy", "accuracy,fit-cpu"),
                                             ("accuracy,fit-cpu", "accuracy"),
                                             ("accuracy,fit-cpu", "accuracy,predict-ms")])
def test_resuming_a_study_with_other_objectives_is_one_line(tmp_path: Path, tiny_idx: Path,
                                                            plugin_path: Path, first: str, then: str,
                                                            capsys) -> None:
    assert run_cli(tmp_path, tiny_idx, "--tuner", "optuna", "--objectives", first) == 0
    rows = len(pd.read_csv(tmp_path / "run" / "results.csv"))
    capsys.readouterr()
    assert run_cli(tmp_path, tiny_idx, "--tuner", "optuna", "--objectives", then, "--trials", "8",
                   "--resume") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"--objectives {then}: study " in err
    assert f"was created with {first}" in err and "--overwrite" in err
    assert len(pd.read_csv(tmp_path / "run" / "results.csv")) == rows, "nothing ran"


def test_a_study_kept_before_objectives_were_recorded_is_one_objective(tmp_path: Path) -> None:
    """Studies of older runs carry no ``objectives`` attribute: one direction reads as accuracy
    alone, and two directions are taken at their word (a kill between creating a study and
    recording its objectives leaves that)."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(study_name="old", storage=storage, direction="maximize")
    optuna.create_study(study_name="two", storage=storage, directions=["maximize", "minimize"])
    check_objectives(storage, {"old"}, ("accuracy",))
    with pytest.raises(InputError, match="^--objectives accuracy,fit-cpu: study old was created "
                                         "with 1 objective"):
        check_objectives(storage, {"old"}, ("accuracy", "fit-cpu"))
    check_objectives(storage, {"two"}, ("accuracy", "predict-ms"))
    with pytest.raises(InputError, match="study two was created with 2 objective"):
        check_objectives(storage, {"two"}, ("accuracy",))
    check_objectives(storage, {"another"}, ("accuracy", "fit-cpu"))  # other studies are not read


@pytest.mark.parametrize(("objectives", "cost"), [("accuracy", "fit"), ("accuracy,fit-cpu", "fit"),
                                                  ("accuracy,predict-ms", "predict")])
def test_the_front_finals_cost_follows_the_second_objective(objectives: str, cost: str) -> None:
    assert build_config({"objectives": objectives, "tuners": "optuna"}).cost == cost
    assert build_config({"objectives": objectives, "tuners": "optuna", "cost": cost}).cost == cost
