"""The append-only results file: header, flushed rows, torn lines, done jobs, predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.errors import InputError
from benchmark.results import COLUMNS, ResultsStore, load_predictions

ROW = {"dataset": "mnist-5k", "model": "logreg", "tuner": "none", "trial": "final", "seed": 0,
       "status": "ok", "test_accuracy": 0.9, "params": '{"C": 0.1}', "error": None}


def test_rows_append_under_one_header_and_read_back_with_pandas(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "run")
    store.append(ROW)
    store.append({**ROW, "seed": 1, "status": "error", "error": "ValueError: boom, really"})
    frame = pd.read_csv(store.path)
    assert list(frame.columns) == list(COLUMNS)
    assert frame["seed"].tolist() == [0, 1]
    assert frame["error"].iloc[1] == "ValueError: boom, really"
    assert frame["params"].iloc[0] == '{"C": 0.1}'
    assert store.done_jobs() == {("mnist-5k", "logreg", "none", "final", "0")}


def test_unknown_columns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown result columns"):
        ResultsStore(tmp_path).append({**ROW, "accuracy": 1})


def test_repair_cuts_a_torn_last_line(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.append(ROW)
    with open(store.path, "a") as f:
        f.write("abc123,2026-01-01,mnist-5k,hold")  # killed mid-write
    store.repair()
    assert len(store.load()) == 1
    store.append({**ROW, "seed": 1})
    assert store.load()["seed"].tolist() == ["0", "1"]


def test_a_foreign_header_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "results.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(InputError, match="row 1: header does not match"):
        ResultsStore(tmp_path).repair()


def test_predictions_round_trip(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    rel = store.save_predictions("mnist-5k__logreg", np.array([1, 2, 3]), np.array([1, 2, 4]))
    assert rel == "predictions/mnist-5k__logreg.npz"
    y_true, y_pred = load_predictions(tmp_path, rel)
    assert y_true.tolist() == [1, 2, 3] and y_pred.tolist() == [1, 2, 4]
    assert not list((tmp_path / "predictions").glob("*.tmp*"))
