"""Figure sections of one dataset in ``report.md``: accuracy against CPU time with the Pareto front,
tuning curves, and training curves by epoch.

Each section's analysis gathers the figure's data; its rendering writes the PNG beside the report
(named from the dataset slug) and returns its markdown; where the data for a figure are missing it
returns a sentence saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from digitbench.benchmark.payloads import study_summary
from digitbench.reports import plots
from digitbench.reports.budget_table import BUDGETS, MEASURES, Configuration
from digitbench.reports.format import contender_labels, md_table, natural_key, num, pct
from digitbench.reports.section import DatasetScope, Section, has_finals
from digitbench.reports.stats import ACCURACY_RULE, best_at, pareto_optimal
from digitbench.reports.table import DEFAULTS, as_dict
from digitbench.reports.tuner_stats import FRACTIONS, common_span

Curves = dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]]  # model -> tuner -> studies

# -- accuracy against CPU time ---------------------------------------------------------------


@dataclass(frozen=True)
class Pareto:
    """Each configuration of the budget table (:mod:`reports.budget_table`) and, per cost measure,
    which of those with that cost are on the envelope: no other is at most as costly and at least as
    accurate on the test set (a description of what was measured; choices are made on validation)."""

    configurations: list[Configuration]
    optimal: dict[str, list[bool]]  # measure -> one per configuration with that cost, in order

    def costed(self, measure: str) -> list[Configuration]:
        return [c for c in self.configurations if c.cost(measure) is not None]


def _pareto(scope: DatasetScope) -> Pareto:
    configurations = scope.analysed(BUDGETS).configurations
    found = Pareto(configurations, {})
    for measure in MEASURES:
        costed = found.costed(measure)
        found.optimal[measure] = pareto_optimal([c.cost(measure) for c in costed],
                                                [c.test.mean for c in costed])
    return found


def _panel(found: Pareto, measure: str) -> plots.FrontPanel:
    """One panel of the figure: each contender's configurations (its front), the envelope."""
    costed = found.costed(measure)
    lines: dict[str, list[tuple[float, float, float, float, bool]]] = {}
    for c in costed:
        lines.setdefault(c.contender, []).append((c.cost(measure), c.test.mean, c.test.low, c.test.high,
                                                  not c.extra))
    envelope = [(c.cost(measure), c.test.mean) for c, on in zip(costed, found.optimal[measure], strict=True)
                if on]
    return plots.FrontPanel(f"{MEASURES[measure]} (median over seeds, log scale)", lines, envelope)


def _pareto_lines(found: Pareto, scope: DatasetScope) -> list[str]:
    lines = ["### Accuracy against CPU time", ""]
    fit = found.costed("fit_cpu_s")
    if not fit:
        return lines + ["No fit CPU times were recorded, so there is no accuracy–cost figure.", ""]
    name, dataset = f"pareto-{scope.slug}.png", scope.dataset
    panels = [_panel(found, m) for m in MEASURES if found.costed(m)]
    plots.accuracy_fronts(panels, f"Accuracy against cost on {dataset}", scope.run_dir / name)
    front = sorted((c.fit_cpu_s, c.label, c.test.mean) for c, on in zip(fit, found.optimal["fit_cpu_s"],
                                                                      strict=True) if on)
    listed = ", ".join(f"{lab} ({pct(a)} for {num(cost)} CPU-s)" for cost, lab, a in front)
    several = any(c.extra for c in found.configurations)
    shape = ("each model's finals (its own and the extra ones: the cheapest trial within one standard "
             "error, the points of its study's front) joined by a line, cheapest first, the primary "
             "final the larger marker" if several else "one point per model and tuner")
    return lines + [f"![Accuracy against fit CPU time on {dataset}]({name})", "",
                    f"Mean test accuracy against fit CPU-seconds (left) and predict CPU-milliseconds "
                    f"per test image (right), log scales: {shape}; the bars are the {ACCURACY_RULE}. "
                    "The dashed black step line is the envelope across models: the configurations no other "
                    f"beats on both cost and test accuracy. On fit CPU-s: {listed}.", ""]


PARETO = Section("pareto", _pareto, _pareto_lines, applies=has_finals)


# -- tuning curves ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TuningCurves:
    """Per model and tuner (``tuner (method)``), each study's anytime curve: cumulative tuning
    CPU-s against the best validation accuracy so far; and, per model with two or more tuners,
    what each tuner had found at :data:`reports.tuner_stats.FRACTIONS` of the span every tuner's
    median study reached (``(model, tuner, studies, found at each fraction)``)."""

    had_trials: bool
    curves: Curves
    anytime: list[tuple[str, str, int, list[np.ndarray]]]


def _tuning_curves(scope: DatasetScope) -> TuningCurves:
    trials = scope.trials
    curves: Curves = {}
    for model in sorted(trials["model"].unique(), key=natural_key):
        for tuner in sorted(trials.loc[trials["model"] == model, "tuner"].unique()):
            group = trials[(trials["model"] == model) & (trials["tuner"] == tuner)]
            studies = []
            for seed in sorted(group["seed"].unique(), key=natural_key):
                study = group[group["seed"] == seed].sort_values("number", kind="stable")
                best = study["val"].cummax().ffill()
                if best.notna().any():
                    studies.append((study["cpu_s"].cumsum().to_numpy(float), best.to_numpy(float)))
            if studies:
                method = _method(group["tuning"].iloc[0])
                curves.setdefault(model, {})[f"{tuner} ({method})" if method else tuner] = studies
    anytime = []
    for model, by_tuner in curves.items():
        if len(by_tuner) < 2:
            continue
        span = common_span(by_tuner)
        for tuner, studies in by_tuner.items():
            found = [best_at(studies, np.array([fraction * span]))[:, 0] for fraction in FRACTIONS]
            anytime.append((model, tuner, len(studies), [f[~np.isnan(f)] for f in found]))
    return TuningCurves(not trials.empty, curves, anytime)


def _method(cell: Any) -> str:
    """How a study searched: ``tpe, median pruner`` (Optuna), ``tpe, accuracy & fit-cpu`` (Optuna
    with two objectives, never pruned) or ``bayesian`` (keras-tuner oracle)."""
    tuning = study_summary(cell)
    if tuning.sampler and tuning.objectives and len(tuning.objectives) > 1:
        return f"{tuning.sampler}, {' & '.join(tuning.objectives)}"
    if tuning.sampler:
        pruner = tuning.pruner
        return tuning.sampler + (f", {pruner} pruner" if pruner and pruner != "none" else "")
    return str(tuning.oracle or "")


def _tuning_curves_lines(found: TuningCurves, scope: DatasetScope) -> list[str]:
    """Anytime curves per model and tuner, over the repeated studies (``--study-seeds``) with a band,
    and a table of what each tuner had found at equal CPU."""
    lines = ["### Tuning curves", ""]
    if not found.had_trials:
        return lines + ["No tuning trials were recorded for this dataset, so there are no tuning "
                        "curves.", ""]
    curves = found.curves
    if not curves:
        return lines + ["No tuning trial finished with a validation accuracy, so there are no "
                        "tuning curves.", ""]
    name = f"tuning-curves-{scope.slug}.png"
    tuners = sorted({t for by_tuner in curves.values() for t in by_tuner})  # with sampler or oracle
    plots.tuning_curves(curves, f"Tuning curves on {scope.dataset}", scope.run_dir / name)
    most = max(len(s) for by_tuner in curves.values() for s in by_tuner.values())
    caption = ("Best validation accuracy so far against the CPU-seconds tuning had spent (fit and "
               "predict of every trial in trial order, pruned and failed trials included), one "
               "panel per model")
    if most > 1:
        caption += (f"; over {most} studies per tuner with seeds 0..{most - 1} (`--study-seeds`: "
                     "sampler, tuning subsample and trial training seeded alike), the line is their "
                     "median and the band spans the lowest to the highest, drawn from when every "
                     "study had finished a trial")
    if len(tuners) > 1:
        caption += (f", one line per tuner ({', '.join(tuners)}). The tuners scored trials as the "
                    "Tuning table says, so compare their shapes and costs more than their levels.")
    else:
        caption += f" (tuner {tuners[0]})."
    if not any(t.startswith("random") for t in tuners):
        caption += (" No random-search baseline was run: add `random` to `--tuner` for the line "
                    "that says what a tuner buys over random search at equal CPU.")
    return lines + [f"![Tuning curves on {scope.dataset}]({name})", "", caption, ""] + \
        _anytime_table(found.anytime)


def _anytime_table(anytime: list[tuple[str, str, int, list[np.ndarray]]]) -> list[str]:
    """Each tuner's best validation accuracy at the same CPU-seconds, median over the studies with
    the lowest and highest."""
    if not anytime:
        return []
    rows = []
    for model, tuner, studies, at in anytime:
        cells = []
        for found in at:
            if not len(found):
                cells.append("-")
            elif len(found) == 1:
                cells.append(pct(found[0]))
            else:
                cells.append(f"{pct(np.median(found))} ({pct(found.min())}–{pct(found.max())})")
        rows.append([model, tuner, str(studies), *cells])
    headers = ["model", "tuner", "studies", *(f"at {int(100 * f)}% of the span" for f in FRACTIONS)]
    return (["Best validation accuracy each tuner had found at equal tuning CPU-seconds (the span: "
             "the CPU-seconds every tuner's median study reached), median over the studies with "
             "the lowest and highest in brackets (-: no trial had finished by then). Where the "
             "random-search line is level with a tuner's, the tuner bought nothing over random "
             "search at that cost.", ""]
            + md_table(headers, rows, "llrrrr") + [""])


TUNING_CURVES = Section("tuning-curves", _tuning_curves, _tuning_curves_lines, applies=has_finals)


# -- training curves by epoch ----------------------------------------------------------------

def _history(cell: Any, metric: str) -> list[float]:
    values = as_dict(cell).get(metric)
    if not isinstance(values, list) or not all(isinstance(v, int | float) for v in values):
        return []
    return [float(v) for v in values]


def networks(rows: pd.DataFrame) -> set[str]:
    """Models of a typed frame that record trainable parameters or an epoch history in any row."""
    recorded = rows["n_params"].notna() | rows["history"].map(bool)
    return set(rows.loc[recorded, "model"])


@dataclass(frozen=True)
class TrainingCurves:
    """Per network contender (label): the validation accuracy by epoch of the trial its final
    refit, or, without one (tuner none), its first final's training accuracy by epoch.

    Networks are the models whose rows record what only networks record: a count of trainable
    parameters (``n_params``) or an epoch ``history``.
    """

    networks: bool  # whether any contender is a network
    val: dict[str, list[float]]
    train: dict[str, list[float]]


def _training_curves(scope: DatasetScope) -> TrainingCurves:
    board, final, trials = scope.board, scope.final, scope.trials
    shown = board[board["model"].isin(networks(scope.rows))]
    labels = contender_labels(zip(board["model"], board["tuner"], strict=True))
    val: dict[str, list[float]] = {}
    train: dict[str, list[float]] = {}
    for idx, r in shown.iterrows():
        group = final[(final["model"] == r["model"]) & (final["tuner"] == r["tuner"])]
        first = min(group.to_dict("records"), key=lambda g: natural_key(g["seed"]))
        tuning = as_dict(first["tuning"])
        chosen = tuning.get("chosen_trial", tuning.get("best_trial"))
        if r["tuner"] != DEFAULTS and chosen is not None:
            match = trials[(trials["model"] == r["model"]) & (trials["tuner"] == r["tuner"])
                           & (trials["number"] == int(chosen))]
            same_seed = match[match["seed"] == first["seed"]]
            match = same_seed if not same_seed.empty else match
            curve = _history(match["history"].iloc[-1], "val_accuracy") if not match.empty else []
            if curve:
                val[labels[idx]] = curve
                continue
        curve = _history(first["history"], "accuracy")
        if curve:
            train[labels[idx]] = curve
    return TrainingCurves(not shown.empty, val, train)


def _training_curves_lines(found: TrainingCurves, scope: DatasetScope) -> list[str]:
    lines = ["### Training curves by epoch", ""]
    if not found.networks:
        return lines + ["No network (a model recording trainable parameters or epochs) finished on "
                        "this dataset, so there are no learning curves.", ""]
    val, train, dataset = found.val, found.train, scope.dataset
    name = f"learning-curves-{scope.slug}.png"
    if val:
        plots.learning_curves(val, "Validation accuracy, %", f"Training curves by epoch on {dataset}",
                              scope.run_dir / name)
        caption = ("Validation accuracy by epoch of the tuning trial each network's final model "
                   f"refit (its chosen trial): {', '.join(val)}.")
        if train:
            caption += f" Not shown (no tuning trial): {', '.join(train)}."
    elif train:
        plots.learning_curves(train, "Training accuracy, %", f"Training curves by epoch on {dataset}",
                              scope.run_dir / name)
        caption = ("These networks were not tuned, so there is no validation curve: this is the "
                   f"**training** accuracy by epoch of each final model (first seed): {', '.join(train)}.")
    else:
        return lines + ["No epoch histories were recorded for the networks on this dataset "
                        "(results written by an older digitbench, or no history), so there are no "
                        "learning curves.", ""]
    return lines + [f"![Training curves by epoch on {dataset}]({name})", "", caption, ""]


TRAINING_CURVES = Section("training-curves", _training_curves, _training_curves_lines,
                          applies=has_finals)
