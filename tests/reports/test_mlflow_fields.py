"""What a results row becomes in MLflow, on the rows of a real run folder (the fixture: trials,
finals, learning-curve subsets, --test-on, --corruptions, epoch curves): names MLflow takes, one
identity per row, the accuracy's interval around it, and every measurement as results.csv has it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import digitbench
from digitbench.benchmark.results import NUMBER_COLUMNS
from digitbench.reports import mlflow_fields as fields

FIXTURE = Path(__file__).parent / "fixtures" / "before-issue-35"
METRIC_NAME = re.compile(r"^[A-Za-z0-9_\-. :/]+$")  # what MLflow accepts


@pytest.fixture(scope="module")
def table():
    return digitbench.load_results(FIXTURE)


def test_every_row_has_its_own_identity_and_finals_their_own_names(table) -> None:
    identities = [fields.row_identity(row) for _, row in table.iterrows()]
    assert len(set(identities)) == len(table)
    finals = table[table["kind"] != "trial"]
    names = [fields.run_name(row) for _, row in finals.iterrows()]
    assert len(set(names)) == len(finals)
    subset = finals[finals["train_size"].notna()].iloc[0]
    assert fields.run_name(subset).endswith(f"n{int(subset['train_size'])}")


def test_metrics_are_the_rows_measurements_under_names_mlflow_takes(table) -> None:
    for _, row in table[table["kind"] != "trial"].iterrows():
        metrics = {name: (value, step) for name, value, step in fields.metrics(row)}
        assert all(METRIC_NAME.match(name) for name in metrics), sorted(metrics)
        for column in NUMBER_COLUMNS:
            if column not in fields.PARAM_NUMBERS and fields.finite(row[column]):
                assert metrics[column] == (row[column], 0)
        low, high = metrics["test_accuracy_low"][0], metrics["test_accuracy_high"][0]
        assert 0 <= low <= row["test_accuracy"] <= high <= 1
        for corruption, counts in (row["corrupt_test"] or {}).items():
            assert metrics[f"corrupt_test/{corruption}/accuracy"][0] == counts["correct"] / counts["n_test"]
        for spec in row["cross_test"] or {}:
            assert metrics[f"cross_test/{fields.metric_name(spec)}/accuracy"]
        if row["calibration"]:
            assert metrics["calibration/clean/ece"][0] == row["calibration"]["clean"]["ece"]
        for curve, values in (row["history"] or {}).items():
            steps = [(step, value) for name, value, step in fields.metrics(row) if name == f"history/{curve}"]
            assert steps == list(enumerate(values, start=1))


def test_params_are_the_models_and_the_jobs_and_tags_say_where(table) -> None:
    row = table[table["kind"] == "final"].iloc[0]
    params = fields.params(row)
    assert {k: params[k] for k in row["params"]} == {k: str(v) for k, v in row["params"].items()}
    assert params["dataset"] == row["dataset"] and params["seed"] == str(row["seed"])
    assert params["n_train"] == str(int(row["n_train"]))
    tags = fields.tags(row)
    assert tags[fields.ROW_TAG] == fields.row_identity(row)
    assert tags["digitbench.cpu"] == row["machine"]["cpu"] and "None" not in tags.values()
    parent = fields.run_tags(table.iloc[0], str(FIXTURE))
    assert parent[fields.FOLDER_TAG] == table.iloc[0]["run_id"]
    settings = fields.run_params(table.iloc[0]).values()
    assert settings and all(isinstance(v, str) and len(v) <= fields.PARAM_MAX for v in settings)
