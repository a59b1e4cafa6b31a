"""Which parameters mattered, the statistics: per tuning study, the fANOVA importance of each tuned
parameter for validation accuracy, computed by Optuna; :mod:`reports.importance` writes them into
the report.

A *study* is one (dataset, model, tuner, study seed): the trials one tuner ran for one model with
one ``--study-seeds`` seed. Its trials that finished (status ``"ok"`` with a validation accuracy),
whichever tuner ran them (Optuna, keras-tuner or random search), are added to an in-memory Optuna
study (:func:`optuna.trial.create_trial`, :meth:`optuna.study.Study.add_trial`) and ranked by
:func:`optuna.importance.get_param_importances` with a seeded
:class:`~optuna.importance.FanovaImportanceEvaluator` (``seed=0``, so a report is reproducible;
passed explicitly, because Optuna 5's default evaluator is PED-ANOVA, not fANOVA). fANOVA fits a
random forest of the validation accuracy on the parameters and attributes its variance to each
parameter; the importances are normalised by Optuna to sum to 1.

The results store keeps each trial's full parameter set but not the search space, so the
distributions are inferred from the values the study's trials used:

* a parameter with the same value in every finished trial was not tuned and is dropped;
* bool or str values: ``CategoricalDistribution`` of the sorted distinct values;
* int values (bool excluded): ``IntDistribution(min, max)``;
* float values, or floats mixed with ints (a float written as a whole number):
  ``FloatDistribution(min, max)``. Whether the tuner sampled on a log scale does not matter:
  fANOVA's trees split on thresholds, so any monotone transform of a parameter gives the same
  importances;
* any other mix of types (say ``None`` and ints), or a parameter missing from some trials (read as
  ``None``): ``CategoricalDistribution`` of the values' string forms.

With fewer than :data:`MIN_TRIALS` finished trials, no tuned parameter, or the same validation
accuracy in every finished trial (no variance to attribute), a study has no importances.

In the report, per model and tuner, the importances are the mean over the studies (study seeds)
that have them, with the lowest and highest study's value in brackets when there are several; a
parameter a study did not tune counts as 0 in that study, so the means still sum to 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from digitbench.benchmark.store import Status
from digitbench.reports.format import natural_key

#: Finished trials (status ok, with a validation accuracy) a study needs for importances.
MIN_TRIALS = 10
#: Importances below this are summed up as "the rest" in the report's lines.
SHOWN_MIN = 0.05
#: Where no study of a model and tuner has :data:`MIN_TRIALS`, the trials of its studies (the
#: study seeds) are taken together, if they have as many; the result is marked so.
POOLED = "pooled"
#: Seed of fANOVA's random forest.
FANOVA_SEED = 0

Group = tuple[str, str]  # (model, tuner)
#: One study's importances (None: it has none), its finished trials, and why it has none ("too few",
#: "untuned", "flat"; "pooled N" where N studies' trials were taken together), as
#: :func:`study_results` gives them.
StudyResult = tuple[dict[str, float] | None, int, str]
#: Per parameter: its mean importance over the studies that have them, the lowest and the highest.
Ranked = list[tuple[str, float, float, float]]


# -- one study -------------------------------------------------------------------------------

@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs at WARNING and above only, as it did before, afterwards."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def _finished(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials with status ok and a finite validation accuracy."""
    val = pd.to_numeric(trials["val_accuracy"], errors="coerce").astype(float)
    return trials[(trials["status"] == Status.OK) & np.isfinite(val)]


def _distribution(values: list[Any]) -> tuple[BaseDistribution, list[Any]] | None:
    """The distribution inferred from one parameter's values in every trial, and the values as
    the distribution holds them; None where the parameter has one value (not tuned)."""
    kinds = {type(v) for v in values}
    if kinds <= {bool} or kinds <= {str}:
        distinct = sorted(set(values))
        return (CategoricalDistribution(distinct), values) if len(distinct) > 1 else None
    if kinds <= {int}:
        low, high = min(values), max(values)
        return (IntDistribution(low, high), values) if low < high else None
    if kinds <= {int, float} and all(math.isfinite(v) for v in values):
        numbers = [float(v) for v in values]
        low, high = min(numbers), max(numbers)
        return (FloatDistribution(low, high), numbers) if low < high else None
    texts = [str(v) for v in values]
    distinct = sorted(set(texts))
    return (CategoricalDistribution(distinct), texts) if len(distinct) > 1 else None


def search_space(params: list[dict[str, Any]]) -> tuple[dict[str, BaseDistribution],
                                                        list[dict[str, Any]]]:
    """The distributions of the tuned parameters inferred from the trials' parameter sets, and
    each trial's tuned parameters as those distributions hold them (see the module docstring)."""
    names = sorted({name for p in params for name in p})
    distributions: dict[str, BaseDistribution] = {}
    columns: dict[str, list[Any]] = {}
    for name in names:
        inferred = _distribution([p.get(name) for p in params])
        if inferred is not None:
            distributions[name], columns[name] = inferred
    return distributions, [{name: columns[name][i] for name in distributions}
                           for i in range(len(params))]


def _params(cell: Any) -> dict[str, Any]:
    return cell if isinstance(cell, dict) else {}


def _study_result(trials: pd.DataFrame) -> StudyResult:
    """Importances of one study (or None), its count of finished trials, and why there are none."""
    done = _finished(trials)
    n = len(done)
    if n < MIN_TRIALS:
        return None, n, "too few"
    distributions, values = search_space([_params(cell) for cell in done["params"]])
    if not distributions:
        return None, n, "untuned"
    accuracy = done["val_accuracy"].astype(float).to_numpy()
    if np.ptp(accuracy) == 0:
        return None, n, "flat"
    with _quiet_optuna():
        study = optuna.create_study(direction="maximize")
        for params, value in zip(values, accuracy, strict=True):
            study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                      value=float(value)))
        try:
            found = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=FANOVA_SEED))
        except RuntimeError:  # "zero total variance in all trees": nothing to attribute
            return None, n, "flat"
    return {name: float(v) for name, v in found.items()}, n, ""


def study_importances(trials: pd.DataFrame) -> dict[str, float] | None:
    """fANOVA importance of each tuned parameter for validation accuracy in one study's trial rows
    (of a typed frame; one dataset, model, tuner and study seed), largest first, summing to 1.

    None with fewer than :data:`MIN_TRIALS` trials that finished ok with a validation accuracy
    (pruned and failed trials do not count), with no tuned parameter, or when every finished trial
    reached the same validation accuracy.
    """
    return _study_result(trials)[0]


# -- per model and tuner ---------------------------------------------------------------------

def study_results(trials: pd.DataFrame) -> dict[Group, list[StudyResult]]:
    """Per (model, tuner), naturally sorted, each study's result in study-seed order, from one
    dataset's tuning trials (:func:`reports.table.trial_rows`)."""
    found: dict[Group, list[StudyResult]] = {}
    if trials.empty:
        return found
    trials = trials.assign(_seed=trials["seed"].astype(object).where(trials["seed"].notna(), "?"))
    keys = ["model", "tuner", "dataset", "_seed"] if "dataset" in trials else ["model", "tuner", "_seed"]
    studies = sorted(trials.groupby(keys, sort=False),
                     key=lambda item: tuple(natural_key(k) for k in item[0]))
    pools: dict[Group, list[pd.DataFrame]] = {}
    for key, study in studies:
        found.setdefault((str(key[0]), str(key[1])), []).append(_study_result(study))
        pools.setdefault((str(key[0]), str(key[1])), []).append(study)
    for group, results in found.items():  # no study has enough trials: their trials pooled
        if len(results) > 1 and all(why == "too few" for _, _, why in results):
            imp, n, why = _study_result(pd.concat(pools[group]))
            if imp is not None:
                found[group] = [(imp, n, f"{POOLED} {len(results)}")]
    return found


def summarise(results: list[StudyResult]) -> tuple[Ranked, int, int]:
    """Mean, lowest and highest importance per parameter over the studies that have importances
    (largest mean first, then by name), the number of those studies and their finished trials."""
    ranked = [(imp, n) for imp, n, _ in results if imp is not None]
    names = sorted({name for imp, _ in ranked for name in imp})
    table = []
    for name in names:
        values = [imp.get(name, 0.0) for imp, _ in ranked]
        table.append((name, float(np.mean(values)), min(values), max(values)))
    table.sort(key=lambda t: (-t[1], t[0]))
    return table, len(ranked), sum(n for _, n in ranked)


def shown(table: Ranked) -> Ranked:
    """The parameters with a mean importance of at least :data:`SHOWN_MIN` (at least the first)."""
    return [t for i, t in enumerate(table) if i == 0 or t[1] >= SHOWN_MIN]
