"""Outside models used by the plug-in tests; they live outside the digitbench packages."""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar, Self

import numpy as np

from digitbench import DigitModel, Digits, ReportCallback


class NearestCentroid(DigitModel):
    """Predicts the class whose mean image is closest (Euclidean): tiny, fast, about 80% on MNIST."""

    name: ClassVar[str] = "nearest-centroid"
    family: ClassVar[str] = "plug-in"
    defaults: ClassVar[dict[str, Any]] = {"shrink": 0.0}

    @classmethod
    def search_space(cls, space: Any) -> dict[str, Any]:
        return {"shrink": space.float("shrink", 0.0, 0.9)}

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


class PoorDefaults(NearestCentroid):
    """NearestCentroid whose defaults are poor: ``garble`` of the images (the first ones of every
    batch predicted) get a wrong label, 0.5 by default. Any trial with less beats the defaults
    clearly, so tuning always changes them; ``shrink`` barely matters: for what tuning bought and
    parameter importance."""

    name: ClassVar[str] = "poor-defaults"
    defaults: ClassVar[dict[str, Any]] = {"shrink": 0.0, "garble": 0.5}

    @classmethod
    def search_space(cls, space: Any) -> dict[str, Any]:
        return {"shrink": space.float("shrink", 0.0, 0.2), "garble": space.float("garble", 0.0, 0.5)}

    def predict(self, images: np.ndarray) -> np.ndarray:
        labels = super().predict(images)
        wrong = int(round(self.params["garble"] * len(labels)))
        labels[:wrong] = (labels[:wrong] + 1) % 10
        return labels


class BusyCentroid(NearestCentroid):
    """NearestCentroid that burns ``cpu_seconds`` of CPU in fit: for budget tests."""

    name: ClassVar[str] = "busy-centroid"
    defaults: ClassVar[dict[str, Any]] = {"shrink": 0.0, "cpu_seconds": 0.2}

    def fit(self, train: Digits, val: Digits | None = None, *, seed: int, **kw: Any) -> Self:
        end = time.process_time() + self.params["cpu_seconds"]
        while time.process_time() < end:
            pass
        return super().fit(train, val, seed=seed, **kw)


class EpochModel(NearestCentroid):
    """Trains in epochs and reports a validation accuracy that grows with ``quality``: for pruning.

    Each epoch reports ``val_accuracy = quality * epoch / epochs`` and ``val_loss = 2 - val_accuracy``
    (also at the fractions of an epoch
    a report's ``checks_per_epoch`` asks for); the final predictions are the
    centroid model's. Logs ``trial-start <quality> <pid>`` lines to $TINYPLUGIN_LOG when set.
    """

    name: ClassVar[str] = "epoch-model"
    trains_in_epochs: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {"shrink": 0.0, "quality": 0.5, "epochs": 6,
                                          "seconds_per_epoch": 0.0}

    @classmethod
    def search_space(cls, space: Any) -> dict[str, Any]:
        return {"quality": space.float("quality", 0.0, 1.0), "epochs": space.int("epochs", 2, 6)}

    def fit(self, train: Digits, val: Digits | None = None, *, seed: int,
            report: ReportCallback | None = None, **kw: Any) -> Self:
        if os.environ.get("TINYPLUGIN_LOG"):
            with open(os.environ["TINYPLUGIN_LOG"], "a") as log:
                log.write(f"trial-start {self.params['quality']} {os.getpid()}\n")
        checks = getattr(report, "checks_per_epoch", 1)  # asked for by a final timed to a target
        for epoch in range(1, self.params["epochs"] + 1):
            time.sleep(self.params["seconds_per_epoch"])
            for check in range(1, checks + 1) if report is not None else ():
                at = epoch - 1 + check / checks
                accuracy = self.params["quality"] * at / self.params["epochs"]
                # a loss after the accuracy, as Keras reports them, and above 1: a pruned trial
                # must record its accuracy, not the last metric reported
                report(int(at) if check == checks else at,
                       {"val_accuracy": accuracy, "val_loss": 2 - accuracy})
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
