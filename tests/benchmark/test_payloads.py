"""The JSON columns' shapes (benchmark/payloads.py): declared once, checked whenever a results file
is read, and kept by the writers: a run that tests on another dataset and under a corruption writes
payloads of exactly those shapes, so a writer that makes another shape fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import digitbench
from digitbench.benchmark.payloads import StudySummary, Tally, fits, study_summary, tallies
from digitbench.benchmark.store import COLUMNS, JSON_COLUMNS, ResultsStore, Status, check_rows
from digitbench.common.errors import InputError

SCORES = {"n": 200, "ece": 0.1, "nll": 0.5, "brier": 0.2,
          "bins": {"count": [0, 3], "confidence": [None, 0.5], "accuracy": [None, 0.4]}}


@pytest.mark.parametrize(("column", "value", "fitting"), [
    ("cross_test", {"idx:x": {"n_test": 200, "correct": 150, "preparation": "28x28 as read"}}, True),
    ("cross_test", {"idx:x": {"n_test": 200, "correct": 250}}, False),       # more right than tested
    ("cross_test", {"idx:x": {"n_test": 200}}, False),                       # no count of the right
    ("corrupt_test", {"fog": {"n_test": 200, "correct": 93, "seed": 0}}, True),
    ("corrupt_test", {"fog": {"n_test": 200, "correct": 93, "sed": 0}}, False),  # a misspelt key
    ("calibration", {"method": None, "clean": SCORES, "fog": SCORES}, True),
    ("calibration", {"clean": SCORES}, False),                               # no method
    ("calibration", {"method": "Platt", "clean": {**SCORES, "ece": "low"}}, False),
    ("history", {"val_accuracy": [0.5, 0.6, None]}, True),
    ("history", {"val_accuracy": 0.6}, False),
    ("params", {"C": 1.0}, True),
    ("params", [1, 2], False),
    ("tuning", None, True),
    ("tuning", {"tuner": "optuna", "trials": 20, "budget_cpu_s": None, "scored_images": 600}, True),
    ("tuning", {"tuner": "none", "defaults_refit_for": ["optuna"]}, True),
    ("tuning", {"tuner": "optuna", "val_images": 120}, True),               # written before scored_images
    ("tuning", {"tuner": "optuna", "chosen_trail": 3}, False),              # a misspelt key
    ("tuning", {"tuner": "optuna", "trials": "20"}, False),                 # a number as text
    ("tuning", {"tuner": "optuna", "trials": True}, False),
    ("tuning", {"tuner": "none", "defaults_refit_for": [1]}, False),
])
def test_each_json_column_has_one_shape(column: str, value: object, fitting: bool) -> None:
    assert column in JSON_COLUMNS and fits(column, value) is fitting


def test_a_cell_of_the_wrong_shape_is_refused_with_its_line_and_column(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    bad = json.dumps({"fog": {"n_test": 200, "correct": 93, "sed": 0}})
    store.append({"dataset": "d", "model": "m", "family": "f", "tuner": "none", "trial": "final",
                  "seed": 0, "status": Status.OK, "corrupt_test": bad})
    with pytest.raises(InputError, match=r"line 2, column corrupt_test: .* is not JSON of the shape "
                                          r"\{corruption: \{n_test, correct, seed\}\}"):
        check_rows(store.path, store.path.read_text())


def test_a_run_writes_every_payload_in_its_shape(tiny_idx: Path, tmp_path: Path) -> None:
    run_dir = digitbench.run(dataset=f"idx:{tiny_idx}", models="logreg", tuner="none", onnx=False,
                             test_on=f"idx:{tiny_idx}", corruptions="rotate", out=tmp_path / "run")
    text = (run_dir / "results.csv").read_text()
    check_rows(run_dir / "results.csv", text)  # every cell, payloads included, has its shape
    [final] = digitbench.load_results(run_dir, kind="final").to_dict("records")
    assert set(tallies(final["cross_test"])) == {f"idx:{tiny_idx}"}
    rotate = tallies(final["corrupt_test"])["rotate"]
    assert isinstance(rotate, Tally) and rotate.n_test == 200 and 0 <= rotate.correct <= 200
    assert set(final["calibration"]) == {"method", "clean", "rotate"}
    assert all(c in COLUMNS for c in ("cross_test", "corrupt_test", "calibration"))


def test_a_study_summary_of_any_version_reads_back_and_writes_only_what_is_set() -> None:
    old = {"tuner": "optuna", "trials": 3, "val_images": 120, "first_trial": "defaults", "chosen_trial": 0}
    summary = study_summary(old)
    assert summary.images_scored == 120, "before scored_images, the validation part scored the trials"
    assert summary.kept_defaults and summary.from_defaults
    assert summary.as_json() == old and study_summary(None) == StudySummary()
    new = StudySummary(tuner="optuna", val_images=120, scored_images=600, defaults_refit_for=("a",))
    assert new.images_scored == 600 and not new.kept_defaults
    assert StudySummary.from_json(new.as_json()) == new and new.as_json()["defaults_refit_for"] == ["a"]
    with pytest.raises(TypeError):  # a writer that misspells a key fails where it writes it
        StudySummary(tuner="optuna", chosen_trail=3)
