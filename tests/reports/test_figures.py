"""Figures of report.md: Pareto front, tuning curves, learning curves, galleries; and their skips."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.image
import numpy as np
from test_report import N_TEST, _predictions, _row, make_run

from digitbench.benchmark.store import ResultsStore
from digitbench.reports.markdown import write_report
from digitbench.reports.stats import pareto_optimal

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = ("pareto-mnist-5k.png", "tuning-curves-mnist-5k.png", "learning-curves-mnist-5k.png",
           "confusion-mnist-5k.png", "misclassified-mnist-5k.png",
           "misclassified-by-all-mnist-5k.png")


def _images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8)


def make_tuned_run(run_dir: Path) -> Path:
    """Optuna-tuned finals with images: lenet-relu accurate and expensive, logreg cheap and less
    accurate, lenet-tanh dominated by lenet-relu; trials with histories (lenet-relu also tuned
    by keras-tuner)."""
    store = ResultsStore(run_dir)
    plan = [("lenet-relu", "cnn", 2, 100.0), ("lenet-tanh", "cnn", 6, 150.0),
            ("logreg", "baseline", 10, 1.0)]
    for model, family, errors, cpu in plan:
        for tuner in ("optuna", "keras-tuner") if model == "lenet-relu" else ("optuna",):
            for trial, (val, status) in enumerate([(0.90, "ok"), (0.80, "pruned"), (0.95, "ok")]):
                history = {"val_accuracy": [0.5, 0.7, val - 0.01 * (tuner == "optuna"), val],
                           "accuracy": [0.6, 0.8, 0.9, 0.95]} if family == "cnn" else None
                method = ({"sampler": "tpe", "pruner": "median"} if tuner == "optuna"
                          else {"oracle": "hyperband"})
                store.append(_row(store, "mnist-5k", model, family, 0, 0, cpu / 10, tuner=tuner,
                                  tuning=json.dumps(method),
                                  trial=trial, val_accuracy=val, status=status, test_accuracy=None,
                                  predictions=None, history=json.dumps(history) if history else None))
        y_true, y_pred = _predictions(errors)
        rel = store.save_predictions(f"{model}-final", y_true, y_pred, _images())
        store.append(_row(store, "mnist-5k", model, family, 0, errors, cpu, tuner="optuna",
                          predictions=rel, tuning=json.dumps({"chosen_trial": 2, "trials": 3}),
                          history=json.dumps({"accuracy": [0.7, 0.9]}) if family == "cnn" else None))
    return run_dir


def _subsection(text: str, title: str) -> str:
    return text.split(f"### {title}", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]


def test_pareto_optimal_by_hand() -> None:
    # A accurate and expensive, B cheap and less accurate, C dominated by A, D tied with A on cost
    assert pareto_optimal([100, 1, 150, 100], [0.98, 0.90, 0.94, 0.97]) == [True, True, False, False]
    assert pareto_optimal([5, 5], [0.9, 0.9]) == [True, True]


def test_figures_exist_are_pngs_and_linked(tmp_path: Path) -> None:
    text = write_report(make_tuned_run(tmp_path)).read_text(encoding="utf-8")
    for name in FIGURES:
        png = tmp_path / name
        assert png.read_bytes()[:8] == PNG_MAGIC, name
        height, width, channels = matplotlib.image.imread(png).shape
        assert height > 150 and width > 150 and channels in (3, 4)
        assert re.search(rf"!\[[^\]]+\]\({re.escape(name)}\)", text), name


def test_figure_captions(tmp_path: Path) -> None:
    text = write_report(make_tuned_run(tmp_path)).read_text(encoding="utf-8")
    pareto = _subsection(text, "Accuracy against CPU time")
    assert ("On fit CPU-s: logreg (90.00% for 1.00 CPU-s), lenet-relu (98.00% for 100 CPU-s).") in pareto
    assert "lenet-tanh" not in pareto.split("On fit CPU-s:", 1)[1]
    tuning = _subsection(text, "Tuning curves")
    assert "one line per tuner (keras-tuner (hyperband), optuna (tpe, median pruner))" in tuning
    learning = _subsection(text, "Training curves by epoch")
    assert "Validation accuracy by epoch" in learning and "lenet-relu, lenet-tanh" in learning
    gallery = _subsection(text, "Misclassified digits")
    assert "The best model, lenet-relu (seed 0): all 2 misclassified test digits of 100" in gallery
    # first 2 images are wrong for every model (2, 6 and 10 errors)
    assert "2 of the 100 test digits were misclassified by every one of all 3 final models" in gallery
    assert text.index("### Leaderboard") < text.index("### Accuracy against CPU time") \
        < text.index("### Tuning curves") < text.index("### Training curves by epoch") \
        < text.index("### Misclassified digits")


def test_figures_are_deterministic(tmp_path: Path) -> None:
    run_dir = make_tuned_run(tmp_path)
    write_report(run_dir)
    first = {name: (run_dir / name).read_bytes() for name in FIGURES}
    write_report(run_dir)
    assert first == {name: (run_dir / name).read_bytes() for name in FIGURES}


def test_old_untuned_run_skips_with_sentences(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)   # tuner none, no histories, predictions without images
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert "(pareto-mnist-5k.png)" in text and (run_dir / "pareto-mnist-5k.png").exists()
    assert "No tuning trials were recorded for this dataset" in text
    assert "No epoch histories were recorded for the networks" in text
    assert ("No gallery of the best model's mistakes: `predictions/mnist-5k__lenet-relu__none__0.npz` "
            "holds no images of the misclassified digits (written by an older digitbench).") in text
    assert "No gallery of the digits every model got wrong:" in text
    for name in ("tuning-curves-mnist-5k.png", "learning-curves-mnist-5k.png",
                 "misclassified-mnist-5k.png", "misclassified-by-all-mnist-5k.png"):
        assert not (run_dir / name).exists()


def test_untuned_networks_show_training_accuracy(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    for model in ("lenet-relu", "lenet-tanh"):
        store.append(_row(store, "mnist-5k", model, "cnn", 0, 3, 50.0,
                          history=json.dumps({"accuracy": [0.8, 0.9, 0.95]})))
    text = write_report(tmp_path).read_text(encoding="utf-8")
    learning = _subsection(text, "Training curves by epoch")
    assert "(learning-curves-mnist-5k.png)" in learning
    assert "**training** accuracy by epoch of each final model (first seed): lenet-relu, lenet-tanh" \
        in learning


def test_anytime_curves_take_the_median_and_range_of_repeated_studies(tmp_path: Path) -> None:
    """Three studies per tuner: the anytime table compares the tuners at equal CPU-seconds, with
    the median and the range over the studies."""
    store = ResultsStore(tmp_path)
    # per tuner, per study seed: validation accuracy of trials 0..3, each trial costing 1 CPU-s
    scores = {"optuna": [[0.90, 0.92, 0.95, 0.96], [0.90, 0.91, 0.94, 0.94], [0.89, 0.95, 0.95, 0.97]],
              "random": [[0.90, 0.91, 0.91, 0.93], [0.90, 0.90, 0.92, 0.92], [0.89, 0.90, 0.90, 0.94]]}
    for tuner, studies in scores.items():
        sampler = "tpe" if tuner == "optuna" else "random"
        for seed, values in enumerate(studies):
            for trial, val in enumerate(values):
                store.append(_row(store, "mnist-5k", "logreg", "baseline", seed, 0, 1.0, tuner=tuner,
                                  tuning=json.dumps({"sampler": sampler, "pruner": "none"}),
                                  trial=trial, val_accuracy=val, status="ok", test_accuracy=None,
                                  predictions=None, predict_cpu_s=0.0))
        y_true, y_pred = _predictions(5)
        store.append(_row(store, "mnist-5k", "logreg", "baseline", 0, 5, 1.0, tuner=tuner,
                          predictions=store.save_predictions(f"logreg-{tuner}", y_true, y_pred),
                          tuning=json.dumps({"chosen_trial": 3, "study_seed": 0})))
    text = write_report(tmp_path).read_text(encoding="utf-8")
    tuning = _subsection(text, "Tuning curves")
    assert "over 3 studies per tuner with seeds 0..2" in tuning and "No random-search baseline" not in tuning
    rows = {line.split("|")[2].strip(): [c.strip() for c in line.split("|")[3:7]]
            for line in tuning.splitlines() if line.startswith("| logreg")}
    # span 4 CPU-s: at 1 CPU-s (trial 0 done), 2 CPU-s (trials 0-1) and 4 CPU-s (all four)
    assert rows["optuna (tpe)"] == ["3", "90.00% (89.00%–90.00%)", "92.00% (91.00%–95.00%)",
                           "96.00% (94.00%–97.00%)"]
    assert rows["random (random)"] == ["3", "90.00% (89.00%–90.00%)", "90.00% (90.00%–91.00%)",
                              "93.00% (92.00%–94.00%)"]
    image = matplotlib.image.imread(tmp_path / "tuning-curves-mnist-5k.png")
    assert image.shape[0] > 100


def test_the_front_figure_names_its_contenders_in_one_legend_clear_of_the_panels(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    """Contenders that cost and score alike (the frontier preset's LeNets) once had their labels
    printed over each other beside the points: the names are now one legend, outside the panels."""
    from matplotlib.transforms import Bbox

    from digitbench.reports import plots
    kept = []
    monkeypatch.setattr(plots, "save_png", lambda fig, path: kept.append(fig) or path)
    alike = [(100.0, 0.994, 0.992, 0.996, True), (200.0, 0.9945, 0.993, 0.996, False)]
    lines = {"lenet-relu (none)": alike[:1], "lenet-relu (optuna)": alike, "lenet-tanh": alike,
             "svm-rbf": [(280.0, 0.985, 0.983, 0.988, True)], "logreg": [(12.0, 0.925, 0.92, 0.93, True)]}
    panel = plots.FrontPanel("fit CPU-s", lines, [(12.0, 0.925), (100.0, 0.994)])
    plots.accuracy_fronts([panel, panel], "Accuracy against cost", tmp_path / "fronts.png")
    (fig,) = kept
    fig.canvas.draw()
    assert all(not ax.texts for ax in fig.axes), "no label is printed beside the points"
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [*sorted(lines), "envelope across models"]
    box = legend.get_window_extent()
    assert not any(Bbox.intersection(box, ax.get_window_extent()) for ax in fig.axes)
