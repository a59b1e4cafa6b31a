"""Optuna driver: a study in an RDB storage (SQLite by default), asked and told one trial at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from benchmark.space import OptunaSpace, Space
from benchmark.tuning import Evaluate, TrialFailed, TrialPruned

#: ``recorded(number)`` -> (status, validation accuracy) of a trial already in results.csv, or None.
Recorded = Callable[[int], tuple[str, float | None] | None]


def _sampler(name: str, seed: int, max_trials: int) -> Any:
    import optuna

    if name == "tpe":  # random start-up trials: a third of a small budget, at most Optuna's 10
        startup = max(3, min(10, max_trials // 3))
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
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
        trial = study.ask()
        params = search_space(OptunaSpace(trial))

        def report(epoch: int, metrics: dict[str, float], trial: Any = trial) -> None:
            value = metrics.get("val_accuracy")
            if value is None:
                return
            trial.report(value, epoch)
            if trial.should_prune():
                raise TrialPruned(value)

        try:
            value = evaluate(trial.number, params, report)
        except TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        except TrialFailed:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)
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
