"""Can a model's probabilities be trusted: calibration scores of one set of predictions.

For class probabilities ``p`` (n, 10) of images with labels ``y``:

* expected calibration error (Guo et al. 2017): the confidences (each image's top probability) in
  15 equal-width bins (0, 1/15], ..., (14/15, 1]; ECE = sum over bins of |bin| / n * |accuracy in the
  bin - mean confidence in the bin|;
* negative log-likelihood: the mean of -log p[y] (p clipped at 1e-12, so a confident mistake costs
  27.6 rather than infinity);
* Brier score: the mean over images of sum_k (p_k - [k == y])^2 (0 perfect, 2 worst; the multi-class
  form of Brier 1950, not divided by the number of classes).

The bins are kept (count, mean confidence, accuracy) so the report can draw a reliability diagram
from the results alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Equal-width confidence bins of the expected calibration error (Guo et al. 2017 use 15).
BINS = 15
#: Probabilities are clipped here before the log: a confident mistake costs -log(1e-12) = 27.6.
FLOOR = 1e-12


def calibration_scores(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """ECE, NLL and Brier score of ``probabilities`` (n, k) for ``labels`` (n,), with the
    reliability bins: ``{"n", "ece", "nll", "brier", "bins": {"count", "confidence", "accuracy"}}``
    (the last two None for an empty bin)."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64).ravel()
    if p.ndim != 2 or p.shape[0] != y.shape[0] or y.size == 0:
        raise ValueError(f"calibration_scores needs (n, k) probabilities for n labels, got {p.shape} "
                         f"and {y.shape}")
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)  # (i/M, (i+1)/M]
    count = np.bincount(which, minlength=bins)
    summed_conf = np.bincount(which, weights=confidence, minlength=bins)
    summed_right = np.bincount(which, weights=correct.astype(np.float64), minlength=bins)
    filled = count > 0
    mean_conf = np.divide(summed_conf, count, out=np.zeros(bins), where=filled)
    accuracy = np.divide(summed_right, count, out=np.zeros(bins), where=filled)
    ece = float(np.sum(count / y.size * np.abs(accuracy - mean_conf)))
    truth = np.zeros_like(p)
    truth[np.arange(y.size), y] = 1.0
    return {
        "n": int(y.size),
        "ece": round(ece, 6),
        "nll": round(float(-np.mean(np.log(np.clip(p[np.arange(y.size), y], FLOOR, None)))), 6),
        "brier": round(float(np.mean(np.sum((p - truth) ** 2, axis=1))), 6),
        "bins": {"count": count.tolist(), "confidence": _filled(mean_conf, filled),
                 "accuracy": _filled(accuracy, filled)},
    }


def _filled(values: np.ndarray, filled: np.ndarray) -> list[float | None]:
    return [round(float(v), 6) if f else None for v, f in zip(values, filled, strict=True)]
