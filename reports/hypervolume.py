"""The hypervolume curves of one dataset: for studies of two objectives (``--objectives accuracy,
fit-cpu`` or ``accuracy,predict-ms``), how much of the accuracy-against-cost plane each study's
trials had covered against the CPU-seconds tuning had spent.

The hypervolume of a set of trials is the area they dominate (validation accuracy up, cost down)
above a fixed reference point: accuracy 0 and the worst (highest) cost of any finished trial of the
model's two-objective studies on the dataset with that cost, every tuner and study seed, so that
their curves compare. It is shown as a share of the box from (cost 0, accuracy 0) to (that worst
cost, 100%): 100% would be a trial at 100% that cost nothing. With two objectives the area is a
sweep over the trials sorted by cost (:func:`hypervolume`). A section of studies of one objective
has nothing to say and no lines, so single-objective reports stay as they were.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from digitbench.benchmark.payloads import study_summary
from digitbench.benchmark.settings import FIT_CPU, OBJECTIVE_COSTS
from digitbench.benchmark.store import Status
from digitbench.benchmark.tuning.front import COST_LABELS
from digitbench.reports import plots
from digitbench.reports.format import natural_key, num
from digitbench.reports.section import DatasetScope, Section, has_finals


def hypervolume(points: Iterable[tuple[float, float]], reference_cost: float) -> float:
    """The area the ``(accuracy, cost)`` points dominate (accuracy up, cost down) above accuracy 0
    and below ``reference_cost``: a sweep over the points sorted by cost, each strip as high as the
    most accurate point at most that costly. Points at or above the reference cost add nothing."""
    swept = sorted((cost, accuracy) for accuracy, cost in points if cost < reference_cost)
    ends = [cost for cost, _ in swept[1:]] + [reference_cost]
    area, best = 0.0, 0.0
    for (cost, accuracy), end in zip(swept, ends[:len(swept)], strict=True):
        best = max(best, accuracy)
        area += best * (end - cost)
    return area


@dataclass(frozen=True)
class Hypervolumes:
    """Per panel (a model, and its cost where the dataset's studies had two), per tuner, each
    study's ``(cumulative tuning CPU-s, hypervolume share so far)``; and each panel's reference cost
    with its label."""

    curves: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]]
    references: dict[str, tuple[float, str]]


def _costs(study: pd.DataFrame, objective: str) -> pd.Series:
    """Each trial's cost as ``objective`` measures it: fit CPU-s, or predict CPU ms per image scored
    (the images each trial of the study was scored on)."""
    if objective == FIT_CPU:
        return study["fit_cpu_s"]
    images = study_summary(study["tuning"].iloc[0]).images_scored
    return 1000 * study["predict_cpu_s"] / images if images else pd.Series(np.nan, index=study.index)


def _hypervolumes(scope: DatasetScope) -> Hypervolumes:
    trials = scope.trials
    if trials.empty:
        return Hypervolumes({}, {})
    objectives = trials["tuning"].map(lambda cell: study_summary(cell).objectives)
    two = trials[objectives.map(lambda o: o is not None and len(o) == 2)].copy()
    if two.empty:
        return Hypervolumes({}, {})
    two["objective"] = objectives[two.index].map(lambda o: o[1])
    two["cost"] = np.nan
    for _, study in two.groupby(["model", "tuner", "seed"]):
        two.loc[study.index, "cost"] = _costs(study, study["objective"].iloc[0])
    several = two["objective"].nunique() > 1
    curves: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]] = {}
    references: dict[str, tuple[float, str]] = {}
    for (model, objective), group in sorted(two.groupby(["model", "objective"]),
                                            key=lambda item: natural_key(item[0][0])):
        finished = group[(group["status"] == Status.OK) & group["val"].notna() & group["cost"].notna()]
        if finished.empty:
            continue
        reference = float(finished["cost"].max())
        panel = f"{model} ({objective})" if several else model
        references[panel] = (reference, COST_LABELS[OBJECTIVE_COSTS[objective]])
        for (tuner, _), study in sorted(group.groupby(["tuner", "seed"]),
                                        key=lambda item: (item[0][0], natural_key(item[0][1]))):
            study = study.sort_values("number", kind="stable")
            done = (study["status"] == Status.OK) & study["val"].notna() & study["cost"].notna()
            seen: list[tuple[float, float]] = []
            shares = []
            for ok, accuracy, cost in zip(done, study["val"], study["cost"], strict=True):
                if ok:
                    seen.append((float(accuracy), float(cost)))
                shares.append(hypervolume(seen, reference) / reference if seen and reference > 0
                              else np.nan)
            curves.setdefault(panel, {}).setdefault(tuner, []).append(
                (study["cpu_s"].cumsum().to_numpy(float), np.array(shares, dtype=float)))
    return Hypervolumes(curves, references)


def _hypervolume_lines(found: Hypervolumes, scope: DatasetScope) -> list[str]:
    if not found.curves:
        return []
    name = f"hypervolume-{scope.slug}.png"
    plots.tuning_curves(found.curves, f"Hypervolume of the tuning fronts on {scope.dataset}",
                        scope.run_dir / name, ylabel="Hypervolume so far, % of the box")
    references = "; ".join(f"{panel}: {num(cost)} {label}" for panel, (cost, label)
                           in found.references.items())
    return ["### Hypervolume of the two-objective studies", "",
            f"![Hypervolume of the tuning fronts on {scope.dataset}]({name})", "",
            "Each two-objective study's hypervolume (`--objectives`: validation accuracy up, cost "
            "down) after each trial against the CPU-seconds tuning had spent (fit and predict of "
            "every trial in trial order), one panel per model, one line per tuner (with several "
            "study seeds: their median, the band from the lowest to the highest). The hypervolume "
            "is the area of the accuracy-cost plane the finished trials dominate, above a fixed "
            "reference point: accuracy 0 and the worst cost of any finished trial of the model's "
            "studies on this dataset, every tuner's, so that the tuners' lines compare; it is "
            "shown as a share of the box from (cost 0, accuracy 0) to (that cost, 100%), where "
            "100% would be a trial that is always right and costs nothing. A line that rises found "
            "trials that are more accurate, cheaper, or both. Reference costs: "
            f"{references}.", ""]


HYPERVOLUME = Section("hypervolume", _hypervolumes, _hypervolume_lines, applies=has_finals)
