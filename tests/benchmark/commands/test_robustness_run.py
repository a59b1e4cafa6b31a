"""``--corruptions`` end to end on real digits: every final tested under the corruptions asked for,
its calibration measured (the SVM Platt-scaled on the validation part it did not train on), the
corrupted test sets cached, the report's sections written, and ``--resume`` redoing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from digitbench.benchmark.commands.main import main


def test_corruptions_run_end_to_end_and_resume_redoes_nothing(tmp_path: Path, tiny_idx: Path,
                                                              capsys) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    args = ["run", "--dataset", f"idx:{tiny_idx}", "--models", "logreg,linear-svm,lenet-relu",
            "--epochs", "2", "--corruptions", "rotate,shot_noise", "--out", str(out),
            "--cache-dir", str(cache), "--no-onnx"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "test images: shot_noise (1/2" in err and "rotate (2/2" in err, "in MNIST-C order, made once"
    results = pd.read_csv(out / "results.csv").set_index("model")
    for model in ("logreg", "linear-svm", "lenet-relu"):
        tested = json.loads(results.loc[model, "corrupt_test"])
        assert set(tested) == {"rotate", "shot_noise"} and tested["rotate"]["n_test"] == 200
        assert 0 <= tested["rotate"]["correct"] <= 200
        calibration = json.loads(results.loc[model, "calibration"])
        assert set(calibration) == {"method", "clean", "rotate", "shot_noise"}
        assert 0 <= calibration["clean"]["ece"] <= 1 and sum(calibration["rotate"]["bins"]["count"]) == 200
    assert json.loads(results.loc["linear-svm", "calibration"])["method"].startswith("Platt scaling")
    assert results.loc["linear-svm", "n_train"] < results.loc["logreg", "n_train"], \
        "the SVM keeps the validation part out of its training, for Platt scaling"
    report = (out / "report.md").read_text()
    assert "### Under corruption (MNIST-C)" in report and "### Calibration" in report
    assert any(p.name.endswith("corruption-gallery.png") for p in (out / "figures").iterdir())
    rows = len(results)
    assert main([*args, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "test images:" not in err, "read back from the cache"
    assert len(pd.read_csv(out / "results.csv")) == rows, "nothing redone"
