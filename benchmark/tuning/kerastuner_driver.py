"""keras-tuner driven by ask/tell: its random, Bayesian and Hyperband oracles, trials run elsewhere.

keras-tuner only suggests and remembers here: no ``tuner.search()``, no model built by keras-tuner.
Public keras-tuner API relied on, and why:

* ``keras_tuner.engine.base_tuner.BaseTuner(oracle=..., directory=..., project_name=..., overwrite=False)``,
  built once with no hypermodel: the public way to attach a project folder to an oracle and, when the
  folder holds a study, reload it; ``tuner.save()`` writes ``oracle.json`` and the tuner file, whose
  presence is what makes the next driver reload. Only ``tuner.oracle`` is used afterwards.
* ``kt.oracles.{RandomSearch,BayesianOptimization,Hyperband}Oracle``, subclassed only to override
  ``score_trial`` (documented as overridable): a trial's score is the value ``tell`` gives, not the
  best epoch ``report`` recorded.
* ``oracle.get_space()`` / ``update_space(hp)``: declare the search space (define-by-run, through
  ``KerasTunerSpace``), again with each trial's values in case they declare new dimensions.
* ``oracle.create_trial(tuner_id)``: one new trial per call, under a fresh ``tuner_id`` (the oracle
  keys ongoing trials by it, and hands an ongoing trial back to a tuner_id that asks again). A trial
  that is not ``RUNNING`` (``IDLE``: waiting; ``STOPPED``: done) means nothing to start now.
* ``oracle.update_trial(trial_id, metrics, step)``, ``oracle.get_trial``, ``trial.status`` /
  ``trial.message`` / ``trial.metrics``, ``oracle.end_trial(trial)``, ``oracle.trials``,
  ``oracle.verbose = 0`` (no per-trial printing).
* ``oracle.save()`` after ``end_trial``: ``end_trial`` saves before it drops the trial from the
  ongoing ones, so a kill right then would hand the ended trial out again.
* ``oracle.get_state()["retry_queue"]``: on reload, trials a killed run left ongoing are queued to be
  handed out again by ``create_trial``; ``settle`` takes them off the queue that way, then ends them.

Trial number = ``int(trial_id)`` (ids ``"0000"``, ``"0001"``... in creation order). Hyperband with
unlimited iterations does not wait for a bracket's running trials: it starts the next bracket; ``ask``
gives None only when it finds no fresh values while trials run (then it waits for promotions).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from digitbench.benchmark.settings import KERAS_TUNER_ORACLES
from digitbench.benchmark.store import STATUSES, Status
from digitbench.benchmark.tuning.driver import StudySpec, TunerDriver
from digitbench.benchmark.tuning.space import KerasTunerSpace, Space
from digitbench.benchmark.tuning.trial import Recorded
from digitbench.models.lenet import import_keras

ORACLES = KERAS_TUNER_ORACLES
OBJECTIVE = "val_accuracy"
#: Marks a trial that was pruned with no value to report: FAILED for the oracle, finished for us.
PRUNED_MARK = "digitbench: pruned without a value"
PRUNED_OK = "digitbench: pruned"
FAILED_MARK = "digitbench: failed"
LEFT_RUNNING = "digitbench: left running by an earlier run, no outcome recorded"
SETTINGS_FILE = "digitbench.json"


class KerasTunerDriver(TunerDriver):
    """A keras-tuner study in ``directory/project``, asked for trials and told their outcomes.
    Hyperband allocates epochs: for a model without them the study uses the Bayesian oracle."""

    @classmethod
    def describe(cls, spec: StudySpec) -> dict[str, Any]:
        return {"oracle": _oracle(spec)}

    @classmethod
    def starts_from_defaults(cls, spec: StudySpec) -> bool:
        return _oracle(spec) != "hyperband"  # Hyperband's brackets choose every trial's values

    @classmethod
    def open(cls, spec: StudySpec) -> KerasTunerDriver:
        oracle = _oracle(spec)
        return cls(search_space=spec.search_space, oracle=oracle, directory=spec.folder,
                   project=f"{spec.name}__{oracle}", seed=spec.seed, max_epochs=spec.max_epochs,
                   first_trial=spec.first_trial)

    def __init__(self, *, search_space: Callable[[Space], dict[str, Any]], oracle: str, directory: Path,
                 project: str, seed: int, max_epochs: int | None,
                 first_trial: dict[str, Any] | None = None) -> None:
        if oracle not in ORACLES:
            raise ValueError(f"unknown keras-tuner oracle {oracle!r}; expected one of {ORACLES}")
        if oracle == "hyperband" and max_epochs is None:
            raise ValueError("keras-tuner's Hyperband needs max_epochs (a model with an 'epochs' parameter)")
        import_keras()  # before keras_tuner, which imports TensorFlow: keeps its start-up noise quiet
        import keras_tuner as kt

        _check_settings(Path(directory) / project, {"oracle": oracle, "seed": seed, "max_epochs": max_epochs})
        with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ..."
            made = _make_oracle(kt, oracle, seed, max_epochs, first_trial)
            tuner = kt.engine.base_tuner.BaseTuner(oracle=made,
                                                   directory=str(directory), project_name=project,
                                                   overwrite=False)
        self.oracle = tuner.oracle
        self.oracle.verbose = 0
        hp = self.oracle.get_space()
        search_space(KerasTunerSpace(hp))
        self.oracle.update_space(hp)
        tuner.save()  # from now on the folder reloads
        self.search_space, self.with_epochs = search_space, oracle == "hyperband"
        self._running: dict[int, str] = {}  # trial number -> trial_id
        self._tuner_ids = (f"digitbench-{i}" for i in itertools.count())

    def settle(self, recorded: Recorded) -> None:
        """End the trials the folder holds as running: with ``recorded(number)``, else as failed."""
        asked = set(self._running.values())
        queued = list(self.oracle.get_state()["retry_queue"])
        trials = self.oracle.trials
        before = {tid: (trials[tid].status, trials[tid].message) for tid in queued}
        for _ in queued:  # create_trial hands queued trials out first, taking them off the queue
            if (tid := self.oracle.create_trial(next(self._tuner_ids)).trial_id) not in before:
                raise RuntimeError(f"keras-tuner handed out trial {tid}, not one of the queued {queued}")
        for trial in list(self.oracle.trials.values()):
            if trial.status != "RUNNING" or trial.trial_id in asked:
                continue
            status, message = before.get(trial.trial_id, ("RUNNING", None))
            if status != "RUNNING":  # ended, but killed before its end was fully saved: end it again
                trial.status, trial.message = status, message
                self.oracle.end_trial(trial)
                self.oracle.save()
                continue
            number = int(trial.trial_id)
            self._running[number] = trial.trial_id
            outcome = recorded(number)
            self._end(number, *(outcome or (Status.ERROR, None)), message=None if outcome else LEFT_RUNNING)

    def ask(self) -> tuple[int, dict[str, Any]] | None:
        """A new trial's number and params, or None when the oracle has nothing to start now."""
        trial = self.oracle.create_trial(next(self._tuner_ids))
        if trial.status != "RUNNING":  # IDLE (waiting for running trials) or STOPPED (done)
            return None
        number = int(trial.trial_id)
        self._running[number] = trial.trial_id
        hp = trial.hyperparameters
        try:
            params = self.search_space(KerasTunerSpace(hp))
        except Exception:
            self.tell(number, Status.ERROR, None)
            raise
        self.oracle.update_space(hp)  # dimensions these values declared first (define-by-run)
        if self.with_epochs:
            params["epochs"] = int(hp.values["tuner/epochs"])
        return number, params

    def report(self, number: int, epoch: int, value: float) -> bool:
        """Record an epoch's validation accuracy; keras-tuner never stops a trial early: False."""
        self.oracle.update_trial(self._kt_id(number), {OBJECTIVE: float(value)}, step=epoch)
        return False

    def tell(self, number: int, status: str, value: float | None) -> None:
        """End a running trial with its outcome; the folder holds it when this returns."""
        self._end(number, status, value)

    def finished(self) -> int:
        """Trials completed or pruned, earlier runs included."""
        return sum(map(_is_finished, self.oracle.trials.values()))

    def running(self) -> list[int]:
        """Numbers of the trials asked and not yet told."""
        return sorted(self._running)

    def _kt_id(self, number: int) -> str:
        if number not in self._running:
            raise ValueError(f"trial {number} is not running (running: {self.running()})")
        return self._running[number]

    def _end(self, number: int, status: str, value: float | None, message: str | None = None) -> None:
        if status not in STATUSES or (status == Status.OK and value is None):
            raise ValueError(f"trial {number}: bad outcome {status!r} with value {value!r}")
        trial = self.oracle.get_trial(self._kt_id(number))
        if value is not None and status != Status.ERROR:
            # At a step after every reported epoch: the score is the last value (see _make_oracle).
            history = trial.metrics.get_history(OBJECTIVE) if trial.metrics.exists(OBJECTIVE) else []
            step = max((o.step for o in history), default=-1) + 1
            self.oracle.update_trial(trial.trial_id, {OBJECTIVE: float(value)}, step=step)
            trial.status, trial.message = "COMPLETED", (PRUNED_OK if status == Status.PRUNED else None)
        else:
            trial.status = "FAILED"
            trial.message = PRUNED_MARK if status == Status.PRUNED else message or FAILED_MARK
        self.oracle.end_trial(trial)
        self.oracle.save()  # end_trial saved the oracle while the trial was still ongoing
        del self._running[number]


def _oracle(spec: StudySpec) -> str:
    return "bayesian" if spec.oracle == "hyperband" and spec.max_epochs is None else spec.oracle


def _make_oracle(kt: Any, kind: str, seed: int, max_epochs: int | None,
                 first_trial: dict[str, Any] | None = None) -> Any:
    """No ``max_trials`` (the coordinator counts), no retries, no stop on failures in a row; the
    random and Bayesian oracles start from ``first_trial`` (the model's defaults), as Optuna does."""
    base = {"random": kt.oracles.RandomSearchOracle, "bayesian": kt.oracles.BayesianOptimizationOracle,
            "hyperband": kt.oracles.HyperbandOracle}[kind]

    class Oracle(base):
        def score_trial(self, trial: Any) -> None:
            """The value ``tell`` gave (recorded after every epoch), not the best epoch's."""
            trial.score = trial.metrics.get_last_value(OBJECTIVE)
            trial.best_step = trial.metrics.get_history(OBJECTIVE)[-1].step

        def populate_space(self, trial_id: str) -> dict[str, Any]:
            """The first trial of a new study: ``first_trial``, the rest of the space at its
            defaults; later ones: the oracle's own choice (``populate_space`` is keras-tuner's
            documented way for an oracle to choose values)."""
            if first_trial and kind != "hyperband" and not self.trials:
                space = self.get_space()
                values = {p.name: first_trial.get(p.name, p.default) for p in space.space}
                return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": values}
            return super().populate_space(trial_id)

    common = {
        "objective": kt.Objective(OBJECTIVE, "max"),
        # keras-tuner treats seed 0 as "random" and draws trial k's values from seed + k: spread seeds out.
        "seed": random.Random(seed).randrange(1, 2**31 - 1),
        "max_retries_per_trial": 0,
        "max_consecutive_failed_trials": sys.maxsize,
    }
    if kind == "hyperband":
        return Oracle(max_epochs=max_epochs, hyperband_iterations=None, **common)  # None: no end
    return Oracle(max_trials=None, **common)


def _check_settings(folder: Path, settings: dict[str, Any]) -> None:
    """Refuse to continue a study that another oracle, seed or epoch range started (keras-tuner
    would silently keep the stored seed and state)."""
    marker = folder / SETTINGS_FILE
    if marker.exists():
        stored = json.loads(marker.read_text())
        if stored != settings:
            raise ValueError(f"{folder} holds a keras-tuner study with {stored}, not {settings}: "
                             "use another project name, or delete the folder to start over")
        return
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(settings))


def _is_finished(trial: Any) -> bool:
    return trial.status == "COMPLETED" or (trial.status == "FAILED" and PRUNED_MARK in (trial.message or ""))
