"""Optuna driver: a study in an RDB storage (SQLite by default), asked and told one trial at a time.

:func:`tune_optuna` is a run on its own (it holds the run folder's lock, so it is the only process on
the study); :func:`tune_shared` is one worker of several on a shared storage (see benchmark.execution.shared).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from benchmark.tuning.space import OptunaSpace, Space
from benchmark.tuning.trial import Evaluate, TrialFailed, TrialPruned

#: ``recorded(number)`` -> (status, validation accuracy) of a trial already in results.csv, or None.
Recorded = Callable[[int], tuple[str, float | None] | None]


def _sampler(name: str, seed: int | None, max_trials: int, shared: bool = False) -> Any:
    import optuna

    if name == "tpe":  # random start-up trials: a third of a small budget, at most Optuna's 10
        startup = max(3, min(10, max_trials // 3))
        # Workers side by side: each lies that the others' running trials scored badly, so that
        # they do not all sample the same spot (Optuna's advice for distributed TPE).
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=shared)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown Optuna sampler {name!r}")


def _pruner(name: str, max_epochs: int | None) -> Any:
    import optuna

    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs or "auto")
    raise ValueError(f"unknown Optuna pruner {name!r}")


def tune_optuna(
    *,
    search_space: Callable[[Space], dict[str, Any]],
    evaluate: Evaluate,
    recorded: Recorded,
    study_name: str,
    storage: str,
    sampler: str,
    pruner: str,
    max_trials: int,
    out_of_budget: Callable[[], bool],
    seed: int,
    max_epochs: int | None,
    first_trial: dict[str, Any] | None = None,
) -> int:
    """Run the study until it has ``max_trials`` complete-or-pruned trials or the budget is spent.

    Returns the number of finished (complete or pruned) trials, earlier runs included. Trials left
    RUNNING by a killed process are settled first: told the value their row recorded if the row was
    written before the kill, else marked failed (so they do not count, and a new trial replaces them).
    A new study starts with ``first_trial`` (the model's defaults), so tuning never ends below them
    on the validation set.
    """
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(
        study_name=study_name, storage=storage, load_if_exists=True, direction="maximize",
        sampler=_sampler(sampler, seed, max_trials), pruner=_pruner(pruner, max_epochs),
    )
    if first_trial and not study.get_trials(deepcopy=False):
        study.enqueue_trial(first_trial)
    _settle_interrupted(study, recorded)
    while _finished(study) < max_trials and not out_of_budget():
        _run_trial(study, study.ask(), search_space, evaluate, recorded)
    return _finished(study)


def _finished(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _settle_interrupted(study: Any, recorded: Recorded) -> None:
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        row = recorded(trial.number)
        if row is not None and row[0] == "ok" and row[1] is not None:
            study.tell(trial.number, row[1])
        elif row is not None and row[0] == "pruned":
            study.tell(trial.number, state=TrialState.PRUNED)
        else:
            study.tell(trial.number, state=TrialState.FAIL)


def _live_states() -> tuple[Any, ...]:
    """States of the trials that count toward a shared study's trials: finished, running, queued."""
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


def tune_shared(
    *,
    search_space: Callable[[Space], dict[str, Any]],
    evaluate: Evaluate,
    recorded: Recorded,
    study_name: str,
    storage: Any,
    sampler: str,
    pruner: str,
    max_trials: int,
    out_of_budget: Callable[[int], bool],
    max_epochs: int | None,
    first_trial: dict[str, Any] | None = None,
) -> set[int] | None:
    """This worker's share of a study that several workers tune at once through ``storage``.

    Runs trials while the study, all workers together, has fewer than ``max_trials`` trials that are
    finished, running or queued for retry, and the budget (all workers' CPU) is not spent. Trial
    numbers come from the storage, so they never clash. ``out_of_budget(running)`` is asked with
    the number of trials other workers are running, which will spend budget too. Two workers
    asking for the last slot at the same moment both get a trial; the higher-numbered one sees
    that the slots below it are taken, marks itself failed (user attribute ``surplus``) without
    training, and stops: the study ends with exactly ``max_trials``. A trial whose worker died is
    failed by the heartbeat and queued again with the same parameters (``fail_stale``), and picked
    up here. The sampler is not seeded: workers that drew the same numbers would propose the same
    parameters.

    Returns the numbers of the finished (complete or pruned) trials once the study is complete:
    stopped by trials or budget, with no trial of any worker still running; None while the remaining
    trials are all running elsewhere (come back later, in case one of their workers dies).
    """
    import optuna
    from optuna.trial import TrialState

    from benchmark.execution import signals
    from benchmark.execution.locking import worker_id
    from benchmark.execution.shared import Heartbeat, fail_stale, tell

    optuna.logging.set_verbosity(logging.WARNING)
    study = _open_shared(study_name, storage, _sampler(sampler, None, max_trials, shared=True),
                         _pruner(pruner, max_epochs), first_trial)
    while True:
        signals.check()
        fail_stale(study)
        trials = study.get_trials(deepcopy=False)
        states = [t.state for t in trials]
        finished = states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED)
        running, waiting = states.count(TrialState.RUNNING), states.count(TrialState.WAITING)
        if finished >= max_trials or out_of_budget(running):
            if running:
                return None
            return {t.number for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
        if finished + running + waiting >= max_trials and not waiting:
            return None
        with signals.deferred():  # a trial is never taken without its heartbeat beating
            trial = study.ask()
            heartbeat = Heartbeat(storage, trial._trial_id).start()
        try:
            popped = {"fixed_params", "failed_trial"} & set(storage.get_trial_system_attrs(trial._trial_id))
            if not popped and _taken_below(study, trial.number) >= max_trials:
                tell(study, trial._trial_id, trial.number, state=TrialState.FAIL, attrs={"surplus": True})
                continue
            trial.set_user_attr("worker", worker_id())
            _run_trial(study, trial, search_space, evaluate, recorded)
        finally:
            heartbeat.stop()


def _open_shared(name: str, storage: Any, sampler: Any, pruner: Any,
                 first_trial: dict[str, Any] | None) -> Any:
    """Create the study (and queue its first trial, the defaults) or load it if a worker did."""
    import time

    import optuna

    try:
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                    sampler=sampler, pruner=pruner)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    else:
        if first_trial:
            study.enqueue_trial(first_trial)
        return study
    deadline = time.monotonic() + 10
    while first_trial and not study.get_trials(deepcopy=False) and time.monotonic() < deadline:
        time.sleep(0.1)  # the creator queues the defaults right after creating the study
    if first_trial and not study.get_trials(deepcopy=False):
        study.enqueue_trial(first_trial, skip_if_exists=True)  # the creator died in between
    return study


def _taken_below(study: Any, number: int) -> int:
    """Trials numbered below ``number`` that are finished, running or queued."""
    live = _live_states()
    return sum(t.number < number and t.state in live for t in study.get_trials(deepcopy=False))


def _run_trial(study: Any, trial: Any, search_space: Callable[[Space], dict[str, Any]],
               evaluate: Evaluate, recorded: Recorded) -> None:
    """Suggest, evaluate and tell one asked trial. A stop signal abandons it (told failed, so that
    it does not count), unless it came just after the trial's row was written: then the row's
    outcome is told."""
    import optuna

    from benchmark.execution.shared import tell
    from benchmark.execution.signals import Interrupted

    params = search_space(OptunaSpace(trial))

    def report(epoch: int, metrics: dict[str, float]) -> None:
        value = metrics.get("val_accuracy")
        if value is None:
            return
        trial.report(value, epoch)
        if trial.should_prune():
            raise TrialPruned(value)

    state, value = optuna.trial.TrialState.COMPLETE, None
    try:
        value = evaluate(trial.number, params, report)
    except TrialPruned:
        state = optuna.trial.TrialState.PRUNED
    except TrialFailed:
        state = optuna.trial.TrialState.FAIL
    except Interrupted:
        row = recorded(trial.number)
        if row is not None and row[0] == "ok" and row[1] is not None:
            tell(study, trial._trial_id, trial.number, row[1])
        elif row is not None and row[0] in ("pruned", "error"):
            tell(study, trial._trial_id, trial.number,
                 state=optuna.trial.TrialState.PRUNED if row[0] == "pruned" else optuna.trial.TrialState.FAIL)
        else:
            tell(study, trial._trial_id, trial.number, state=optuna.trial.TrialState.FAIL,
                 attrs={"interrupted": True})
        raise
    if state == optuna.trial.TrialState.COMPLETE:
        tell(study, trial._trial_id, trial.number, value)
    else:
        tell(study, trial._trial_id, trial.number, state=state)
