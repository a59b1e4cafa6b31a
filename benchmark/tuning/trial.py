"""What every tuner driver shares: the trial function's signature and how a trial ends early.

The runner owns the trial function: ``evaluate(number, params, report)`` trains the model with
``params`` (the values the tuner suggested; the runner adds defaults and the variant's fixed ones)
on the tuning training part, scores it on the validation part, appends the trial's row to
results.csv and returns the validation accuracy. A trial number whose row is already in results.csv
is not trained again: ``evaluate`` returns the recorded value (this is what makes tuning resumable
whatever moment a kill lands at). Drivers (``tune_optuna``, ``tune_kerastuner``) only map their
suggestions onto the search space, ask whether the budget is spent, and feed results back to their
study or oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.base import ReportCallback


class TrialPruned(Exception):
    """Raised from a ``report`` callback to stop a trial early; its row gets status ``pruned``.

    ``value`` is the last validation accuracy reported before the trial was stopped.
    """

    def __init__(self, value: float | None = None) -> None:
        super().__init__(f"pruned (last validation accuracy {value})")
        self.value = value


class TrialFailed(Exception):
    """Raised by ``evaluate`` when the model failed; the error row is already written."""


#: ``evaluate(number, params, report) -> validation accuracy``; raises TrialPruned or TrialFailed.
Evaluate = Callable[[int, dict[str, Any], ReportCallback | None], float]

TUNERS = ("none", "optuna", "keras-tuner")
OPTUNA_SAMPLERS = ("tpe", "random")
OPTUNA_PRUNERS = ("none", "median", "hyperband")
KERAS_TUNER_ORACLES = ("random", "bayesian", "hyperband")
