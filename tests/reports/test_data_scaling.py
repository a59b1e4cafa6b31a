"""The learning-curves section from a fake run folder with --train-sizes finals: figures, the table of
exponents and extrapolation errors, crossovers with McNemar's test, and a non-monotone curve flagged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from digitbench.benchmark.store import ResultsStore
from digitbench.reports.markdown import write_report

N_TEST = 2000
SIZES = (250, 500, 1000, 2000, 4000, 8000)  # subsets; the whole part has 16,000 images
WHOLE = 16000


def cnn_error(n: float) -> float:
    return 20.0 * n ** -0.75 + 0.008  # worse than logreg up to 500 images, better from 1,000


def logreg_error(n: float) -> float:
    return 0.6 * n ** -0.3 + 0.06


def wobbly_error(n: float) -> float:  # rises sharply from 1,000 to 2,000 images
    return 0.2 if n == 2000 else 0.08


ERRORS = {"lenet-relu": ("cnn", cnn_error), "logreg": ("baseline", logreg_error),
          "linear-svm": ("baseline", wobbly_error)}


def _append(store: ResultsStore, model: str, seed: int, n: int) -> None:
    family, error = ERRORS[model]
    wrong = int(round(error(n) * N_TEST)) + seed  # seeds differ by one image
    y_true = np.tile(np.arange(10, dtype=np.uint8), N_TEST // 10)
    y_pred = y_true.copy()
    y_pred[:wrong] = (y_true[:wrong] + 1) % 10  # the same images wrong first: nested mistakes
    subset = n < WHOLE
    rel = store.save_predictions(f"d__{model}__none__final__seed{seed}" + (f"__n{n}" if subset else ""),
                                 y_true, y_pred)
    fit = (2e-3 * n) if family == "cnn" else (1e-7 * n ** 2 if model == "logreg" else 1e-4 * n)
    store.append({"run_id": "r", "dataset": "mnist-5k", "test_split": "hold-out", "n_train": n,
                  "n_val": 0, "n_test": N_TEST, "model": model, "family": family, "tuner": "none",
                  "trial": "final", "seed": seed, "train_size": n if subset else None,
                  "params": json.dumps({}), "tuning": json.dumps({"tuner": "none"}),
                  "test_accuracy": 1 - wrong / N_TEST, "fit_cpu_s": fit, "fit_wall_s": fit,
                  "predict_cpu_s": 0.1 * (1 + (n / 1000 if model == "logreg" else 0)),
                  "macs": 400_000 if family == "cnn" else 7840, "status": "ok", "predictions": rel,
                  "machine": json.dumps({"cpu": "Test CPU", "cores": 2}), "threads": 1})


@pytest.fixture()
def report(tmp_path: Path) -> tuple[Path, str]:
    store = ResultsStore(tmp_path)
    for model in ERRORS:
        for seed in (0, 1):
            for n in (*SIZES, WHOLE):
                _append(store, model, seed, n)
    path = write_report(tmp_path)
    text = path.read_text()
    start = text.index("### How accuracy and cost grow")
    return tmp_path, text[start:text.index("\n### ", start + 1)]


def test_the_section_has_both_figures_and_a_row_per_model(report: tuple[Path, str]) -> None:
    run_dir, section = report
    for name in ("mnist-5k-accuracy-vs-size.png", "mnist-5k-fit-cpu-vs-size.png"):
        assert f"(figures/{name})" in section
        assert (run_dir / "figures" / name).read_bytes().startswith(b"\x89PNG")
    assert "250, 500, 1,000, 2,000, 4,000, 8,000, 16,000 images" in section and "2 seed(s)" in section
    table = {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| `")}
    assert set(table) == {"`lenet-relu`", "`logreg`", "`linear-svm`"}
    cnn = [cell.strip() for cell in table["`lenet-relu`"].split("|")[1:-1]]
    assert cnn[1] == "250–16,000 (7)"
    b = float(cnn[3].split()[0])
    assert b == pytest.approx(0.75, abs=0.1), "the error exponent the curve was made with"
    assert cnn[6].startswith("1.00"), "fit CPU-s linear in n"
    logreg = [cell.strip() for cell in table["`logreg`"].split("|")[1:-1]]
    assert logreg[6].startswith("2.00"), "fit CPU-s quadratic in n"
    assert cnn[8].startswith("0.00"), "multiply-adds do not grow with n"
    assert abs(float(cnn[5].split()[0])) < 0.5, "an exact power law extrapolates within half a point"
    assert "160,000 images:" in cnn[9]


def test_crossovers_name_the_two_sizes_and_mcnemar_there(report: tuple[Path, str]) -> None:
    _, section = report
    crossing = next(n for n in (*SIZES, WHOLE) if cnn_error(n) < logreg_error(n))
    before = max(n for n in (*SIZES, WHOLE) if n < crossing)
    line = next(x for x in section.splitlines() if x.startswith("- `lenet-relu` overtakes `logreg`"))
    assert (before, crossing) == (500, 1000)
    assert f"between {before:,} and {crossing:,} images" in line
    assert f"at {crossing:,} images it is significantly more accurate" in line
    assert "seed 0:" in line and "seed 1:" in line


def test_a_curve_that_rises_is_flagged_not_smoothed(report: tuple[Path, str]) -> None:
    _, section = report
    assert "`linear-svm`: **not monotone**" in section and "1,000 → 2,000 images" in section
    assert "`lenet-relu`: **not monotone**" not in section and "`logreg`: **not monotone**" not in section


def test_a_run_without_train_sizes_has_no_such_section(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    _append(store, "logreg", 0, WHOLE)
    assert "How accuracy and cost grow" not in write_report(tmp_path).read_text()
