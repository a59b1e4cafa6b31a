"""Beyond the clean test set: accuracy under the MNIST-C corruptions and calibrated confidence.

From the final rows' ``corrupt_test`` (test images right under each corruption) and ``calibration``
(ECE, NLL, Brier and reliability bins, clean and per corruption) columns:

* a table per model: clean accuracy, the mean over corruptions with its 95% interval (over seeds;
  with one seed the Wilson interval of all corrupted test images together), the drop from clean, the
  worst corruption, and the mean corruption error (Hendrycks & Dietterich 2019: each corruption's
  error divided by the reference model's, averaged) against a reference model named in the text: the
  run's first model outside the family of the most accurate one (the networks, among the built-ins);
* a table and a heat map of every model under every corruption, and a gallery of test digits as the
  models saw them;
* calibration: per model, ECE, NLL and Brier on the clean test set and their mean under the
  corruptions, and a reliability diagram of the most accurate model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from digitbench.benchmark.store import load_gallery
from digitbench.reports import plots
from digitbench.reports.format import DASH, code, contender_labels, count, md_table, pct
from digitbench.reports.stats import accuracy_interval, mean_interval
from digitbench.reports.table import as_dict


def _per_model(final: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    tested = final[final["corrupt_test"].map(bool)]
    return {key: group for key, group in tested.groupby(["model", "tuner"], sort=False)}


def _accuracy(group: pd.DataFrame, name: str) -> float:
    """Mean over seeds of the accuracy under corruption ``name``."""
    return float(np.mean([as_dict(cell)[name]["correct"] / as_dict(cell)[name]["n_test"]
                          for cell in group["corrupt_test"]]))


def robustness_section(final: pd.DataFrame, dataset: str, run_dir: Path, slug: str) -> list[str]:
    """The corruptions and calibration section of one dataset; nothing without ``--corruptions``."""
    models = _per_model(final)
    if not models:
        return []
    keys = list(models)
    label = dict(zip(keys, contender_labels(keys), strict=True))
    names = list(as_dict(next(iter(models.values()))["corrupt_test"].iloc[0]))
    n_test = next(iter(as_dict(models[keys[0]]["corrupt_test"].iloc[0]).values()))["n_test"]
    table = {key: {name: _accuracy(group, name) for name in names} for key, group in models.items()}
    clean = {key: float(group["test_accuracy"].mean()) for key, group in models.items()}
    reference = _reference(final, keys)
    lines = ["### Under corruption (MNIST-C)", "",
             f"Every final was also tested on its {count(n_test)} test images under each of {len(names)} "
             "MNIST-C corruptions (Mu & Gilmer 2019; our own implementations at the strength of its "
             "released dataset, `benchmark/data/corruptions.py`, drawn with seed 0). Mean corruption "
             f"error (mCE): each corruption's test error divided by {code(label[reference])}'s, "
             "averaged over the corruptions (1.00: as robust as it; lower is better).", ""]
    body = []
    for key, group in models.items():
        mean, interval = _mean_corrupted(group, names)
        worst = min(names, key=lambda n: table[key][n])
        mce = np.mean([(1 - table[key][n]) / max(1 - table[reference][n], 1e-9) for n in names])
        body.append([code(label[key]), pct(clean[key]), f"{pct(mean)} {interval}",
                     f"{100 * (mean - clean[key]):+.2f}", f"{worst} ({pct(table[key][worst])})",
                     f"{mce:.2f}"])
    lines += md_table(["model", "clean", "mean under corruption [95%]", "drop (points)", "worst corruption",
                       "mCE"], body) + [""]
    lines += md_table(["corruption", *(code(label[k]) for k in keys)],
                      [[name, *(pct(table[k][name]) for k in keys)] for name in names]) + [""]
    heat = plots.heat_map(np.array([[100 * table[k][n] for n in names] for k in keys]),
                          [label[k] for k in keys], names, "Test accuracy (%) under each corruption, "
                          + dataset, run_dir / "figures" / f"{slug}-corruptions.png")
    lines += [f"![Accuracy under each corruption]({heat.relative_to(run_dir).as_posix()})", ""]
    lines += _gallery(dataset, run_dir, slug, names)
    return lines + _calibration(models, label, names, clean, dataset, run_dir, slug)


def _reference(final: pd.DataFrame, keys: list[tuple[str, str]]) -> tuple[str, str]:
    """The run's first model outside the family of the most accurate one (on the clean test set)."""
    rows = final.set_index(["model", "tuner"])
    accuracy = {k: float(rows.loc[[k], "test_accuracy"].mean()) for k in keys}
    winning = rows.loc[[max(keys, key=lambda k: accuracy[k])], "family"].iloc[0]
    others = [k for k in keys if rows.loc[[k], "family"].iloc[0] != winning]
    return (others or keys)[0]


def _mean_corrupted(group: pd.DataFrame, names: list[str]) -> tuple[float, str]:
    per_seed = [np.mean([as_dict(cell)[n]["correct"] / as_dict(cell)[n]["n_test"] for n in names])
                for cell in group["corrupt_test"]]
    found = mean_interval(per_seed)
    if found.half_width is not None:
        return found.mean, f"± {100 * found.half_width:.2f}"
    cell = as_dict(group["corrupt_test"].iloc[0])
    correct, n = sum(cell[x]["correct"] for x in names), sum(cell[x]["n_test"] for x in names)
    low, high = accuracy_interval(correct, n)
    return found.mean, f"[{pct(low)}, {pct(high)}] (test images)"


def _gallery(dataset: str, run_dir: Path, slug: str, names: list[str]) -> list[str]:
    stored = load_gallery(run_dir, dataset)
    if stored is None:
        return []
    images, labels = stored
    rows = ["clean", *[n for n in names if n in images]]
    grid = np.concatenate([images[r] for r in rows])
    titles = [f"{r}" if j == 0 else "" for r in rows for j in range(len(labels))]
    path = plots.digit_gallery(grid, titles, f"Test digits under each corruption, {dataset}",
                               run_dir / "figures" / f"{slug}-corruption-gallery.png", cols=len(labels))
    return [f"![Test digits under each corruption]({path.relative_to(run_dir).as_posix()})", ""]


def _calibration(models: dict[tuple[str, str], pd.DataFrame], label: dict[tuple[str, str], str],
                 names: list[str], clean: dict[tuple[str, str], float], dataset: str, run_dir: Path,
                 slug: str) -> list[str]:
    lines = ["### Calibration: can the probabilities be trusted?", "",
             "Expected calibration error (15 equal-width confidence bins; 0: a model that says 90% is "
             "right 90% of the time), negative log-likelihood and Brier score (sum over the classes), "
             "means over seeds; \"corrupted\" is their mean over the corruptions. Models without "
             "probabilities get them by Platt scaling on the validation part, which their finals then "
             "do not train on (scikit-learn's `CalibratedClassifierCV` around the fitted model).", ""]
    body, scored = [], []
    for key, group in models.items():
        cells = [as_dict(c) for c in group["calibration"]]
        if not any(cells):
            body.append([code(label[key]), "none: no probabilities", *[DASH] * 6])
            continue
        scored.append(key)
        method = cells[0].get("method") or DASH

        def mean(metric: str, sets: list[str], cells: list[dict[str, Any]] = cells) -> float:
            return float(np.mean([c[s][metric] for c in cells for s in sets if s in c]))

        body.append([code(label[key]), method,
                     *(f"{mean(m, ['clean']):.4f}" for m in ("ece", "nll", "brier")),
                     *(f"{mean(m, names):.4f}" for m in ("ece", "nll", "brier"))])
    lines += md_table(["model", "probabilities", "ECE clean", "NLL clean", "Brier clean", "ECE corrupted",
                       "NLL corrupted", "Brier corrupted"], body) + [""]
    if scored:
        best = max(scored, key=lambda k: clean[k])
        cells = [as_dict(c) for c in models[best]["calibration"]]
        curves = {"clean": _pooled(cells, ["clean"]), "under corruption (all pooled)": _pooled(cells, names)}
        path = plots.reliability_diagram(curves, f"Reliability of {label[best]}, {dataset}",
                                         run_dir / "figures" / f"{slug}-reliability.png")
        lines += [f"![Reliability diagram of {label[best]}]({path.relative_to(run_dir).as_posix()})",
                  ""]
    return lines


def _pooled(cells: list[dict[str, Any]], sets: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, mean confidence, accuracy) per bin, pooled over seeds and the sets given."""
    bins = [c[s]["bins"] for c in cells for s in sets if s in c]
    counts = np.sum([b["count"] for b in bins], axis=0).astype(float)

    def weighted(field: str) -> np.ndarray:
        total = np.sum([np.nan_to_num(np.array(b[field], dtype=float)) * np.array(b["count"]) for b in bins],
                       axis=0)
        return np.divide(total, counts, out=np.full_like(counts, np.nan), where=counts > 0)

    return counts, weighted("confidence"), weighted("accuracy")
