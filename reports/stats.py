"""Small statistics for reports: intervals over seeds, paired comparisons and confusion counts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

N_CLASSES = 10
#: Significance level of every test in the report: a verdict says "significant at 5%" where p < ALPHA.
ALPHA = 0.05


@dataclass(frozen=True)
class MeanInterval:
    """A sample mean with its confidence interval (``half_width`` is None for a single value)."""

    mean: float
    n: int
    half_width: float | None
    confidence: float = 0.95

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> MeanInterval:
    """Mean of ``values`` with a Student-t confidence interval for the mean.

    The half-width is ``t(1 - alpha/2, n - 1) * s / sqrt(n)``, where ``s`` is the sample standard
    deviation (``ddof=1``) and ``alpha = 1 - confidence``. It treats each value (one per seed) as an
    independent draw; with fewer than two values there is no interval and ``half_width`` is None.

    >>> round(mean_interval([0.90, 0.92, 0.94]).half_width, 6)
    0.049683
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("mean_interval needs at least one value")
    if not np.all(np.isfinite(data)):
        raise ValueError("mean_interval needs finite values")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be between 0 and 1")
    mean = float(data.mean())
    n = int(data.size)
    if n < 2:
        return MeanInterval(mean, n, None, confidence)
    t = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1))
    half = t * float(data.std(ddof=1)) / math.sqrt(n)
    return MeanInterval(mean, n, half, confidence)


def accuracy_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of one model's accuracy on ``n`` test images, ``correct`` of them right:
    the uncertainty that comes from the test set being a sample (``scipy.stats.binomtest(correct,
    n).proportion_ci(confidence, method="wilson")``). The leaderboard shows it where a model has a
    single seed, so that it has no interval over seeds.

    >>> [round(x, 6) for x in accuracy_interval(90, 100)]
    [0.825634, 0.944771]
    """
    if not 0 <= correct <= n or n < 1:
        raise ValueError(f"accuracy_interval needs 0 <= correct <= n and n >= 1, got {correct}, {n}")
    ci = stats.binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


#: How every accuracy interval of the report is computed, in the words of its captions.
ACCURACY_RULE = ("95% interval: the Wilson interval of the mean accuracy over the test images, "
                 "widened to the lowest and highest seed where the seeds spread further")


@dataclass(frozen=True)
class AccuracyInterval:
    """A contender's mean test accuracy over its seeds and its 95% interval (fractions), by the
    report's one rule (:func:`seeds_accuracy_interval`); ``low <= mean <= high``, all in [0, 1]."""

    mean: float
    low: float
    high: float
    seeds: int
    n_test: int | None


def seeds_accuracy_interval(accuracies: Sequence[float], n_test: float | None,
                            confidence: float = 0.95) -> AccuracyInterval:
    """The report's one accuracy interval: the hull of two ranges, each inside [0, 1].

    * the Wilson score interval (:func:`accuracy_interval`) of the mean accuracy over the ``n_test``
      test images: how far the accuracy could move on another test set of that size. The seeds
      share their test images, so they are not pooled into more of them;
    * the seeds' range, lowest to highest accuracy: how far the training seed moved it.

    A Student-t interval over two or three seeds is wide (t = 12.7 for two) and unbounded: with
    accuracies 0.20 and 0.92 it runs from -3.6 to 1.16. The range of the seeds and the Wilson
    interval say only what was measured and cannot leave [0, 1]. Without ``n_test`` (unknown) the
    interval is the seeds' range alone (a point for one seed).

    >>> found = seeds_accuracy_interval([0.20, 0.92], 100)
    >>> (round(found.mean, 2), found.low, found.high)
    (0.56, 0.2, 0.92)
    >>> one = seeds_accuracy_interval([0.9], 100)
    >>> (round(one.low, 4), round(one.high, 4))
    (0.8256, 0.9448)
    """
    data = np.asarray(accuracies, dtype=float)
    if data.size == 0 or not np.all((data >= 0.0) & (data <= 1.0)):
        raise ValueError(f"seeds_accuracy_interval needs accuracies in [0, 1], got {list(data)}")
    mean = float(data.mean())
    low, high = float(data.min()), float(data.max())
    n = int(n_test) if n_test is not None and math.isfinite(n_test) and n_test >= 1 else None
    if n is not None:
        wilson_low, wilson_high = accuracy_interval(round(mean * n), n, confidence)
        low, high = min(low, wilson_low), max(high, wilson_high)
    return AccuracyInterval(mean, low, high, int(data.size), n)


def difference_interval(differences: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of paired accuracy differences (one per seed, fractions) with the Student-t interval of
    :func:`mean_interval`, kept inside the differences' possible range [-1, 1] (the t interval of two
    seeds can reach past it); with one difference, the point itself."""
    found = mean_interval(differences, confidence)
    if found.half_width is None:
        return found.mean, found.mean, found.mean
    return found.mean, max(-1.0, found.mean - found.half_width), min(1.0, found.mean + found.half_width)


@dataclass(frozen=True)
class PairedComparison:
    """Model A against model B on the same ``n`` test images.

    ``b`` counts the images only A got right, ``c`` those only B got right; ``difference`` is
    ``acc_A - acc_B = (b - c) / n`` with its confidence interval ``low``..``high`` (fractions, not
    points), and ``p_value`` is McNemar's exact two-sided test of "A and B are equally accurate".
    """

    difference: float
    low: float
    high: float
    b: int
    c: int
    n: int
    p_value: float
    confidence: float = 0.95


def paired_comparison(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray,
                      confidence: float = 0.95) -> PairedComparison:
    """Compare two models' predictions of the same test images.

    McNemar's exact test: under "equally accurate" each of the ``b + c`` discordant images is
    equally likely to favour A or B, so ``p = scipy.stats.binomtest(b, b + c, 0.5).pvalue``
    (two-sided; 1.0 when ``b + c == 0``).

    Interval: the Wald (simple asymptotic) interval for a difference of paired proportions,
    ``(b - c)/n +- z * sqrt(b + c - (b - c)**2 / n) / n`` with ``z = norm.ppf(1 - alpha/2)``,
    clipped to [-1, 1] -- method 1 of Newcombe, "Improved confidence intervals for the difference
    between binomial proportions based on paired data", Statistics in Medicine 17 (1998)
    2635-2650; also Agresti, *Categorical Data Analysis*, "comparing dependent proportions". It is
    the usual large-sample interval and is too narrow when there are only a few discordant images
    (it is a single point when ``b + c == 0``), so it can disagree with the exact test near 5%.

    >>> r = paired_comparison(np.array([1, 2, 3, 4]), np.array([1, 2, 3, 0]), np.array([1, 0, 0, 4]))
    >>> (r.b, r.c, r.n, r.difference, r.p_value)
    (2, 1, 4, 0.25, 1.0)
    """
    truth, a, b_pred = (np.asarray(x).ravel() for x in (y_true, pred_a, pred_b))
    if not truth.shape == a.shape == b_pred.shape:
        raise ValueError(f"paired_comparison needs equal lengths, got {truth.size}, {a.size} "
                         f"and {b_pred.size}")
    if truth.size == 0:
        raise ValueError("paired_comparison needs at least one test image")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be between 0 and 1")
    right_a, right_b = a == truth, b_pred == truth
    b = int(np.count_nonzero(right_a & ~right_b))
    c = int(np.count_nonzero(~right_a & right_b))
    n = int(truth.size)
    difference = (b - c) / n
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    half = z * math.sqrt(max(b + c - (b - c) ** 2 / n, 0.0)) / n
    p_value = 1.0 if b + c == 0 else float(stats.binomtest(b, b + c, 0.5).pvalue)
    return PairedComparison(difference, max(-1.0, difference - half), min(1.0, difference + half),
                            b, c, n, p_value, confidence)


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """10x10 int64 counts: row = true label, column = predicted label."""
    t = np.asarray(y_true).astype(np.int64).ravel()
    p = np.asarray(y_pred).astype(np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    for name, labels in (("y_true", t), ("y_pred", p)):
        if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
            raise ValueError(f"{name} has a label outside 0..{N_CLASSES - 1}")
    counts = np.bincount(t * N_CLASSES + p, minlength=N_CLASSES * N_CLASSES)
    return counts.reshape(N_CLASSES, N_CLASSES)


def top_confusions(counts: np.ndarray, k: int = 3) -> list[tuple[int, int, int]]:
    """The ``k`` largest off-diagonal cells as (true, predicted, count), largest first."""
    cells = [
        (int(counts[i, j]), i, j)
        for i in range(counts.shape[0])
        for j in range(counts.shape[1])
        if i != j and counts[i, j] > 0
    ]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [(i, j, n) for n, i, j in cells[:k]]


def pareto_optimal(cost: Sequence[float], score: Sequence[float]) -> list[bool]:
    """For each point, whether no other point is at most as costly and at least as good, and
    strictly better in one of the two (lower cost or higher score)."""
    points = list(zip(cost, score, strict=True))
    return [not any(c2 <= c and s2 >= s and (c2 < c or s2 > s) for c2, s2 in points)
            for c, s in points]


def best_at(studies: list[tuple[np.ndarray, np.ndarray]], grid: np.ndarray) -> np.ndarray:
    """Each study's best-so-far value at the CPU-seconds of ``grid`` (rows: studies), NaN before
    its first finished trial; after its last trial a study keeps what it found."""
    out = np.full((len(studies), len(grid)), np.nan)
    for i, (x, best) in enumerate(studies):
        index = np.searchsorted(x, grid, side="right") - 1
        seen = index >= 0
        out[i, seen] = best[index[seen]]
    return out
