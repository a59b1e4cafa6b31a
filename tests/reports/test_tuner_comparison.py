"""Which tuner wins: paired tests at equal CPU, checked against values computed by hand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from digitbench.benchmark.results import typed
from digitbench.reports.section import DatasetScope, RunScope
from digitbench.reports.tuner_comparison import TUNERS, TUNERS_ACROSS, verdict
from digitbench.reports.tuner_stats import best_at_fractions, blocks, common_span, tuner_summary, values_at
from digitbench.reports.tuner_tests import compare, compare_at_fractions, nemenyi_cd

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tuner_comparison_section(rows: pd.DataFrame, run_dir: Path) -> list[str]:
    """The "Which tuner wins" section of one dataset's rows (whether or not a final finished)."""
    return TUNERS.body(DatasetScope(rows, run_dir, "mnist-5k", "mnist-5k"))


def tuner_verdict(rows: pd.DataFrame) -> str | None:
    """The summary's sentence from the same analysis."""
    return verdict(TUNERS.analyse(DatasetScope(rows, ".")))


def tuner_comparison_across(rows: pd.DataFrame, run_dir: Path) -> list[str]:
    return TUNERS_ACROSS.lines(RunScope(rows, run_dir))


def _study(tuner: str, seed: int, trials: list[tuple[float | None, float]], *, model: str = "logreg",
           dataset: str = "mnist-5k", budget: float | None = None, defaults: bool = False,
           val_images: int = 1000) -> list[dict[str, Any]]:
    """Trial rows of one study: ``trials`` holds (val accuracy or None for a pruned trial, fit
    CPU-s) in trial order; predicting costs nothing."""
    tuning = {"tuner": tuner, "trials": len(trials), "budget_cpu_s": budget, "val_images": val_images,
              "study_seed": seed, **({"first_trial": "defaults"} if defaults else {})}
    return [{"run_id": "run-a", "dataset": dataset, "model": model, "family": "baseline",
             "tuner": tuner, "trial": str(number), "seed": seed,
             "status": "ok" if val is not None else "pruned", "val_accuracy": val,
             "fit_cpu_s": cpu, "predict_cpu_s": 0.0, "tuning": dict(tuning)}
            for number, (val, cpu) in enumerate(trials)]


def _frame(studies: list[list[dict[str, Any]]]) -> pd.DataFrame:
    return typed(pd.DataFrame([row for study in studies for row in study]))


def _paired_six(dataset: str = "mnist-5k", seeds: range = range(6)) -> list[list[dict[str, Any]]]:
    """Optuna against random search on one model, one study per seed, 4 trials of 1 CPU-s each.
    Both start from 0.90 (trial 0, the defaults); by the end optuna is ahead by 1, 2, .. points
    in seed 0, 1, ..; random finds 0.91 at trial 3 only."""
    studies = []
    for seed in seeds:
        gain = 0.01 * (seed - seeds.start + 1)
        studies.append(_study("optuna", seed, [(0.90, 1.0), (0.90, 1.0), (0.90, 1.0), (0.91 + gain, 1.0)],
                              dataset=dataset, defaults=True))
        studies.append(_study("random", seed, [(0.90, 1.0), (0.89, 1.0), (0.90, 1.0), (0.91, 1.0)],
                              dataset=dataset))
    return studies


def _three_tuners(dataset: str = "mnist-5k") -> list[list[dict[str, Any]]]:
    """Three tuners, 4 seeds, one 1-CPU-s trial each. Ranks (1 = best) per seed:
    a 1,1,1,2; b 2,3,2,1; c 3,2,3,3 -> mean ranks 1.25, 2.00, 2.75."""
    accuracy = {1: 0.95, 2: 0.93, 3: 0.91}
    ranks = {"a": [1, 1, 1, 2], "b": [2, 3, 2, 1], "c": [3, 2, 3, 3]}
    return [_study(tuner, seed, [(accuracy[r], 1.0)], dataset=dataset)
            for tuner, by_seed in ranks.items() for seed, r in enumerate(by_seed)]


def _table(lines: list[str], first: str) -> list[str]:
    """The cells of the first table row whose first cell is ``first``."""
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first:
            return cells
    raise AssertionError(f"no table row {first!r} in {lines}")


def test_wilcoxon_by_hand() -> None:
    """Six paired studies, optuna ahead in all six at 100%: exact two-sided p = 2/2^6 = 0.03125,
    W = 0 (no negative difference). At 25% and 50% both have 0.90 everywhere: p = 1."""
    rows = _frame(_paired_six())
    quarter, half, full = compare_at_fractions(blocks(rows))
    assert full.test == "Wilcoxon" and full.n_blocks == 6 and full.n_dropped == 0
    assert full.statistic == 0.0 and full.p_value == pytest.approx(2 / 64)
    assert full.leader == "optuna" and full.significant
    assert full.mean_ranks == {"optuna": 1.0, "random": 2.0}
    assert full.sentence() == ("optuna vs random: Wilcoxon W=0, p=0.0312 over 6 paired studies: "
                               "optuna better beyond chance at 5%.")
    for tied in (quarter, half):
        assert tied.test == "Wilcoxon" and tied.p_value == 1.0 and not tied.significant
        assert tied.mean_ranks == {"optuna": 1.5, "random": 1.5}
        assert tied.sentence() == ("optuna vs random: every one of the 6 paired studies found the "
                                   "same accuracy, so there is no difference to rank (Wilcoxon "
                                   "p=1.00 over 6 paired studies): not significant at 5%.")
    assert tuner_verdict(rows) == ("at the full tuning budget, optuna vs random: Wilcoxon "
                             "W=0, p=0.0312 over 6 paired studies: optuna better beyond chance at 5%.")


def test_wilcoxon_with_a_loss_by_hand() -> None:
    """Differences +1..+5 points and -6 points: W- = 6 (the largest rank), W+ = 15; exact
    two-sided p = 2 * P(W <= 6) = 2 * 14/64 (sums 0..6 of distinct ranks 1..6: 1,1,1,2,2,3,4)."""
    values = pd.DataFrame({"optuna": [0.91, 0.92, 0.93, 0.94, 0.95, 0.84],
                           "random": [0.90] * 6})
    test = compare(values, 1.0)
    assert test.statistic == 6.0 and test.p_value == pytest.approx(28 / 64)
    assert test.leader == "optuna" and not test.significant
    assert test.sentence().endswith("over 6 paired studies: not significant at 5%.")


def test_friedman_nemenyi_and_cd_by_hand() -> None:
    """k = 3 tuners, N = 4 blocks, mean ranks 1.25, 2, 2.75:
    chi2 = 12N/(k(k+1)) * sum R^2 - 3N(k+1) = 4 * 13.125 - 48 = 4.5; p = exp(-4.5/2) (2 df);
    CD = q * sqrt(k(k+1)/(6N)) = 2.3437 * sqrt(0.5); Nemenyi a-c: |1.25 - 2.75| / sqrt(0.5) * sqrt(2)
    = 3.0 on the studentized range."""
    full = compare_at_fractions(blocks(_frame(_three_tuners())))[-1]
    assert full.test == "Friedman" and full.n_blocks == 4 and full.tuners == ("a", "b", "c")
    assert full.mean_ranks == {"a": 1.25, "b": 2.0, "c": 2.75}
    assert full.statistic == pytest.approx(4.5)
    assert full.p_value == pytest.approx(math.exp(-2.25))
    assert full.cd == pytest.approx(2.3437 * math.sqrt(0.5), abs=1e-4)
    assert nemenyi_cd(3, 4) == pytest.approx(1.65726, abs=1e-4)
    assert full.nemenyi is not None
    assert full.nemenyi.loc["a", "c"] == pytest.approx(stats.studentized_range.sf(3.0, 3, np.inf))
    assert full.nemenyi.loc["a", "b"] == pytest.approx(stats.studentized_range.sf(1.5, 3, np.inf))
    assert full.leader == "a" and not full.significant and full.better_pairs() == []
    assert full.sentence() == ("a, b, c: Friedman χ²=4.50, p=0.105 over 4 blocks: no tuner differs "
                               "beyond chance at 5%.")


def test_friedman_significant_names_the_nemenyi_pairs() -> None:
    """Ten blocks ranked a > b > c every time: chi2 = 12*10/12 * (1 + 4 + 9) - 120 = 20,
    p = exp(-10); Nemenyi a-c: 2 / sqrt(12/60) * sqrt(2) on the studentized range."""
    values = pd.DataFrame({"a": [0.95] * 10, "b": [0.93] * 10, "c": [0.91] * 10})
    test = compare(values, 0.5)
    assert test.statistic == pytest.approx(20.0) and test.p_value == pytest.approx(math.exp(-10))
    q = 2 / math.sqrt(12 / 60) * math.sqrt(2)
    assert test.nemenyi is not None
    assert test.nemenyi.loc["a", "c"] == pytest.approx(stats.studentized_range.sf(q, 3, np.inf))
    pairs = test.better_pairs()
    assert [(good, bad) for good, bad, _ in pairs] == [("a", "c")]  # a-b and b-c: 1 < CD = 1.05
    assert test.cd == pytest.approx(2.3437 * math.sqrt(12 / 60), abs=1e-4)
    assert "the tuners differ beyond chance at 5%; Nemenyi: a better than c (p=" in test.sentence()


def test_budget_fraction_selection() -> None:
    """A shared --budget of 10 CPU-s: optuna's 0.97 ends at 6 CPU-s, after 50% (5 CPU-s), so at 50%
    it has 0.91; random's first trial ends at 3 CPU-s (after 25%) and its 0.99 at 12 (after the
    budget), so random has nothing at 25% and 0.93 at 100%."""
    rows = _frame([_study("optuna", 0, [(0.90, 2.0), (0.91, 2.0), (0.97, 2.0)], budget=10.0),
                   _study("random", 0, [(0.93, 3.0), (None, 4.0), (0.99, 5.0)], budget=10.0)])
    (block,) = blocks(rows)
    assert block.budget == 10.0 and block.budget_rule == "budget"
    found = best_at_fractions(rows)
    assert list(found) == [0.25, 0.5, 1.0]
    assert found[0.25].loc[("mnist-5k", "logreg", 0)].tolist()[0] == 0.90
    assert math.isnan(found[0.25].loc[("mnist-5k", "logreg", 0), "random"])
    assert found[0.5].loc[("mnist-5k", "logreg", 0)].tolist() == [0.91, 0.93]
    assert found[1.0].loc[("mnist-5k", "logreg", 0)].tolist() == [0.97, 0.93]
    quarter = compare(found[0.25], 0.25)
    assert quarter.n_blocks == 0 and quarter.n_dropped == 1 and quarter.test is None


def test_span_without_a_shared_budget() -> None:
    """No --budget: the span is the least over the tuners of their median study's total CPU-s:
    optuna 6, 8, 10 -> 8; random 12 each -> 12; span 8. At 50% (4 CPU-s) optuna has its first two
    trials, at 100% (8 CPU-s) of seed 2 (trials ending at 5 and 10) only the first."""
    studies = []
    for seed, last in enumerate([2.0, 4.0, 6.0]):
        studies.append(_study("optuna", seed, [(0.90, 2.0), (0.92, 2.0), (0.95, last)]))
        studies.append(_study("random", seed, [(0.91, 6.0), (0.94, 6.0)]))
    rows = _frame(studies)
    found = blocks(rows)
    assert [b.budget for b in found] == [8.0, 8.0, 8.0] and found[0].budget_rule == "span"
    curves = {"optuna": [(np.array([2.0, 4.0, x]), np.array([0.9, 0.92, 0.95])) for x in (6, 8, 10)],
              "random": [(np.array([6.0, 12.0]), np.array([0.91, 0.94]))] * 3}
    assert common_span(curves) == 8.0
    assert values_at(found, 0.5)["optuna"].tolist() == [0.92, 0.92, 0.92]
    assert values_at(found, 1.0)["optuna"].tolist() == [0.95, 0.95, 0.92]
    assert values_at(found, 1.0)["random"].tolist() == [0.91, 0.91, 0.91]


def test_cpu_to_beat_the_defaults_by_one_standard_error() -> None:
    """Defaults 0.90 on 900 images: SE = sqrt(0.9 * 0.1 / 900) = 0.01, so a trial must exceed 0.91.
    optuna (whose trial 0 is the defaults) beats it at 6 CPU-s (seed 0: 1+2+3), 2 (seed 1), never
    (seed 2): median 4 over 2 of 3. random (not from the defaults) has 0.93 at 5 CPU-s each time."""
    optuna = [[(0.90, 1.0), (0.905, 2.0), (0.92, 3.0)], [(0.90, 1.0), (0.95, 1.0)],
              [(0.90, 1.0), (0.905, 1.0), (None, 1.0)]]
    studies = []
    for seed, trials in enumerate(optuna):
        studies.append(_study("optuna", seed, trials, defaults=True, val_images=900))
        studies.append(_study("random", seed, [(0.93, 5.0)], val_images=900))
    summary = tuner_summary(blocks(_frame(studies)))
    assert summary.loc["optuna", "cpu_s_to_beat"] == 4.0
    assert summary.loc["optuna", ["reached", "with_defaults", "blocks"]].tolist() == [2, 3, 3]
    assert summary.loc["random", "cpu_s_to_beat"] == 5.0 and summary.loc["random", "reached"] == 3
    alone = tuner_summary(blocks(_frame([_study("random", 0, [(0.93, 5.0)])])))
    assert alone.loc["random", "with_defaults"] == 0 and math.isnan(alone.loc["random", "cpu_s_to_beat"])


def test_normalised_auc_by_hand() -> None:
    """One block, budget 4 CPU-s, accuracies scaled from 0.70 (worst) to 0.90 (best).
    optuna: 0.80 (0.5) from 1 CPU-s, 0.90 (1.0) from 2 -> (0.5 * 1 + 1.0 * 2) / 4 = 0.625.
    random: 0.85 (0.75) from 2, 0.70 at 3 does not improve -> 0.75 * 2 / 4 = 0.375."""
    rows = _frame([_study("optuna", 0, [(0.80, 1.0), (0.90, 1.0)], budget=4.0),
                   _study("random", 0, [(0.85, 2.0), (0.70, 1.0)], budget=4.0)])
    summary = tuner_summary(blocks(rows))
    assert summary.loc["optuna", "auc"] == pytest.approx(0.625)
    assert summary.loc["random", "auc"] == pytest.approx(0.375)


def test_too_few_blocks_and_one_tuner_say_why() -> None:
    rows = _frame(_paired_six(seeds=range(2)))
    full = compare_at_fractions(blocks(rows))[-1]
    assert full.test is None and full.n_blocks == 2 and full.n_dropped == 0
    assert full.sentence() == ("Only 2 blocks (model and study seed) had a value from every tuner at "
                               "100% of the budget; a test needs at least 3: run with "
                               "`--study-seeds 3` or more.")
    assert tuner_verdict(rows) is None
    one = _frame([_study("optuna", seed, [(0.9, 1.0)]) for seed in range(3)])
    assert tuner_verdict(one) is None
    lines = tuner_comparison_section(one, Path("."))
    assert lines[:3] == ["### Which tuner wins", "", "Only one tuner (optuna) ran studies, so there is "
                         "no tuner to compare it with: add another to `--tuner` (e.g. `random`, the "
                         "random-search baseline)."]
    assert _table(lines, "optuna") == ["optuna", "—", "—", "0.00"]
    none = tuner_comparison_section(typed(pd.DataFrame([{**_study("optuna", 0, [(0.9, 1.0)])[0],
                                                         "trial": "final"}])),
                                    Path("."))
    assert none == ["### Which tuner wins", "", "No tuning trials were recorded for this dataset, so "
                    "there is no tuner to compare.", ""]


def test_section_with_two_tuners(tmp_path: Path) -> None:
    lines = tuner_comparison_section(_frame(_paired_six()), tmp_path)
    text = "\n".join(lines)
    assert lines[0] == "### Which tuner wins"
    assert "Equal budgets: logreg 4.00 CPU-s (the CPU-seconds every tuner's median study reached)." in text
    assert _table(lines, "100%") == [
        "100%", "Wilcoxon signed-rank", "W=0", "0.0312", "6 (0 dropped)",
        "optuna vs random: Wilcoxon W=0, p=0.0312 over 6 paired studies: optuna better beyond "
        "chance at 5%."]
    assert _table(lines, "25%")[1:5] == ["Wilcoxon signed-rank", "W=0", "1.00", "6 (0 dropped)"]
    # mean ranks at 25%, 50%, 100%
    assert _table(lines, "optuna")[:4] == ["optuna", "1.50", "1.50", "1.00"]
    assert _table(lines, "random")[:4] == ["random", "1.50", "1.50", "2.00"]
    # Both beat 0.90 + sqrt(0.09/1000) = 0.9095 at trial 3 (4 CPU-s, the budget, so it adds no
    # area). AUC: 0.90 from 1 CPU-s, scaled from 0.89 to the block's best 0.92 .. 0.97, over 3 of the
    # 4 CPU-s: mean over seeds of 0.75 * 0.01 / (0.03 .. 0.08).
    auc = float(np.mean([0.75 * 0.01 / (0.03 + 0.01 * s) for s in range(6)]))
    per_tuner = [line for line in lines if line.startswith("| optuna") and "of 6" in line]
    assert [c.strip() for c in per_tuner[0].strip("|").split("|")] == ["optuna", "4.00", "6 of 6",
                                                                       f"{auc:#.3g}"]
    assert f"{auc:#.3g}" == "0.152"
    assert "tuner-cd-" not in text and not list(tmp_path.iterdir())


def test_section_draws_the_cd_diagram_with_three_tuners(tmp_path: Path) -> None:
    lines = tuner_comparison_section(_frame(_three_tuners()), tmp_path)
    png = tmp_path / "tuner-cd-mnist-5k.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    height, width, _ = matplotlib.image.imread(png).shape
    assert height > 50 and width > 200
    assert "![Critical-difference diagram of the tuners on mnist-5k](tuner-cd-mnist-5k.png)" in lines
    assert _table(lines, "100%")[:5] == ["100%", "Friedman, Nemenyi post-hoc", "χ²=4.50", "0.105",
                                         "4 (0 dropped)"]
    assert any("the critical difference CD = 1.66 " in line for line in lines)
    assert _table(lines, "a – c") == ["a – c", "1.50", "0.0855"]
    assert _table(lines, "a")[:2] == ["a", "1.25"]
    # at 25% and 50% no trial had ended (each ends at the 1-CPU-s span): every block dropped
    assert _table(lines, "25%")[1:5] == ["none", "—", "—", "0 (4 dropped)"]
    assert _table(lines, "25%")[5].startswith("No block (model and study seed) had a value from every "
                                              "tuner at 25% of the budget (4 dropped: ")
    assert [p.name for p in tmp_path.iterdir()] == ["tuner-cd-mnist-5k.png"]


def test_pooled_over_datasets(tmp_path: Path) -> None:
    """Three paired studies per dataset are not enough for 5% (p = 2/8 = 0.25 in each), the six
    pooled are (p = 2/64); one dataset gives no pooled section."""
    first = _paired_six("mnist-5k", range(3))
    second = _paired_six("idx:/data/digits", range(3))
    rows = _frame(first + second)
    for dataset in ("mnist-5k", "idx:/data/digits"):
        alone = compare_at_fractions(blocks(rows[rows["dataset"] == dataset]))[-1]
        assert alone.p_value == pytest.approx(0.25) and alone.n_blocks == 3
        assert alone.sentence().endswith("not significant at 5% (with fewer than 6 paired studies "
                                         "Wilcoxon cannot reach 5%).")
    lines = tuner_comparison_across(rows, tmp_path)
    assert lines[0] == "## Which tuner wins, over all datasets"
    assert _table(lines, "100%")[:5] == ["100%", "Wilcoxon signed-rank", "W=0", "0.0312", "6 (0 dropped)"]
    assert tuner_comparison_across(_frame(first), tmp_path) == []
    assert not list(tmp_path.iterdir())
    # three tuners on two datasets: 8 blocks, the pooled diagram
    lines = tuner_comparison_across(_frame(_three_tuners() + _three_tuners("idx:/data/digits")), tmp_path)
    assert _table(lines, "100%")[4] == "8 (0 dropped)"
    assert "![Critical-difference diagram of the tuners over all datasets](tuner-cd-all-datasets.png)" \
        in lines
    assert (tmp_path / "tuner-cd-all-datasets.png").read_bytes()[:8] == PNG_MAGIC
