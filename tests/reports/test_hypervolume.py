"""The hypervolume of two-objective studies: the sweep against a brute-force area (inclusion and
exclusion over the rectangles the points dominate) on hand-made points, and the report of a
two-objective run (its figure, each study's curve ending at its trials' hypervolume), while a
single-objective run's report has no such section."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from digitbench.benchmark.commands.main import main
from digitbench.benchmark.results import load_table
from digitbench.reports.hypervolume import _hypervolumes, hypervolume
from digitbench.reports.section import RunScope


def brute_force(points: list[tuple[float, float]], reference: float) -> float:
    """The area of the union of the rectangles [cost, reference] x [0, accuracy], by inclusion and
    exclusion: each subset's intersection is [its highest cost, reference] x [0, its lowest accuracy]."""
    area = 0.0
    for size in range(1, len(points) + 1):
        for subset in itertools.combinations(points, size):
            width = max(0.0, reference - max(c for _, c in subset))
            area += (-1) ** (size + 1) * width * min(a for a, _ in subset)
    return area


@pytest.mark.parametrize(("points", "reference", "expected"), [
    ([], 10.0, 0.0),
    ([(0.9, 2.0)], 10.0, 0.9 * 8.0),
    ([(0.9, 2.0), (0.8, 3.0)], 10.0, 0.9 * 8.0),             # the second point is dominated
    ([(0.5, 1.0), (0.9, 4.0)], 10.0, 0.5 * 3.0 + 0.9 * 6.0),
    ([(0.9, 12.0), (0.4, 10.0)], 10.0, 0.0),                 # at or beyond the reference cost
    ([(0.7, 2.0), (0.7, 2.0)], 4.0, 0.7 * 2.0),              # a duplicate counts once
])
def test_the_hypervolume_of_hand_made_points(points, reference, expected) -> None:
    assert hypervolume(points, reference) == pytest.approx(expected)
    assert brute_force(points, reference) == pytest.approx(expected)


def test_the_sweep_matches_the_brute_force_area_on_random_points() -> None:
    rng = np.random.default_rng(36)
    for _ in range(30):
        n = int(rng.integers(1, 8))
        points = [(float(a), float(c)) for a, c in zip(rng.uniform(0, 1, n), rng.uniform(0, 5, n),
                                                       strict=True)]
        reference = float(rng.uniform(2, 6))
        assert hypervolume(points, reference) == pytest.approx(brute_force(points, reference))


def run(tmp_path: Path, tiny_idx: Path, *args: str) -> Path:
    out = tmp_path / "run"
    assert main(["run", "--dataset", f"idx:{tiny_idx}", "--out", str(out), "--cache-dir",
                 str(tmp_path / "cache"), "--model-path", "tinyplugin:EpochModel", "--models",
                 "epoch-model", "--trials", "4", "--no-onnx", "--workers", "1", "--params",
                 '{"seconds_per_epoch": 0.0}', *args]) == 0
    return out


def test_a_two_objective_run_reports_its_hypervolume_curves(tmp_path: Path, tiny_idx: Path,
                                                            plugin_path: Path) -> None:
    out = run(tmp_path, tiny_idx, "--tuner", "optuna,random", "--objectives", "accuracy,fit-cpu")
    text = (out / "report.md").read_text()
    assert "### Hypervolume of the two-objective studies" in text
    figure = next(line for line in text.splitlines() if line.startswith("![Hypervolume"))
    assert (out / figure.split("(")[-1].rstrip(")")).is_file()
    frame = load_table(out)
    (scope,) = RunScope(frame, out).datasets
    found = _hypervolumes(scope)
    (panel,) = found.curves
    assert set(found.curves[panel]) == {"optuna", "random"}
    trials = frame[(frame["kind"] == "trial") & (frame["status"] == "ok")]
    reference = float(trials["fit_cpu_s"].max())
    assert found.references[panel][0] == pytest.approx(reference), "the worst cost of both tuners"
    for tuner, ((spent, shares),) in found.curves[panel].items():
        mine = trials[trials["tuner"] == tuner]
        points = list(zip(mine["val_accuracy"], mine["fit_cpu_s"], strict=True))
        assert shares[-1] == pytest.approx(hypervolume(points, reference) / reference)
        assert np.all(np.diff(shares[~np.isnan(shares)]) >= 0), "a hypervolume never falls"
        assert spent[-1] == pytest.approx(mine["fit_cpu_s"].sum() + mine["predict_cpu_s"].sum())
        assert not math.isnan(shares[-1])


def test_a_single_objective_run_has_no_hypervolume_section(tmp_path: Path, tiny_idx: Path,
                                                           plugin_path: Path) -> None:
    out = run(tmp_path, tiny_idx, "--tuner", "optuna")
    assert "Hypervolume" not in (out / "report.md").read_text()
    assert not list(out.glob("hypervolume-*.png"))
