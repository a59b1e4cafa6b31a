"""Figure sections of one dataset in ``report.md``: accuracy against CPU time with the Pareto front,
tuning curves, learning curves and galleries of misclassified digits.

Each function returns the section's markdown lines and writes its PNG beside the report (named
from the dataset slug); where the data for a figure are missing it returns a sentence saying so.
"""

from __future__ import annotations

from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from digitbench.benchmark.store import load_misclassified, load_predictions
from digitbench.reports import plots
from digitbench.reports.format import code, contender_labels, count, md_table, natural_key, num, pct
from digitbench.reports.stats import best_at, pareto_optimal
from digitbench.reports.table import as_dict, trial_rows
from digitbench.reports.tuner_stats import FRACTIONS, common_span

GALLERY_MAX = 40
_READ_ERRORS = (OSError, KeyError, ValueError)


def _labels(board: pd.DataFrame) -> list[str]:
    return contender_labels(zip(board["model"], board["tuner"], strict=True))


def _why(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# -- accuracy against CPU time ---------------------------------------------------------------

def pareto_section(board: pd.DataFrame, dataset: str, run_dir: Path, slug: str) -> list[str]:
    """Mean test accuracy against mean fit CPU-seconds per contender, with the Pareto front."""
    lines = ["### Accuracy against CPU time", ""]
    timed = board[board["fit_cpu_s"].notna()].reset_index(drop=True)
    if timed.empty:
        return lines + ["No fit CPU times were recorded, so there is no accuracy–cost figure.", ""]
    cpu_s, acc = list(timed["fit_cpu_s"]), list(timed["accuracy"])
    optimal = pareto_optimal(cpu_s, acc)
    labels = _labels(timed)
    name = f"pareto-{slug}.png"
    plots.pareto_front(labels, cpu_s, acc, optimal, f"Accuracy against fit CPU time on {dataset}",
                       run_dir / name)
    front = sorted((c, lab, a) for c, lab, a, on in zip(cpu_s, labels, acc, optimal, strict=True) if on)
    listed = ", ".join(f"{lab} ({pct(a)} for {num(c)} CPU-s)" for c, lab, a in front)
    lines += [f"![Accuracy against fit CPU time on {dataset}]({name})", "",
              "Mean test accuracy against mean fit CPU-seconds (log scale), one point per model and "
              "tuner; the red step line joins the Pareto-optimal ones, which no other model beats on "
              f"both cost and accuracy. Pareto-optimal: {listed}.", ""]
    return lines


# -- tuning curves ---------------------------------------------------------------------------

def tuning_curves_section(rows: pd.DataFrame, dataset: str, run_dir: Path, slug: str) -> list[str]:
    """Anytime curves: best-so-far validation accuracy against cumulative tuning CPU-s, per model
    and tuner, over the repeated studies (``--study-seeds``) with a band, and a table of what each
    tuner had found at equal CPU."""
    lines = ["### Tuning curves", ""]
    trials = trial_rows(rows)
    if trials.empty:
        return lines + ["No tuning trials were recorded for this dataset, so there are no tuning "
                        "curves.", ""]
    curves: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]] = {}
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
    if not curves:
        return lines + ["No tuning trial finished with a validation accuracy, so there are no "
                        "tuning curves.", ""]
    name = f"tuning-curves-{slug}.png"
    tuners = sorted({t for by_tuner in curves.values() for t in by_tuner})  # with sampler or oracle
    plots.tuning_curves(curves, f"Tuning curves on {dataset}", run_dir / name)
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
    return lines + [f"![Tuning curves on {dataset}]({name})", "", caption, ""] + _anytime_table(curves)


def _anytime_table(curves: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]]) -> list[str]:
    """Per model with two or more tuners: each tuner's best validation accuracy at the same
    CPU-seconds (a quarter, half and all of the span every tuner's median study reached)."""
    rows = []
    for model, by_tuner in curves.items():
        if len(by_tuner) < 2:
            continue
        span = common_span(by_tuner)
        for tuner, studies in by_tuner.items():
            cells = []
            for fraction in FRACTIONS:
                found = best_at(studies, np.array([fraction * span]))[:, 0]
                found = found[~np.isnan(found)]
                if not len(found):
                    cells.append("-")
                elif len(found) == 1:
                    cells.append(pct(found[0]))
                else:
                    cells.append(f"{pct(np.median(found))} ({pct(found.min())}–{pct(found.max())})")
            rows.append([model, tuner, str(len(studies)), *cells])
    if not rows:
        return []
    headers = ["model", "tuner", "studies", *(f"at {int(100 * f)}% of the span" for f in FRACTIONS)]
    return (["Best validation accuracy each tuner had found at equal tuning CPU-seconds (the span: "
             "the CPU-seconds every tuner's median study reached), median over the studies with "
             "the lowest and highest in brackets (-: no trial had finished by then). Where the "
             "random-search line is level with a tuner's, the tuner bought nothing over random "
             "search at that cost.", ""]
            + md_table(headers, rows, "llrrrr") + [""])


def _method(cell: Any) -> str:
    """How a study searched: ``tpe, median pruner`` (Optuna) or ``bayesian`` (keras-tuner oracle)."""
    tuning = as_dict(cell)
    if tuning.get("sampler"):
        pruner = tuning.get("pruner")
        return tuning["sampler"] + (f", {pruner} pruner" if pruner and pruner != "none" else "")
    return str(tuning.get("oracle") or "")


# -- learning curves -------------------------------------------------------------------------

def _history(cell: Any, metric: str) -> list[float]:
    values = as_dict(cell).get(metric)
    if not isinstance(values, list) or not all(isinstance(v, int | float) for v in values):
        return []
    return [float(v) for v in values]


def networks(rows: pd.DataFrame) -> set[str]:
    """Models of a typed frame that record trainable parameters or an epoch history in any row."""
    recorded = rows["n_params"].notna() | rows["history"].map(bool)
    return set(rows.loc[recorded, "model"])


def learning_curves_section(rows: pd.DataFrame, final: pd.DataFrame, board: pd.DataFrame,
                            dataset: str, run_dir: Path, slug: str) -> list[str]:
    """Validation accuracy by epoch of the trial each network's final refit; without trials
    (tuner none), the finals' training accuracy by epoch.

    Networks are the models whose rows record what only networks record: a count of trainable
    parameters (``n_params``) or an epoch ``history``.
    """
    lines = ["### Training curves by epoch", ""]
    shown = board[board["model"].isin(networks(rows))]
    if shown.empty:
        return lines + ["No network (a model recording trainable parameters or epochs) finished on "
                        "this dataset, so there are no learning curves.", ""]
    trials = trial_rows(rows)
    labels = _labels(board)
    val: dict[str, list[float]] = {}
    train: dict[str, list[float]] = {}
    for idx, r in shown.iterrows():
        group = final[(final["model"] == r["model"]) & (final["tuner"] == r["tuner"])]
        first = min(group.to_dict("records"), key=lambda g: natural_key(g["seed"]))
        tuning = as_dict(first["tuning"])
        chosen = tuning.get("chosen_trial", tuning.get("best_trial"))
        if r["tuner"] != "none" and chosen is not None:
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
    name = f"learning-curves-{slug}.png"
    if val:
        plots.learning_curves(val, "Validation accuracy, %", f"Training curves by epoch on {dataset}",
                              run_dir / name)
        caption = ("Validation accuracy by epoch of the tuning trial each network's final model "
                   f"refit (its chosen trial): {', '.join(val)}.")
        if train:
            caption += f" Not shown (no tuning trial): {', '.join(train)}."
    elif train:
        plots.learning_curves(train, "Training accuracy, %", f"Training curves by epoch on {dataset}",
                              run_dir / name)
        caption = ("These networks were not tuned, so there is no validation curve: this is the "
                   f"**training** accuracy by epoch of each final model (first seed): {', '.join(train)}.")
    else:
        return lines + ["No epoch histories were recorded for the networks on this dataset "
                        "(results written by an older digitbench, or no history), so there are no "
                        "learning curves.", ""]
    return lines + [f"![Training curves by epoch on {dataset}]({name})", "", caption, ""]


# -- galleries -------------------------------------------------------------------------------

class _NoImages(Exception):
    """A gallery that cannot be drawn; the message says why, in words for the report."""


def _first_seed_file(final: pd.DataFrame, model: str, tuner: str) -> dict[str, Any] | None:
    group = final[(final["model"] == model) & (final["tuner"] == tuner)]
    seeds = sorted(group.to_dict("records"), key=lambda r: natural_key(r["seed"]))
    return next((r for r in seeds if isinstance(r["predictions"], str) and r["predictions"]), None)


def _mistakes(run_dir: Path, rel: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(y_true, y_pred, wrong_index, wrong_images) of one predictions file."""
    try:
        y_true, y_pred = load_predictions(run_dir, rel)
        index, images = load_misclassified(run_dir, rel)
    except _READ_ERRORS as exc:
        raise _NoImages(f"{code(rel)} could not be read ({_why(exc)})") from None
    if len(index) == 0 and np.any(y_true != y_pred):
        raise _NoImages(f"{code(rel)} holds no images of the misclassified digits (written by an "
                        "older digitbench)")
    return y_true, y_pred, index, images


def gallery_section(final: pd.DataFrame, board: pd.DataFrame, dataset: str, run_dir: Path,
                    slug: str) -> list[str]:
    """The best model's misclassified test digits, then the digits every final model got wrong."""
    lines = ["### Misclassified digits", ""]
    best = board.iloc[0]
    label = _labels(board)[0]
    row = _first_seed_file(final, best["model"], best["tuner"])
    try:
        if row is None:
            raise _NoImages(f"no predictions were recorded for {label}")
        y_true, y_pred, index, images = _mistakes(run_dir, row["predictions"])
        if len(index) == 0:
            lines += [f"{label} (seed {row['seed']}) got every test digit right.", ""]
        else:
            shown = index[:GALLERY_MAX]
            name = f"misclassified-{slug}.png"
            titles = [f"true {y_true[i]} → {y_pred[i]}" for i in shown]
            plots.digit_gallery(images[:GALLERY_MAX], titles,
                                f"{label} on {dataset}: misclassified test digits", run_dir / name)
            first = f"the first {len(shown)} of its " if len(shown) < len(index) else "all "
            lines += [f"![Test digits {label} got wrong on {dataset}]({name})", "",
                      f"The best model, {label} (seed {row['seed']}): {first}{count(len(index))} "
                      f"misclassified test digits of {count(len(y_true))}, in test-set order, each "
                      "titled with its true label → the model's prediction.", ""]
    except _NoImages as exc:
        lines += [f"No gallery of the best model's mistakes: {exc}.", ""]
    return lines + _common_mistakes(final, board, dataset, run_dir, slug)


def _common_mistakes(final: pd.DataFrame, board: pd.DataFrame, dataset: str, run_dir: Path,
                     slug: str) -> list[str]:
    labels = _labels(board)
    rows = [(lab, _first_seed_file(final, m, t))
            for lab, m, t in zip(labels, board["model"], board["tuner"], strict=True)]
    missing = [lab for lab, r in rows if r is None]
    rows = [(lab, r) for lab, r in rows if r is not None]
    if len(rows) < 2:
        return ["Fewer than two final models have predictions, so there are no digits that every "
                "model got wrong to show.", ""]
    try:
        loaded = [_mistakes(run_dir, r["predictions"]) for _, r in rows]
    except _NoImages as exc:
        return [f"No gallery of the digits every model got wrong: {exc}.", ""]
    sizes = {len(y_true) for y_true, *_ in loaded}
    if len(sizes) > 1:
        return ["No gallery of the digits every model got wrong: the models' test sets differ in "
                f"size ({', '.join(count(n) for n in sorted(sizes))} images).", ""]
    n_test = sizes.pop()
    common = reduce(np.intersect1d, [index for *_, index, _ in loaded])
    who = f"all {len(rows)} final models (first seed each)"
    if missing:
        who += f"; {', '.join(missing)} had no predictions file and are left out"
    if len(common) == 0:
        return [f"No test digit was misclassified by every one of {who}.", ""]
    y_true, _, index, images = loaded[0]
    position = {int(i): k for k, i in enumerate(index)}
    shown = common[:GALLERY_MAX]
    name = f"misclassified-by-all-{slug}.png"
    plots.digit_gallery(images[[position[int(i)] for i in shown]],
                        [f"true {y_true[i]}" for i in shown],
                        f"Test digits every model got wrong on {dataset}", run_dir / name)
    more = f" (the first {len(shown)} shown)" if len(shown) < len(common) else ""
    return [f"![Test digits every model got wrong on {dataset}]({name})", "",
            f"{count(len(common))} of the {count(n_test)} test digits were misclassified by every one "
            f"of {who}{more}, in test-set order, each titled with its true label.", ""]
