"""Classic baselines on raw pixels scaled to 0..1: logistic regression, linear SVM, RBF SVM."""

from __future__ import annotations

import io
import warnings
import zipfile
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from digitbench.common.errors import InputError
from digitbench.models.base import DigitModel, Digits, ReportCallback
from digitbench.models.registry import register

#: What ``SklearnModel.save`` dumps with ``skops.io``: a dict of plain values (this tag, the
#: scikit-learn version, the parameters) and the fitted estimators under ``"parts"``.
SKOPS_FORMAT = "digitbench-sklearn"

#: The only types (as ``skops.io`` names them) a saved scikit-learn model may hold beyond plain JSON
#: values: our models' estimators, their arrays and numpy scalars, and the containers around them.
#: ``skops.io`` trusts these by default too; a file holding any type skops does not trust and this
#: list does not name is refused before anything in it is built.
TRUSTED_TYPES: tuple[str, ...] = (
    "builtins.dict",
    "builtins.tuple",
    "numpy.ndarray",
    "numpy.float64",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.svm._classes.LinearSVC",
    "sklearn.svm._classes.SVC",
    "sklearn.kernel_approximation.Nystroem",
    # a Platt-scaled SVM (--corruptions): its calibrator, around the fitted SVM frozen
    "builtins.list",
    "builtins.str",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.frozen._frozen.FrozenEstimator",
)

_OLD_NPZ_MEMBER = "estimator.json"   # in the pickle-free .npz model files of digitbench before skops


def read_skops(path: Path) -> dict[str, Any]:
    """The dict ``SklearnModel.save`` dumped to ``path``; InputError (one line) for anything else.

    The types in the file are checked with ``skops.io.get_untrusted_types`` first, and the file is
    refused if it holds any that skops does not trust and :data:`TRUSTED_TYPES` does not name; only
    then is it loaded, with ``trusted=TRUSTED_TYPES``. No pickle, so no code from the file runs.
    """
    import skops.io

    data = path.read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        raise InputError(f"{path}: not a skops model file (not a zip archive)") from None
    if "schema.json" not in names:
        if _OLD_NPZ_MEMBER in names:
            raise InputError(f"{path}: a scikit-learn model file in the .npz format of earlier digitbench "
                             "versions, which is no longer read (models are now saved with skops, as "
                             ".skops files): train and save the model again")
        raise InputError(f"{path}: not a skops model file (a zip archive without schema.json)")
    try:
        untrusted = sorted(set(skops.io.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
        if untrusted:
            raise InputError(f"{path}: refused, it holds types a digitbench scikit-learn model never "
                             f"holds: {', '.join(untrusted)}")
        state = skops.io.loads(data, trusted=list(TRUSTED_TYPES))
    except (KeyError, ValueError, TypeError, AttributeError, OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable skops model file ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:160]})") from None
    if not isinstance(state, dict) or state.get("format") != SKOPS_FORMAT:
        raise InputError(f"{path}: a skops file, but not a digitbench scikit-learn model (no "
                         f"{SKOPS_FORMAT} tag)")
    return state


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def pixels(images: np.ndarray) -> np.ndarray:
    """``(n, height, width)`` uint8 -> ``(n, height * width)`` float32 in 0..1."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


class SklearnModel(DigitModel):
    """A scikit-learn classifier on flattened pixels; subclasses say how to build it."""

    family: ClassVar[str] = "baseline"
    any_image_size: ClassVar[bool] = True  # flattened pixels of whatever size it was fitted on

    @abstractmethod
    def _estimator(self, seed: int) -> Any:
        """A new, unfitted scikit-learn classifier built from ``self.params``."""

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        """The types, then scikit-learn's own validation: a fit on two images of each digit (a few
        milliseconds), whose ``InvalidParameterError`` names the parameter and the value."""
        super().check_params(params)
        images = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence on 20 random images means nothing
            cls(**params).fit(Digits(images, np.arange(20) % 10), seed=0)

    def fit(
        self,
        train: Digits,
        val: Digits | None = None,
        *,
        seed: int,
        report: ReportCallback | None = None,
    ) -> Self:
        self.estimator_ = self._estimator(seed).fit(pixels(train.images), train.labels)
        return self

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.estimator_.predict(pixels(images)).astype(np.int64)

    def onnx_input(self, images: np.ndarray) -> np.ndarray:
        return pixels(images)

    def export_onnx(self, path: str | Path) -> None:
        """The fitted estimator through skl2onnx: float32 pixels in 0..1 in, labels first out."""
        from skl2onnx import to_onnx

        estimator = self.exported_estimator()
        options = {"zipmap": False} if hasattr(estimator, "predict_proba") else None  # arrays, not dicts
        graph = to_onnx(estimator, np.zeros((1, estimator.n_features_in_), np.float32), options=options)
        Path(path).write_bytes(graph.SerializeToString())

    def exported_estimator(self) -> Any:
        """The fitted scikit-learn estimator that takes :meth:`onnx_input`'s pixels and predicts
        labels: what the ONNX export and MLflow's scikit-learn flavour hold."""
        return self.estimator_

    def macs_per_image(self) -> int:
        """A linear model: one dot product of the pixels per class score."""
        return self.estimator_.n_features_in_ * len(self.estimator_.classes_)

    #: Saved with ``skops.io`` (no pickle; only :data:`TRUSTED_TYPES` are read back).
    file_suffix: ClassVar[str] = ".skops"

    def saved_parts(self) -> dict[str, Any]:
        """The unfitted estimators a saved model holds, keyed by the attribute each is fitted into."""
        return {"estimator_": self._estimator(0)}

    def optional_parts(self) -> dict[str, Any]:
        """Estimators a saved model may hold besides (a calibrator), as :meth:`saved_parts`."""
        return {}

    def save(self, path: str | Path) -> None:
        """Write the parameters and the fitted estimator(s) to the skops file ``path``."""
        import sklearn
        import skops.io

        state = {"format": SKOPS_FORMAT, "sklearn": sklearn.__version__, "params": self.params,
                 "parts": {attribute: getattr(self, attribute) for attribute in self.saved_parts()}}
        skops.io.dump(state, Path(path), compression=zipfile.ZIP_DEFLATED)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """The model saved by :meth:`save`; loading runs no code from the file (:func:`read_skops`),
        and every estimator in it must be of the class this model builds."""
        import sklearn

        state = read_skops(Path(path))
        params, parts = state.get("params"), state.get("parts")
        if not isinstance(params, dict) or not isinstance(parts, dict) or not all(
                isinstance(key, str) for key in params):
            raise ValueError("no parameters or no fitted parts in the file")
        model = cls(**params)
        expected = model.saved_parts()
        optional = model.optional_parts()
        if not set(expected) <= set(parts) <= set(expected) | set(optional):
            raise ValueError(f"holds parts {sorted(parts)}, expected {sorted(expected)}")
        expected = {**expected, **optional}
        for attribute, part in parts.items():
            if type(part) is not type(expected[attribute]):
                raise ValueError(f"holds a {_type_name(part)} as {attribute}, expected a "
                                 f"{_type_name(expected[attribute])}")
        if state.get("sklearn") != sklearn.__version__:
            warnings.warn(f"{path}: saved with scikit-learn {state.get('sklearn')}, loading with "
                          f"{sklearn.__version__}; predictions may differ", UserWarning, stacklevel=2)
        for attribute, part in parts.items():
            setattr(model, attribute, part)
        return model


class LogisticRegressionModel(SklearnModel):
    """Multinomial logistic regression (softmax regression), L2-regularised, lbfgs.

    Default C 0.1: 90.1% on a 4,000/1,000 split of mnist-5k, against 88.1% (C 0.01), 89.4% (C 1).
    """

    name: ClassVar[str] = "logreg"
    seed_invariant: ClassVar[bool] = True  # lbfgs draws no random numbers
    defaults: ClassVar[dict[str, Any]] = {"C": 0.1, "max_iter": 300, "tol": 1e-4}

    @classmethod
    def search_space(cls, space: Any) -> dict[str, Any]:
        return {"C": space.float("C", 1e-4, 10.0, log=True)}

    def _estimator(self, seed: int) -> Any:
        from sklearn.linear_model import LogisticRegression

        p = self.params
        return LogisticRegression(C=p["C"], max_iter=p["max_iter"], tol=p["tol"], random_state=seed)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return self.estimator_.predict_proba(pixels(images))


class PlattScaled:
    """Probabilities for an SVM, whose scores are none: Platt scaling (a sigmoid per class on its
    one-vs-rest scores, normalised) fitted on held-out images after the SVM, the documented
    scikit-learn way: ``CalibratedClassifierCV`` around the fitted SVM frozen (``FrozenEstimator``)."""

    def saved_parts(self) -> dict[str, Any]:
        """A calibrated SVM is saved with its calibrator (``predict`` then prints its probabilities)."""
        parts = super().saved_parts()  # type: ignore[misc]
        return {**parts, **(self.optional_parts() if hasattr(self, "calibrator_") else {})}

    def optional_parts(self) -> dict[str, Any]:
        from sklearn.calibration import CalibratedClassifierCV

        return {"calibrator_": CalibratedClassifierCV()}

    def calibrate(self, val: Digits) -> Self:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.frozen import FrozenEstimator

        self.calibrator_ = CalibratedClassifierCV(FrozenEstimator(self.estimator_), method="sigmoid")
        self.calibrator_.fit(pixels(val.images), val.labels)
        return self

    @property
    def predict_proba(self) -> Any:
        """Calibrated class probabilities, once :meth:`calibrate` ran; before, there is no such
        attribute (``hasattr`` says False, as scikit-learn's ``available_if`` would)."""
        if not hasattr(self, "calibrator_"):
            raise AttributeError("predict_proba: an SVM has probabilities only after calibrate(val)")
        return lambda images: self.calibrator_.predict_proba(pixels(images))


class LinearSVMModel(PlattScaled, SklearnModel):
    """One-vs-rest linear SVM (liblinear, squared hinge loss).

    Default C 0.01: 90.0% on a 4,000/1,000 split of mnist-5k, against 89.4% (C 0.1), 85.7% (C 1).
    """

    name: ClassVar[str] = "linear-svm"
    defaults: ClassVar[dict[str, Any]] = {"C": 0.01, "max_iter": 5000, "tol": 1e-4}

    @classmethod
    def search_space(cls, space: Any) -> dict[str, Any]:
        return {"C": space.float("C", 1e-5, 1.0, log=True)}

    def _estimator(self, seed: int) -> Any:
        from sklearn.svm import LinearSVC

        p = self.params
        return LinearSVC(C=p["C"], max_iter=p["max_iter"], tol=p["tol"], random_state=seed)


class RBFSVMModel(PlattScaled, SklearnModel):
    """Kernel SVM with a Gaussian (RBF) kernel, one-vs-one (libsvm).

    Default gamma 0.03 (pixels in 0..1): 5-fold CV accuracy on mnist-5k 96.3%, against 95.8% for
    scikit-learn's ``"scale"`` (0.0134 there); C 5 and 10 score the same.
    """

    name: ClassVar[str] = "svm-rbf"
    seed_invariant: ClassVar[bool] = True  # libsvm uses the seed only for probability estimates
    defaults: ClassVar[dict[str, Any]] = {"C": 5.0, "gamma": 0.03, "cache_mb": 500}

    @classmethod
    def search_space(cls, space: Any) -> dict[str, Any]:
        return {
            "C": space.float("C", 0.1, 100.0, log=True),
            "gamma": space.float("gamma", 1e-3, 0.3, log=True),
        }

    def macs_per_image(self) -> int:
        """A kernel value per support vector (a distance over the pixels), then the one-vs-one sums."""
        support, pixels_ = self.estimator_.support_vectors_.shape
        return support * pixels_ + support * (len(self.estimator_.classes_) - 1)

    def _estimator(self, seed: int) -> Any:
        from sklearn.svm import SVC

        p = self.params
        return SVC(C=p["C"], gamma=p["gamma"], cache_size=p["cache_mb"], random_state=seed)


register("logreg", LogisticRegressionModel)
register("linear-svm", LinearSVMModel)
register("svm-rbf", RBFSVMModel)
