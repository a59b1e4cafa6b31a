"""The CLI end to end: real digits through every built-in model into results, report and figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from digitbench.benchmark.commands.main import main
from digitbench.benchmark.store import COLUMNS

BUILTINS = ["logreg", "linear-svm", "svm-rbf", "lenet-relu", "lenet-tanh"]


def run_cli(*args: str | Path, cache: Path) -> int:
    return main(["run", *map(str, args), "--cache-dir", str(cache), "--threads", "2"])


def test_every_builtin_runs_end_to_end(tmp_path: Path, tiny_idx: Path) -> None:
    out = tmp_path / "run"
    code = run_cli("--dataset", f"idx:{tiny_idx}", "--epochs", "3", "--out", out,
                   cache=tmp_path / "cache")
    assert code == 0
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == list(COLUMNS)
    assert sorted(results["model"]) == sorted(BUILTINS)
    assert (results["status"] == "ok").all() and (results["trial"] == "final").all()
    assert (results["n_train"] == 600).all() and (results["n_test"] == 200).all()
    assert results["test_accuracy"].between(0.5, 1.0).all()
    for column in ("fit_cpu_s", "fit_wall_s", "predict_cpu_s", "latency_ms_b1", "latency_ms_bN"):
        assert (results[column] > 0).all(), column
    assert (results["threads"] == 2).all() and (results["batch_N"] == 200).all()
    cnn = results[results["family"] == "cnn"]
    assert (cnn["n_params"] > 0).all() and results.loc[results["family"] != "cnn", "n_params"].isna().all()
    assert results["command"].iloc[0].startswith(f"digitbench run --dataset idx:{tiny_idx} --epochs 3")
    history = json.loads(results.loc[results["model"] == "lenet-relu", "history"].iloc[0])
    assert len(history["accuracy"]) == len(history["loss"]) == 3, "one value per epoch"
    assert results.loc[results["family"] != "cnn", "history"].isna().all()
    params = json.loads(results.loc[results["model"] == "lenet-tanh", "params"].iloc[0])
    assert params["activation"] == "tanh" and params["epochs"] == 3
    assert "tensorflow-cpu" in json.loads(results["versions"].iloc[0]) or "tensorflow" in json.loads(
        results["versions"].iloc[0])
    assert json.loads(results["machine"].iloc[0])["cores"] >= 1
    for rel in results["predictions"]:
        assert (out / rel).exists()
    report = (out / "report.md").read_text()
    assert "lenet-relu" in report and "official test set" in report
    assert "Final models trained on 600 images and tested once on 200" in report
    assert list(out.glob("*.png")), "the confusion-matrix figure"


def test_a_seed_invariant_model_runs_one_final_and_the_report_says_why(tmp_path: Path,
                                                                      tiny_idx: Path) -> None:
    out = tmp_path / "run"
    code = run_cli("--dataset", f"idx:{tiny_idx}", "--models", "svm-rbf,linear-svm", "--seeds", "3",
                   "--out", out, cache=tmp_path / "cache")
    assert code == 0
    results = pd.read_csv(out / "results.csv", dtype={"seed": str})
    seeds = results.groupby("model")["seed"].apply(sorted).to_dict()
    assert seeds == {"svm-rbf": ["0"], "linear-svm": ["0", "1", "2"]}
    report = (out / "report.md").read_text()
    assert "`svm-rbf`: the fit does not depend on the seed" in report
    assert "stands for all 3 seeds" in report and "`linear-svm`: the fit" not in report


def test_resume_skips_finished_jobs_and_refuses_to_clobber(tmp_path: Path, tiny_idx: Path,
                                                           plugin_path: Path) -> None:
    args = ["--dataset", f"idx:{tiny_idx}", "--model-path", "tinyplugin:NearestCentroid",
            "--models", "nearest-centroid", "--out", tmp_path / "run"]
    assert run_cli(*args, "--seeds", "2", cache=tmp_path / "cache") == 0
    assert run_cli(*args, "--seeds", "2", cache=tmp_path / "cache") == 2  # exists: no --resume
    assert run_cli(*args, "--seeds", "3", "--resume", cache=tmp_path / "cache") == 0
    results = pd.read_csv(tmp_path / "run" / "results.csv")
    assert sorted(results["seed"]) == [0, 1, 2]
    assert results["run_id"].nunique() == 2
    assert run_cli(*args, "--seeds", "1", "--overwrite", cache=tmp_path / "cache") == 0
    assert pd.read_csv(tmp_path / "run" / "results.csv")["seed"].tolist() == [0]


def test_an_entry_point_plugin_runs_through_the_pipeline(
    tmp_path: Path, tiny_idx: Path, entry_point_site
) -> None:
    entry_point_site("centroid-ep", "tinyplugin:NearestCentroid")
    assert run_cli("--dataset", f"idx:{tiny_idx}", "--models", "centroid-ep",
                   "--out", tmp_path / "run", cache=tmp_path / "cache") == 0
    row = pd.read_csv(tmp_path / "run" / "results.csv").iloc[0]
    assert row["model"] == "centroid-ep" and row["family"] == "plug-in"
    assert row["status"] == "ok" and row["test_accuracy"] > 0.6


def test_a_failing_model_is_an_error_row_and_the_run_goes_on(
    tmp_path: Path, tiny_idx: Path, plugin_path: Path
) -> None:
    out = tmp_path / "run"
    code = run_cli("--dataset", f"idx:{tiny_idx}", "--model-path", "tinyplugin:BrokenModel",
                   "--models", "broken,logreg", "--out", out, cache=tmp_path / "cache")
    assert code == 1
    results = pd.read_csv(out / "results.csv").set_index("model")
    assert results.loc["logreg", "status"] == "ok"
    assert results.loc["broken", "status"] == "error"
    assert "expected labels 0..9" in results.loc["broken", "error"]
    assert "Traceback" in (out / "errors.log").read_text()
    assert "expected labels 0..9" in (out / "report.md").read_text()


def test_warnings_of_a_job_are_recorded_in_one_line(
    tmp_path: Path, tiny_idx: Path, plugin_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert run_cli("--dataset", f"idx:{tiny_idx}", "--model-path", "tinyplugin:WarningCentroid",
                   "--models", "warning-centroid", "--out", out, cache=tmp_path / "cache") == 0
    row = pd.read_csv(out / "results.csv").iloc[0]
    assert row["status"] == "ok" and row["warnings"] == "RuntimeWarning: did not converge"
    assert "warning: RuntimeWarning: did not converge" in capsys.readouterr().err
    report = (out / "report.md").read_text()
    assert "## Warnings" in report and "RuntimeWarning: did not converge" in report


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "mnist-7k"], "unknown dataset"),
        (["--models", "lenet-sigmoid"], "unknown model 'lenet-sigmoid'"),
        (["--seeds", "-1"], "--seeds: expected a whole number"),
        (["--dataset", "idx:/no/such/folder"], "/no/such/folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    out = tmp_path / "run"
    assert run_cli(*args, "--out", out, cache=tmp_path / "cache") == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_every_command_prints_its_help(capsys: pytest.CaptureFixture) -> None:
    """Each command's --help formats (argparse expands % in help texts: a bare one crashed it)."""
    from digitbench.benchmark.commands.main import build_parser
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert "run" in commands
    for command in commands:
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0, command
        assert f"usage: digitbench {command}" in capsys.readouterr().out, command


def test_help_is_instant_and_does_not_import_tensorflow() -> None:
    code = "import sys; from digitbench.benchmark.commands.main import main\n" \
           "try: main(['--help'])\nexcept SystemExit: pass\n" \
           "assert 'tensorflow' not in sys.modules and 'sklearn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
