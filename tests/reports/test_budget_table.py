"""The budget table and the front figure on hand-made rows (the row contract of issue 36: extra
finals carry ``refit_trial`` and ``final_roles``, ``refit_val_accuracy``, ``refit_cost`` in their
tuning cell), and the report's one interval rule: no interval outside 0-100%."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from test_report import N_TEST, _predictions, _row

from digitbench.benchmark.results import load_table
from digitbench.benchmark.store import ResultsStore
from digitbench.reports.budget_table import best_within, budgets_of, final_configurations
from digitbench.reports.data_scaling import accuracy_series, curves_of
from digitbench.reports.figures import PARETO, _panel
from digitbench.reports.markdown import write_report
from digitbench.reports.section import DatasetScope
from digitbench.reports.stats import paired_comparison, seeds_accuracy_interval


def _final(store: ResultsStore, model: str, tuner: str, seed: int, errors: int, fit_cpu: float,
           tuning: dict, refit_trial: int | None = None, **extra: object) -> None:
    """A final row whose predictions file is its own (the model, tuner, refit trial and seed)."""
    name = f"{model}-{tuner}-{refit_trial}-{seed}"
    rel = store.save_predictions(name, *_predictions(errors))
    store.append(_row(store, "mnist-5k", model, "x", seed, errors, fit_cpu, tuner=tuner, predictions=rel,
                      tuning=json.dumps(tuning), refit_trial=refit_trial, **extra))


def make_fronts(run_dir: Path) -> Path:
    """svm-rbf tuned by optuna: its primary final refits trial 2 (best on validation, 92% on test,
    10 CPU-s), an extra final trial 1 (within one standard error, 98% on test: the test-best, 5
    CPU-s); logreg's defaults (tuner none, 90%, 1 CPU-s), whose score is trial 0 of logreg's study."""
    store = ResultsStore(run_dir)
    _final(store, "svm-rbf", "optuna", 0, 8, 10.0,
           {"chosen_trial": 2, "chosen_val_accuracy": 0.97, "final_roles": ["chosen", "front"],
            "refit_val_accuracy": 0.97, "refit_cost": 9.0})
    _final(store, "svm-rbf", "optuna", 0, 2, 5.0,
           {"chosen_trial": 2, "final_roles": ["one-se-cheapest", "front"], "refit_val_accuracy": 0.96,
            "refit_cost": 4.5}, refit_trial=1)
    store.append(_row(store, "mnist-5k", "logreg", "x", 0, 0, 0.9, tuner="optuna", trial=0,
                      val_accuracy=0.80, test_accuracy=None, predictions=None,
                      tuning=json.dumps({"first_trial": "defaults"})))
    _final(store, "logreg", "none", 0, 10, 1.0, {"tuner": "none"})
    return run_dir


def _scope(run_dir: Path) -> DatasetScope:
    return DatasetScope(load_table(run_dir), run_dir)


def test_each_configuration_is_read_with_its_validation_score_and_costs(tmp_path: Path) -> None:
    found = {c.label: c for c in final_configurations(load_table(make_fronts(tmp_path)))}
    assert set(found) == {"svm-rbf, trial 2", "svm-rbf, trial 1", "logreg"}
    assert [found[k].val_accuracy for k in ("svm-rbf, trial 2", "svm-rbf, trial 1")] == [0.97, 0.96]
    assert found["logreg"].val_accuracy == 0.80, "the defaults take trial 0's score of the model's study"
    assert found["svm-rbf, trial 1"].extra and not found["svm-rbf, trial 2"].extra
    assert found["svm-rbf, trial 1"].fit_cpu_s == 5.0
    assert found["logreg"].predict_ms == 1000 * 0.5 / N_TEST  # predict CPU-s over the test images


def test_the_budget_chooses_on_validation_never_on_test(tmp_path: Path) -> None:
    configurations = final_configurations(load_table(make_fronts(tmp_path)))
    budgets = budgets_of("fit_cpu_s", configurations)
    assert budgets[0] == 1.0 and budgets[-1] == 10.0 and len(budgets) > 2
    assert np.allclose(np.diff(np.log(budgets)), np.log(budgets[1] / budgets[0])), "geometric steps"
    top = best_within(10.0, "fit_cpu_s", configurations)
    test_best = max(configurations, key=lambda c: c.test.mean)
    assert test_best.label == "svm-rbf, trial 1" and top.label == "svm-rbf, trial 2", \
        "within the largest budget the validation-best is chosen, not the test-best"
    assert best_within(5.0, "fit_cpu_s", configurations).label == "svm-rbf, trial 1"
    assert best_within(1.0, "fit_cpu_s", configurations).label == "logreg"
    assert best_within(0.5, "fit_cpu_s", configurations) is None


def test_an_unscored_configuration_is_ranked_last(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    _final(store, "logreg", "none", 0, 0, 1.0, {"tuner": "none"})  # no study: no validation score
    _final(store, "svm-rbf", "optuna", 0, 30, 1.0, {"chosen_trial": 0, "chosen_val_accuracy": 0.5})
    assert best_within(1.0, "fit_cpu_s", final_configurations(load_table(tmp_path))).model == "svm-rbf"


def test_the_table_says_what_the_next_budget_buys_with_mcnemar(tmp_path: Path) -> None:
    text = write_report(make_fronts(tmp_path)).read_text(encoding="utf-8")
    section = text.split("### The best model for your budget", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|") and "`" in line]
    fit = [r for r in rows if r.split("|")[4].strip() in {"1.00", "5.00", "10.0"}][:3]
    assert [r.split("|")[2].strip() for r in fit] == ["`logreg`", "`svm-rbf, trial 1`", "`svm-rbf, trial 2`"]
    assert re.fullmatch(r"1\.00–\S+", fit[0].split("|")[1].strip()), \
        "the four budgets that choose logreg are one row"
    y_true, logreg = _predictions(10)
    _, trial_1 = _predictions(2)
    _, trial_2 = _predictions(8)
    up = paired_comparison(y_true, trial_1, logreg)     # +8 points: b = 8, c = 0, p = 2 / 2**8
    down = paired_comparison(y_true, trial_2, trial_1)  # the validation-best is 6 points worse on test
    assert f"+8.00 points (seed 0, McNemar exact p = {up.p_value:.3f})" in fit[0]
    assert f"-6.00 points (seed 0, McNemar exact p = {down.p_value:.3f})" in fit[1]
    assert "test set was not used to choose" in section


def test_the_front_figure_draws_each_model_as_a_line_and_the_envelope(tmp_path: Path) -> None:
    scope = _scope(make_fronts(tmp_path))
    found = scope.analysed(PARETO)
    panel = _panel(found, "fit_cpu_s")
    assert sorted(len(points) for points in panel.lines.values()) == [1, 2], "svm-rbf: its two finals"
    assert [primary for *_, primary in sorted(panel.lines["svm-rbf"])] == [False, True]
    assert sorted(c for c, _ in panel.envelope) == [1.0, 5.0], "trial 2 is beaten by trial 1 on test"
    text = write_report(scope.run_dir).read_text(encoding="utf-8")
    assert (tmp_path / "pareto-mnist-5k.png").read_bytes()[:4] == b"\x89PNG"
    assert "joined by a line" in text.split("### Accuracy against CPU time", 1)[1].split("\n### ")[0]


def make_spread(run_dir: Path) -> Path:
    """Two seeds far apart (5% and 95% on 100 test images) everywhere an interval is shown: the
    leaderboard, learning curves, corruptions, another test set; and a steady baseline."""
    store = ResultsStore(run_dir)
    for seed, errors in enumerate((95, 5)):
        counts = {"n_test": N_TEST, "correct": N_TEST - errors}
        for size in (50, None):
            store.append(_row(store, "mnist-5k", "lenet-relu", "cnn", seed, errors, 2.0 + seed,
                              train_size=size, n_train=size or 400,
                              corrupt_test=json.dumps({"fog": {**counts, "seed": 0}}),
                              cross_test=json.dumps({"idx:/other": counts})))
        store.append(_row(store, "mnist-5k", "logreg", "baseline", seed, 10, 1.0,
                          corrupt_test=json.dumps({"fog": {"n_test": N_TEST, "correct": 50, "seed": 0}})))
    return run_dir


def test_no_interval_leaves_0_to_100_percent(tmp_path: Path) -> None:
    run_dir = make_spread(tmp_path)
    rows = load_table(run_dir)
    scope = DatasetScope(rows, run_dir)
    board = scope.board
    assert ((board["low"] >= 0) & (board["high"] <= 1) & (board["low"] <= board["accuracy"])).all()
    lenet = board[board["model"] == "lenet-relu"].iloc[0]
    assert (lenet["low"], lenet["high"]) == (0.05, 0.95), "the seeds' range, wider than the Wilson interval"
    for c in final_configurations(rows):
        assert 0 <= c.test.low <= c.test.mean <= c.test.high <= 1
    panel = _panel(scope.analysed(PARETO), "fit_cpu_s")
    for points in panel.lines.values():
        assert all(0 <= low <= mean <= high <= 1 for _, mean, low, high, _ in points)
    for curve in curves_of(rows):  # the arrays the learning-curve figure is handed
        _, means, lows, highs, _ = accuracy_series(curve)
        assert all(0 <= lo <= m <= hi <= 1 for lo, m, hi in zip(lows, means, highs, strict=True))
    text = write_report(run_dir).read_text(encoding="utf-8")
    shown = re.findall(r"(-?\d+\.\d+)%\*{0,2} \[(-?\d+\.\d+)–(-?\d+\.\d+)\]", text)  # 50.00% [5.00–95.00]
    assert len(shown) >= 6, "the leaderboard, budgets, corruptions and the other test set show intervals"
    assert all(0 <= float(low) <= float(mean) <= float(high) <= 100 for mean, low, high in shown)
    differences = re.findall(r"CI ([-+]\d+\.\d+) to ([-+]\d+\.\d+)|interval ([-+]\d+\.\d+) to ([-+]\d+\.\d+)",
                             text)
    assert differences, "the paired comparisons show the difference's interval"
    assert all(-100 <= float(v) <= 100 for found in differences for v in found if v)
    assert "12.71" not in text and "±" not in text.split("## Dataset", 1)[1].split("### Paired", 1)[0]


def test_the_rule_by_hand() -> None:
    one = seeds_accuracy_interval([0.5], 4)   # one seed, 2 of 4 right: the Wilson interval alone
    assert 0 < one.low < 0.5 < one.high < 1
    spread = seeds_accuracy_interval([0.0, 1.0], 4)
    assert (spread.mean, spread.low, spread.high) == (0.5, 0.0, 1.0)
    unknown = seeds_accuracy_interval([0.7, 0.8], None)
    assert (unknown.low, unknown.high, unknown.n_test) == (0.7, 0.8, None)


def test_scores_measured_on_different_images_are_said_to_be(tmp_path: Path) -> None:
    """With --cv the baselines' trials are scored by folds and the LeNets' on the validation part:
    the caption says which scores came from which images; one set of images says nothing more.
    The defaults of tuner none take the images of the study whose trial 0 scored them."""
    folds = {"scoring": "5-fold cross-validation on the training part", "scored_images": 4000,
             "study_seed": 0}
    store = ResultsStore(tmp_path)
    _final(store, "svm-rbf", "optuna", 0, 8, 10.0, {"chosen_trial": 2, "chosen_val_accuracy": 0.97, **folds})
    store.append(_row(store, "mnist-5k", "lenet-relu", "x", 0, 0, 0.9, tuner="optuna", trial=0,
                      val_accuracy=0.98, test_accuracy=None, predictions=None,
                      tuning=json.dumps({"first_trial": "defaults", "scoring": "the validation part",
                                         "val_images": 400})))
    _final(store, "lenet-relu", "none", 0, 2, 20.0, {"tuner": "none"})
    found = {c.model: c.scored_on for c in final_configurations(load_table(tmp_path))}
    assert found == {
        "svm-rbf": "by 5-fold cross-validation on the training part (4,000 images, study seed 0)",
        "lenet-relu": "on the validation part (400 images)"}
    report = write_report(tmp_path).read_text()
    assert ("The validation scores compared were measured on different images (`svm-rbf` by 5-fold "
            "cross-validation on the training part (4,000 images, study seed 0); `lenet-relu` on the "
            "validation part (400 images))") in report
    assert "measured on different images" not in write_report(make_fronts(tmp_path / "one")).read_text()
