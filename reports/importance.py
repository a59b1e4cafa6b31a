"""The report's "Which parameters mattered" section: per model and tuner, the fANOVA importances of
:mod:`reports.fanova` (see there for studies, the inferred search space and pooling), as a figure
and one line each. The summary names the top parameters from the same result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from digitbench.reports import plots
from digitbench.reports.fanova import (
    FANOVA_SEED,
    MIN_TRIALS,
    POOLED,
    SHOWN_MIN,
    Group,
    Ranked,
    StudyResult,
    shown,
    study_results,
    summarise,
)
from digitbench.reports.format import code, contender_labels
from digitbench.reports.section import DatasetScope, Section, has_trials

#: Parameters per (model, tuner) that :func:`top_parameters` returns at most.
TOP = 3


@dataclass(frozen=True)
class Importances:
    """Per (model, tuner): each study's fANOVA result (:func:`reports.fanova.study_results`) and
    their summary (:func:`reports.fanova.summarise`: the ranked parameters, how many studies have
    importances and their finished trials)."""

    studies: dict[Group, list[StudyResult]]
    summaries: dict[Group, tuple[Ranked, int, int]]

    @property
    def ranked(self) -> dict[Group, tuple[Ranked, int]]:
        """The (model, tuner) pairs with importances: their ranked parameters and studies."""
        return {group: (table, count) for group, (table, count, _) in self.summaries.items() if count}


def importances(scope: DatasetScope) -> Importances:
    """The importances of one dataset's tuning trials (finals are ignored)."""
    studies = study_results(scope.trials)
    return Importances(studies, {group: summarise(results) for group, results in studies.items()})


def top_parameters(found: Importances) -> dict[Group, list[tuple[str, float]]]:
    """(model, tuner) -> its most important parameters with their (mean) importance, largest
    first: at most :data:`TOP`, those of at least :data:`~reports.fanova.SHOWN_MIN` (always the
    first). Only the model-tuner pairs with a study that has importances are keys."""
    return {group: [(name, mean) for name, mean, _, _ in shown(table)[:TOP]]
            for group, (table, _) in found.ranked.items()}


def _line(group: Group, results: list[StudyResult], summary: tuple[Ranked, int, int]) -> str:
    model, tuner = group
    table, studies, n = summary
    counts = [c for _, c, _ in results]
    if not studies:
        reasons = {why for _, _, why in results}
        if reasons == {"too few"}:
            if len(results) == 1:
                return (f"- {code(model)} ({tuner}): {counts[0]} finished trials, fewer than the "
                        f"{MIN_TRIALS} an importance needs.")
            return (f"- {code(model)} ({tuner}): at most {max(counts)} finished trials in each of "
                    f"its {len(results)} studies, fewer than the {MIN_TRIALS} an importance needs.")
        what = f"{sum(counts)} finished trials" + (f" in {len(results)} studies" if len(results) > 1 else "")
        if "untuned" in reasons and "flat" not in reasons:
            why = "every finished trial trained with the same parameters, so none can be ranked"
        elif "flat" in reasons and "untuned" not in reasons:
            why = "every finished trial reached the same validation accuracy, so no parameter mattered"
        else:
            why = ("no study had both tuned parameters and validation accuracies that differed, "
                   f"or {MIN_TRIALS} finished trials")
        return f"- {code(model)} ({tuner}, {what}): {why}."
    params = shown(table)
    pooled = results[0][2].startswith(POOLED)
    if pooled:
        head = (f"- {code(model)} ({tuner}, {n} trials pooled over its {results[0][2].split()[-1]} "
                f"studies, each with fewer than {MIN_TRIALS}): ")
        listed = ", ".join(f"{name} {mean:.2f}" for name, mean, _, _ in params)
        note = "fANOVA importance for validation accuracy, the study seeds' trials taken together"
    elif studies == 1:
        head = f"- {code(model)} ({tuner}, {n} trials): "
        listed = ", ".join(f"{name} {mean:.2f}" for name, mean, _, _ in params)
        note = "fANOVA importance for validation accuracy"
    else:
        head = f"- {code(model)} ({tuner}, {studies} studies, {n} trials): "
        listed = ", ".join(f"{name} {mean:.2f} ({low:.2f}–{high:.2f})" for name, mean, low, high in params)
        note = ("fANOVA importance for validation accuracy, mean over the studies with the lowest "
                "and highest in brackets")
    if len(params) < len(table):
        note += f"; the rest < {SHOWN_MIN:.2f}"
    skipped = len(results) - studies
    if skipped:
        note += (f"; {skipped} of its {len(results)} studies had no importances (fewer than "
                 f"{MIN_TRIALS} finished trials, or nothing that varied)")
    return f"{head}{listed} ({note})"


def _figure(summaries: dict[Group, tuple[Ranked, int]],
            title: str, path: Path) -> Path:
    """Horizontal bars of the (mean) importances, one panel per model and tuner, with the
    lowest-highest range over the studies as error bars where there are several."""
    labels = contender_labels(summaries)
    heights = [max(len(table), 1) for table, _ in summaries.values()]
    fig, axes = plt.subplots(len(summaries), 1, squeeze=False, sharex=True,
                             figsize=(6.4, 0.9 + 0.32 * sum(heights) + 0.45 * len(summaries)),
                             gridspec_kw={"height_ratios": heights})
    for ax, label, (table, studies) in zip(axes[:, 0], labels, summaries.values(), strict=True):
        names = [t[0] for t in table][::-1]
        means = np.array([t[1] for t in table][::-1])
        y = np.arange(len(names))
        if studies > 1:
            lows = np.array([t[2] for t in table][::-1])
            highs = np.array([t[3] for t in table][::-1])
            ax.barh(y, means, color="tab:blue", xerr=[means - lows, highs - means],
                    error_kw={"ecolor": "0.3", "capsize": 3, "lw": 1})
        else:
            ax.barh(y, means, color="tab:blue")
        ax.set_yticks(y, names, fontsize=8)
        suffix = f", mean of {studies} studies" if studies > 1 else ""
        ax.set_title(f"{label}{suffix}", fontsize=9, loc="left")
        ax.set_xlim(0, 1)
        ax.grid(axis="x", color="0.9")
        ax.set_axisbelow(True)
    axes[-1, 0].set_xlabel("fANOVA importance for validation accuracy (sums to 1 per study)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))  # half an inch for the title
    return plots.save_png(fig, path)


def _importance_lines(found: Importances, scope: DatasetScope) -> list[str]:
    """``### Which parameters mattered``: a figure ``importance-{slug}.png`` of the fANOVA
    importances per model and tuner, and one line per model and tuner."""
    lines = ["### Which parameters mattered", ""]
    if not found.studies:
        return lines + ["No tuning trials were recorded for this dataset, so there are no parameter "
                        "importances.", ""]
    text = [_line(group, results, found.summaries[group]) for group, results in found.studies.items()]
    ranked = found.ranked
    if not ranked:
        return lines + [f"No study had the {MIN_TRIALS} finished trials (status ok, with a "
                        "validation accuracy) and the varied parameters and accuracies a parameter "
                        "importance needs:", "", *text, ""]
    name = f"importance-{scope.slug}.png"
    title = f"Which parameters mattered on {scope.dataset}"
    _figure(ranked, title, Path(scope.run_dir) / name)
    caption = ("fANOVA importance of each tuned parameter for validation accuracy (Optuna's "
               f"`FanovaImportanceEvaluator`, seed {FANOVA_SEED}), from the trials of each study "
               "(model, tuner, study seed) that finished with a validation accuracy; a study needs "
               f"{MIN_TRIALS}. A parameter counts as tuned where its value differed between "
               "trials; the importances of a study sum to 1. Where a model and tuner have several "
               "studies (`--study-seeds`), the bar is the mean over them and the whisker spans the "
               "lowest to the highest.")
    return lines + [f"![{title}]({name})", "", caption, "", *text, ""]


IMPORTANCE = Section("importance", importances, _importance_lines, anchor="importance",
                     applies=has_trials)
