"""keras-tuner driver: its random, Bayesian and Hyperband oracles over the one search-space language.

keras-tuner only suggests and remembers here: a ``BaseTuner`` subclass's ``run_trial`` turns a
trial's hyperparameters into params through ``KerasTunerSpace`` and calls the runner's ``evaluate``;
no model is built, checkpointed or reloaded by keras-tuner. The study lives in keras-tuner's project
folder (``overwrite=False``), so a later call continues it. Trial number = ``int(trial_id)``: the
oracle numbers trials 0, 1, 2... in creation order (ids ``"0000"``, ``"0001"``...), and a trial left
RUNNING by a killed process is run again under the same number with the same values.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark.tuning.space import KerasTunerSpace, Space
from benchmark.tuning.trial import KERAS_TUNER_ORACLES, Evaluate, TrialFailed, TrialPruned
from models.lenet import import_keras

OBJECTIVE = "val_accuracy"
#: This many failed trials in a row (over all runs of the study) end it early, with a warning.
MAX_CONSECUTIVE_FAILURES = 10
#: Marks a trial that was pruned with no value to report: FAILED for the oracle, finished for us.
PRUNED_MARK = "digitbench: pruned without a value"
SETTINGS_FILE = "digitbench.json"

log = logging.getLogger(__name__)


class _Stop(Exception):
    """Raised at a trial boundary when the study has its trials or the budget is spent."""


def tune_kerastuner(
    *,
    search_space: Callable[[Space], dict[str, Any]],
    evaluate: Evaluate,
    oracle: str,
    max_trials: int,
    out_of_budget: Callable[[], bool],
    directory: Path,
    project: str,
    seed: int,
    max_epochs: int | None,
) -> int:
    """Run the study until it has ``max_trials`` finished (completed or pruned) trials, earlier runs
    included, or ``out_of_budget()`` says stop before a new trial. Returns the finished count.

    Failed trials (``TrialFailed``) do not count; the oracle moves on to new values. Hyperband
    passes ``epochs`` = its ``tuner/epochs`` (1..``max_epochs``; a promoted trial trains again from
    scratch) and iterates brackets until the study has its trials. Any other exception from
    ``evaluate`` propagates; that trial is run again, same number and values, by the next call.
    """
    if oracle not in KERAS_TUNER_ORACLES:
        raise ValueError(f"unknown keras-tuner oracle {oracle!r}; expected one of {KERAS_TUNER_ORACLES}")
    if oracle == "hyperband" and max_epochs is None:
        raise ValueError("keras-tuner's Hyperband needs a model with an 'epochs' parameter to budget")
    import_keras()  # before keras_tuner, which imports TensorFlow: keeps its start-up noise quiet
    import keras_tuner as kt
    from keras_tuner.src import config as kt_config

    kt_config.DEBUG = False  # else every failed trial's traceback goes to stderr (the runner logs errors)

    _check_settings(Path(directory) / project, {"oracle": oracle, "seed": seed, "max_epochs": max_epochs})
    with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ..."
        tuner = _tuner_class()(
            evaluate=evaluate,
            max_trials=max_trials,
            out_of_budget=out_of_budget,
            with_epochs=oracle == "hyperband",
            oracle=_make_oracle(kt, oracle, seed, max_epochs),
            hypermodel=lambda hp: search_space(KerasTunerSpace(hp)),
            directory=str(directory),
            project_name=project,
            overwrite=False,
        )
    error: BaseException | None = None
    try:
        tuner.search(verbose=0)
    except _Stop:
        pass
    except kt.errors.FatalError as e:  # evaluate raised something other than TrialPruned/TrialFailed
        if e.__cause__ is None:
            raise
        error = e.__cause__
    if error is not None:
        raise error
    return _finished(tuner.oracle)


def _make_oracle(kt: Any, kind: str, seed: int, max_epochs: int | None) -> Any:
    """No ``max_trials`` for the oracle (we count finished trials ourselves) and no retries."""
    common = {
        "objective": kt.Objective(OBJECTIVE, "max"),
        # keras-tuner treats seed 0 as "random" and draws trial k's values from seed + k: spread seeds out.
        "seed": random.Random(seed).randrange(1, 2**31 - 1),
        "max_retries_per_trial": 0,
        "max_consecutive_failed_trials": sys.maxsize,  # we stop cleanly ourselves, see pre_create_trial
    }
    if kind == "random":
        return kt.oracles.RandomSearchOracle(max_trials=None, **common)
    if kind == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(max_trials=None, **common)
    return kt.oracles.HyperbandOracle(max_epochs=max_epochs, hyperband_iterations=None, **common)


def _check_settings(folder: Path, settings: dict[str, Any]) -> None:
    """Refuse to continue a study that another oracle, seed or epoch range started (keras-tuner
    would silently keep the stored seed and state)."""
    marker = folder / SETTINGS_FILE
    if marker.exists():
        stored = json.loads(marker.read_text())
        if stored != settings:
            raise ValueError(
                f"{folder} holds a keras-tuner study with {stored}, not {settings}: "
                "use another project name, or delete the folder to start over"
            )
        return
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(settings))


def _is_finished(trial: Any) -> bool:
    return trial.status == "COMPLETED" or (trial.status == "FAILED" and PRUNED_MARK in (trial.message or ""))


def _finished(oracle: Any) -> int:
    return sum(map(_is_finished, oracle.trials.values()))


def _failures_in_a_row(oracle: Any) -> int:
    count = 0
    for trial_id in reversed(oracle.end_order):
        if _is_finished(oracle.trials[trial_id]):
            break
        count += 1
    return count


@functools.cache
def _tuner_class() -> type:
    """The ``BaseTuner`` subclass, made on first use so that importing this module stays cheap."""
    import keras_tuner as kt

    class DriverTuner(kt.engine.base_tuner.BaseTuner):
        def __init__(self, *, evaluate: Evaluate, max_trials: int, out_of_budget: Callable[[], bool],
                     with_epochs: bool, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.evaluate, self.max_trials, self.out_of_budget = evaluate, max_trials, out_of_budget
            self.with_epochs = with_epochs

        def pre_create_trial(self) -> None:
            if _finished(self.oracle) >= self.max_trials or self.out_of_budget():
                raise _Stop
            if _failures_in_a_row(self.oracle) >= MAX_CONSECUTIVE_FAILURES:
                log.warning("keras-tuner study %s: %d failed trials in a row, stopping it",
                            self.project_name, MAX_CONSECUTIVE_FAILURES)
                raise _Stop

        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> float:
            hp = trial.hyperparameters
            params = self.hypermodel.build(hp)
            if self.with_epochs:
                params["epochs"] = int(hp.values["tuner/epochs"])
            try:
                return float(self.evaluate(int(trial.trial_id), params, None))
            except TrialPruned as e:
                if e.value is None:
                    raise kt.errors.FailedTrialError(PRUNED_MARK) from e
                return float(e.value)
            except TrialFailed as e:
                raise kt.errors.FailedTrialError(f"digitbench: failed: {e}") from e
            except Exception as e:
                raise kt.errors.FatalError(f"evaluate raised {e!r}") from e

        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)
            # Garbage is collected once per trial by the caller's evaluate (benchmark.tuning.study).
            import_keras().backend.clear_session(free_memory=False)

    return DriverTuner
