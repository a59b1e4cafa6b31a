"""Small statistics for reports: intervals over seeds and confusion counts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

N_CLASSES = 10


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
