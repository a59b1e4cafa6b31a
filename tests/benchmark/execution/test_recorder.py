"""The recorder: a finished task becomes one row of results.csv plus its files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from digitbench.benchmark.config import build_config
from digitbench.benchmark.data.datasets import load_split
from digitbench.benchmark.execution.jobs import Job, Kind, TaskResult
from digitbench.benchmark.execution.recorder import Recorder
from digitbench.benchmark.payloads import StudySummary
from digitbench.benchmark.store import ResultsStore, load_misclassified, load_results
from digitbench.models import registry


def test_a_final_becomes_a_row_with_its_predictions_model_file_and_traceback(tmp_path: Path,
                                                                           tiny_idx: Path) -> None:
    config = build_config({"datasets": f"idx:{tiny_idx}", "out": tmp_path / "run", "save_models": True,
                           "cache_dir": tmp_path / "cache"})
    split = load_split(config.datasets[0], cache_dir=config.cache_dir)
    config.run_dir.mkdir(parents=True)  # as the session prepares it
    store = ResultsStore(config.run_dir)
    recorder = Recorder(config, "digitbench run ...", store, {"other:spec": split})
    entry = registry.get("lenet-tanh")
    job = Job(dataset=split.dataset, model=entry.name, tuner="none", kind=Kind.FINAL, trial=None, seed=3,
              params={"epochs": 2})
    predicted = split.test.labels.copy()
    predicted[:5] = (predicted[:5] + 1) % 10
    result = TaskResult("ok", {"test_accuracy": 0.975, "fit_cpu_s": 1.5,
                               "cross_test": {"other:spec": {"n_test": 200, "correct": 190}},
                               "history": {"val_accuracy": [0.5, 0.6]}},
                        traceback="Traceback: something worth keeping", predictions=predicted,
                        model_bytes=b"model", onnx_bytes=b"onnx", worker="elsewhere:1", worker_cpu_s=7.0)
    recorder.record(split, entry, job, result, StudySummary(tuner="none"))

    [row] = load_results(store.path).to_dict("records")
    assert (row["trial"], row["seed"], row["status"], row["test_accuracy"]) == ("final", "3", "ok", 0.975)
    assert row["model_class"] == "digitbench.models.lenet:LeNet"
    assert json.loads(row["fixed"]) == {"activation": "tanh"}
    assert json.loads(row["params"]) == {"epochs": 2} and json.loads(row["tuning"]) == {"tuner": "none"}
    assert json.loads(row["history"]) == {"val_accuracy": [0.5, 0.6]}
    assert json.loads(row["cross_test"]) == {"other:spec": {"n_test": 200, "correct": 190,
                                                            "preparation": split.preparation}}
    assert json.loads(row["settings"])["run_dir"] == str(config.run_dir)
    assert row["process_cpu_s"] >= 7.0, "the workers' CPU counts toward the invocation's"
    index, images = load_misclassified(config.run_dir, row["predictions"])
    assert index.tolist() == [0, 1, 2, 3, 4] and images.shape == (5, 28, 28)
    assert (config.run_dir / row["model_file"]).read_bytes() == b"model"
    assert row["model_file"].endswith("lenet-tanh-none-seed3.keras")
    assert (config.run_dir / row["onnx_file"]).read_bytes() == b"onnx"
    assert "something worth keeping" in (config.run_dir / "errors.log").read_text()
    assert not list(config.run_dir.rglob(".*.tmp*")), "no temporary file left"
    assert np.array_equal(np.load(config.run_dir / row["predictions"])["y_pred"], predicted)


def test_an_extra_final_names_the_trial_it_refits_in_its_row_and_files(tmp_path: Path,
                                                                       tiny_idx: Path) -> None:
    config = build_config({"datasets": f"idx:{tiny_idx}", "out": tmp_path / "run", "save_models": True,
                           "cache_dir": tmp_path / "cache"})
    split = load_split(config.datasets[0], cache_dir=config.cache_dir)
    config.run_dir.mkdir(parents=True)
    store = ResultsStore(config.run_dir)
    recorder = Recorder(config, "digitbench run ...", store, {})
    entry = registry.get("logreg")
    tuning = StudySummary(tuner="optuna", final_roles=("one-se-cheapest",), refit_val_accuracy=0.9,
                          refit_cost=1.5)
    for refit_trial in (None, 4):
        job = Job(dataset=split.dataset, model=entry.name, tuner="optuna", kind=Kind.FINAL, trial=None,
                  seed=0, params={"C": 1.0}, refit_trial=refit_trial)
        result = TaskResult("ok", {"test_accuracy": 0.9}, predictions=split.test.labels.copy(),
                            model_bytes=b"model")
        recorder.record(split, entry, job, result, tuning)
    primary, extra = load_results(store.path).to_dict("records")
    assert np.isnan(primary["refit_trial"]) and extra["refit_trial"] == 4
    assert json.loads(extra["tuning"])["final_roles"] == ["one-se-cheapest"]
    assert extra["predictions"] != primary["predictions"] and "trial4" in extra["predictions"]
    assert extra["model_file"].endswith("logreg-optuna-seed0-trial4.skops")
    assert store.done_jobs() == {(split.dataset, "logreg", "optuna", None, 0, None, None),
                                 (split.dataset, "logreg", "optuna", None, 0, None, 4)}


def test_a_row_is_handed_to_its_consumer_once_written_and_records_no_password(tmp_path: Path,
                                                                              tiny_idx: Path) -> None:
    """The MLflow log consumes rows: it is told each row after the store holds it, as written; a
    password in a URL (--mlflow, --storage) reaches neither the row's command nor its settings."""
    config = build_config({"datasets": f"idx:{tiny_idx}", "out": tmp_path / "run",
                           "cache_dir": tmp_path / "cache", "storage": "postgresql://ann:s3cr3t@db/optuna"})
    split = load_split(config.datasets[0], cache_dir=config.cache_dir)
    config.run_dir.mkdir(parents=True)
    store = ResultsStore(config.run_dir)
    told = []

    def consumer(cells: dict) -> None:
        told.append((cells, load_results(store.path)))  # what the store holds when it is told

    recorder = Recorder(config, "digitbench run --mlflow http://ann:s3cr3t@host:5000 --storage "
                        "postgresql://ann:s3cr3t@db/optuna", store, {}, consumer)
    job = Job(dataset=split.dataset, model="logreg", tuner="none", kind=Kind.FINAL, trial=None, seed=0,
              params={})
    recorder.record(split, registry.get("logreg"), job, TaskResult("ok", {"test_accuracy": 0.9}),
                    StudySummary(tuner="none"))
    [(cells, held)] = told
    assert len(held) == 1 and held.iloc[0]["run_id"] == cells["run_id"] == recorder.run_id
    assert cells["test_accuracy"] == 0.9 and cells["trial"] == "final"
    written = (config.run_dir / "results.csv").read_text()
    assert "s3cr3t" not in written and "ann:***@host:5000" in cells["command"]
    assert json.loads(cells["settings"])["storage"] == "postgresql://ann:***@db/optuna"
