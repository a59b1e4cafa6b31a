"""Two contenders on the same test images: their per-image predictions, compared seed by seed.

:func:`compare_seeds` reads the predictions files of two (model, tuner) contenders' final rows and
gives McNemar's test and the paired difference (:func:`reports.stats.paired_comparison`) for every
seed both have. A comparison that cannot be made raises :class:`Skip`, whose message says why in
words for the report. The paired comparisons, what tuning bought, the summary and the learning
curves' crossovers all compare through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from digitbench.benchmark.store import load_predictions
from digitbench.reports.format import code, count, natural_key, points
from digitbench.reports.stats import PairedComparison, difference_interval, paired_comparison

Contender = tuple[str, str]  # (model, tuner)


class Skip(Exception):
    """A comparison that cannot be made; the message says why, in words for the report."""


@dataclass(frozen=True)
class MeanDifference:
    """A's test accuracy minus B's over the seeds both have (fractions): the mean with its 95%
    interval, the Student-t interval over the per-seed differences (kept within ±1), or with one
    seed the paired Wald interval over the test images."""

    mean: float
    low: float
    high: float
    over_seeds: bool

    @property
    def interval_text(self) -> str:
        """``-0.12 to +0.16, test set`` (points)."""
        return f"{points(self.low)} to {points(self.high)}, {'over seeds' if self.over_seeds else 'test set'}"


def mean_difference(paired: Sequence[tuple[str, PairedComparison]]) -> MeanDifference:
    """The :class:`MeanDifference` of :func:`compare_rows`' comparisons (at least one)."""
    mean, low, high = difference_interval([c.difference for _, c in paired])
    if len(paired) == 1:
        low, high = paired[0][1].low, paired[0][1].high
    return MeanDifference(mean, low, high, len(paired) > 1)


def compare_seeds(final: pd.DataFrame, run_dir: Path, a: Contender,
                  b: Contender) -> list[tuple[str, PairedComparison]]:
    """Paired comparisons of ``a`` and ``b`` (model, tuner) for every seed both have, in order."""
    return compare_rows(run_dir, *(final[(final["model"] == m) & (final["tuner"] == t)] for m, t in (a, b)))


def compare_rows(run_dir: Path, rows_a: pd.DataFrame,
                 rows_b: pd.DataFrame) -> list[tuple[str, PairedComparison]]:
    """Paired comparisons of two sets of final rows (one per seed each: two contenders, or two
    configurations of one) for every seed both have, in order."""
    rows = [{r["seed"]: r for r in frame.to_dict("records")} for frame in (rows_a, rows_b)]
    seeds = sorted(set(rows[0]) & set(rows[1]), key=natural_key)
    if not seeds:
        raise Skip("they share no seed")
    results = []
    for seed in seeds:
        (y_true, pred_a), (y_b, pred_b) = (_load(run_dir, r[seed], str(r[seed]["model"])) for r in rows)
        if y_true.size != y_b.size:
            raise Skip(f"their test sets differ in size ({count(y_true.size)} vs "
                       f"{count(y_b.size)} images, seed {seed})")
        if not np.array_equal(y_true, y_b):
            raise Skip(f"their test labels differ (seed {seed}), so these are not the same images")
        results.append((seed, paired_comparison(y_true, pred_a, pred_b)))
    return results


def _load(run_dir: Path, row: dict, model: str) -> tuple[np.ndarray, np.ndarray]:
    rel = row.get("predictions")
    if not isinstance(rel, str) or not rel:
        raise Skip(f"no predictions file was recorded for {model} seed {row['seed']}")
    try:
        y_true, y_pred = load_predictions(run_dir, rel)
    except (OSError, KeyError, ValueError, EOFError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise Skip(f"{code(rel)} could not be read ({why})") from None
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if y_true.size == 0 or y_true.size != y_pred.size:
        raise Skip(f"{code(rel)} holds {count(y_true.size)} labels and {count(y_pred.size)} "
                   "predictions")
    return y_true, y_pred
