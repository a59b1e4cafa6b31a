"""The best model's confusion matrix, and galleries of the digits it (and every final model) got
wrong, from the finals' predictions files."""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from digitbench.benchmark.store import load_misclassified, load_predictions
from digitbench.reports import plots
from digitbench.reports.format import DASH, code, contender_labels, count, natural_key, pct
from digitbench.reports.section import DatasetScope, Section, has_finals
from digitbench.reports.stats import confusion_counts, top_confusions

GALLERY_MAX = 40
_READ_ERRORS = (OSError, KeyError, ValueError)


def _why(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _seeds(final: pd.DataFrame, model: str, tuner: str) -> list[dict[str, Any]]:
    """A contender's final rows in seed order."""
    group = final[(final["model"] == model) & (final["tuner"] == tuner)]
    return sorted(group.to_dict("records"), key=lambda r: natural_key(r["seed"]))


def _first_seed_file(final: pd.DataFrame, model: str, tuner: str) -> dict[str, Any] | None:
    return next((r for r in _seeds(final, model, tuner)
                 if isinstance(r["predictions"], str) and r["predictions"]), None)


# -- the confusion matrix --------------------------------------------------------------------

@dataclass(frozen=True)
class Confusion:
    """The best contender's predictions on the test set: its first seed with a predictions file."""

    model: str
    tuner: str
    seeds: int                        # how many seeds it has
    seed: Any = None                  # the seed shown
    y_true: np.ndarray | None = None
    y_pred: np.ndarray | None = None
    counts: np.ndarray | None = None  # 10x10: rows true digits, columns predicted
    missing: str | None = None        # the sentence shown where there is no matrix


def _confusion(scope: DatasetScope) -> Confusion:
    best = scope.board.iloc[0]
    model, tuner = best["model"], best["tuner"]
    seeds = _seeds(scope.final, model, tuner)
    with_file = [r for r in seeds if isinstance(r["predictions"], str) and r["predictions"]]
    if not with_file:
        return Confusion(model, tuner, len(seeds), missing=f"No predictions were recorded for {model}.")
    row = with_file[0]
    try:
        y_true, y_pred = load_predictions(scope.run_dir, row["predictions"])
        counts = confusion_counts(y_true, y_pred)
    except (OSError, KeyError, ValueError) as exc:
        return Confusion(model, tuner, len(seeds), row["seed"], missing=(
            f"No confusion matrix: {code(row['predictions'])} could not be read ({_why(exc)})."))
    return Confusion(model, tuner, len(seeds), row["seed"], y_true, y_pred, counts)


def _confusion_lines(found: Confusion, scope: DatasetScope) -> list[str]:
    lines = ["### Best model: confusion matrix", ""]
    if found.counts is None:
        return lines + [str(found.missing), ""]
    model, dataset = found.model, scope.dataset
    name = f"confusion-{scope.slug}.png"
    plots.confusion_matrix(found.y_true, found.y_pred, f"{model} on {dataset} (seed {found.seed})",
                           scope.run_dir / name)
    n, correct = int(found.counts.sum()), int(np.trace(found.counts))
    which = (f"seed {found.seed}, the first of {found.seeds} seeds" if found.seeds > 1
             else f"seed {found.seed}, its only seed")
    lines += [f"![Confusion matrix of {model} on {dataset}]({name})", ""]
    caption = (f"{model} (tuner {found.tuner}, {which}) on the {n:,} test images: "
               f"{correct:,} correct ({pct(correct / n) if n else DASH}). "
               "Rows are true digits, columns predicted digits; off-diagonal cells are mistakes.")
    mistakes = top_confusions(found.counts)
    if mistakes:
        caption += " Most frequent mistakes: " + ", ".join(
            f"{t} read as {p} ({k})" for t, p, k in mistakes) + "."
    return lines + [caption, ""]


CONFUSION = Section("confusion", _confusion, _confusion_lines, applies=has_finals)


# -- galleries of misclassified digits -------------------------------------------------------

class _NoImages(Exception):
    """A gallery that cannot be drawn; the message says why, in words for the report."""


@dataclass(frozen=True)
class Mistakes:
    """One predictions file: the test labels, the predictions, the test positions it got wrong
    and the images of those."""

    y_true: np.ndarray
    y_pred: np.ndarray
    index: np.ndarray
    images: np.ndarray


@dataclass(frozen=True)
class Galleries:
    """The best contender's mistakes (its first seed with a file), and the test digits every final
    contender got wrong (each its first seed with a file)."""

    label: str                          # the best contender, as tables name it
    seed: Any                           # the seed of its file
    best: Mistakes | None               # None: ``best_why`` says why
    best_why: str | None
    models: int                         # contenders with a file
    missing: list[str]                  # contenders without one
    common: np.ndarray | None = None    # test positions all of them got wrong, in test-set order
    images: np.ndarray | None = None    # their images, in that order
    y_true: np.ndarray | None = None
    n_test: int = 0
    common_why: str | None = None       # the sentence shown where there is no second gallery


def _mistakes(run_dir: Path, rel: str) -> Mistakes:
    try:
        y_true, y_pred = load_predictions(run_dir, rel)
        index, images = load_misclassified(run_dir, rel)
    except _READ_ERRORS as exc:
        raise _NoImages(f"{code(rel)} could not be read ({_why(exc)})") from None
    if len(index) == 0 and np.any(y_true != y_pred):
        raise _NoImages(f"{code(rel)} holds no images of the misclassified digits (written by an "
                        "older digitbench)")
    return Mistakes(y_true, y_pred, index, images)


def _galleries(scope: DatasetScope) -> Galleries:
    board, final = scope.board, scope.final
    labels = contender_labels(zip(board["model"], board["tuner"], strict=True))
    files = [(lab, _first_seed_file(final, m, t))
             for lab, m, t in zip(labels, board["model"], board["tuner"], strict=True)]
    row = files[0][1]
    best, best_why = None, None
    try:
        if row is None:
            raise _NoImages(f"no predictions were recorded for {labels[0]}")
        best = _mistakes(scope.run_dir, row["predictions"])
    except _NoImages as exc:
        best_why = str(exc)
    missing = [lab for lab, r in files if r is None]
    rows = [r for _, r in files if r is not None]
    common = dict(label=labels[0], seed=row["seed"] if row is not None else None, best=best,
                  best_why=best_why, models=len(rows), missing=missing)
    if len(rows) < 2:
        return Galleries(**common, common_why="Fewer than two final models have predictions, so there "
                         "are no digits that every model got wrong to show.")
    try:  # the best contender's file is read once
        loaded = [best if r is row and best is not None else _mistakes(scope.run_dir, r["predictions"])
                  for r in rows]
    except _NoImages as exc:
        return Galleries(**common, common_why=f"No gallery of the digits every model got wrong: {exc}.")
    sizes = {len(m.y_true) for m in loaded}
    if len(sizes) > 1:
        return Galleries(**common, common_why=(
            "No gallery of the digits every model got wrong: the models' test sets differ in "
            f"size ({', '.join(count(n) for n in sorted(sizes))} images)."))
    everyone = reduce(np.intersect1d, [m.index for m in loaded])
    first = loaded[0]
    position = {int(i): k for k, i in enumerate(first.index)}
    shown = everyone[:GALLERY_MAX]
    return Galleries(**common, common=everyone, images=first.images[[position[int(i)] for i in shown]],
                     y_true=first.y_true, n_test=sizes.pop())


def _gallery_lines(found: Galleries, scope: DatasetScope) -> list[str]:
    lines = ["### Misclassified digits", ""]
    label, dataset, best = found.label, scope.dataset, found.best
    if best is None:
        lines += [f"No gallery of the best model's mistakes: {found.best_why}.", ""]
    elif len(best.index) == 0:
        lines += [f"{label} (seed {found.seed}) got every test digit right.", ""]
    else:
        shown = best.index[:GALLERY_MAX]
        name = f"misclassified-{scope.slug}.png"
        titles = [f"true {best.y_true[i]} → {best.y_pred[i]}" for i in shown]
        plots.digit_gallery(best.images[:GALLERY_MAX], titles,
                            f"{label} on {dataset}: misclassified test digits", scope.run_dir / name)
        first = f"the first {len(shown)} of its " if len(shown) < len(best.index) else "all "
        lines += [f"![Test digits {label} got wrong on {dataset}]({name})", "",
                  f"The best model, {label} (seed {found.seed}): {first}{count(len(best.index))} "
                  f"misclassified test digits of {count(len(best.y_true))}, in test-set order, each "
                  "titled with its true label → the model's prediction.", ""]
    return lines + _everyone_lines(found, scope)


def _everyone_lines(found: Galleries, scope: DatasetScope) -> list[str]:
    if found.common is None:
        return [str(found.common_why), ""]
    who = f"all {found.models} final models (first seed each)"
    if found.missing:
        who += f"; {', '.join(found.missing)} had no predictions file and are left out"
    if len(found.common) == 0:
        return [f"No test digit was misclassified by every one of {who}.", ""]
    shown = found.common[:GALLERY_MAX]
    name = f"misclassified-by-all-{scope.slug}.png"
    plots.digit_gallery(found.images, [f"true {found.y_true[i]}" for i in shown],
                        f"Test digits every model got wrong on {scope.dataset}", scope.run_dir / name)
    more = f" (the first {len(shown)} shown)" if len(shown) < len(found.common) else ""
    return [f"![Test digits every model got wrong on {scope.dataset}]({name})", "",
            f"{count(len(found.common))} of the {count(found.n_test)} test digits were misclassified "
            f"by every one of {who}{more}, in test-set order, each titled with its true label.", ""]


GALLERY = Section("gallery", _galleries, _gallery_lines, applies=has_finals)
