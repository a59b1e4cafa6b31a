"""Optuna driver: a study in an RDB storage (the run's SQLite file by default), driven by ask and tell.

Only the coordinator talks to the study. It asks a trial, runs it somewhere (a worker process, a
Dask worker), passes the trial's epoch reports on (``report``, which says whether the pruner stops
it) and tells the outcome once the trial's row is in the results store. Several trials may be
running at once: TPE then runs with ``constant_liar``, so that it does not propose the same spot
twice. Everything here is Optuna's public API (``create_study``, ``ask``, ``tell`` with a trial
number, ``Trial.report`` / ``should_prune``, ``get_trials``).

With two objectives (``--objectives accuracy,fit-cpu`` or ``accuracy,predict-ms``) a study has two
directions, maximise the validation accuracy and minimise the trial's cost, and is told both. TPE
samples such a study as it is (Optuna's TPESampler is multi-objective: it splits the trials into
good and bad by non-domination rank and hypervolume contribution), the random tuner with
RandomSampler. Optuna has no pruning in multi-objective studies (``Trial.report`` raises there):
such studies run every trial to its end, and record pruner ``none (multi-objective)``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

from digitbench.benchmark.store import Status
from digitbench.benchmark.tuning.driver import StudySpec, TunerDriver
from digitbench.benchmark.tuning.space import OptunaSpace, Space
from digitbench.benchmark.tuning.trial import Outcome, Recorded, Value
from digitbench.common.errors import InputError

#: The pruner a multi-objective study records: Optuna prunes only single-objective studies.
NO_PRUNING = "none (multi-objective)"
#: The study's user attribute that records its ``--objectives``.
OBJECTIVES_ATTR = "objectives"


def _sampler(name: str, seed: int | None, max_trials: int) -> Any:
    import optuna

    if name == "tpe":  # random start-up trials: a third of a small budget, at most Optuna's 10
        startup = max(3, min(10, max_trials // 3))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown Optuna sampler {name!r}")


def _sampler_name(spec: StudySpec) -> str:
    return "random" if spec.tuner == "random" else spec.sampler


def directions(objectives: tuple[str, ...]) -> list[str]:
    """The Optuna directions of ``--objectives``: maximise the accuracy, minimise a cost."""
    return ["maximize"] + ["minimize"] * (len(objectives) - 1)


def check_objectives(storage: str, names: set[str], objectives: tuple[str, ...]) -> None:
    """Refuse, before any work, to continue a study of ``names`` kept in ``storage`` with other
    objectives than it was created with (one line naming it): Optuna would fail on the first tell,
    or mix two costs in one front. A study records its objectives in its user attribute
    ``objectives``; one created before that setting existed optimised the accuracy alone."""
    import optuna

    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if summary.study_name not in names:
            continue
        kept = summary.user_attrs.get(OBJECTIVES_ATTR)
        # without the attribute (created before it was recorded, or killed just then): directions
        differ = len(summary.directions) != len(objectives) if kept is None else \
            tuple(kept) != tuple(objectives)
        if differ:
            was = ",".join(kept) if kept else f"{len(summary.directions)} objective(s)"
            raise InputError(f"--objectives {','.join(objectives)}: study {summary.study_name} was "
                             f"created with {was}; resume with those objectives, or --overwrite")


def _pruner(name: str, max_epochs: int | None) -> Any:
    import optuna

    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs or "auto")
    raise ValueError(f"unknown Optuna pruner {name!r}")


class OptunaDriver(TunerDriver):
    """One study, asked and told by the coordinator. A new study starts with ``first_trial`` (the
    model's defaults), so that tuning never ends below them on the validation set. Tuner ``random``
    is random search: Optuna's RandomSampler, whatever ``--sampler`` says."""

    @classmethod
    def describe(cls, spec: StudySpec) -> dict[str, Any]:
        if len(spec.objectives) > 1:
            return {"sampler": _sampler_name(spec), "pruner": NO_PRUNING, "objectives": spec.objectives}
        return {"sampler": _sampler_name(spec), "pruner": spec.pruner}

    @classmethod
    def starts_from_defaults(cls, spec: StudySpec) -> bool:
        return True

    @classmethod
    def open(cls, spec: StudySpec) -> OptunaDriver:
        return cls(search_space=spec.search_space, study_name=spec.name, storage=spec.storage,
                   sampler=_sampler_name(spec), pruner=spec.pruner, max_trials=spec.max_trials,
                   seed=spec.seed, max_epochs=spec.max_epochs, first_trial=spec.first_trial,
                   objectives=spec.objectives)

    def __init__(self, *, search_space: Callable[[Space], dict[str, Any]], study_name: str,
                 storage: str, sampler: str, pruner: str, max_trials: int, seed: int,
                 max_epochs: int | None, first_trial: dict[str, Any] | None = None,
                 objectives: tuple[str, ...] = ("accuracy",)) -> None:
        import optuna

        optuna.logging.set_verbosity(logging.WARNING)
        self.search_space = search_space
        self.prunes = len(objectives) == 1
        self.study = optuna.create_study(
            study_name=study_name, storage=storage, load_if_exists=True,
            directions=directions(objectives), sampler=_sampler(sampler, seed, max_trials),
            pruner=_pruner(pruner if self.prunes else "none", max_epochs))
        if not self.study.get_trials(deepcopy=False) and self.study.user_attrs.get(OBJECTIVES_ATTR) is None:
            self.study.set_user_attr(OBJECTIVES_ATTR, list(objectives))
        if first_trial and not self.study.get_trials(deepcopy=False):
            self.study.enqueue_trial(first_trial)
        self._running: dict[int, Any] = {}

    def settle(self, recorded: Recorded) -> None:
        """Trials left RUNNING by a coordinator that was killed: told the outcome their row recorded
        if the row was written before the kill, else failed (they do not count; new trials replace
        them)."""
        from optuna.trial import TrialState

        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self._tell(trial.number, recorded(trial.number) or (Status.ERROR, None))

    def ask(self) -> tuple[int, dict[str, Any]]:
        trial = self.study.ask()
        self._running[trial.number] = trial
        return trial.number, self.search_space(OptunaSpace(trial))

    def report(self, number: int, epoch: int, value: float) -> bool:
        """Record an epoch's validation accuracy; True when the pruner stops the trial (never in a
        multi-objective study, which Optuna does not prune)."""
        if not self.prunes:
            return False
        trial = self._running[number]
        with warnings.catch_warnings():  # a retried task reports its epochs again: ignored
            warnings.simplefilter("ignore", UserWarning)
            trial.report(value, epoch)
        return trial.should_prune()

    def tell(self, number: int, status: str, value: Value) -> None:
        self._running.pop(number, None)
        self._tell(number, (status, value))

    def _tell(self, number: int, outcome: Outcome) -> None:
        from optuna.trial import TrialState

        status, value = outcome
        if status == Status.OK and value is not None:
            self.study.tell(number, value, skip_if_finished=True)
        else:
            state = TrialState.PRUNED if status == Status.PRUNED else TrialState.FAIL
            self.study.tell(number, state=state, skip_if_finished=True)

    def finished(self) -> int:
        from optuna.trial import TrialState

        return len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))

    def running(self) -> list[int]:
        return list(self._running)
