"""A digitbench plug-in: the nearest-centroid classifier.

Each digit class is summarised by its mean image (its centroid); an image gets the label of the
closest centroid. ``shrink`` pulls every centroid toward the mean of all images, the one parameter
a tuner can change. Run it beside the built-in models with::

    digitbench run --model-path docs/examples/nearest_centroid.py:NearestCentroid \
        --models nearest-centroid,logreg
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np

from digitbench import DigitModel, Digits


class NearestCentroid(DigitModel):
    # What the harness reads: the registry name, the family the report groups models by, and
    # every parameter with its default (``__init__`` refuses any other name).
    name: ClassVar[str] = "nearest-centroid"
    family: ClassVar[str] = "baseline"
    defaults: ClassVar[dict[str, Any]] = {"shrink": 0.0}
    # fit draws no random numbers, so the finals train it once (seed 0) however many seeds run.
    seed_invariant: ClassVar[bool] = True

    @classmethod
    def search_space(cls, space: Any) -> dict[str, Any]:
        """The parameters a tuner may change, with their ranges; every tuner reads this."""
        return {"shrink": space.float("shrink", 0.0, 0.9)}

    def fit(self, train: Digits, val: Digits | None = None, *, seed: int, report: Any = None) -> Self:
        """Learn one centroid per class from ``train.images`` (n, 28, 28) uint8 and
        ``train.labels`` (n,) 0..9. ``val`` is for monitoring only; this model does not use it."""
        x = train.images.reshape(len(train.images), -1).astype(np.float64) / 255.0
        means = np.stack([x[train.labels == digit].mean(axis=0) for digit in range(10)])
        shrink = self.params["shrink"]
        self.centroids_ = (1.0 - shrink) * means + shrink * x.mean(axis=0)
        return self

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Labels 0..9 for (n, 28, 28) uint8 images: the closest centroid, in Euclidean distance."""
        x = images.reshape(len(images), -1).astype(np.float64) / 255.0
        distances = ((x[:, None, :] - self.centroids_[None, :, :]) ** 2).sum(axis=2)
        return distances.argmin(axis=1)
