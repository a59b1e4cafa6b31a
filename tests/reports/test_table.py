"""The typed results table: results.csv read once, numbers, trials, seeds and JSON in their types."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_report import _row

from digitbench.benchmark.results import load_table, typed
from digitbench.benchmark.store import ResultsStore
from digitbench.common.errors import InputError
from digitbench.reports.table import trial_labels


def _two_rows(run_dir: Path) -> ResultsStore:
    """A tuning trial (no test accuracy, no history) and a final with a history."""
    store = ResultsStore(run_dir)
    store.append(_row(store, "mnist-5k", "logreg", "baseline", 0, 0, 1.0, tuner="optuna", trial=3,
                      test_accuracy=None, predictions=None))
    store.append(_row(store, "mnist-5k", "logreg", "baseline", 2, 5, 1.5, tuner="optuna",
                      history=json.dumps({"accuracy": [0.5, 0.9]})))
    return store


def test_columns_have_their_types(tmp_path: Path) -> None:
    _two_rows(tmp_path)
    frame = load_table(tmp_path)
    assert list(frame["kind"]) == ["trial", "final"]
    assert frame["trial"].dtype == "Int64" and frame["trial"].iloc[0] == 3
    assert frame["trial"].isna().tolist() == [False, True]
    assert frame["seed"].dtype == "Int64" and list(frame["seed"]) == [0, 2]
    assert frame["test_accuracy"].dtype == float and pd.isna(frame["test_accuracy"].iloc[0])
    assert frame["test_accuracy"].iloc[1] == 0.95 and frame["n_test"].iloc[1] == 100.0
    assert frame["params"].iloc[0] == {"C": 1.0}
    assert frame["history"].iloc[0] is None and frame["history"].iloc[1] == {"accuracy": [0.5, 0.9]}
    assert list(trial_labels(frame)) == ["3", "final"]
    again = typed(frame)
    assert again.drop(columns="params").equals(frame.drop(columns="params"))
    assert list(again["params"]) == list(frame["params"])


def test_a_cell_that_is_not_json_names_file_line_and_column(tmp_path: Path) -> None:
    """A frame typed in memory (the store refuses such a file before: test_results.py) gets the
    same one-line error naming the file, line and column."""
    store = _two_rows(tmp_path)
    frame = store.load().astype(object)
    frame = pd.concat([frame, frame.iloc[[1]]], ignore_index=True)
    frame.loc[2, "tuning"] = str({"trials": 3})  # a Python dict repr, not JSON
    with pytest.raises(InputError) as caught:
        typed(frame, tmp_path / "results.csv")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'results.csv'}: line 4: column tuning: not JSON (")
    assert "\n" not in message
