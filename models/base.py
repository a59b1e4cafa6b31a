"""The model contract every digitbench model follows, built-in or plug-in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, NamedTuple, Protocol, Self

import numpy as np


class ReportCallback(Protocol):
    """``report(epoch, metrics, val_cpu_s=0.0, val_wall_s=0.0, init_cpu_s=0.0, init_wall_s=0.0)``:
    called by models that train in epochs after each epoch (1-based), with metrics such as
    ``{"loss": 0.3, "accuracy": 0.91, "val_accuracy": 0.9}``. Tuners use it for pruning, the runner
    for progress. The harness leaves two spans of the fit out of the time to a target accuracy, as
    MLPerf's training rules do (its clock starts when the training data is first touched):

    * ``val_cpu_s`` / ``val_wall_s``: the time the fit has spent computing validation metrics so far;
    * ``init_cpu_s`` / ``init_wall_s``: the time the fit spent initialising the model before it
      touched the training data (building, compiling, tracing a step on synthetic data), at its start.

    It returns True when training should end now, keeping the model as trained so far (a final
    stopped once it reaches its target, ``run --stop-at-target``); a model that cannot stop early
    may ignore it and train on."""

    def __call__(self, epoch: float, metrics: dict[str, float], *, val_cpu_s: float = 0.0,
                 val_wall_s: float = 0.0, init_cpu_s: float = 0.0,
                 init_wall_s: float = 0.0) -> bool | None: ...


class Digits(NamedTuple):
    """A set of digit images with their labels.

    ``images`` is ``(n, 28, 28)`` uint8 (0 = background, 255 = ink); ``labels`` is ``(n,)`` int64
    with values 0..9.
    """

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:  # number of images, not tuple arity
        return int(self.images.shape[0])


class DigitModel(ABC):
    """Base class of the contract.

    A subclass declares ``name``, ``family`` and ``defaults`` (every parameter it accepts, with its
    default value). Like a scikit-learn estimator, ``__init__`` only stores the parameters; all work
    happens in ``fit``. A variant (``lenet-relu``) is a registry entry with fixed parameters, not a
    subclass.

    Optional methods, looked up with ``hasattr`` (see :func:`probabilities` and ``models.persist``):

    * ``predict_proba(images) -> (n, 10)`` class probabilities, rows summing to 1, whose argmax is
      ``predict``; ensembles average them.
    * ``save(path)`` writes the fitted model, its parameters included, to one file whose name ends
      in the class attribute ``file_suffix`` (e.g. ``".keras"``, ``".skops"``); the classmethod
      ``load(path) -> Self`` reads it back so that it predicts exactly as before. Loading must not
      run code from the file. Use ``models.persist.save_model`` / ``load_model``, which add the
      registry name and provenance to the file.
    * ``export_onnx(path)`` writes the fitted model as an ONNX graph, and ``onnx_input(images)``
      gives the array that graph takes for ``(n, 28, 28)`` uint8 images; its first output is either
      ``(n, 10)`` class scores or ``(n,)`` labels. The finals then time it in ONNX Runtime and check
      that it predicts the same labels (``benchmark.execution.deployment``).
    * ``macs_per_image() -> int``: multiply-adds one prediction costs, for the report.
    * ``calibrate(val) -> Self``: a model whose scores are not probabilities (the SVMs) fits a
      calibration on held-out images after ``fit``; from then on ``predict_proba`` gives calibrated
      probabilities (before, it has none). Their argmax may differ from ``predict`` on a few images.

    ``fit`` calls ``report(epoch, metrics)`` after each epoch of an iterative model, with
    ``val_accuracy`` when it has a validation set, and the time spent on validation so far and on its
    initialisation as the keywords ``val_cpu_s``, ``val_wall_s``, ``init_cpu_s`` and ``init_wall_s``
    (see :class:`ReportCallback`).
    When ``getattr(report, "checks_per_epoch", 1)`` is more than 1 (a final timed to a target), a
    model may also measure validation accuracy within each epoch and report it with a fractional
    epoch (1.25, 1.5, ...): such reports count toward the target only.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    #: True when ``fit`` gives the same model whatever its ``seed`` (a deterministic solver): the
    #: finals then train it once, with seed 0, instead of repeating an identical computation per
    #: seed, and the report says so.
    seed_invariant: ClassVar[bool] = False
    #: True when ``fit`` and ``predict`` take images of any one size ``(n, height, width)``, not only
    #: 28x28: such models can run on a dataset loaded with ``--native-size``.
    any_image_size: ClassVar[bool] = False
    #: True when ``fit`` trains in epochs, reporting each through ``report``: the model then has an
    #: ``epochs`` parameter (``--epochs`` sets it), its trials can be pruned epoch by epoch, and its
    #: finals can be timed to a target accuracy. The registry refuses a class whose ``epochs``
    #: parameter and this attribute disagree.
    trains_in_epochs: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no parameter(s) {', '.join(unknown)}; "
                f"it takes {', '.join(sorted(self.defaults)) or 'none'}"
            )
        self.params: dict[str, Any] = {**self.defaults, **params}

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        """Refuse, before any work, a parameter set this model cannot train with: raise
        ``ValueError`` naming the parameter and its value. ``params`` is the full set (defaults
        filled in). This default refuses unknown names and values whose type differs from the
        default's (a whole number where the default is one, a number where it is a float, the same
        type otherwise; a default of None takes anything); models add their own ranges."""
        unknown = sorted(set(params) - set(cls.defaults))
        if unknown:
            raise ValueError(f"no parameter(s) {', '.join(unknown)}; it takes "
                             f"{', '.join(sorted(cls.defaults)) or 'none'}")
        for name, value in params.items():
            default = cls.defaults[name]
            if default is None:
                continue
            if isinstance(default, bool) or not isinstance(default, int | float):
                fits, wanted = isinstance(value, type(default)), f"a {type(default).__name__}"
            elif isinstance(default, int):
                fits, wanted = isinstance(value, int) and not isinstance(value, bool), "a whole number"
            else:
                fits, wanted = isinstance(value, int | float) and not isinstance(value, bool), "a number"
            if not fits:
                raise ValueError(f"{name} must be {wanted}, got {value!r}")

    @classmethod
    def search_space(cls, space: Any) -> dict[str, Any]:
        """Declare the tunable parameters once, define-by-run (see ``benchmark.tuning.space``)::

            return {"C": space.float("C", 1e-3, 10.0, log=True)}

        A model that declares nothing has nothing to tune: it is trained with its defaults.
        """
        return {}

    def get_params(self) -> dict[str, Any]:
        """The full parameter set (defaults filled in), as stored."""
        return dict(self.params)

    @abstractmethod
    def fit(
        self,
        train: Digits,
        val: Digits | None = None,
        *,
        seed: int,
        report: ReportCallback | None = None,
    ) -> Self:
        """Train on ``train``; ``val`` (if given) may be used for monitoring only. Returns self."""

    @abstractmethod
    def predict(self, images: np.ndarray) -> np.ndarray:
        """Labels 0..9 for ``(n, 28, 28)`` uint8 images."""

    def warm_up(self, images: np.ndarray) -> None:
        """Run the one-off work that predicting ``images`` needs (graph tracing, per-shape set-up,
        caches), so that it stays out of the timed prediction. The runner calls it untimed."""
        self.predict(images[:1])

    @classmethod
    def prepare(cls) -> None:
        """Process-wide one-off set-up (importing a framework such as TensorFlow): the runner calls
        it untimed before the first fit, so that no fit's CPU time includes it."""
        return None  # nothing to set up by default

    def n_params(self) -> int | None:
        """Number of trainable parameters, where that means something (networks); else None."""
        return None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def probabilities(model: DigitModel, images: np.ndarray) -> np.ndarray:
    """``(n, 10)`` class scores: ``predict_proba`` where the model has it, else a one-hot vote of
    ``predict`` (so that averaging over models is a majority vote for models without it)."""
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(images), dtype=np.float64)
    labels = np.asarray(model.predict(images), dtype=np.int64)
    return np.eye(10)[labels]
