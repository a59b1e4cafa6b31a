"""Outside models used by the plug-in tests; they live outside the digitbench packages."""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar, Self

import numpy as np

from models.base import DigitModel, Digits, ReportCallback


class NearestCentroid(DigitModel):
    """Predicts the class whose mean image is closest (Euclidean): tiny, fast, about 80% on MNIST."""

    name: ClassVar[str] = "nearest-centroid"
    family: ClassVar[str] = "plug-in"
    defaults: ClassVar[dict[str, Any]] = {"shrink": 0.0}

    def fit(
        self,
        train: Digits,
        val: Digits | None = None,
        *,
        seed: int,
        budget: float | None = None,
        report: ReportCallback | None = None,
    ) -> Self:
        x = train.images.reshape(len(train.images), -1).astype(np.float64)
        means = np.stack([x[train.labels == c].mean(axis=0) for c in range(10)])
        self.centroids_ = (1 - self.params["shrink"]) * means + self.params["shrink"] * x.mean(0)
        return self

    def predict(self, images: np.ndarray) -> np.ndarray:
        x = images.reshape(len(images), -1).astype(np.float64)
        distances = ((x[:, None, :] - self.centroids_[None]) ** 2).sum(axis=2)
        return distances.argmin(axis=1)


class SlowCentroid(NearestCentroid):
    """NearestCentroid that takes ``seconds`` to fit and logs each fit's seed to $TINYPLUGIN_LOG."""

    name: ClassVar[str] = "slow-centroid"
    defaults: ClassVar[dict[str, Any]] = {"shrink": 0.0, "seconds": 0.5}

    def fit(self, train: Digits, val: Digits | None = None, *, seed: int, **kw: Any) -> Self:
        with open(os.environ["TINYPLUGIN_LOG"], "a") as log:
            log.write(f"{seed}\n")
        time.sleep(self.params["seconds"])
        return super().fit(train, val, seed=seed, **kw)


class WarningCentroid(NearestCentroid):
    """NearestCentroid whose fit warns, as a solver that did not converge would."""

    name: ClassVar[str] = "warning-centroid"

    def fit(self, train: Digits, val: Digits | None = None, *, seed: int, **kw: Any) -> Self:
        import warnings

        warnings.warn("did not converge\nsecond line of detail", RuntimeWarning, stacklevel=1)
        return super().fit(train, val, seed=seed, **kw)


class BrokenModel(NearestCentroid):
    """A model whose predictions are not digits: the runner must record an error row."""

    name: ClassVar[str] = "broken"

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.full(len(images), 11)
