"""Which parameters mattered: fANOVA importances per study, whichever tuner ran the trials."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from digitbench.benchmark.results import typed
from digitbench.reports.fanova import MIN_TRIALS, search_space, study_importances
from digitbench.reports.importance import IMPORTANCE, importances
from digitbench.reports.importance import top_parameters as top_of
from digitbench.reports.section import DatasetScope

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def importance_section(frame: pd.DataFrame, run_dir: Path) -> list[str]:
    """The "Which parameters mattered" section of one dataset's rows."""
    return IMPORTANCE.body(DatasetScope(frame, run_dir, "mnist-5k", "mnist-5k"))


def top_parameters(frame: pd.DataFrame) -> dict:
    """The summary's top parameters, from the same analysis."""
    return top_of(importances(DatasetScope(frame, ".")))


def _trial(number: int, params: dict[str, Any], val: float | None, *, model: str = "lenet-relu",
           tuner: str = "optuna", seed: int = 0, status: str = "ok") -> dict[str, Any]:
    return {"dataset": "mnist-5k", "model": model, "family": "cnn", "tuner": tuner,
            "trial": str(number), "seed": seed, "status": status, "val_accuracy": val,
            "test_accuracy": None, "fit_cpu_s": 1.0, "predict_cpu_s": 0.1, "params": params,
            "tuning": {"sampler": "random"} if tuner == "optuna" else {"oracle": "random"}}


def _study(n: int = 30, *, seed: int = 0, **kwargs: Any) -> list[dict[str, Any]]:
    """``n`` trials where validation accuracy rises steeply with log learning rate, not with
    ``noise``; ``epochs`` is the same in every trial (not tuned)."""
    rng = np.random.default_rng(seed)
    rows = []
    for number in range(n):
        lr = float(10 ** rng.uniform(-4, -1))
        noise = float(rng.uniform(0, 1))
        val = 0.5 + 0.1 * (math.log10(lr) + 4) + 0.002 * rng.standard_normal()
        rows.append(_trial(number, {"learning_rate": lr, "noise": noise, "epochs": 5}, val,
                           seed=seed, **kwargs))
    return rows


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return typed(pd.DataFrame(rows))


def test_the_parameter_accuracy_depends_on_matters_most() -> None:
    importances = study_importances(_frame(_study()))
    assert importances is not None
    assert set(importances) == {"learning_rate", "noise"}   # epochs: constant, dropped
    assert list(importances)[0] == "learning_rate"          # largest first
    assert importances["learning_rate"] > 0.9 and importances["noise"] < 0.1
    assert sum(importances.values()) == pytest.approx(1.0)


def test_importances_are_reproducible() -> None:
    frame = _frame(_study())
    assert study_importances(frame) == study_importances(frame)


def test_keras_tuner_and_random_trials_get_importances_alike() -> None:
    optuna_rows = study_importances(_frame(_study()))
    for tuner in ("keras-tuner", "random"):
        importances = study_importances(_frame(_study(tuner=tuner)))
        assert importances is not None and importances == pytest.approx(optuna_rows)
        assert importances["learning_rate"] > 0.9


def test_search_space_is_inferred_from_the_values() -> None:
    params = [{"lr": 0.1, "units": 32, "bn": True, "opt": "adam", "epochs": 5, "depth": None},
              {"lr": 0.01, "units": 64, "bn": False, "opt": "sgd", "epochs": 5, "depth": 3},
              {"lr": 1, "units": 48, "bn": True, "opt": "adam", "epochs": 5, "depth": 3}]
    distributions, values = search_space(params)
    assert distributions == {"bn": CategoricalDistribution([False, True]),
                             "depth": CategoricalDistribution(["3", "None"]),
                             "lr": FloatDistribution(0.01, 1.0),
                             "opt": CategoricalDistribution(["adam", "sgd"]),
                             "units": IntDistribution(32, 64)}
    assert values[0] == {"bn": True, "depth": "None", "lr": 0.1, "opt": "adam", "units": 32}
    assert values[2]["lr"] == 1.0 and isinstance(values[2]["lr"], float)


def test_bool_and_str_parameters_are_ranked() -> None:
    """Accuracy set by an optimizer name (str) and not by a batch-norm switch (bool)."""
    rng = np.random.default_rng(1)
    rows = []
    for number in range(30):
        opt = ["adam", "sgd", "rmsprop"][number % 3]
        bn = bool(rng.integers(2))
        val = {"adam": 0.95, "sgd": 0.80, "rmsprop": 0.90}[opt] + 0.002 * rng.standard_normal()
        rows.append(_trial(number, {"optimizer": opt, "batch_norm": bn, "dropout": 0.25}, val,
                           tuner="keras-tuner"))
    importances = study_importances(_frame(rows))
    assert importances is not None and set(importances) == {"optimizer", "batch_norm"}
    assert importances["optimizer"] > 0.9
    assert sum(importances.values()) == pytest.approx(1.0)


def test_nine_finished_trials_are_too_few(tmp_path: Path) -> None:
    rows = _study(MIN_TRIALS - 1, model="logreg", tuner="random")
    frame = _frame(rows)
    assert study_importances(frame) is None
    lines = importance_section(frame, tmp_path)
    assert "- `logreg` (random): 9 finished trials, fewer than the 10 an importance needs." in lines
    assert not (tmp_path / "importance-mnist-5k.png").exists()


def test_pruned_and_failed_trials_do_not_count() -> None:
    rows = _study(12)
    for row in rows[:2]:
        row["status"] = "pruned"
    rows[2]["status"], rows[2]["val_accuracy"] = "error", None
    rows[3]["val_accuracy"] = None    # ok without an accuracy: not finished
    assert study_importances(_frame(rows)) is None               # 8 finished
    assert study_importances(_frame(rows + _study(14)[12:])) is not None   # 10 finished
    # a final row of the same model is not a trial
    final = _trial(0, {"learning_rate": 0.1, "noise": 0.5, "epochs": 5}, 0.9) | {"trial": "final"}
    assert study_importances(_frame(rows[4:] + [final])) is None


def test_no_tuned_parameter_or_flat_accuracy_gives_none() -> None:
    same = [_trial(n, {"C": 1.0, "kernel": "rbf"}, 0.8 + 0.01 * n) for n in range(12)]
    assert study_importances(_frame(same)) is None
    flat = [_trial(n, {"C": float(n + 1)}, 0.8) for n in range(12)]
    assert study_importances(_frame(flat)) is None


def test_section_writes_the_figure_and_one_line_per_model_and_tuner(tmp_path: Path) -> None:
    rows = (_study() + _study(tuner="keras-tuner")
            + [_trial(n, {"C": 10.0 ** -n}, 0.9, model="logreg", tuner="random") for n in range(6)]
            + [_trial(6, {"C": 1e-6}, None, model="logreg", tuner="random", status="error")])
    lines = importance_section(_frame(rows), tmp_path)
    png = tmp_path / "importance-mnist-5k.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    height, width, _ = matplotlib.image.imread(png).shape
    assert height > 150 and width > 150
    assert lines[:3] == ["### Which parameters mattered", "",
                         "![Which parameters mattered on mnist-5k](importance-mnist-5k.png)"]
    items = [line for line in lines if line.startswith("- ")]
    assert items[0].startswith("- `lenet-relu` (keras-tuner, 30 trials): learning_rate 0.9")
    assert items[0].endswith(" (fANOVA importance for validation accuracy; the rest < 0.05)")
    assert items[1].startswith("- `lenet-relu` (optuna, 30 trials): learning_rate 0.9")
    assert items[2] == "- `logreg` (random): 6 finished trials, fewer than the 10 an importance needs."
    assert len(items) == 3
    assert top_parameters(_frame(rows)) == {
        ("lenet-relu", "keras-tuner"): [("learning_rate", pytest.approx(0.97, abs=0.03))],
        ("lenet-relu", "optuna"): [("learning_rate", pytest.approx(0.97, abs=0.03))]}


def test_several_study_seeds_give_a_mean_with_a_range(tmp_path: Path) -> None:
    rows = _study(seed=0) + _study(seed=1) + _study(seed=2, n=5)
    frame = _frame(rows)
    one = [study_importances(_frame(_study(seed=s)))["learning_rate"] for s in (0, 1)]
    lines = importance_section(frame, tmp_path)
    item = next(line for line in lines if line.startswith("- "))
    assert item.startswith(f"- `lenet-relu` (optuna, 2 studies, 60 trials): learning_rate "
                           f"{np.mean(one):.2f} ({min(one):.2f}–{max(one):.2f})")
    assert "; 1 of its 3 studies had no importances" in item
    (name, mean), = top_parameters(frame)[("lenet-relu", "optuna")]
    assert name == "learning_rate" and mean == pytest.approx(np.mean(one))


def test_studies_each_too_small_are_pooled_when_together_they_have_enough(tmp_path: Path) -> None:
    rows = _study(6, seed=0) + _study(6, seed=1) + _study(6, seed=2)
    frame = _frame(rows)
    pooled = study_importances(frame)  # all 18 trials as one study
    lines = importance_section(frame, tmp_path)
    item = next(line for line in lines if line.startswith("- "))
    assert item.startswith("- `lenet-relu` (optuna, 18 trials pooled over its 3 studies, each with fewer "
                           f"than 10): learning_rate {pooled['learning_rate']:.2f}"), item
    assert pooled["learning_rate"] > 0.5
    assert (tmp_path / "importance-mnist-5k.png").exists()
    few = _frame(_study(4, seed=0) + _study(4, seed=1))
    assert "at most 4 finished trials in each of its 2 studies" in "\n".join(
        importance_section(few, tmp_path)), "8 trials pooled are still too few"


def test_no_trials_is_one_sentence(tmp_path: Path) -> None:
    final = _trial(0, {"C": 1.0}, 0.9) | {"trial": "final"}
    lines = importance_section(_frame([final]), tmp_path)
    assert lines == ["### Which parameters mattered", "",
                     "No tuning trials were recorded for this dataset, so there are no parameter "
                     "importances.", ""]
    assert top_parameters(_frame([final])) == {}
    assert list(tmp_path.iterdir()) == []


def test_section_is_deterministic_and_leaves_optuna_logging_as_it_was(tmp_path: Path) -> None:
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        frame = _frame(_study() + _study(tuner="random"))
        first = importance_section(frame, tmp_path)
        png = (tmp_path / "importance-mnist-5k.png").read_bytes()
        assert importance_section(frame, tmp_path) == first
        assert (tmp_path / "importance-mnist-5k.png").read_bytes() == png
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(before)
