"""An approximate RBF-kernel SVM: Nystroem features, then a linear SVM (``svm-nystroem``).

The exact ``svm-rbf`` costs about n² kernel evaluations to fit and one per support vector to
predict; this one maps every image onto ``n_components`` kernel columns sampled from the training
set (Nystroem) and fits a linear SVM there, so fitting grows linearly with n and predicting costs
``n_components`` kernel evaluations. The report shows what that buys: on 4,000 mnist-5k digits it
scored 95.8% against the exact kernel's 96.8%, with prediction about 6x cheaper.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np

from digitbench.models.base import Digits, ReportCallback
from digitbench.models.baselines import SklearnModel, pixels
from digitbench.models.registry import register


class NystroemSVMModel(SklearnModel):
    """RBF kernel approximated by ``n_components`` Nystroem features, then ``LinearSVC``.

    Defaults: the exact SVM's gamma (0.03 on pixels in 0..1), 1,000 components, C 1.
    """

    name: ClassVar[str] = "svm-nystroem"
    defaults: ClassVar[dict[str, Any]] = {"C": 1.0, "gamma": 0.03, "n_components": 1000,
                                          "max_iter": 5000}

    @classmethod
    def search_space(cls, space: Any) -> dict[str, Any]:
        return {
            "C": space.float("C", 0.01, 100.0, log=True),
            "gamma": space.float("gamma", 1e-3, 0.3, log=True),
            "n_components": space.choice("n_components", [250, 500, 1000, 2000]),
        }

    def _features(self, seed: int, n_images: int | None = None) -> Any:
        """Nystroem features; never more components than there are training images."""
        from sklearn.kernel_approximation import Nystroem

        p = self.params
        n = p["n_components"] if n_images is None else min(p["n_components"], n_images)
        return Nystroem(kernel="rbf", gamma=p["gamma"], n_components=n, random_state=seed)

    def _estimator(self, seed: int) -> Any:
        from sklearn.svm import LinearSVC

        p = self.params
        return LinearSVC(C=p["C"], max_iter=p["max_iter"], random_state=seed)

    def fit(self, train: Digits, val: Digits | None = None, *, seed: int,
            report: ReportCallback | None = None) -> Self:
        x = pixels(train.images)
        self.features_ = self._features(seed, len(x)).fit(x)
        self.estimator_ = self._estimator(seed).fit(self.features_.transform(x), train.labels)
        return self

    def predict(self, images: np.ndarray) -> np.ndarray:
        z = self.features_.transform(pixels(images))
        return self.estimator_.predict(z).astype(np.int64)

    def exported_estimator(self) -> Any:
        from sklearn.pipeline import make_pipeline

        return make_pipeline(self.features_, self.estimator_)

    def macs_per_image(self) -> int:
        """A kernel value per component, the Nystroem normalisation, then a linear SVM."""
        n = self.features_.components_.shape[0]
        return n * self.features_.n_features_in_ + n * n + n * len(self.estimator_.classes_)

    def saved_parts(self) -> dict[str, Any]:
        """Both fitted parts: the Nystroem features and the linear SVM on them."""
        return {"features_": self._features(0), "estimator_": self._estimator(0)}


register("svm-nystroem", NystroemSVMModel)
