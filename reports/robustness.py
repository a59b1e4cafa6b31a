"""Beyond the clean test set: accuracy under the MNIST-C corruptions and calibrated confidence.

From the final rows' ``corrupt_test`` (test images right under each corruption) and ``calibration``
(ECE, NLL, Brier and reliability bins, clean and per corruption) columns:

* a table per model: clean accuracy, the mean over corruptions with the report's 95% interval
  (:func:`reports.stats.seeds_accuracy_interval` over a seed's corrupted images), the drop from clean, the
  worst corruption, and the mean corruption error (Hendrycks & Dietterich 2019: each corruption's
  error divided by the reference model's, averaged) against a reference model named in the text: the
  run's first model outside the family of the most accurate one (the networks, among the built-ins);
* a table and a heat map of every model under every corruption, and a gallery of test digits as the
  models saw them;
* calibration: per model, ECE, NLL and Brier on the clean test set and their mean under the
  corruptions, and a reliability diagram of the most accurate model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from digitbench.benchmark.payloads import tallies
from digitbench.benchmark.store import load_gallery
from digitbench.reports import plots
from digitbench.reports.format import DASH, code, contender_labels, count, md_table, pct, pct_interval
from digitbench.reports.section import DatasetScope, Section
from digitbench.reports.stats import ACCURACY_RULE, seeds_accuracy_interval
from digitbench.reports.table import as_dict

Key = tuple[str, str]  # (model, tuner)
METRICS = ("ece", "nll", "brier")
Bins = tuple[np.ndarray, np.ndarray, np.ndarray]  # count, mean confidence, accuracy per bin


@dataclass(frozen=True)
class Corrupted:
    """One contender under the corruptions: the mean accuracy over them and its 95% interval (the
    report's rule over all corrupted test images of a seed), its worst corruption and its mean
    corruption error against the reference."""

    mean: float
    low: float
    high: float
    worst: str
    mce: float


@dataclass(frozen=True)
class Calibration:
    """One contender's calibration scores, means over seeds: clean and over the corruptions."""

    method: str
    clean: dict[str, float]
    corrupted: dict[str, float]


@dataclass(frozen=True)
class Robustness:
    keys: list[Key]
    labels: dict[Key, str]
    names: list[str]                               # the corruptions, in the order run
    n_test: int
    accuracy: dict[Key, dict[str, float]]          # mean over seeds under each corruption
    clean: dict[Key, float]
    reference: Key                                 # the mCE's denominator
    corrupted: dict[Key, Corrupted]
    gallery: tuple[dict[str, np.ndarray], np.ndarray] | None  # test digits as the models saw them
    calibration: dict[Key, Calibration | None]     # None: no probabilities
    reliability: tuple[Key, dict[str, Bins]] | None  # the most accurate scored contender's bins


def _per_model(final: pd.DataFrame) -> dict[Key, pd.DataFrame]:
    tested = final[final["corrupt_test"].map(bool)]
    return {key: group for key, group in tested.groupby(["model", "tuner"], sort=False)}


def tested_under_corruption(scope: DatasetScope) -> bool:
    """The ``applies`` of the section: a final was tested under ``--corruptions``."""
    return scope.has_finals and bool(scope.final["corrupt_test"].map(bool).any())


def _accuracy(group: pd.DataFrame, name: str) -> float:
    """Mean over seeds of the accuracy under corruption ``name``."""
    return float(np.mean([tallies(cell)[name].accuracy for cell in group["corrupt_test"]]))


def _robustness(scope: DatasetScope) -> Robustness:
    final = scope.final
    models = _per_model(final)
    keys = list(models)
    names = list(as_dict(next(iter(models.values()))["corrupt_test"].iloc[0]))
    n_test = next(iter(tallies(models[keys[0]]["corrupt_test"].iloc[0]).values())).n_test
    table = {key: {name: _accuracy(group, name) for name in names} for key, group in models.items()}
    clean = {key: float(group["test_accuracy"].mean()) for key, group in models.items()}
    reference = _reference(final, keys)
    corrupted = {}
    for key, group in models.items():
        mce = np.mean([(1 - table[key][n]) / max(1 - table[reference][n], 1e-9) for n in names])
        corrupted[key] = Corrupted(*_mean_corrupted(group, names),
                                   worst=min(names, key=lambda n: table[key][n]), mce=float(mce))
    calibration = {key: _calibration(group, names) for key, group in models.items()}
    scored = [key for key, c in calibration.items() if c is not None]
    reliability = None
    if scored:
        best = max(scored, key=lambda k: clean[k])
        cells = [as_dict(c) for c in models[best]["calibration"]]
        reliability = (best, {"clean": _pooled(cells, ["clean"]),
                              "under corruption (all pooled)": _pooled(cells, names)})
    return Robustness(keys, dict(zip(keys, contender_labels(keys), strict=True)), names, n_test, table,
                      clean, reference, corrupted, load_gallery(scope.run_dir, scope.dataset),
                      calibration, reliability)


def _reference(final: pd.DataFrame, keys: list[Key]) -> Key:
    """The run's first model outside the family of the most accurate one (on the clean test set)."""
    rows = final.set_index(["model", "tuner"])
    accuracy = {k: float(rows.loc[[k], "test_accuracy"].mean()) for k in keys}
    winning = rows.loc[[max(keys, key=lambda k: accuracy[k])], "family"].iloc[0]
    others = [k for k in keys if rows.loc[[k], "family"].iloc[0] != winning]
    return (others or keys)[0]


def _mean_corrupted(group: pd.DataFrame, names: list[str]) -> tuple[float, float, float]:
    cells = list(map(tallies, group["corrupt_test"]))
    per_seed = [np.mean([counts[n].accuracy for n in names]) for counts in cells]
    found = seeds_accuracy_interval(per_seed, sum(cells[0][n].n_test for n in names))
    return found.mean, found.low, found.high


def _calibration(group: pd.DataFrame, names: list[str]) -> Calibration | None:
    cells = [as_dict(c) for c in group["calibration"]]
    if not any(cells):
        return None

    def mean(metric: str, sets: list[str]) -> float:
        return float(np.mean([c[s][metric] for c in cells for s in sets if s in c]))

    return Calibration(cells[0].get("method") or DASH, {m: mean(m, ["clean"]) for m in METRICS},
                       {m: mean(m, names) for m in METRICS})


def _pooled(cells: list[dict[str, Any]], sets: list[str]) -> Bins:
    """(count, mean confidence, accuracy) per bin, pooled over seeds and the sets given."""
    bins = [c[s]["bins"] for c in cells for s in sets if s in c]
    counts = np.sum([b["count"] for b in bins], axis=0).astype(float)

    def weighted(field: str) -> np.ndarray:
        total = np.sum([np.nan_to_num(np.array(b[field], dtype=float)) * np.array(b["count"]) for b in bins],
                       axis=0)
        return np.divide(total, counts, out=np.full_like(counts, np.nan), where=counts > 0)

    return counts, weighted("confidence"), weighted("accuracy")


# -- rendering -------------------------------------------------------------------------------

def _robustness_lines(found: Robustness, scope: DatasetScope) -> list[str]:
    keys, label, names, table = found.keys, found.labels, found.names, found.accuracy
    run_dir, dataset = scope.run_dir, scope.dataset
    lines = ["### Under corruption (MNIST-C)", "",
             f"Every final was also tested on its {count(found.n_test)} test images under each of "
             f"{len(names)} MNIST-C corruptions (Mu & Gilmer 2019; our own implementations at the "
             "strength of its released dataset, `benchmark/data/corruptions.py`, drawn with seed 0). "
             "Mean corruption error (mCE): each corruption's test error divided by "
             f"{code(label[found.reference])}'s, averaged over the corruptions (1.00: as robust as it; "
             "lower is better).", ""]
    body = []
    for key in keys:
        c, clean = found.corrupted[key], found.clean[key]
        body.append([code(label[key]), pct(clean), pct_interval(c.mean, c.low, c.high),
                     f"{100 * (c.mean - clean):+.2f}", f"{c.worst} ({pct(table[key][c.worst])})",
                     f"{c.mce:.2f}"])
    lines += md_table(["model", "clean", "mean under corruption [95%]", "drop (points)", "worst corruption",
                       "mCE"], body) + ["", f"Mean under corruption: over the corruptions, then over "
                                        f"seeds, with its {ACCURACY_RULE} (all corrupted test images "
                                        "of a seed).", ""]
    lines += md_table(["corruption", *(code(label[k]) for k in keys)],
                      [[name, *(pct(table[k][name]) for k in keys)] for name in names]) + [""]
    heat = plots.heat_map(np.array([[100 * table[k][n] for n in names] for k in keys]),
                          [label[k] for k in keys], names, "Test accuracy (%) under each corruption, "
                          + dataset, run_dir / "figures" / f"{scope.slug}-corruptions.png")
    lines += [f"![Accuracy under each corruption]({heat.relative_to(run_dir).as_posix()})", ""]
    lines += _gallery_lines(found, scope)
    return lines + _calibration_lines(found, scope)


def _gallery_lines(found: Robustness, scope: DatasetScope) -> list[str]:
    if found.gallery is None:
        return []
    images, labels = found.gallery
    rows = ["clean", *[n for n in found.names if n in images]]
    grid = np.concatenate([images[r] for r in rows])
    titles = [f"{r}" if j == 0 else "" for r in rows for j in range(len(labels))]
    path = plots.digit_gallery(grid, titles, f"Test digits under each corruption, {scope.dataset}",
                               scope.run_dir / "figures" / f"{scope.slug}-corruption-gallery.png",
                               cols=len(labels))
    return [f"![Test digits under each corruption]({path.relative_to(scope.run_dir).as_posix()})", ""]


def _calibration_lines(found: Robustness, scope: DatasetScope) -> list[str]:
    lines = ["### Calibration: can the probabilities be trusted?", "",
             "Expected calibration error (15 equal-width confidence bins; 0: a model that says 90% is "
             "right 90% of the time), negative log-likelihood and Brier score (sum over the classes), "
             "means over seeds; \"corrupted\" is their mean over the corruptions. Models without "
             "probabilities get them by Platt scaling on the validation part, which their finals then "
             "do not train on (scikit-learn's `CalibratedClassifierCV` around the fitted model).", ""]
    body = []
    for key in found.keys:
        c = found.calibration[key]
        if c is None:
            body.append([code(found.labels[key]), "none: no probabilities", *[DASH] * 6])
            continue
        body.append([code(found.labels[key]), c.method, *(f"{c.clean[m]:.4f}" for m in METRICS),
                     *(f"{c.corrupted[m]:.4f}" for m in METRICS)])
    lines += md_table(["model", "probabilities", "ECE clean", "NLL clean", "Brier clean", "ECE corrupted",
                       "NLL corrupted", "Brier corrupted"], body) + [""]
    if found.reliability is not None:
        best, curves = found.reliability
        label = found.labels[best]
        path = plots.reliability_diagram(curves, f"Reliability of {label}, {scope.dataset}",
                                         scope.run_dir / "figures" / f"{scope.slug}-reliability.png")
        lines += [f"![Reliability diagram of {label}]({path.relative_to(scope.run_dir).as_posix()})", ""]
    return lines


ROBUSTNESS = Section("robustness", _robustness, _robustness_lines, anchor="robustness",
                     applies=tested_under_corruption)
