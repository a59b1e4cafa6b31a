"""The corruptions and calibration sections from a fake run folder: the per-model table with mCE
against the reference model, the per-corruption table, the heat map, the gallery and the reliability
diagram; a model without probabilities is said to have none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from digitbench.benchmark.execution.calibration import calibration_scores
from digitbench.benchmark.store import ResultsStore, save_gallery
from digitbench.reports.markdown import write_report
from digitbench.reports.stats import accuracy_interval

N_TEST = 1000
NAMES = ("rotate", "fog")
#: (family, fit CPU-s, clean errors, errors under each corruption, has probabilities)
MODELS = {"lenet-relu": ("cnn", 100.0, 10, {"rotate": 50, "fog": 100}, True),
          "logreg": ("baseline", 1.0, 80, {"rotate": 250, "fog": 500}, True),
          "svm-rbf": ("baseline", 500.0, 20, {"rotate": 100, "fog": 400}, False)}  # the costliest


def _scores(errors: int, confidence: float) -> dict:
    labels = np.arange(N_TEST) % 10
    p = np.full((N_TEST, 10), (1 - confidence) / 9)
    predicted = labels.copy()
    predicted[:errors] = (labels[:errors] + 1) % 10
    p[np.arange(N_TEST), predicted] = confidence
    return calibration_scores(p, labels)


def _row(model: str, seed: int) -> dict:
    family, cpu, clean, corrupted, scored = MODELS[model]
    calibration = None
    if scored:
        calibration = {"method": "the model's own probabilities", "clean": _scores(clean, 0.99),
                       **{n: _scores(e + seed, 0.99) for n, e in corrupted.items()}}
    return {"run_id": "r", "dataset": "mnist-5k", "test_split": "hold-out", "n_train": 4000, "n_val": 0,
            "n_test": N_TEST, "model": model, "family": family, "tuner": "none", "trial": "final",
            "seed": seed, "params": "{}", "tuning": json.dumps({"tuner": "none"}),
            "test_accuracy": 1 - clean / N_TEST, "fit_cpu_s": cpu, "status": "ok",
            "corrupt_test": json.dumps({n: {"n_test": N_TEST, "correct": N_TEST - e - seed, "seed": 0}
                                        for n, e in corrupted.items()}),
            "calibration": json.dumps(calibration) if calibration else None,
            "machine": json.dumps({"cpu": "Test CPU", "cores": 2}), "threads": 1}


@pytest.fixture()
def report(tmp_path: Path) -> tuple[Path, str]:
    store = ResultsStore(tmp_path)
    for model in MODELS:
        for seed in (0, 1):
            store.append(_row(model, seed))
    digits = np.zeros((10, 28, 28), np.uint8)
    save_gallery(tmp_path, "mnist-5k", {"clean": digits, **{n: digits + 9 for n in NAMES}}, np.arange(10))
    text = write_report(tmp_path).read_text()
    return tmp_path, text[text.index("### Under corruption"):]


def test_the_table_gives_clean_mean_drop_worst_and_mce_against_the_first_baseline(report) -> None:
    run_dir, section = report
    assert "divided by `logreg`'s" in section, "the first model outside the most accurate one's family"
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in section.split("### Calibration")[0].splitlines() if line.startswith("| `")}
    cnn = rows["`lenet-relu`"]
    # seeds 0, 1: rotate 95.00%/94.90%, fog 90.00%/89.90% -> mean 92.45%, clean 99.00%
    low, high = accuracy_interval(round(0.9245 * 2 * N_TEST), 2 * N_TEST)  # Wilson over both corruptions
    assert cnn[1] == "99.00%" and cnn[2] == f"92.45% [{100 * low:.2f}–{100 * high:.2f}]" and cnn[3] == "-6.55"
    assert cnn[4] == "fog (89.95%)"
    # mCE: (5.05 / 25.05 + 10.05 / 50.05) / 2
    assert float(cnn[5]) == pytest.approx((5.05 / 25.05 + 10.05 / 50.05) / 2, abs=0.005)
    assert rows["`logreg`"][5] == "1.00"
    table = [line for line in section.splitlines() if line.startswith("| rotate")]
    assert table == ["| rotate     | 94.95%       | 74.95%   | 89.95%    |"]


def test_the_figures_are_written(report) -> None:
    run_dir, section = report
    for name in ("mnist-5k-corruptions.png", "mnist-5k-corruption-gallery.png", "mnist-5k-reliability.png"):
        assert f"(figures/{name})" in section
        assert (run_dir / "figures" / name).read_bytes().startswith(b"\x89PNG")
    assert "Reliability diagram of lenet-relu" in section, "of the most accurate model with probabilities"


def test_calibration_is_given_clean_and_corrupted_and_absent_probabilities_said(report) -> None:
    _, section = report
    calibration = section.split("### Calibration")[1]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in calibration.splitlines() if line.startswith("| `")}
    assert rows["`svm-rbf`"][1] == "none: no probabilities"
    cnn = rows["`lenet-relu`"]
    assert float(cnn[2]) == pytest.approx(abs(0.99 - 0.99), abs=1e-3), "99% sure and 99% right"
    # under rotate 5% (+seed) wrong, fog 10% wrong, always 99% sure: ECE = 0.99 - accuracy
    assert float(cnn[5]) == pytest.approx(np.mean([0.99 - 0.95, 0.99 - 0.949, 0.99 - 0.90, 0.99 - 0.899]),
                                          abs=1e-3)


def test_a_run_without_corruptions_has_no_such_section(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    row = _row("logreg", 0)
    store.append({**row, "corrupt_test": None, "calibration": None})
    assert "Under corruption" not in write_report(tmp_path).read_text()
