"""How accuracy and cost grow with the training set: the ``--train-sizes`` learning curves.

Each point is a final trained on a nested stratified subset (kind SUBSET) or on the whole training
part (kind FINAL) and tested on the same test images. Per model (and tuner), the section fits the
test error as ``a * n^-b + c`` and the fit CPU-s, predict CPU-s per image and multiply-adds per
prediction as ``k * n^e`` (:mod:`reports.scaling_fits`), flags curves whose error rose beyond chance,
checks how well the sizes up to a quarter of the largest predict the largest, and finds the size from
which the best model of the winning family (the most accurate on the most images: the networks, among
the built-ins) overtakes each model of the other families, with McNemar's test there on every seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from digitbench.benchmark.payloads import study_summary
from digitbench.benchmark.results import extra_finals
from digitbench.benchmark.store import Status
from digitbench.reports import plots
from digitbench.reports.format import DASH, code, contender_labels, count, md_table, num, p_text, pct
from digitbench.reports.paired import Skip, compare_seeds
from digitbench.reports.scaling_fits import (
    CostLaw,
    Crossover,
    Extrapolation,
    PowerLaw,
    check_monotone,
    crossover,
    extrapolate,
    fit_cost,
    fit_power_law,
)
from digitbench.reports.section import DatasetScope, Section
from digitbench.reports.stats import (
    ACCURACY_RULE,
    ALPHA,
    AccuracyInterval,
    PairedComparison,
    seeds_accuracy_interval,
)
from digitbench.reports.table import DEFAULTS, FINAL, SUBSET

#: The costs fitted against n: column -> what the table and the figure call it.
COSTS = {"fit_cpu_s": "fit CPU-s", "predict_cpu_per_image": "predict CPU-s per image",
         "macs": "multiply-adds per prediction"}


def curve_points(rows: pd.DataFrame) -> pd.DataFrame:
    """The learning curves' points of one dataset's typed rows: every ok final of the (model, tuner)
    pairs that have subset finals, with n (images trained on), accuracy, error and the costs."""
    finals = rows[rows["kind"].isin([FINAL, SUBSET]) & (rows["status"] == Status.OK)
                  & rows["test_accuracy"].notna() & ~extra_finals(rows)]
    curved = finals.loc[finals["kind"] == SUBSET, ["model", "tuner"]].drop_duplicates()
    points = finals.merge(curved, on=["model", "tuner"])
    points = points.drop_duplicates(["model", "tuner", "seed", "n_train"], keep="last").copy()
    points["n"] = points["n_train"].astype(int)
    points["error"] = 1.0 - points["test_accuracy"]
    points["predict_cpu_per_image"] = points["predict_cpu_s"] / points["n_test"]
    return points.sort_values(["model", "tuner", "n", "seed"]).reset_index(drop=True)


class Curve:
    """One (model, tuner)'s points and what is fitted to them."""

    def __init__(self, model: str, tuner: str, points: pd.DataFrame, label: str) -> None:
        self.model, self.tuner, self.points, self.label = model, tuner, points, label
        self.family = str(points["family"].iloc[0])
        self.sizes = sorted(points["n"].unique())
        self.means = points.groupby("n")["test_accuracy"].mean()
        self.law: PowerLaw | None = fit_power_law(points["n"], points["error"])
        self.costs: dict[str, CostLaw | None] = {c: fit_cost(points["n"], points[c]) for c in COSTS}
        self.extrapolation: Extrapolation | None = extrapolate(points["n"], points["error"])
        n_test = int(points["n_test"].max())
        self.monotone = check_monotone(points["n"], points["error"], n_test)

    @property
    def largest(self) -> int:
        return int(self.sizes[-1])

    def interval(self, n: int) -> AccuracyInterval:
        """The mean accuracy at ``n`` images over the seeds, with the report's interval."""
        at = self.points[self.points["n"] == n]
        return seeds_accuracy_interval(at["test_accuracy"].to_numpy(float), float(at["n_test"].max()))

    def parameters_note(self) -> str:
        chosen = study_summary(self.points["tuning"].iloc[-1]).chosen_trial
        if self.tuner == DEFAULTS:
            return "its defaults"
        trial = "?" if chosen is None else chosen
        return f"what {self.tuner} chose on the whole training part (trial {trial})"


def curves_of(rows: pd.DataFrame) -> list[Curve]:
    points = curve_points(rows)
    groups = dict(list(points.groupby(["model", "tuner"], sort=False)))
    return [Curve(m, t, group, label)
            for ((m, t), group), label in zip(groups.items(), contender_labels(groups), strict=True)]


@dataclass(frozen=True, eq=False)
class Crossing:
    """Where the best model of the winning family overtakes ``other`` (a model of another family),
    and McNemar's test there on every seed (``why``: why there is none; both None where it never
    overtakes it)."""

    other: Curve
    found: Crossover
    compared: list[tuple[str, PairedComparison]] | None = None
    why: str | None = None


@dataclass(frozen=True, eq=False)
class Scaling:
    """The learning curves of one dataset's contenders that have subset finals, with the seeds and
    test images behind them, and the crossovers (:func:`_crossings`)."""

    curves: list[Curve]
    seeds: int
    n_test: int
    winner: Curve
    crossings: list[Crossing]


def has_subsets(scope: DatasetScope) -> bool:
    """The ``applies`` of the section: a model finished and finals ran on ``--train-sizes``."""
    return scope.has_finals and scope.has_subsets


def _scaling(scope: DatasetScope) -> Scaling:
    rows = scope.rows
    curves = curves_of(rows)
    subsets = rows[rows["kind"] == SUBSET]
    winner = max(curves, key=lambda c: (c.largest, c.means.iloc[-1]))
    return Scaling(curves, int(subsets["seed"].nunique()), int(subsets["n_test"].max()), winner,
                   _crossings(winner, curves, scope))


def _crossings(winner: Curve, curves: list[Curve], scope: DatasetScope) -> list[Crossing]:
    """For the best model of the winning family (that of the most accurate model at the largest size)
    against each model of the other families: the size from which it is more accurate, and
    McNemar's test there on every seed. No family is named here: they come from the rows."""
    found = []
    for other in (c for c in curves if c.family != winner.family):
        common = sorted(set(winner.sizes) & set(other.sizes))
        if not common:
            continue
        at = crossover(common, [winner.means[n] for n in common], [other.means[n] for n in common])
        if at.at is None:
            found.append(Crossing(other, at))
            continue
        points = pd.concat([winner.points[winner.points["n"] == at.at],
                            other.points[other.points["n"] == at.at]])
        try:
            compared = compare_seeds(points, scope.run_dir, (winner.model, winner.tuner),
                                     (other.model, other.tuner))
        except Skip as why:
            found.append(Crossing(other, at, why=str(why)))
            continue
        found.append(Crossing(other, at, compared))
    return found


def _scaling_lines(found: Scaling, scope: DatasetScope) -> list[str]:
    """The learning-curves section of one dataset."""
    curves = found.curves
    lines = ["### How accuracy and cost grow with the training set", ""]
    sizes = sorted({n for c in curves for n in c.sizes})
    lines += [f"Every final was also trained on nested stratified subsets of the training part "
              f"({', '.join(count(n) for n in sizes)} images; the smaller inside the larger, drawn by "
              f"each of {found.seeds} seed(s)) and tested on the same {count(found.n_test)} test "
              "images. The parameters are the same at every size: "
              + "; ".join(f"{code(c.label)}: {c.parameters_note()}" for c in curves) + ".", ""]
    lines += _figures(curves, scope.dataset, scope.run_dir, scope.slug)
    lines += _table(curves) + [""] + _notes()
    lines += _crossover_lines(found)
    flagged = [c for c in curves if not c.monotone.monotone]
    for c in flagged:
        where = ", ".join(f"{count(a)} → {count(b)}" for a, b in c.monotone.rises)
        lines.append(f"- {code(c.label)}: **not monotone**, its test error rose beyond chance (more than 2 "
                     f"standard errors) from {where} images; the fit is shown as measured, not smoothed.")
    return lines + ([""] if flagged else [])


def _figures(curves: list[Curve], dataset: str, run_dir: Path, slug: str) -> list[str]:
    accuracy = {c.label: accuracy_series(c) for c in curves}
    cost = {f"{c.label} (e = {_exponent(c.costs['fit_cpu_s'])})":
            (c.sizes, [c.points.loc[c.points["n"] == n, "fit_cpu_s"].mean() for n in c.sizes],
             c.costs["fit_cpu_s"]) for c in curves}
    first = plots.accuracy_against_size(accuracy, f"Test accuracy against training-set size, {dataset}",
                                        run_dir / "figures" / f"{slug}-accuracy-vs-size.png")
    second = plots.cost_against_size(cost, f"Fit CPU-seconds against training-set size, {dataset}",
                                     run_dir / "figures" / f"{slug}-fit-cpu-vs-size.png")
    return [f"![Test accuracy against training-set size]({first.relative_to(run_dir).as_posix()})", "",
            f"Mean test accuracy over seeds at each size; the band is its {ACCURACY_RULE}.", "",
            f"![Fit CPU-seconds against training-set size]({second.relative_to(run_dir).as_posix()})", ""]


def accuracy_series(c: Curve) -> tuple[list[int], list[float], list[float], list[float], PowerLaw | None]:
    """(sizes, mean accuracy, the low and high ends of its interval (the report's rule), the fit)."""
    found = [c.interval(n) for n in c.sizes]
    return c.sizes, [f.mean for f in found], [f.low for f in found], [f.high for f in found], c.law


def _exponent(law: CostLaw | None) -> str:
    if law is None:
        return DASH
    low, high = law.e_interval
    return f"{law.e:.2f}" + (f" [{low:.2f}, {high:.2f}]" if math.isfinite(low) else "")


def _table(curves: list[Curve]) -> list[str]:
    headers = ["model", "sizes", "test accuracy: smallest → largest", "error exponent b [95%]",
               "error floor c", "extrapolation: fit ≤ ¼ largest, predicted − measured",
               *(f"{name} exponent [95%]" for name in COSTS.values()), "at 10× the largest (extrapolated)"]
    body = []
    for c in curves:
        law = c.law
        low, high = law.b_interval if law is not None else (math.nan, math.nan)
        shown = f" [{low:.2f}, {high:.2f}]" if math.isfinite(low) else ""
        b = DASH if law is None else f"{law.b:.2f}{shown}"
        floor = DASH if law is None else pct(law.c)
        ext = c.extrapolation
        extrapolated = DASH if ext is None else (f"{ext.error_points:+.2f} points (fitted up to "
                                                 f"{count(ext.fitted_up_to)}, {pct(ext.predicted)} "
                                                 f"predicted at {count(ext.target)})")
        body.append([code(c.label), f"{count(c.sizes[0])}–{count(c.largest)} ({len(c.sizes)})",
                     f"{pct(c.means.iloc[0])} → {pct(c.means.iloc[-1])}", b, floor, extrapolated,
                     *(_exponent(c.costs[k]) for k in COSTS), _ten_times(c)])
    return md_table(headers, body)


def _ten_times(c: Curve) -> str:
    n = 10 * c.largest
    parts = []
    if c.law is not None:
        parts.append(f"{pct(1.0 - float(c.law.predict(n)))} accuracy")
    fit = c.costs["fit_cpu_s"]
    if fit is not None:
        parts.append(f"{num(float(fit.predict(n)))} fit CPU-s")
    return f"{count(n)} images: " + ", ".join(parts) if parts else DASH


def _notes() -> list[str]:
    return ["Error exponent and floor: the test error fitted as a·n^−b + c over every (size, seed), "
            "with 95% intervals from the fit's covariance. Extrapolation: the same law fitted on the "
            "sizes up to a quarter of the largest predicts the largest; the error says how far to trust "
            "the curve beyond the data (positive: it promised too much). Cost exponents: k·n^e fitted "
            "on log-log axes (1: linear in the images, 2: quadratic), 95% t intervals. The last column "
            "extends both fits to ten times the largest size: a forecast, not a measurement.", ""]


def _crossover_lines(found: Scaling) -> list[str]:
    winner = found.winner
    lines = [f"- {code(winner.label)} overtakes {code(c.other.label)} {c.found.describe()}"
             + _significance(c) + "." for c in found.crossings]
    return ([f"**Crossovers** (the best {code(winner.family)} model, the most accurate on the most "
             "images, against each model of the other families)", ""] + lines + [""]) if lines else []


def _significance(crossing: Crossing) -> str:
    if crossing.why is not None:
        return f" (no paired test: {crossing.why})"
    if crossing.compared is None:
        return ""
    compared = crossing.compared
    significant = sum(r.p_value < ALPHA and r.difference > 0 for _, r in compared)
    per_seed = ", ".join(f"seed {s}: {100 * r.difference:+.2f} points, p {p_text(r.p_value)}"
                         for s, r in compared)
    return (f"; at {count(crossing.found.at)} images it is significantly more accurate (McNemar's "
            f"exact test, p < {ALPHA:g}) on {significant} of {len(compared)} seed(s) ({per_seed})")


SCALING = Section("scaling", _scaling, _scaling_lines, anchor="scaling", applies=has_subsets)
