"""The best model for your budget: per dataset, for fit-CPU budgets (and predict-time budgets) spread
over the measured range, the configuration that scored highest on validation among the finals whose
measured cost is within the budget, with its test accuracy and what the next budget up buys.

A *configuration* is one (model, tuner, refit trial): the primary final of a contender (the trial its
study chose, or the defaults) or an extra final (the cheapest trial within one standard error, a point
of the study's front; ``refit_trial`` set), its seeds pooled. Its cost is the median over its seeds of
the fit CPU-seconds, or of the predict CPU-milliseconds per test image. Its validation score is the
trial's that it refits (``refit_val_accuracy``; for rows written before extra finals, the primary
final's ``chosen_val_accuracy``); the defaults of tuner ``none`` take the score of trial 0 (the
defaults) of a study of the same model, where one ran; a configuration with no validation score is
ranked below every scored one. Choices are made on validation only: the test set is read once per
final, to report the choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from digitbench.benchmark.payloads import study_summary
from digitbench.benchmark.results import TRIAL, extra_finals
from digitbench.benchmark.store import Status
from digitbench.reports.format import DASH, code, contender_labels, md_table, num, p_text, pct, points
from digitbench.reports.paired import Skip, compare_rows
from digitbench.reports.section import DatasetScope, Section, has_finals
from digitbench.reports.stats import (
    ACCURACY_RULE,
    AccuracyInterval,
    PairedComparison,
    seeds_accuracy_interval,
)
from digitbench.reports.table import DEFAULTS, FINAL

#: The cost measures a budget can be in: configuration attribute -> how the report names it.
MEASURES = {"fit_cpu_s": "fit CPU-s", "predict_ms": "predict ms per image"}
#: Budgets per measure: geometric steps from the cheapest configuration's cost to the costliest's.
BUDGET_STEPS = 6


@dataclass(frozen=True, eq=False)
class Configuration:
    """One configuration's finals (one row per seed) and what the budget table reads of them."""

    label: str                      # the contender's label, with the trial where it has several
    contender: str                  # the contender's label (:func:`reports.format.contender_labels`)
    model: str
    tuner: str
    trial: int | None               # the trial it refits; None: the defaults of tuner none
    extra: bool                     # an extra final (refit_trial set), not a contender's primary one
    rows: pd.DataFrame
    val_accuracy: float | None
    fit_cpu_s: float | None         # median over seeds
    predict_ms: float | None        # median over seeds, CPU milliseconds per test image
    test: AccuracyInterval
    scored_on: str | None = None    # the images its validation score was measured on

    def cost(self, measure: str) -> float | None:
        return getattr(self, measure)


@dataclass(frozen=True, eq=False)
class Step:
    """One budget: the configuration chosen within it (None where none fits), and what the next
    budget up's choice gains over it on the test set (paired, per shared seed; ``why`` says why
    there is no comparison; both None where the next budget chooses the same or there is none)."""

    budget: float
    choice: Configuration | None
    next_gain: list[tuple[str, PairedComparison]] | None = None
    why: str | None = None


@dataclass(frozen=True, eq=False)
class Budgets:
    configurations: list[Configuration]
    steps: dict[str, list[Step]]  # measure -> its budgets, cheapest first


def final_configurations(rows: pd.DataFrame) -> list[Configuration]:
    """Every configuration of one dataset's typed rows with a finished final on the whole training
    part, in order of first appearance."""
    finals = rows[(rows["kind"] == FINAL) & (rows["status"] == Status.OK) & rows["test_accuracy"].notna()]
    finals = finals.assign(_refit=finals["refit_trial"] if "refit_trial" in finals else pd.NA,
                           _extra=extra_finals(finals))
    finals = finals.drop_duplicates(["model", "tuner", "_refit", "seed"], keep="last")
    groups = list(finals.groupby(["model", "tuner", "_refit"], sort=False, dropna=False))
    labels = contender_labels([(model, tuner) for (model, tuner, _), _ in groups])
    several = {label for label in labels if labels.count(label) > 1}
    found = []
    for ((model, tuner, _), group), label in zip(groups, labels, strict=True):
        tuning = study_summary(group["tuning"].iloc[-1])
        extra = bool(group["_extra"].iloc[0])
        trial = int(group["_refit"].iloc[0]) if extra else tuning.chosen_trial
        if tuner == DEFAULTS:
            trial = None
        val = tuning.refit_val_accuracy if tuning.refit_val_accuracy is not None else (
            None if extra else tuning.chosen_val_accuracy)
        scored_on = tuning.scored_on if val is not None else None
        if tuner == DEFAULTS and val is None:
            val, scored_on = _defaults_score(rows, model)
        n_test = group["n_test"].dropna()
        predict = 1000 * group["predict_cpu_s"] / group["n_test"]
        found.append(Configuration(
            label + (f", trial {trial}" if label in several and trial is not None else ""), label, model,
            tuner, trial, extra, group,
            val, _median(group["fit_cpu_s"]), _median(predict),
            seeds_accuracy_interval(group["test_accuracy"].to_numpy(float),
                                    float(n_test.iloc[0]) if len(n_test) else None), scored_on))
    return found


def _median(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(values.median()) if len(values) else None


def _defaults_score(rows: pd.DataFrame, model: str) -> tuple[float | None, str | None]:
    """The validation accuracy of trial 0 of a study of ``model`` that started from its defaults
    (the first such study in the rows, study seed 0 first) and the images that scored it; None
    where none ran."""
    trials = rows[(rows["kind"] == TRIAL) & (rows["model"] == model) & (rows["status"] == Status.OK)
                  & rows["val_accuracy"].notna()]
    for _, row in trials.sort_values("seed", kind="stable").iterrows():
        study = study_summary(row["tuning"])
        if int(row["trial"]) == 0 and study.from_defaults:
            return float(row["val_accuracy"]), study.scored_on
    return None, None


def _scoring_note(configurations: list[Configuration]) -> str:
    """A sentence where the validation scores compared were measured on different images (with
    ``--cv``, the LeNets' on the validation part and the other models' by folds); else nothing."""
    models: dict[str, list[str]] = {}
    for c in configurations:
        if c.scored_on is not None and c.model not in models.setdefault(c.scored_on, []):
            models[c.scored_on].append(c.model)
    if len(models) < 2:
        return ""
    sets = "; ".join(f"{', '.join(code(m) for m in names)} {where}" for where, names in models.items())
    return (f" The validation scores compared were measured on different images ({sets}): each "
            "estimates the same accuracy with its own error and they are not paired, so read close "
            "scores from different sets as a tie; the last column's test on the test images tells "
            "such choices apart.")


def budgets_of(measure: str, configurations: list[Configuration]) -> list[float]:
    """:data:`BUDGET_STEPS` budgets in geometric steps over the configurations' measured costs, from
    the cheapest (positive) to the costliest; one where they all cost the same."""
    costs = np.array([c.cost(measure) for c in configurations if c.cost(measure) is not None], float)
    positive = costs[costs > 0]
    if positive.size == 0:
        return [float(costs.max())] if costs.size else []
    low, high = float(positive.min()), float(positive.max())
    return [high] if low == high else [float(b) for b in np.geomspace(low, high, BUDGET_STEPS)]


def best_within(budget: float, measure: str, configurations: list[Configuration]) -> Configuration | None:
    """The configuration whose trial scored highest on validation among those whose cost is within
    ``budget``; ties (and the unscored, ranked last) go to the cheaper, then to the first listed.
    The test accuracy plays no part."""
    within = [c for c in configurations if c.cost(measure) is not None
              and c.cost(measure) <= budget * (1 + 1e-9)]
    if not within:
        return None
    return max(within, key=lambda c: (c.val_accuracy is not None, c.val_accuracy or 0.0, -c.cost(measure)))


def _steps(measure: str, configurations: list[Configuration], scope: DatasetScope) -> list[Step]:
    chosen = [(b, best_within(b, measure, configurations)) for b in budgets_of(measure, configurations)]
    steps = []
    for i, (budget, choice) in enumerate(chosen):
        following = chosen[i + 1][1] if i + 1 < len(chosen) else None
        if choice is None or following is None or following is choice:
            steps.append(Step(budget, choice))
            continue
        try:
            steps.append(Step(budget, choice, compare_rows(scope.run_dir, following.rows, choice.rows)))
        except Skip as why:
            steps.append(Step(budget, choice, why=str(why)))
    return steps


def _budgets(scope: DatasetScope) -> Budgets:
    configurations = final_configurations(scope.rows)
    return Budgets(configurations, {m: _steps(m, configurations, scope) for m in MEASURES})


def _next(step: Step) -> str:
    if step.why is not None:
        return f"not compared: {step.why}"
    if step.next_gain is None:
        return DASH
    seed, first = step.next_gain[0]
    return (f"{points(first.difference)} points (seed {seed}, McNemar exact p = {p_text(first.p_value)})")


def _merged(steps: list[Step]) -> list[tuple[str, Step]]:
    """Consecutive budgets with the same choice as one row: the budgets it covers (``24.5–56.3``)
    and its last step, whose next budget up chooses something else."""
    groups: list[list[Step]] = []
    for step in steps:
        if groups and groups[-1][-1].choice is step.choice:
            groups[-1].append(step)
        else:
            groups.append([step])
    return [(num(g[0].budget) if len(g) == 1 else f"{num(g[0].budget)}–{num(g[-1].budget)}", g[-1])
            for g in groups]


def _budgets_lines(found: Budgets, scope: DatasetScope) -> list[str]:
    if len(found.configurations) < 2:
        return []
    lines = ["### The best model for your budget", ""]
    for measure, name in MEASURES.items():
        steps = [s for s in found.steps[measure] if s.choice is not None]
        if not steps:
            continue
        rows = [[budget, code(s.choice.label),
                 pct(s.choice.val_accuracy) if s.choice.val_accuracy is not None else DASH,
                 num(s.choice.cost(measure)), f"{pct(s.choice.test.mean)} [{100 * s.choice.test.low:.2f}–"
                 f"{100 * s.choice.test.high:.2f}]", _next(s)] for budget, s in _merged(steps)]
        lines += md_table([f"{name} budget", "best on validation within it", "val accuracy", name,
                           "test accuracy [95%]", "the next budget up buys"], rows, "rlrrrl") + [""]
    return lines + [
        f"{len(found.configurations)} configurations finished here: each contender's final and its "
        "extra finals (the cheapest trial within one standard error of the best, the points of its "
        "study's front), each over its seeds. Budgets are "
        f"{BUDGET_STEPS} geometric steps from the cheapest configuration's cost to the costliest's "
        "(median over seeds: fit CPU-seconds; predict CPU-milliseconds per test image). Within each "
        "budget the choice is the configuration whose trial scored highest on validation (the "
        "defaults of tuner `none`: trial 0 of a study of the model, where one ran; with no "
        "validation score, last); a row covers the budgets (a–b) that choose the same; the test set "
        "was not used to choose, and each final was tested "
        f"once. Test accuracy is the mean over seeds with its {ACCURACY_RULE}. The last column is "
        "the next budget's choice minus this one on the test images of the first seed both share, "
        f"with McNemar's exact test.{_scoring_note(found.configurations)}", ""]


BUDGETS = Section("budgets", _budgets, _budgets_lines, anchor="budgets", applies=has_finals)
