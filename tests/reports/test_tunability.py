"""What tuning bought, against hand-computed values: tuned and defaults finals on the same test images
(gain, its interval over seeds, McNemar per seed, gain per CPU-hour), a study that kept the defaults
(its best trial's validation gain and one standard error), and the report that opens with them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from test_report import _predictions, _row

from digitbench.benchmark.results import load_table
from digitbench.benchmark.store import ResultsStore
from digitbench.reports.markdown import write_report
from digitbench.reports.section import DatasetScope
from digitbench.reports.tunability import tunabilities

TUNING = {"tuner": "optuna", "cpu_s_used": 1800.0, "chosen_trial": 5, "first_trial": "defaults",
          "trials": 10, "scored_images": 800}


def _final(store: ResultsStore, model: str, tuner: str, seed: int, errors: int, **extra) -> dict:
    row = _row(store, "mnist-5k", model, "cnn" if model.startswith("lenet") else "baseline", seed,
               errors, 10.0, tuner=tuner, **extra)
    row["predictions"] = store.save_predictions(f"mnist-5k__{model}__{tuner}__{seed}", *_predictions(errors))
    return row


def _trial(store: ResultsStore, model: str, number: int, val: float, tuning: dict) -> dict:
    return _row(store, "mnist-5k", model, "baseline", 0, 0, 1.0, tuner="optuna", trial=str(number),
                val_accuracy=val, test_accuracy=None, predictions=None, tuning=json.dumps(tuning))


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    store = ResultsStore(tmp_path)
    for seed, (defaults, tuned) in enumerate([(20, 2), (22, 2), (24, 4)]):
        store.append(_final(store, "lenet-relu", "optuna", seed, tuned, tuning=json.dumps(TUNING),
                            params=json.dumps({"learning_rate": 0.01})))
        store.append(_final(store, "lenet-relu", "none", seed, defaults,
                            tuning=json.dumps({"tuner": "none", "defaults_refit_for": ["optuna"]})))
    kept = {**TUNING, "chosen_trial": 0, "cpu_s_used": 30.0}
    for number, val in enumerate([0.90, 0.895, 0.905, 0.88]):
        store.append(_trial(store, "logreg", number, val, kept))
    store.append(_final(store, "logreg", "optuna", 0, 8, tuning=json.dumps(kept)))
    return tmp_path


def test_the_tuned_finals_meet_the_defaults_on_the_same_images(run: Path) -> None:
    frame = load_table(run)
    relu, logreg = tunabilities(DatasetScope(frame, run))
    # per seed tuned - defaults: 18, 20, 20 points; mean 19.33; sd 1.1547; t(0.975, 2) = 4.3027
    assert relu.gain == pytest.approx(58 / 300)
    half = 4.302653 * math.sqrt(4 / 3) / math.sqrt(3) / 100
    assert relu.interval == pytest.approx((58 / 300 - half, 58 / 300 + half), abs=1e-6)
    assert relu.over_seeds
    # seed 0: b = 18 images only the tuned model got right, c = 0: p = 2 * 0.5^18
    assert relu.p_values[0] == (0, pytest.approx(2 * 0.5 ** 18))
    assert relu.significant_on_every_seed
    assert relu.gain_per_cpu_hour == pytest.approx(58 / 300 / 0.5), "1,800 tuning CPU-s: half an hour"
    assert (relu.defaults_accuracy, relu.tuned_accuracy) == (pytest.approx(0.78), pytest.approx(0.9733333))
    # the study kept the defaults: best trial 0.905 vs trial 0 0.90; SE sqrt(0.9 * 0.1 / 800)
    assert logreg.kept_defaults and logreg.gain == 0.0
    assert logreg.val_gain == pytest.approx(0.005)
    assert logreg.val_se == pytest.approx(math.sqrt(0.09 / 800))


def test_the_report_opens_with_its_answers_and_ends_with_its_settings(run: Path) -> None:
    text = write_report(run).read_text(encoding="utf-8")
    summary = text.split("## Summary", 1)[1].split("\n## ", 1)[0]
    # McNemar: seed 0 b = 18, c = 0; seeds 1 and 2 b = 20, c = 0: p = 2 * 0.5^20 = 1.9e-06
    assert "- [What tuning bought](#tunability-mnist-5k):\n  - `lenet-relu` (optuna, 1,800 tuning CPU-s): " \
           "tuned 97.33% vs defaults 78.00%, +19.33 points (95% CI +16.46 to +22.20, over seeds), McNemar " \
           "p 7.6e-06, 1.9e-06, 1.9e-06: significant on every seed." in summary
    assert "  - `logreg` (optuna, 30.0 tuning CPU-s): tuning kept the defaults; its best trial was +0.50 " \
           "points on validation, within one standard error (1.06)." in summary
    assert "[Best model](#leaderboard-mnist-5k): `lenet-relu` (tuner optuna), 97.33%" in summary
    assert text.index("## Summary") < text.index("## Dataset") < text.index("## Run")
    assert text.index("## Run") < text.index("## Machine") if "## Machine" in text else True
    section = text.split("### What tuning bought", 1)[1].split("\n### ", 1)[0]
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
             for line in section.splitlines() if line.startswith(("| lenet-relu", "| logreg"))}
    assert cells["lenet-relu"][:8] == ["optuna", "78.00%", "97.33%", "+19.33", "+16.46 to +22.20, over seeds",
                                       "seed 0: 7.6e-06, seed 1: 1.9e-06, seed 2: 1.9e-06", "1,800", "+38.67"]
    assert "defaults kept: the best trial beat them by +0.50 ± 1.06 points" in section
    assert '<a id="tunability-mnist-5k"></a>' in text


def test_without_the_defaults_refit_the_table_says_so(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.append(_final(store, "lenet-relu", "optuna", 0, 3, tuning=json.dumps(TUNING)))
    frame = load_table(tmp_path)
    [found] = tunabilities(DatasetScope(frame, tmp_path))
    assert found.gain is None and "not refit" in found.why
    assert "the defaults were not refit (`--no-refit-defaults`)" in write_report(tmp_path).read_text()
