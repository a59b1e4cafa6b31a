"""The report's "Which tuner wins" sections (per dataset, and pooled over the datasets) and their
critical-difference diagrams, from the statistics of :mod:`reports.tuner_stats` (see there for
blocks, budgets and the tests). The summary's verdict reads the same tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import scikit_posthocs as sp

from digitbench.reports import plots
from digitbench.reports.format import DASH, code, md_table, num
from digitbench.reports.section import DatasetScope, RunScope, Section, has_trials
from digitbench.reports.stats import ALPHA
from digitbench.reports.tuner_stats import Block, percent, tuner_summary, values_at
from digitbench.reports.tuner_tests import TunerTest, compare, compare_at_fractions


@dataclass(frozen=True, eq=False)
class TunerComparison:
    """The blocks of one dataset (or of all), their tuners, the tests (at each fraction of the
    budget with two or more tuners; at 100% alone with one) and, per tuner, the CPU-seconds to beat
    the defaults and the normalised area under the anytime curve (:func:`tuner_summary`)."""

    blocks: list[Block]
    tuners: list[str]
    tests: list[TunerTest]
    summary: pd.DataFrame | None

    @property
    def full(self) -> TunerTest | None:
        """The test at 100% of the budget."""
        return next((t for t in self.tests if t.fraction == 1.0), None)


def analyse_blocks(found: list[Block], *, per_tuner: bool = True) -> TunerComparison:
    """The tests (and, with ``per_tuner``, the per-tuner summary) of ``found``."""
    tuners = sorted({t for b in found for t in b.studies})
    if not found:
        tests = []
    elif len(tuners) >= 2:
        tests = compare_at_fractions(found)
    else:
        tests = [compare(values_at(found, 1.0), 1.0)]
    return TunerComparison(found, tuners, tests, tuner_summary(found) if per_tuner and found else None)


def _tuners(scope: DatasetScope) -> TunerComparison:
    return analyse_blocks(scope.blocks)


def verdict(found: TunerComparison) -> str | None:
    """One sentence for a dataset's summary: the test at 100% of the budget, or None when no test
    is possible (fewer than two tuners or :data:`~reports.tuner_tests.MIN_BLOCKS` blocks)."""
    test = found.full
    if test is None or test.test is None:
        return None
    return f"at the full tuning budget, {test.sentence()}"


def cd_diagram(test: TunerTest, title: str, path: Path) -> Path:
    """The critical-difference diagram of a Friedman test: mean ranks on the axis (1 = best, left),
    tuners that Nemenyi does not tell apart at 5% joined by a bar, the critical difference drawn
    as a bar at the bottom."""
    if test.nemenyi is None:
        raise ValueError("a critical-difference diagram needs a Friedman test with Nemenyi p-values")
    fig, ax = plt.subplots(figsize=(6.4, 1.4 + 0.3 * len(test.tuners)))
    ranks = pd.Series(test.mean_ranks)
    sp.critical_difference_diagram(ranks, test.nemenyi, alpha=ALPHA, ax=ax,
                                   label_fmt_left="{label} ({rank:.2f})",
                                   label_fmt_right="({rank:.2f}) {label}")
    if test.cd is not None:  # below the labels: scikit-posthocs draws it over the tick labels
        bottom, high = ax.get_ylim()
        low = bottom - 0.5
        start = float(ranks.min())
        ax.plot([start, start + test.cd], [low, low], color="black", lw=1.5, clip_on=False)
        ax.plot([start, start], [low - 0.15, low + 0.15], color="black", lw=1.5, clip_on=False)
        ax.plot([start + test.cd] * 2, [low - 0.15, low + 0.15], color="black", lw=1.5, clip_on=False)
        ax.text(start + test.cd + 0.05, low, f"critical difference {test.cd:.2f} (Nemenyi, 5%)",
                va="center", ha="left", fontsize=8)
        ax.set_ylim(low - 0.3, high)
    ax.set_title(title, fontsize=10, pad=18)
    return plots.save_png(fig, path)


def _tests_table(done: Sequence[TunerTest]) -> list[str]:
    rows = []
    for t in done:
        statistic = DASH if t.statistic is None else (
            f"W={t.statistic:g}" if t.test == "Wilcoxon" else f"χ²={num(t.statistic)}")
        test = {"Wilcoxon": "Wilcoxon signed-rank", "Friedman": "Friedman, Nemenyi post-hoc"}.get(
            str(t.test), "none")
        rows.append([percent(t.fraction), test, statistic, num(t.p_value),
                     f"{t.n_blocks} ({t.n_dropped} dropped)", t.sentence()])
    return md_table(["fraction of budget", "test", "statistic", "p", "blocks (dropped)", "verdict"],
                    rows, "rllrrl") + [""]


def _ranks_lines(done: Sequence[TunerTest], name: str, where: str, run_dir: Path) -> list[str]:
    """Mean ranks per fraction, the Nemenyi pairs and critical difference at 100% with its
    diagram (written to ``run_dir / name``)."""
    tested = [t for t in done if t.test is not None]
    if not tested:
        return []
    tuners = tested[0].tuners
    lines = ["Mean rank of each tuner over the blocks (1 = the best accuracy in a block, ties "
             "averaged):", ""]
    lines += md_table(["tuner", *(f"at {percent(t.fraction)}" for t in tested)],
                      [[tuner, *(num(t.mean_ranks[tuner]) for t in tested)] for tuner in tuners],
                      "l" + "r" * len(tested)) + [""]
    full = next((t for t in tested if t.fraction == 1.0), None)
    if full is None or full.test != "Friedman" or full.nemenyi is None:
        return lines
    pairs = [[f"{a} – {b}", num(abs(full.mean_ranks[a] - full.mean_ranks[b])),
              num(float(full.nemenyi.loc[a, b]))]
             for i, a in enumerate(tuners) for b in tuners[i + 1:]]
    lines += [f"Nemenyi at 100% of the budget, over {full.n_blocks} blocks: two tuners differ beyond "
              f"chance at 5% when their mean ranks differ by more than the critical difference CD = "
              f"{num(full.cd)} (q₀.₀₅ · √(k(k+1)/6N), k = {len(tuners)} tuners).", ""]
    lines += md_table(["pair", "mean-rank difference", "Nemenyi p"], pairs, "lrr") + [""]
    title = f"Tuners' mean ranks at 100% of the budget {where}"
    cd_diagram(full, title, run_dir / name)
    lines += [f"![Critical-difference diagram of the tuners {where}]({name})", "",
              "Mean rank of each tuner at 100% of the budget (1 = best, left); tuners joined by a "
              "bar do not differ by Nemenyi at 5%; the bar at the bottom is the critical difference.",
              ""]
    return lines


def _budgets(found: Sequence[Block]) -> str:
    by_model: dict[str, Block] = {}
    for b in found:
        by_model.setdefault(b.model, b)
    parts = []
    for model, b in by_model.items():
        rule = (code("--budget") if b.budget_rule == "budget"
                else "the CPU-seconds every tuner's median study reached")
        parts.append(f"{model} {num(b.budget)} CPU-s ({rule})")
    return "; ".join(parts)


def _tuners_lines(found: TunerComparison, scope: DatasetScope) -> list[str]:
    """``### Which tuner wins`` for one dataset: the tests at 25%, 50% and 100% of the equal budget,
    the mean ranks, the Nemenyi critical difference and its diagram (``tuner-cd-{slug}.png``, with
    three or more tuners), and per tuner the CPU-seconds to beat the defaults by one standard error
    and the normalised area under the anytime curve."""
    lines = ["### Which tuner wins", ""]
    if not found.blocks:
        return lines + ["No tuning trials were recorded for this dataset, so there is no tuner to "
                        "compare.", ""]
    if len(found.tuners) >= 2:
        lines += ["Whether a tuner found better validation accuracy than another beyond chance at "
                  "equal tuning CPU-seconds. A block is one model and study seed "
                  f"({code('--study-seeds')}): studies with the same seed share the tuning subsample "
                  "and folds, so the tuners are paired in it. A tuner's value in a block is the best "
                  "validation accuracy it had found by 25%, 50% and 100% of the model's equal "
                  "budget; a block where some tuner had no finished trial by then is dropped. Two "
                  "tuners: Wilcoxon's signed-rank test (two-sided); three or more: Friedman's test, "
                  f"then Nemenyi's. Equal budgets: {_budgets(found.blocks)}.", ""]
        lines += _tests_table(found.tests) + _ranks_lines(found.tests, f"tuner-cd-{scope.slug}.png",
                                                          f"on {scope.dataset}", scope.run_dir)
    else:
        lines += [found.tests[0].sentence(), ""]
    return lines + _summary_lines(found.summary)


TUNERS = Section("tuners", _tuners, _tuners_lines, anchor="tuners", applies=has_trials)


def _summary_lines(summary: pd.DataFrame | None) -> list[str]:
    if summary is None or summary.empty:
        return []
    n = int(summary["blocks"].iloc[0])
    rows = []
    for tuner, r in summary.iterrows():
        reached = f"{int(r['reached'])} of {int(r['with_defaults'])}" if r["with_defaults"] else DASH
        rows.append([tuner, num(r["cpu_s_to_beat"]), reached, num(r["auc"])])
    lines = [f"Per tuner, over the {n} block{'s' * (n != 1)} every tuner ran a study in. CPU-s to "
             "beat the defaults: the tuning CPU-seconds spent when a trial's validation accuracy "
             "first exceeded the defaults' (trial 0 of a study that started from them) by one "
             "standard error, √(p₀(1−p₀)/n) over the n scored images, median over the blocks that "
             "got there (blocks reached: of those with the defaults' accuracy). Normalised AUC: the "
             "area under the best-so-far curve over the budget, accuracies scaled per block from the "
             "worst (0) to the best (1) trial of any tuner and 0 before a first finished trial, "
             "divided by the budget (1.00: the block's best from the start), mean over the blocks.",
             ""]
    lines += md_table(["tuner", "CPU-s to beat the defaults by 1 SE (median)", "blocks reached",
                       "normalised AUC"], rows, "lrrr") + [""]
    if not int(summary["with_defaults"].max()):
        lines += [f"No study started from the model's defaults ({code('first_trial')}), so there is "
                  "no defaults' accuracy to beat.", ""]
    return lines


def _pooled(run: RunScope) -> TunerComparison:
    """Every dataset's blocks (as their own sections analysed them) pooled."""
    return analyse_blocks([b for scope in run.datasets for b in scope.blocks], per_tuner=False)


def several_datasets(run: RunScope) -> bool:
    """The ``applies`` of the pooled section: two or more datasets have tuning trials."""
    return sum(bool(scope.blocks) for scope in run.datasets) >= 2


def _across_lines(found: TunerComparison, run: RunScope) -> list[str]:
    """The tests pooled over every dataset's blocks, with the mean ranks and (three or more
    tuners) the diagram ``tuner-cd-all-datasets.png``."""
    datasets = list(dict.fromkeys(b.dataset for b in found.blocks))
    lines = ["## Which tuner wins, over all datasets", ""]
    if len(found.tuners) < 2:
        return lines + [found.tests[0].sentence(), ""]
    lines += [f"The tests of the datasets' sections pooled over the blocks (dataset, model and study "
              f"seed) of all {len(datasets)} datasets ({', '.join(code(d) for d in datasets)}), each "
              "at its own model's equal budget.", ""]
    return lines + _tests_table(found.tests) + _ranks_lines(found.tests, "tuner-cd-all-datasets.png",
                                                            "over all datasets", run.run_dir)


TUNERS_ACROSS = Section("tuners-across", _pooled, _across_lines, applies=several_datasets)
