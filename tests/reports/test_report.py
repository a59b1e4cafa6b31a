"""report.md from a fake run folder: content, figures, regeneration, atomicity, statistics."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from digitbench.benchmark.store import ResultsStore
from digitbench.benchmark.store import dataset_slug as slugify
from digitbench.common.errors import InputError
from digitbench.reports import markdown, plots
from digitbench.reports.markdown import write_report
from digitbench.reports.stats import accuracy_interval, confusion_counts, mean_interval

CPU = "Intel(R) Xeon(R) CPU @ 2.20GHz"
SPLIT = "stratified 20% hold-out of the 5,000 labelled images (split seed 0)"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N_TEST = 100
#: What the rows of today's digitbench record of the built-in models' registry entries.
CLASSES = {"lenet-relu": ("digitbench.models.lenet:LeNet", {"activation": "relu"}),
           "lenet-tanh": ("digitbench.models.lenet:LeNet", {"activation": "tanh"}),
           "svm-rbf": ("digitbench.models.baselines:RBFSVMModel", {}),
           "logreg": ("digitbench.models.baselines:LogisticRegressionModel", {}),
           "linear-svm": ("digitbench.models.baselines:LinearSVMModel", {})}


def _predictions(errors: int) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.tile(np.arange(10, dtype=np.uint8), N_TEST // 10)
    y_pred = y_true.copy()
    y_pred[:errors] = (y_true[:errors] + 1) % 10
    return y_true, y_pred


def _row(store: ResultsStore, dataset: str, model: str, family: str, seed: int, errors: int,
         fit_cpu: float, run_id: str = "run-a", **extra: object) -> dict[str, object]:
    name = f"{slugify(dataset)}__{model}__none__{seed}"
    rel = store.save_predictions(name, *_predictions(errors))
    model_class, fixed = CLASSES.get(model, (None, None))
    row: dict[str, object] = {
        "run_id": run_id, "utc": f"2025-01-01T00:00:{seed:02d}+00:00", "dataset": dataset,
        "test_split": SPLIT, "n_train": 3200, "n_val": 800, "n_test": N_TEST,
        "model": model, "family": family, "model_class": model_class,
        "fixed": None if fixed is None else json.dumps(fixed), "tuner": "none", "trial": "final",
        "seed": seed,
        "params": json.dumps({"C": 1.0}), "val_accuracy": 0.9,
        "test_accuracy": (N_TEST - errors) / N_TEST, "fit_cpu_s": fit_cpu, "fit_wall_s": 2.0,
        "predict_cpu_s": 0.5, "predict_wall_s": 0.4, "latency_ms_b1": 0.8,
        "latency_ms_bN": 0.02, "batch_N": 1000, "threads": 2, "status": "ok",
        "predictions": rel,
        "versions": json.dumps({"python": "3.11.7", "numpy": "2.4.6", "keras": "3.15.1"}),
        "machine": json.dumps({"cpu": CPU, "cores": 2, "memory_gb": 23.4,
                               "platform": "Linux-6.1-x86_64", "python": "3.11.7"}),
        "git_rev": "abc1234", "command": f"digitbench run --out runs/x ({run_id})",
    }
    row.update(extra)
    return row


def make_run(run_dir: Path) -> Path:
    """Three models x two seeds on mnist-5k, one model on an idx folder, two error rows."""
    store = ResultsStore(run_dir)
    plan = [("lenet-relu", "cnn", [3, 1], [120.0, 140.0]),      # 97%, 99% -> 98.00%
            ("svm-rbf", "baseline", [5, 4], [10.0, 12.0]),      # 95%, 96% -> 95.50%
            ("logreg", "baseline", [10, 8], [1.0, 1.5])]        # 90%, 92% -> 91.00%
    for model, family, errors, cpus in plan:
        for seed, (err, cpu) in enumerate(zip(errors, cpus, strict=True)):
            extra = {"n_params": 431080} if family == "cnn" else {}
            if model == "svm-rbf" and seed == 1:   # failed first, succeeded on --resume
                failed = _row(store, "mnist-5k", model, family, seed, err, cpu, status="error",
                              error="ValueError: transient", test_accuracy=None, predictions=None)
                store.append(failed)
                extra["run_id"] = "run-b"
            store.append(_row(store, "mnist-5k", model, family, seed, err, cpu, **extra))
    store.append(_row(store, "mnist-5k", "lenet-tanh", "cnn", 0, 0, 0.0, status="error",
                      error="MemoryError: out of memory", test_accuracy=None, predictions=None))
    store.append(_row(store, "idx:/abs/dir", "logreg", "baseline", 0, 6, 1.0,
                      test_split="official test set"))
    return run_dir


def test_mean_interval_matches_hand_computation() -> None:
    ci = mean_interval([0.90, 0.92, 0.94])
    assert ci.n == 3
    assert ci.mean == pytest.approx(0.92)
    assert ci.half_width == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-6)
    assert ci.half_width == pytest.approx(0.049683, abs=1e-6)
    assert ci.low == pytest.approx(0.92 - 0.049683, abs=1e-6)
    single = mean_interval([0.97])
    assert single.half_width is None and single.low is None and single.mean == 0.97
    with pytest.raises(ValueError):
        mean_interval([])


def test_accuracy_interval_is_wilson_by_hand() -> None:
    z = 1.959963985
    for correct, n in ((90, 100), (981, 1000), (3, 3)):
        p = correct / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
        assert accuracy_interval(correct, n) == pytest.approx((centre - half, centre + half), abs=1e-9)
    assert accuracy_interval(90, 100) == pytest.approx((0.825634, 0.944771), abs=1e-6)
    with pytest.raises(ValueError):
        accuracy_interval(5, 4)


def test_confusion_counts_rows_are_true_labels() -> None:
    counts = confusion_counts(np.array([4, 4, 7]), np.array([9, 4, 7]))
    assert counts.shape == (10, 10) and counts.sum() == 3
    assert counts[4, 9] == 1 and counts[4, 4] == 1 and counts[7, 7] == 1
    with pytest.raises(ValueError):
        confusion_counts(np.array([10]), np.array([0]))


def test_slugify() -> None:
    assert slugify("mnist-5k") == "mnist-5k"
    assert slugify("idx:/abs/dir") == "idx-dir"
    assert slugify("kaggle:C:\\Data\\Digit Recognizer\\") == "kaggle-digit-recognizer"
    assert slugify(":::") == "dataset"


def test_report_content(tmp_path: Path) -> None:
    report = write_report(make_run(tmp_path))
    assert report == tmp_path / "report.md"
    text = report.read_text(encoding="utf-8")
    # machine and software
    assert "## Machine and software" in text
    assert CPU in text and "23.4 GB" in text and "| Threads used | 2" in text
    assert "| keras   | 3.15.1" in text and "abc1234" in text
    assert "`run-a`" in text and "`run-b`" in text and "digitbench run --out runs/x" in text
    # dataset facts
    assert "## Dataset `mnist-5k`" in text and "## Dataset `idx:/abs/dir`" in text
    assert "3,200 train, 800 validation, 100 test" in text
    assert f"Test set: {SPLIT}" in text and "Test set: official test set" in text
    # leaderboard: order, means, intervals, costs. Each pair of seeds lies inside the Wilson interval
    # of its mean over the 100 test images, so that is the interval (never the t interval of two
    # seeds, t(0.975, 1) = 12.7, which would say ± 12.71 points for 97% and 99%)
    board = table(text, "mnist-5k", "Leaderboard")
    assert [r["model"] for r in board] == ["**lenet-relu**", "svm-rbf", "logreg"]
    accuracy, cost = "test accuracy (95% CI)", "multiply-adds/img (or params)"

    def wilson(correct: int) -> str:
        low, high = accuracy_interval(correct, 100)
        assert low < (correct - 1) / 100 and high > (correct + 1) / 100, "wider than the seeds' range"
        return f"[{100 * low:.2f}–{100 * high:.2f}]"

    assert board[0][accuracy] == f"**98.00%** {wilson(98)}" and board[0]["fit CPU-s"] == "130"
    assert board[0][cost] == "431,080 params", "no multiply-adds recorded: the parameter count"
    assert board[1][accuracy].startswith("95.50% [") and board[1]["fit CPU-s"] == "11.0"
    assert board[2][accuracy] == f"91.00% {wilson(91)}" and board[2]["fit CPU-s"] == "1.25"
    assert [r["predict ms/img"] for r in board] == ["0.800"] * 3
    # one seed: the Wilson score interval of 94/100 test images, by hand with z = 1.959964:
    # centre (0.94 + z^2/200) / (1 + z^2/100) = 0.923723,
    # half-width z / (1 + z^2/100) * sqrt(0.94 * 0.06 / 100 + z^2 / 40000) = 0.048491
    [idx] = table(text, "idx:/abs/dir", "Leaderboard")
    assert idx[accuracy] == "**94.00%** [87.52–97.22]"
    # the details: the same contenders in the same order, with what the leaderboard leaves out
    details = table(text, "mnist-5k", "Leaderboard details")
    assert [r["model"] for r in details] == ["lenet-relu", "svm-rbf", "logreg"]
    assert [(r["tuning budget"], r["seeds"], r["params"]) for r in details] == [
        ("defaults", "2", "431,080"), ("defaults", "2", "—"), ("defaults", "2", "—")]
    assert [r["ms/img, batch 1000"] for r in details] == ["0.0200"] * 3
    # confusion matrix of the best model, first seed (3 mistakes)
    assert "![Confusion matrix of lenet-relu on mnist-5k](confusion-mnist-5k.png)" in text
    assert "seed 0, the first of 2 seeds" in text and "97 correct (97.00%)" in text
    assert "0 read as 1 (1)" in text
    assert "(confusion-idx-dir.png)" in text
    # failed jobs: the open one listed, the retried one only counted
    failed = text.split("## Failed and pruned jobs", 1)[1]
    assert "lenet-tanh" in failed and "MemoryError: out of memory" in failed
    assert "transient" not in failed and "1 earlier failure(s) succeeded" in failed
    # paired comparisons: lenet-tanh only failed; lenet-relu (best CNN) vs svm-rbf (best baseline)
    paired = _section(text, "mnist-5k")
    assert ("- Variants lenet-relu vs lenet-tanh (activation relu vs tanh): not compared, lenet-tanh "
            "has no finished final model here.") in paired
    # seed 0: relu misses images 0-2, svm-rbf 0-4 -> b = 2, c = 0, n = 100, difference 2/100;
    # Wald se = sqrt(2 - 2^2/100) / 100 = sqrt(1.96) / 100 = 0.014, half-width 1.96 * 0.014 = 0.0274
    # McNemar exact p = 2 * P(X <= 0 | Bin(2, 1/2)) = 2 * 1/4 = 0.5
    assert ("- Best `cnn` vs best `baseline`: lenet-relu vs svm-rbf, seed 0: lenet-relu − svm-rbf = "
            "+2.00 points (95% CI -0.74 to +4.74), McNemar exact p = 0.500 (b = 2 images only "
            "lenet-relu got right, c = 0 only svm-rbf got right, n = 100): **not significant** at "
            "5%: the data do not show a difference.") in paired
    # seed 1: b = 3, c = 0 -> +3.00, p = 2/8; mean of 2 and 3 points, t(0.975, 1) * 0.7071 / sqrt(2)
    assert ("Over the 2 seeds both share: mean lenet-relu − svm-rbf = +2.50 points (95% t-interval "
            "-3.85 to +8.85); per seed: seed 0 +2.00 (p = 0.500), seed 1 +3.00 (p = 0.250).") in paired
    idx = _section(text, "idx:/abs/dir")
    assert "- Variants: no two models of one class with different fixed parameters ran here." in idx
    assert "- Best of each family: not compared, every model here is of family `baseline`." in idx
    assert text.index("### Leaderboard") < text.index("### Paired comparisons")


def table(text: str, dataset: str, heading: str) -> list[dict[str, str]]:
    """The rows of the table under ``### heading`` in one dataset's section, as header -> cell."""
    part = text.split(f"## Dataset `{dataset}`", 1)[1].split("\n## ", 1)[0]
    part = part.split(f"### {heading}\n", 1)[1]
    lines = list(itertools.takewhile(lambda ln: ln.startswith("|"), part.lstrip("\n").splitlines()))
    header, *rows = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


def _section(text: str, dataset: str) -> str:
    """The paired-comparisons section of one dataset."""
    part = text.split(f"## Dataset `{dataset}`", 1)[1].split("\n## ", 1)[0]
    return part.split("### Paired comparisons", 1)[1].split("\n### ", 1)[0]


def _add_tanh(run_dir: Path, errors: list[int]) -> None:
    store = ResultsStore(run_dir)
    for seed, err in enumerate(errors):
        store.append(_row(store, "mnist-5k", "lenet-tanh", "cnn", seed, err, 90.0))


def test_paired_comparison_significant(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    _add_tanh(run_dir, [13, 9])
    paired = _section(write_report(run_dir).read_text(encoding="utf-8"), "mnist-5k")
    # seed 0: relu misses 3 images, tanh 13 (a superset) -> b = 10, c = 0, n = 100;
    # se = sqrt(10 - 10^2/100) / 100 = 0.03, half-width 1.96 * 0.03 = 0.0588; p = 2 / 2^10
    line = next(ln for ln in paired.splitlines() if ln.startswith("- Variants"))
    assert line == ("- Variants lenet-relu vs lenet-tanh (activation relu vs tanh, tuner none), "
                    "seed 0: lenet-relu − "
                    "lenet-tanh = +10.00 points (95% CI +4.12 to +15.88), McNemar exact p = 0.002 "
                    "(b = 10 images only lenet-relu got right, c = 0 only lenet-tanh got right, "
                    "n = 100): significant at 5%.")
    # seed 1: 1 vs 9 errors -> +8.00, p = 2 / 2^8; mean 9 +- 12.7062 * 1.4142 / sqrt(2)
    assert ("mean lenet-relu − lenet-tanh = +9.00 points (95% t-interval -3.71 to +21.71); "
            "per seed: seed 0 +10.00 (p = 0.002), seed 1 +8.00 (p = 0.008).") in paired
    assert "- Best `cnn` vs best `baseline`: lenet-relu vs svm-rbf, seed 0:" in paired


def test_paired_comparison_skips(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    (run_dir / "predictions" / "mnist-5k__svm-rbf__none__0.npz").unlink()
    store = ResultsStore(run_dir)
    rel = store.save_predictions("short", *(a[:50] for a in _predictions(0)))
    store.append(_row(store, "mnist-5k", "lenet-tanh", "cnn", 0, 5, 90.0, predictions=rel))
    paired = _section(write_report(run_dir).read_text(encoding="utf-8"), "mnist-5k")
    assert ("- Variants lenet-relu vs lenet-tanh (activation relu vs tanh, tuner none): not "
            "compared, their test sets differ in size (100 vs 50 images, seed 0).") in paired
    assert ("- Best `cnn` vs best `baseline`: lenet-relu vs svm-rbf: not compared, "
            "`predictions/mnist-5k__svm-rbf__none__0.npz` could not be read") in paired


def test_figures_are_valid_pngs(tmp_path: Path) -> None:
    write_report(make_run(tmp_path))
    for name in ("confusion-mnist-5k.png", "confusion-idx-dir.png"):
        png = tmp_path / name
        assert png.read_bytes()[:8] == PNG_MAGIC
        height, width, channels = matplotlib.image.imread(png).shape
        assert height > 200 and width > 200 and channels in (3, 4)


def test_regeneration_is_identical_apart_from_time(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    first = write_report(run_dir).read_text(encoding="utf-8")
    (run_dir / "report.md").unlink()
    (run_dir / "confusion-mnist-5k.png").unlink()
    second = write_report(run_dir).read_text(encoding="utf-8")
    assert (run_dir / "confusion-mnist-5k.png").exists()

    def strip(text: str) -> list[str]:
        return [ln for ln in text.splitlines() if not ln.startswith("_Generated ")]

    assert strip(first) == strip(second)
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_failure_leaves_old_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = make_run(tmp_path)
    before = write_report(run_dir).read_text(encoding="utf-8")

    def broken(*args: object, **kwargs: object) -> Path:
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots, "confusion_matrix", broken)
    with pytest.raises(RuntimeError):
        markdown.write_report(run_dir)
    assert (run_dir / "report.md").read_text(encoding="utf-8") == before
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_missing_results_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="results.csv"):
        write_report(tmp_path)
    (tmp_path / "results.csv").write_text("")
    with pytest.raises(InputError, match="empty"):
        write_report(tmp_path)


def test_a_dataset_whose_only_final_failed(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.append(_row(store, "mnist-5k", "lenet-relu", "cnn", 0, 0, 5.0, tuner="optuna", trial="0",
                      test_accuracy=None, predictions=None))
    store.append(_row(store, "mnist-5k", "lenet-relu", "cnn", 0, 0, 5.0, tuner="optuna", status="error",
                      error="RuntimeError: boom", test_accuracy=None, predictions=None))
    text = write_report(tmp_path).read_text(encoding="utf-8")
    assert "No model finished on this dataset (see Failed and pruned jobs)." in text
    assert "RuntimeError: boom" in text.split("## Failed and pruned jobs", 1)[1]


def test_leaderboard_shows_onnx_latency_macs_and_the_test_interval_of_agreeing_seeds(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    for seed in (0, 1, 2):  # three seeds, one accuracy: ± 0.00 over seeds says nothing of the test set
        store.append(_row(store, "mnist-5k", "linear-svm", "baseline", seed, 10, 1.0,
                          onnx_ms_b1_p50=0.008, onnx_ms_b1_p99=0.02, onnx_mismatches=0, macs=7840))
    store.append(_row(store, "mnist-5k", "lenet-relu", "cnn", 0, 2, 30.0, onnx_ms_b1_p50=0.31,
                      onnx_ms_b1_p99=4.7, onnx_mismatches=3, macs=3_522_000, n_params=431080))
    text = write_report(tmp_path).read_text()
    lenet, svm = table(text, "mnist-5k", "Leaderboard")
    low, high = accuracy_interval(90, 100)  # Wilson, for 90 of the 100 test images
    accuracy, cost = "test accuracy (95% CI)", "multiply-adds/img (or params)"
    assert svm[accuracy] == f"90.00% [{100 * low:.2f}–{100 * high:.2f}]", "the seeds agree: the test set's"
    assert (svm["ONNX ms/img"], svm[cost]) == ("0.00800", "7,840")
    assert (lenet["ONNX ms/img"], lenet[cost]) == ("0.310, 3 labels differ", "3.52 M"), \
        "multiply-adds where known, not the parameter count; a warning where ONNX labels differ"
    lenet, svm = table(text, "mnist-5k", "Leaderboard details")
    onnx = "ONNX ms/img: p50 (p99)"
    assert (svm[onnx], svm["multiply-adds/img"], svm["seeds"]) == ("0.00800 (0.0200)", "7,840", "3")
    assert (lenet[onnx], lenet["multiply-adds/img"], lenet["params"]) == (
        "0.310 (4.70), 3 labels differ", "3.52 M", "431,080")


def test_the_leaderboard_fits_a_screen_and_the_summary_comes_first(tmp_path: Path) -> None:
    """At most nine columns; everything else the rows measured is in the details further down."""
    text = write_report(make_run(tmp_path)).read_text(encoding="utf-8")
    for dataset in ("mnist-5k", "idx:/abs/dir"):
        board = table(text, dataset, "Leaderboard")
        assert board and all(len(row) <= 9 for row in board), list(board[0])
        details = table(text, dataset, "Leaderboard details")
        assert [r["#"] for r in details] == [r["#"] for r in board]
        shown = set(board[0]) | set(details[0])
        assert {"tuning budget", "trials run", "seeds", "fit wall-s", "predict CPU-s"} <= shown
    assert text.index("## Summary") < text.index("### Leaderboard\n") < text.index("### Leaderboard details")
    assert "(#details-mnist-5k)" in text and '<a id="details-mnist-5k"></a>' in text
