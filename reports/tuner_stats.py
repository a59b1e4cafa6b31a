"""Which tuner wins, beyond chance: the blocks the tuners are compared in and the per-tuner figures
of merit; :mod:`reports.tuner_tests` tests them and :mod:`reports.tuner_comparison` writes both into
the report.

The unit of comparison is a **block**: one dataset, model and study seed. ``--study-seeds N`` runs
every study with the seeds 0..N-1, and the same study seed gives every tuner the same tuning
subsample and folds, so the tuners' studies of a block are paired.

In each block every tuner has an **anytime curve**: the cumulative CPU-seconds (fit and predict of
every trial in trial order, pruned and failed trials included) against the best validation accuracy
found so far. The curves are read at 25%, 50% and 100% of the model's **equal budget**: ``--budget``
(``tuning["budget_cpu_s"]``) when all the tuners' studies of the model share one, otherwise the
span of :func:`common_span` (the CPU-seconds every tuner's median study reached; the tuning-curves
table of :mod:`reports.figures` compares the tuners at the same span). A trial counts at a point of
the budget when it had finished by then. Blocks where some tuner has no value at a fraction (it ran
no study there or had not finished a trial yet) are dropped from that fraction's test.

Per tuner (:func:`tuner_summary`), over the blocks every tuner ran a study in: the CPU-seconds it
took to beat the model's defaults by one standard error, and the normalised area under its anytime
curve (definitions there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from digitbench.benchmark.payloads import StudySummary, study_summary
from digitbench.reports.format import natural_key
from digitbench.reports.stats import best_at
from digitbench.reports.table import as_dict, trial_rows

#: Fractions of the equal CPU budget at which the tuners are compared.
FRACTIONS = (0.25, 0.5, 1.0)
#: The index levels of a block.
BLOCK = ("dataset", "model", "seed")

Curve = tuple[np.ndarray, np.ndarray]  # (cumulative CPU-s at each trial's end, best so far)


def percent(fraction: float) -> str:
    """A fraction of the budget as text: ``25%``."""
    return f"{100 * fraction:g}%"


def common_span(by_tuner: Mapping[str, Sequence[Curve]]) -> float:
    """The CPU-seconds every tuner's median study reached: per tuner, the median over its studies
    of the cumulative CPU-seconds at their last trial; the least of these over the tuners.

    ``by_tuner[tuner]`` holds one ``(cumulative_cpu_s, best_so_far)`` per study, as in
    :func:`reports.figures.tuning_curves_section` (whose anytime table uses this span).
    """
    return min(float(np.median([x[-1] for x, _ in studies])) for studies in by_tuner.values())


# -- blocks and their anytime curves ---------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Study:
    """One tuner's study in a block, in trial order."""

    numbers: np.ndarray   # trial numbers
    cpu: np.ndarray       # cumulative CPU-seconds at the end of each trial
    val: np.ndarray       # validation accuracy of each trial, NaN where it did not finish ok
    tuning: StudySummary

    @property
    def best(self) -> np.ndarray:
        """Best validation accuracy so far after each trial, NaN before the first finished one."""
        return np.fmax.accumulate(self.val)

    @property
    def curve(self) -> Curve:
        return self.cpu, self.best

    @property
    def finished(self) -> bool:
        return bool(np.isfinite(self.val).any())

    @property
    def starts_from_defaults(self) -> bool:
        return self.tuning.from_defaults and len(self.numbers) > 0 \
            and int(self.numbers[0]) == 0


@dataclass(frozen=True, eq=False)
class Block:
    """One dataset, model and study seed: every tuner's study with that seed."""

    dataset: str
    model: str
    seed: Any
    budget: float           # the model's equal CPU budget (NaN: no tuner finished a trial)
    budget_rule: str        # "budget" (``--budget``) or "span" (:func:`common_span`)
    studies: dict[str, Study]

    @property
    def key(self) -> tuple[str, str, Any]:
        return self.dataset, self.model, self.seed

    def best_at(self, tuner: str, fraction: float) -> float:
        """The tuner's best validation accuracy by ``fraction`` of the budget; NaN where it ran no
        study here or had not finished a trial by then."""
        study = self.studies.get(tuner)
        if study is None or not math.isfinite(self.budget):
            return math.nan
        return float(best_at([study.curve], np.array([fraction * self.budget]))[0, 0])

    @property
    def defaults(self) -> tuple[float, int] | None:
        """(validation accuracy, scored images) of the model's defaults: trial 0 of a study that
        started from them (any tuner's: they share the subsample); None where none did."""
        for tuner in sorted(self.studies):
            study = self.studies[tuner]
            images = study.tuning.images_scored
            if study.starts_from_defaults and math.isfinite(study.val[0]) and images is not None:
                return float(study.val[0]), images
        return None


def blocks(rows: pd.DataFrame) -> list[Block]:
    """The blocks of a typed results frame's tuning trials (any number of datasets), in dataset
    order of appearance, then model and seed order."""
    # one dataset at a time: trial_rows drops duplicates by model, tuner, seed and number
    return [block for dataset in dict.fromkeys(rows["dataset"])
            for block in dataset_blocks(str(dataset), trial_rows(rows[rows["dataset"] == dataset]))]


def dataset_blocks(dataset: str, trials: pd.DataFrame) -> list[Block]:
    """The blocks of one dataset's trials (:func:`reports.table.trial_rows`), in model and seed
    order."""
    out: list[Block] = []
    for model in sorted(trials["model"].unique(), key=natural_key):
        group = trials[trials["model"] == model]
        studies: dict[tuple[Any, str], Study] = {}
        for (tuner, seed), study in group.groupby(["tuner", "seed"], sort=False):
            study = study.sort_values("number", kind="stable")
            tuning: dict[str, Any] = {}
            for cell in study["tuning"]:
                tuning.update(as_dict(cell))
            studies[(seed, str(tuner))] = Study(
                study["number"].to_numpy(int), study["cpu_s"].cumsum().to_numpy(float),
                study["val"].to_numpy(float), study_summary(tuning))
        budget, rule = _budget(group, studies)
        for seed in sorted({s for s, _ in studies}, key=natural_key):
            out.append(Block(dataset, str(model), seed, budget, rule,
                             {t: s for (k, t), s in sorted(studies.items(), key=lambda i: i[0][1])
                              if k == seed}))
    return out


def _budget(group: pd.DataFrame, studies: Mapping[tuple[Any, str], Study]) -> tuple[float, str]:
    """A model's equal budget: the ``--budget`` every study shares, else :func:`common_span`."""
    shared = {study_summary(cell).budget_cpu_s for cell in group["tuning"]}
    if len(shared) == 1:
        (value,) = shared
        if isinstance(value, int | float) and value > 0:
            return float(value), "budget"
    by_tuner: dict[str, list[Curve]] = {}
    for (_, tuner), study in studies.items():
        if study.finished:
            by_tuner.setdefault(tuner, []).append(study.curve)
    return (common_span(by_tuner), "span") if by_tuner else (math.nan, "span")


def values_at(found: Sequence[Block], fraction: float) -> pd.DataFrame:
    """Each tuner's best validation accuracy by ``fraction`` of the budget: one row per block
    (index :data:`BLOCK`), one column per tuner, NaN where it had none."""
    tuners = sorted({t for b in found for t in b.studies})
    index = pd.MultiIndex.from_tuples([b.key for b in found], names=BLOCK)
    return pd.DataFrame([[b.best_at(t, fraction) for t in tuners] for b in found],
                        index=index, columns=tuners, dtype=float)


def best_at_fractions(rows: pd.DataFrame,
                      fractions: Sequence[float] = FRACTIONS) -> dict[float, pd.DataFrame]:
    """:func:`values_at` of the blocks of ``rows`` at each fraction of the equal budget."""
    found = blocks(rows)
    return {f: values_at(found, f) for f in fractions}


# -- per tuner: beating the defaults, area under the curve -----------------------------------

def paired_blocks(found: Sequence[Block]) -> list[Block]:
    """The blocks every tuner (of any block) ran a study in."""
    tuners = {t for b in found for t in b.studies}
    return [b for b in found if set(b.studies) == tuners]


def cpu_to_beat_defaults(block: Block, tuner: str) -> float | None:
    """CPU-seconds the tuner's study had spent when a trial first beat the defaults by one
    standard error: the cumulative CPU at the first trial whose validation accuracy exceeds
    ``p0 + sqrt(p0 (1 - p0) / n)``, ``n`` the images that scored the trials, ``p0`` the defaults'
    (:attr:`Block.defaults`).
    NaN where the block has no defaults; None where the study never got there."""
    defaults = block.defaults
    if defaults is None:
        return math.nan
    p0, images = defaults
    threshold = p0 + math.sqrt(p0 * (1 - p0) / images)
    study = block.studies[tuner]
    beat = np.flatnonzero(np.nan_to_num(study.val, nan=-np.inf) > threshold)
    return float(study.cpu[beat[0]]) if len(beat) else None


def normalised_auc(block: Block, tuner: str) -> float:
    """Normalised area under the tuner's anytime curve in the block.

    The validation accuracies are min-max normalised over every finished trial of every tuner in
    the block (0 = the worst seen in the block, 1 = the best; all 1 where they are all equal). The
    tuner's best-so-far of these is a step function of cumulative CPU-seconds, each trial's value
    from its end on and 0 before its first finished trial; the area under it over [0, budget],
    divided by the budget, is 1.0 for a tuner that had the block's best from time 0 and 0.0 for one
    that finished nothing within the budget. NaN without a budget.
    """
    budget = block.budget
    if not math.isfinite(budget) or budget <= 0:
        return math.nan
    seen = np.concatenate([s.val for s in block.studies.values()])
    seen = seen[np.isfinite(seen)]
    study = block.studies[tuner]
    if not len(seen):
        return 0.0
    low, high = float(seen.min()), float(seen.max())
    best = study.best
    level = np.where(np.isnan(best), 0.0, (best - low) / (high - low) if high > low else 1.0)
    start = np.minimum(study.cpu, budget)
    end = np.minimum(np.append(study.cpu[1:], np.inf), budget)
    return float(np.sum(level * np.maximum(end - start, 0.0)) / budget)


def tuner_summary(found: Sequence[Block]) -> pd.DataFrame:
    """Per tuner (index), over the :func:`paired_blocks`: ``blocks``; ``with_defaults`` (of those,
    blocks with the defaults' accuracy); ``reached`` (of those, where a trial beat the defaults by
    one standard error); ``cpu_s_to_beat`` (median over the reached of :func:`cpu_to_beat_defaults`,
    NaN where none reached); ``auc`` (mean :func:`normalised_auc`)."""
    paired = paired_blocks(found)
    tuners = sorted({t for b in paired for t in b.studies})
    records = []
    for tuner in tuners:
        beat = [cpu_to_beat_defaults(b, tuner) for b in paired]
        known = [c for c in beat if c is None or not math.isnan(c)]
        reached = [c for c in known if c is not None]
        aucs = [a for a in (normalised_auc(b, tuner) for b in paired) if math.isfinite(a)]
        records.append({"tuner": tuner, "blocks": len(paired), "with_defaults": len(known),
                        "reached": len(reached),
                        "cpu_s_to_beat": float(np.median(reached)) if reached else math.nan,
                        "auc": float(np.mean(aucs)) if aucs else math.nan})
    columns = ["blocks", "with_defaults", "reached", "cpu_s_to_beat", "auc"]
    return pd.DataFrame(records, columns=["tuner", *columns]).set_index("tuner")
