"""The code the docs show runs as the docs say: docs/examples/three_lines.py (docs/python-api.md)
and the plug-in docs/examples/nearest_centroid.py (docs/plugins.md), each in a child process, as a
reader would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

import digitbench

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
PLUGIN = "docs/examples/nearest_centroid.py:NearestCentroid"  # as docs/plugins.md writes it
DIGITBENCH = [sys.executable, "-m", "digitbench"]  # the `digitbench` command of this environment


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=600)


def test_three_lines_runs_and_prints_the_finals(tmp_path: Path) -> None:
    out = tmp_path / "three-lines"
    done = run([sys.executable, str(EXAMPLES / "three_lines.py")], tmp_path,
               DIGITBENCH_EXAMPLE_OUT=str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    header, *rows = done.stdout.strip().splitlines()
    assert header.split() == ["dataset", "model", "seed", "test_accuracy", "fit_cpu_s"]
    assert rows and all(row.split()[:2] == ["mnist-5k", "logreg"] for row in rows)

    finals = digitbench.load_results(out, kind="final")
    assert isinstance(finals, pd.DataFrame) and len(finals) >= 1
    assert set(finals["model"]) == {"logreg"} and set(finals["status"]) == {"ok"}
    assert (finals["test_accuracy"] > 0.8).all()
    assert (out / "report.md").is_file()


def test_nearest_centroid_plugin_runs_from_its_file(tmp_path: Path, tiny_idx: Path) -> None:
    out = tmp_path / "plugin"
    done = run([*DIGITBENCH, "run", "--model-path", PLUGIN, "--models", "nearest-centroid",
                "--dataset", f"idx:{tiny_idx}", "--tuner", "none,optuna", "--trials", "3",
                "--no-onnx", "--out", str(out)], ROOT)
    assert done.returncode == 0, done.stderr[-3000:]

    rows = pd.read_csv(out / "results.csv")
    assert set(rows["model"]) == {"nearest-centroid"}
    assert set(rows["family"]) == {"baseline"}
    assert rows["model_class"].str.endswith("nearest_centroid:NearestCentroid").all()
    trials = rows[rows["trial"] != "final"]
    assert len(trials) == 3 and trials["params"].str.contains('"shrink"').all()  # its search space
    finals = rows[rows["trial"] == "final"]
    assert set(finals["tuner"]) == {"none", "optuna"} and set(finals["status"]) == {"ok"}
    assert (finals["test_accuracy"] > 0.6).all()  # about 80% on real digits; chance is 10%


def test_a_plugin_written_for_digitbench_0_1_is_told_its_new_import(tmp_path: Path) -> None:
    """docs/plugins.md: a plug-in that imports ``models.base`` gets one line naming the new import."""
    old = (EXAMPLES / "nearest_centroid.py").read_text().replace(
        "from digitbench import DigitModel, Digits", "from models.base import DigitModel, Digits")
    (tmp_path / "old_centroid.py").write_text(old)
    done = run([*DIGITBENCH, "run", "--model-path", "old_centroid.py:NearestCentroid", "--models",
                "nearest-centroid", "--out", str(tmp_path / "run")], tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "from digitbench import DigitModel" in done.stderr
    assert not (tmp_path / "run").exists()
