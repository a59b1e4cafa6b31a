"""``digitbench report RUN_A RUN_B``: two runs side by side, with paired tests on the same images."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_report import PNG_MAGIC, _row

from digitbench.benchmark.commands.main import main
from digitbench.benchmark.store import ResultsStore
from digitbench.common.errors import InputError
from digitbench.reports.side_by_side import COMPARISON_FILE, default_out, write_comparison
from digitbench.reports.stats import accuracy_interval


def make_backend_run(run_dir: Path, backend: str, plan: dict[str, tuple[list[int], float]]) -> Path:
    """Final rows of mnist-5k models: ``plan[model] = (errors per seed, fit CPU-s)``."""
    store = ResultsStore(run_dir)
    settings = json.dumps({"started": "2025-01-01T00:00:00+00:00", "backend": backend})
    version = "2.21.0" if backend == "tensorflow" else "2.13.0"
    for model, (errors, cpu) in plan.items():
        family = "cnn" if model.startswith("lenet") else "baseline"
        for seed, err in enumerate(errors):
            store.append(_row(store, "mnist-5k", model, family, seed, err, cpu, settings=settings,
                              process_cpu_s=100.0,
                              versions=json.dumps({"python": "3.11.7", "keras": "3.15.1",
                                                   backend: version})))
    return run_dir


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    tf = make_backend_run(tmp_path / "tf", "tensorflow", {"lenet-relu": ([3, 1], 120.0),
                                                          "logreg": ([10, 8], 1.0)})
    torch = make_backend_run(tmp_path / "torch", "torch", {"lenet-relu": ([13, 9], 60.0),
                                                           "svm-rbf": ([5], 10.0)})
    return tf, torch


def test_side_by_side_table_and_paired_test(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    path = write_comparison(list(two_runs), tmp_path / "cmp")
    text = re.sub(" +", " ", path.read_text(encoding="utf-8"))    # table padding aside
    assert path == tmp_path / "cmp" / COMPARISON_FILE
    assert "| Keras backend | tensorflow | torch" in text
    # versions that differ are listed, the rest not
    assert "| torch | — | 2.13.0 |" in text and "| tensorflow | 2.21.0 | — |" in text
    assert "| keras " not in text and "| CPU-s | 100 | 100 |" in text
    table = {ln.split("|")[1].strip(): ln for ln in text.splitlines() if ln.startswith("| lenet-relu")
             or ln.startswith("| logreg") or ln.startswith("| svm-rbf")}
    # lenet-relu: tf 97%, 99% -> 98.00% within the Wilson interval of 98/100; torch 87%, 91% -> 89.00%,
    # Wilson of 89/100 (81.37-93.75) wider than the seeds; 60/120 CPU
    relu = table["lenet-relu"]
    low, high = accuracy_interval(98, 100)
    assert f"98.00% [{100 * low:.2f}–{100 * high:.2f}]" in relu and "89.00% [81.37–93.75]" in relu
    assert "-9.00" in relu and "0.50x" in relu
    assert "91.00% [" in table["logreg"] and table["logreg"].rstrip().endswith("— |")
    assert "95.00%" in table["svm-rbf"]
    # seed 0: tf misses images 0-2, torch 0-12 -> b = 0 (only torch right), c = 10; p = 2 / 2^10
    # Wald se = sqrt(10 - 100/100) / 100 = 0.03, half-width 0.0588
    assert ("- lenet-relu (none), seed 0: torch − tf = -10.00 points (95% CI -15.88 to -4.12), "
            "McNemar exact p = 0.00195 (b = 0 images only torch got right, c = 10 only tf, n = 100): "
            "significant at 5%.") in text
    assert "![Runs side by side on mnist-5k](runs-mnist-5k.png)" in text
    assert (tmp_path / "cmp" / "runs-mnist-5k.png").read_bytes()[:8] == PNG_MAGIC


def test_cli_writes_both_reports_and_the_comparison(two_runs: tuple[Path, Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", *map(str, two_runs)]) == 0
    out = default_out(list(two_runs))
    assert out.name == "compare-tf-vs-torch" and out.parent == two_runs[0].parent
    assert (out / COMPARISON_FILE).exists()
    assert all((run / "report.md").exists() for run in two_runs)
    assert capsys.readouterr().out.splitlines()[-1] == str(out / COMPARISON_FILE)


def test_cli_refuses_bad_combinations(two_runs: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(two_runs[0]), "--out", str(tmp_path / "x")]) == 2
    assert "--out is for comparing two or more" in capsys.readouterr().err
    with pytest.raises(InputError, match="the same RUN_DIR is given twice"):
        write_comparison([two_runs[0], two_runs[0]], tmp_path / "y")
    assert main(["report", str(two_runs[0]), str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()
