"""Tuning: the search-space language and its adapters, Optuna and keras-tuner studies through the
CLI, equal budgets, pruning and finals refit from the chosen trial. One study's own logic (asking,
budgets, completion, the choice of the trial to refit) is in tuning/test_study.py; a killed run's
resume in test_interrupts.py."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest

from digitbench.benchmark.commands.main import main
from digitbench.benchmark.tuning.space import (
    Choice,
    FixedSpace,
    Float,
    Int,
    OptunaSpace,
    PinnedSpace,
    dimensions,
)
from digitbench.models import registry

LENET_DIMENSIONS = {"filters1", "filters2", "kernel_size", "dense_units", "dropout",
                    "learning_rate", "batch_size", "epochs", "batch_norm", "lr_schedule", "augment"}


def run_cli(tmp_path: Path, tiny_idx: Path, *args: str) -> int:
    return main(["run", "--dataset", f"idx:{tiny_idx}", "--out", str(tmp_path / "run"),
                 "--cache-dir", str(tmp_path / "cache"), *args])


def results(tmp_path: Path) -> pd.DataFrame:
    return pd.read_csv(tmp_path / "run" / "results.csv", dtype={"trial": str})


# -- the language --------------------------------------------------------------------------------

def test_every_builtin_declares_its_space_once() -> None:
    assert set(dimensions(registry.get("logreg").cls)) == {"C"}
    assert set(dimensions(registry.get("linear-svm").cls)) == {"C"}
    assert set(dimensions(registry.get("svm-rbf").cls)) == {"C", "gamma"}
    for name in ("lenet-relu", "lenet-tanh"):
        declared = dimensions(registry.get(name).cls)
        assert set(declared) == LENET_DIMENSIONS, "the activation stays fixed per variant"
        assert isinstance(declared["learning_rate"], Float) and declared["learning_rate"].log
        assert isinstance(declared["kernel_size"], Choice)


def test_optuna_adapter_suggests_within_the_declared_ranges() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    cls = registry.get("lenet-relu").cls
    for _ in range(20):
        values = cls.search_space(OptunaSpace(study.ask()))
        for name, dim in dimensions(cls).items():
            if isinstance(dim, Choice):
                assert values[name] in dim.options
            else:
                assert dim.low <= values[name] <= dim.high
                assert isinstance(values[name], int) == isinstance(dim, Int)


def test_keras_tuner_adapter_registers_the_same_dimensions() -> None:
    from keras_tuner import HyperParameters

    from digitbench.benchmark.tuning.space import KerasTunerSpace

    hp = HyperParameters()
    values = registry.get("svm-rbf").cls.search_space(KerasTunerSpace(hp))
    assert set(values) == {"C", "gamma"} == {p.name for p in hp.space}
    assert {p.name: p.sampling for p in hp.space} == {"C": "log", "gamma": "log"}


def test_fixed_and_pinned_spaces() -> None:
    cls = registry.get("lenet-tanh").cls
    defaults = registry.get("lenet-tanh").defaults()
    assert cls.search_space(FixedSpace({"epochs": 3}, defaults))["epochs"] == 3
    assert cls.search_space(FixedSpace({}, defaults))["dense_units"] == defaults["dense_units"]
    study = optuna.create_study()
    trial = study.ask()
    values = cls.search_space(PinnedSpace(OptunaSpace(trial), {"epochs": 2, "batch_size": 16}))
    assert values["epochs"] == 2 and values["batch_size"] == 16
    assert "epochs" not in trial.params and "batch_size" not in trial.params


# -- Optuna through the CLI ----------------------------------------------------------------------

def test_optuna_tunes_then_refits_the_best_trial(tmp_path: Path, tiny_idx: Path,
                                                 plugin_path: Path) -> None:
    assert run_cli(tmp_path, tiny_idx, "--model-path", "tinyplugin:NearestCentroid",
                   "--models", "nearest-centroid", "--tuner", "optuna", "--trials", "5",
                   "--seeds", "2") == 0
    frame = results(tmp_path)
    trials = frame[frame["trial"] != "final"]
    finals = frame[(frame["trial"] == "final") & frame["refit_trial"].isna()]
    assert sorted(trials["trial"].astype(int)) == [0, 1, 2, 3, 4]
    assert (trials["status"] == "ok").all() and trials["test_accuracy"].isna().all()
    assert (trials["n_train"] == 480).all() and (trials["n_val"] == 120).all(), "5 folds of 600"
    assert len(finals) == 2 and (finals["n_train"] == 600).all() and (finals["tuner"] == "optuna").all()
    tuning = json.loads(finals["tuning"].iloc[0])
    chosen = trials[trials["trial"] == str(tuning["chosen_trial"])].iloc[0]
    assert json.loads(finals["params"].iloc[0]) == json.loads(chosen["params"])
    assert tuning["trials_run"] == 5 and tuning["best_val_accuracy"] == trials["val_accuracy"].max()
    assert json.loads(trials[trials["trial"] == "0"]["params"].iloc[0])["shrink"] == 0.0, "defaults"
    gain = trials["val_accuracy"].max() - chosen["val_accuracy"]
    assert gain >= 0
    if "kept" in tuning["chosen_because"]:  # the defaults stayed although a trial scored higher
        assert tuning["chosen_trial"] == 0 and gain > 0
    assert tuning["sampler"] == "tpe" and tuning["stopped_by"] == "trials"
    assert tuning["scoring"] == "5-fold cross-validation on the training part"
    shrinks = {json.loads(p)["shrink"] for p in trials["params"]}
    assert len(shrinks) == 5 and all(0 <= s <= 0.9 for s in shrinks)
    check_extra_finals(frame, tuning)


def check_extra_finals(frame: pd.DataFrame, chosen: dict) -> None:
    """The extra finals of a study (the cheapest trial within one SE, its front's points) refit the
    trial their ``refit_trial`` names, with its parameters, validation accuracy and fit CPU-s, on
    the primary final's seeds; the primary final says its own roles."""
    trials = frame[frame["trial"] != "final"]
    trials = trials.set_index(trials["trial"].astype(int))
    extra = frame[(frame["trial"] == "final") & frame["refit_trial"].notna()]
    primary = frame[(frame["trial"] == "final") & frame["refit_trial"].isna()]
    assert "chosen" in chosen["final_roles"] and chosen["refit_val_accuracy"] == \
        trials.loc[chosen["chosen_trial"], "val_accuracy"]
    roles = set(chosen["final_roles"])
    for row in extra.itertuples():
        tuning, trial = json.loads(row.tuning), trials.loc[int(row.refit_trial)]
        assert int(row.refit_trial) != chosen["chosen_trial"] and "chosen" not in tuning["final_roles"]
        assert json.loads(row.params) == json.loads(trial["params"]) != json.loads(primary["params"].iloc[0])
        assert tuning["refit_val_accuracy"] == trial["val_accuracy"]
        assert tuning["refit_cost"] == pytest.approx(trial["fit_cpu_s"])
        roles |= set(tuning["final_roles"])
    assert "one-se-cheapest" in roles, "the cheapest within one SE is refit, by the primary or an extra"
    assert sorted(extra["seed"].unique()) == sorted(primary["seed"].unique()) or extra.empty
    assert not extra.duplicated(["seed", "refit_trial"]).any()


def test_hold_out_scoring_with_cv_1_and_for_models_with_epochs(tmp_path: Path, tiny_idx: Path,
                                                              plugin_path: Path) -> None:
    assert run_cli(tmp_path, tiny_idx, "--model-path", "tinyplugin:NearestCentroid",
                   "--model-path", "tinyplugin:EpochModel", "--models", "nearest-centroid,epoch-model",
                   "--tuner", "optuna", "--trials", "2", "--cv", "1") == 0
    trials = results(tmp_path).query("trial != 'final'")
    assert (trials["n_train"] == 540).all() and (trials["n_val"] == 60).all()
    assert run_cli(tmp_path, tiny_idx, "--models", "epoch-model", "--tuner", "optuna",
                   "--trials", "2", "--out", str(tmp_path / "run2")) == 0
    epoch_trials = pd.read_csv(tmp_path / "run2" / "results.csv", dtype={"trial": str})
    assert (epoch_trials.query("trial != 'final'")["n_val"] == 60).all(), "prunes on validation"


def test_a_cpu_budget_stops_at_a_trial_boundary(tmp_path: Path, tiny_idx: Path, plugin_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(tmp_path, tiny_idx, "--model-path", "tinyplugin:BusyCentroid",
                   "--models", "busy-centroid", "--tuner", "optuna", "--trials", "20",
                   "--budget", "0.5", "--cv", "1") == 0
    frame = results(tmp_path)
    trials = frame[frame["trial"] != "final"]
    used = (trials["fit_cpu_s"] + trials["predict_cpu_s"]).sum()
    assert 3 <= len(trials) <= 4, "0.2 CPU-s trials: the third or fourth crosses 0.5"
    assert used >= 0.5 and (used - trials["fit_cpu_s"].iloc[-1]) < 0.5
    tuning = json.loads(frame[frame["trial"] == "final"]["tuning"].iloc[0])
    assert tuning["stopped_by"] == "budget" and tuning["budget_cpu_s"] == 0.5
    assert tuning["cpu_s_used"] == pytest.approx(used, abs=0.01)
    progress = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[")]
    assert progress[-1].startswith(f"[{len(frame)}/{len(frame)}] "), \
        "the trials the budget cut are taken out of the total"


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_pruned_trials_are_rows_and_count_toward_the_trials(tmp_path: Path, tiny_idx: Path,
                                                            plugin_path: Path, pruner: str) -> None:
    assert run_cli(tmp_path, tiny_idx, "--model-path", "tinyplugin:EpochModel",
                   "--models", "epoch-model", "--tuner", "optuna", "--sampler", "random",
                   "--pruner", pruner, "--trials", "12") == 0
    trials = results(tmp_path).query("trial != 'final'")
    assert len(trials) == 12 and set(trials["status"]) == {"ok", "pruned"}
    pruned = trials[trials["status"] == "pruned"]
    for row in trials.itertuples():  # every epoch a trial ran is in its history
        curve = json.loads(row.history)["val_accuracy"]
        assert curve[-1] == pytest.approx(row.val_accuracy, abs=1e-5) or row.status == "ok"
        assert len(curve) <= json.loads(row.params)["epochs"]
    assert pruned["val_accuracy"].notna().all() and (pruned["fit_cpu_s"] >= 0).all()


def test_params_pin_a_value_for_every_trial_and_final(tmp_path: Path, tiny_idx: Path,
                                                     plugin_path: Path) -> None:
    """A pinned dimension is not tuned: every row, trials and finals, has the given value."""
    args = ["--model-path", "tinyplugin:NearestCentroid", "--models", "nearest-centroid",
            "--tuner", "optuna", "--trials", "3"]
    assert run_cli(tmp_path, tiny_idx, *args, "--params", '{"shrink": 0.25}') == 0
    assert {json.loads(p)["shrink"] for p in results(tmp_path)["params"]} == {0.25}


# -- keras-tuner through the CLI -------------------------------------------------------------------

def test_keras_tuner_and_optuna_tune_the_same_model_side_by_side(tmp_path: Path, tiny_idx: Path,
                                                                 plugin_path: Path) -> None:
    assert run_cli(tmp_path, tiny_idx, "--model-path", "tinyplugin:NearestCentroid",
                   "--models", "nearest-centroid", "--tuner", "optuna,keras-tuner",
                   "--oracle", "random", "--trials", "4") == 0
    frame = results(tmp_path)
    for tuner in ("optuna", "keras-tuner"):
        mine = frame[(frame["tuner"] == tuner) & frame["refit_trial"].isna()]
        assert sorted(mine["trial"]) == ["0", "1", "2", "3", "final"]
        assert (mine["status"] == "ok").all()
    tuning = json.loads(frame.query("tuner == 'keras-tuner' and trial == 'final'")["tuning"].iloc[0])
    assert tuning["oracle"] == "random" and tuning["trials_run"] == 4
    assert tuning["first_trial"] == "defaults", "keras-tuner starts from the defaults, as Optuna does"
    for tuner in ("optuna", "keras-tuner"):
        first = frame[(frame["tuner"] == tuner) & (frame["trial"] == "0")]["params"].iloc[0]
        assert json.loads(first)["shrink"] == 0.0, f"{tuner}: trial 0 is the model's defaults"
    assert (tmp_path / "run" / "keras-tuner").is_dir()


def test_keras_tuner_hyperband_sets_the_epochs(tmp_path: Path, tiny_idx: Path,
                                               plugin_path: Path) -> None:
    assert run_cli(tmp_path, tiny_idx, "--model-path", "tinyplugin:EpochModel",
                   "--models", "epoch-model", "--tuner", "keras-tuner", "--oracle", "hyperband",
                   "--trials", "6") == 0
    trials = results(tmp_path).query("trial != 'final'")
    epochs = [json.loads(p)["epochs"] for p in trials["params"]]
    assert len(trials) == 6 and all(1 <= e <= 6 for e in epochs) and len(set(epochs)) > 1


def test_hyperband_falls_back_for_models_without_epochs(tmp_path: Path, tiny_idx: Path,
                                                        plugin_path: Path) -> None:
    assert run_cli(tmp_path, tiny_idx, "--model-path", "tinyplugin:NearestCentroid",
                   "--models", "nearest-centroid", "--tuner", "keras-tuner", "--oracle",
                   "hyperband", "--trials", "3") == 0
    final = results(tmp_path).query("trial == 'final'")
    assert json.loads(final["tuning"].iloc[0])["oracle"] == "bayesian"


def test_overwrite_starts_the_studies_of_an_outside_storage_again(tmp_path: Path, tiny_idx: Path,
                                                                  plugin_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Studies are named by the dataset as loaded, so --overwrite finds them however the dataset
    is spelled: here first as an absolute path, then relative and in upper case."""
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    args = ["--model-path", "tinyplugin:NearestCentroid", "--models", "nearest-centroid",
            "--tuner", "optuna", "--trials", "2", "--storage", storage]
    assert run_cli(tmp_path, tiny_idx, *args) == 0
    monkeypatch.chdir(tiny_idx.parent)
    assert main(["run", "--dataset", f"IDX:{tiny_idx.name}", "--out", str(tmp_path / "run"),
                 "--cache-dir", str(tmp_path / "cache"), *args, "--overwrite"]) == 0
    [name] = optuna.get_all_study_names(storage)
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == 2, "not 2 + 2"
    assert len(results(tmp_path).query("trial != 'final'")) == 2


def test_study_seeds_repeat_each_study_and_random_search_is_a_tuner(tmp_path: Path, tiny_idx: Path,
                                                                    plugin_path: Path) -> None:
    args = ["--model-path", "tinyplugin:NearestCentroid", "--models", "nearest-centroid",
            "--tuner", "optuna,random", "--trials", "5", "--cv", "1", "--study-seeds", "3",
            "--seeds", "2"]
    assert run_cli(tmp_path, tiny_idx, *args) == 0
    frame = pd.read_csv(tmp_path / "run" / "results.csv", dtype={"trial": str, "seed": str})
    trials = frame[frame["trial"] != "final"]
    finals = frame[(frame["trial"] == "final") & frame["refit_trial"].isna()]
    for tuner in ("optuna", "random"):
        mine = trials[trials["tuner"] == tuner]
        assert sorted(mine.groupby("seed").size().items()) == [("0", 5), ("1", 5), ("2", 5)]
        for seed, study in mine.groupby("seed"):
            tuning = json.loads(study["tuning"].iloc[0])
            assert tuning["study_seed"] == int(seed)
            assert tuning["sampler"] == ("random" if tuner == "random" else "tpe")
            assert json.loads(study[study["trial"] == "0"]["params"].iloc[0])["shrink"] == 0.0
        shrinks = {s: sorted(json.loads(p)["shrink"] for p in g["params"]) for s, g in mine.groupby("seed")}
        assert shrinks["0"] != shrinks["1"] != shrinks["2"], "each study samples with its own seed"
        # the finals refit study 0's choice, once per final seed, and only study 0 has finals
        mine_finals = finals[finals["tuner"] == tuner]
        assert sorted(mine_finals["seed"]) == ["0", "1"]
        chosen = json.loads(mine_finals["tuning"].iloc[0])
        assert chosen["study_seed"] == 0 and chosen["trials_run"] == 5
        row = mine[(mine["seed"] == "0") & (mine["trial"] == str(chosen["chosen_trial"]))].iloc[0]
        assert json.loads(mine_finals["params"].iloc[0]) == json.loads(row["params"])
    names = set(optuna.get_all_study_names(f"sqlite:///{tmp_path / 'run' / 'optuna.db'}"))
    base = next(n for n in names if n.endswith("__nearest-centroid"))
    assert names == {base, f"{base}__s1", f"{base}__s2", f"{base}__random", f"{base}__random__s1",
                     f"{base}__random__s2"}
    report = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    tuning = report.split("### Tuning curves", 1)[1].split("\n### ", 1)[0]
    assert "over 3 studies per tuner with seeds 0..2" in tuning
    table = [line for line in tuning.splitlines() if line.startswith("| nearest-centroid")]
    assert [line.split("|")[2].strip() for line in table] == ["optuna (tpe, median pruner)",
                                                              "random (random, median pruner)"]
    assert all(line.split("|")[3].strip() == "3" for line in table)
    # a resumed run finds every study done and adds nothing
    assert run_cli(tmp_path, tiny_idx, *args, "--resume") == 0
    assert len(pd.read_csv(tmp_path / "run" / "results.csv")) == len(frame)


def test_keras_tuner_trials_get_importances_and_the_defaults_refit_is_not_redone_on_resume(
        tmp_path: Path, tiny_idx: Path, plugin_path: Path) -> None:
    """The issue's "importance when keras-tuner ran": real keras-tuner trials, through the rows, into
    the report's fANOVA line; and the defaults refit beside a tuned final, which --resume leaves."""
    args = ("--model-path", "tinyplugin:PoorDefaults", "--models", "poor-defaults", "--tuner",
            "keras-tuner", "--oracle", "random", "--trials", "10", "--seeds", "2")
    assert run_cli(tmp_path, tiny_idx, *args) == 0
    frame = results(tmp_path)
    finals = frame[frame["trial"] == "final"]
    chosen = json.loads(finals[finals["tuner"] == "keras-tuner"]["params"].iloc[0])
    refits = finals[finals["tuner"] == "none"]
    assert chosen["garble"] < 0.5, "tuning replaced the poor defaults"
    assert sorted(refits["seed"]) == [0, 1], "so the defaults are refit on the same seeds"
    assert {json.loads(p)["garble"] for p in refits["params"]} == {0.5}
    assert json.loads(refits["tuning"].iloc[0]) == {"tuner": "none", "defaults_refit_for": ["keras-tuner"]}
    report = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    line = next(t for t in report.splitlines() if t.startswith("- `poor-defaults` (keras-tuner"))
    assert line.startswith("- `poor-defaults` (keras-tuner, 10 trials): garble 0."), line
    summary = report.split("## Summary")[1].split("## Dataset")[0]
    assert "`poor-defaults` (keras-tuner," in summary and "significant on every seed" in summary
    rows = len(frame)
    assert run_cli(tmp_path, tiny_idx, *args, "--resume") == 0
    assert len(results(tmp_path)) == rows, "a resumed run redoes nothing, the defaults refit included"
