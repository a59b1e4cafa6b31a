"""The interface every tuner driver implements, and which driver runs which tuner.

A driver is one study of one tool (an Optuna study, a keras-tuner project), asked and told by the
coordinator through :class:`~benchmark.tuning.study.Study`: ``ask`` a trial, ``report`` its epochs
(True: the pruner stops it), ``tell`` its outcome once its row is in the results store. What a study
records about its tool (sampler, pruner, oracle) and whether its first trial is the model's defaults
are the driver's to say, so :class:`Study` has no case for any tuner.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digitbench.benchmark.tuning.space import Space
from digitbench.benchmark.tuning.trial import Recorded, Value

#: tuner name -> "module:Class" of its driver (imported when a study of it opens).
DRIVERS = {"optuna": "digitbench.benchmark.tuning.optuna_driver:OptunaDriver",
           "random": "digitbench.benchmark.tuning.optuna_driver:OptunaDriver",
           "keras-tuner": "digitbench.benchmark.tuning.kerastuner_driver:KerasTunerDriver"}


@dataclass(frozen=True)
class StudySpec:
    """What a driver needs to open (or continue) one study."""

    tuner: str
    name: str                                      # the study's (or project's) name
    search_space: Callable[[Space], dict[str, Any]]  # the model's, with pinned values fixed
    seed: int
    max_trials: int
    max_epochs: int | None                         # None: the model does not train in epochs
    first_trial: dict[str, Any]                    # the model's defaults inside the search space
    storage: str                                   # Optuna: the RDB URL
    sampler: str                                   # Optuna: --sampler
    pruner: str                                    # Optuna: --pruner
    oracle: str                                    # keras-tuner: --oracle
    folder: Path                                   # keras-tuner: the folder of its projects
    objectives: tuple[str, ...] = ("accuracy",)    # Optuna: --objectives (accuracy, then a cost)


class TunerDriver(ABC):
    """One study of one tuning tool."""

    @classmethod
    @abstractmethod
    def describe(cls, spec: StudySpec) -> dict[str, Any]:
        """The tool's settings for this study as rows record them, known before the study opens:
        fields of :class:`~digitbench.benchmark.payloads.StudySummary` (``sampler`` and ``pruner``,
        ``oracle``...); a key that is not one is refused when the study is made."""

    @classmethod
    @abstractmethod
    def starts_from_defaults(cls, spec: StudySpec) -> bool:
        """Whether trial 0 of a new study is ``spec.first_trial`` (the model's defaults)."""

    @classmethod
    @abstractmethod
    def open(cls, spec: StudySpec) -> TunerDriver:
        """Open the study in the tool's own store, creating it or continuing it."""

    @abstractmethod
    def settle(self, recorded: Recorded) -> None:
        """End the trials a killed run left running: told ``recorded(number)``, else failed."""

    @abstractmethod
    def ask(self) -> tuple[int, dict[str, Any]] | None:
        """A new trial's number and tuned values, or None when nothing should start now."""

    @abstractmethod
    def report(self, number: int, epoch: int, value: float) -> bool:
        """An epoch's validation accuracy; True when the pruner stops the trial."""

    @abstractmethod
    def tell(self, number: int, status: str, value: Value) -> None:
        """A trial's outcome (``ok``, ``pruned`` or ``error``) and its value (the validation
        accuracy; with two objectives, it and the trial's cost); the tool's store holds it after."""

    @abstractmethod
    def running(self) -> list[int]:
        """Numbers of the trials asked and not yet told."""

    @abstractmethod
    def finished(self) -> int:
        """Trials the tool holds as completed or pruned, earlier runs included."""


def driver_class(tuner: str) -> type[TunerDriver]:
    """The driver class of ``tuner`` (a name of :data:`DRIVERS`)."""
    module, _, name = DRIVERS[tuner].partition(":")
    return getattr(importlib.import_module(module), name)
