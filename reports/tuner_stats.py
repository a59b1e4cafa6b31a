"""Which tuner wins, beyond chance: the statistics (blocks, paired tests, per-tuner figures of
merit); :mod:`reports.tuner_comparison` writes them into the report.

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

Tests at each fraction (:func:`compare`), over every block of a dataset, and pooled over the
datasets: two tuners, the two-sided Wilcoxon signed-rank test of the paired accuracies; three or
more, the Friedman test with the Nemenyi post-hoc test, the mean ranks (1 = best in a block, ties
averaged) and Nemenyi's critical difference. Fewer than :data:`MIN_BLOCKS` blocks: no test.

Per tuner (:func:`tuner_summary`), over the blocks every tuner ran a study in: the CPU-seconds it
took to beat the model's defaults by one standard error, and the normalised area under its anytime
curve (definitions there).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from scipy import stats

from digitbench.reports.format import code, natural_key, num
from digitbench.reports.stats import ALPHA, best_at
from digitbench.reports.table import as_dict, scored_images, trial_rows

#: Fractions of the equal CPU budget at which the tuners are compared.
FRACTIONS = (0.25, 0.5, 1.0)
#: Blocks a test needs at the least (``--study-seeds 3`` gives three for each model).
MIN_BLOCKS = 3
#: Paired studies Wilcoxon's exact two-sided test needs to reach 5% at all (p >= 2/2^n).
WILCOXON_MIN_FOR_5PCT = 6
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
    tuning: dict[str, Any]

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
        return self.tuning.get("first_trial") == "defaults" and len(self.numbers) > 0 \
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
            images = scored_images(study.tuning)
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
                study["val"].to_numpy(float), tuning)
        budget, rule = _budget(group, studies)
        for seed in sorted({s for s, _ in studies}, key=natural_key):
            out.append(Block(dataset, str(model), seed, budget, rule,
                             {t: s for (k, t), s in sorted(studies.items(), key=lambda i: i[0][1])
                              if k == seed}))
    return out


def _budget(group: pd.DataFrame, studies: Mapping[tuple[Any, str], Study]) -> tuple[float, str]:
    """A model's equal budget: the ``--budget`` every study shares, else :func:`common_span`."""
    shared = {as_dict(cell).get("budget_cpu_s") for cell in group["tuning"]}
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


# -- tests -----------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TunerTest:
    """The test of the tuners at one fraction of the budget.

    ``test`` is "Wilcoxon" (two tuners), "Friedman" (three or more) or None (no test: ``note``
    says why). ``statistic`` is Wilcoxon's W (the smaller signed-rank sum, as scipy gives it) or
    Friedman's chi-squared. ``mean_ranks``: 1 = best in a block, ties averaged. ``nemenyi`` (the
    pairwise p-values) and ``cd`` (the critical difference of the mean ranks) only with Friedman.
    ``leader`` is the tuner ahead: the larger signed-rank sum (Wilcoxon) or the best mean rank.
    """

    fraction: float
    tuners: tuple[str, ...]
    test: str | None
    statistic: float | None
    p_value: float | None
    n_blocks: int
    n_dropped: int
    mean_ranks: dict[str, float] = field(default_factory=dict)
    nemenyi: pd.DataFrame | None = None
    cd: float | None = None
    leader: str | None = None
    note: str = ""

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA

    def better_pairs(self) -> list[tuple[str, str, float]]:
        """(better, worse, p) of every pair that differs beyond chance: the Wilcoxon pair, or the
        Nemenyi pairs after a significant Friedman test (the better one has the lower mean rank)."""
        if not self.significant:
            return []
        if self.test == "Wilcoxon":
            worse = next(t for t in self.tuners if t != self.leader)
            return [(str(self.leader), worse, float(self.p_value or 0.0))]
        assert self.nemenyi is not None
        pairs = []
        for i, a in enumerate(self.tuners):
            for b in self.tuners[i + 1:]:
                p = float(self.nemenyi.loc[a, b])
                if p < ALPHA:
                    good, bad = (a, b) if self.mean_ranks[a] <= self.mean_ranks[b] else (b, a)
                    pairs.append((good, bad, p))
        return sorted(pairs, key=lambda x: x[2])

    def sentence(self) -> str:
        """The verdict: one sentence with the test, its numbers and the outcome at 5%."""
        if self.test is None:
            return self.note
        level = f"{100 * ALPHA:g}%"
        if self.test == "Wilcoxon":
            a, b = self.tuners
            head = f"{a} vs {b}: "
            if self.note:
                return (f"{head}{self.note} (Wilcoxon p={num(self.p_value)} over {self.n_blocks} "
                        f"paired studies): not significant at {level}.")
            head += (f"Wilcoxon W={self.statistic:g}, p={num(self.p_value)} over {self.n_blocks} "
                     "paired studies: ")
            if self.significant:
                return head + f"{self.leader} better beyond chance at {level}."
            small = (f" (with fewer than {WILCOXON_MIN_FOR_5PCT} paired studies Wilcoxon cannot "
                     f"reach {level})") if self.n_blocks < WILCOXON_MIN_FOR_5PCT else ""
            return head + f"not significant at {level}{small}."
        head = f"{', '.join(self.tuners)}: "
        if self.note:
            return (f"{head}{self.note} (Friedman p={num(self.p_value)} over {self.n_blocks} "
                    f"blocks): not significant at {level}.")
        head += f"Friedman χ²={num(self.statistic)}, p={num(self.p_value)} over {self.n_blocks} blocks: "
        if not self.significant:
            return head + f"no tuner differs beyond chance at {level}."
        pairs = self.better_pairs()
        if not pairs:
            return head + (f"the tuners differ at {level}, but no pair does by Nemenyi "
                           f"(CD {num(self.cd)} mean-rank points).")
        listed = "; ".join(f"{good} better than {bad} (p={num(p)})" for good, bad, p in pairs)
        return head + f"the tuners differ beyond chance at {level}; Nemenyi: {listed}."


def nemenyi_cd(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi's critical difference of mean ranks of ``k`` tuners over ``n`` blocks:
    ``q_alpha * sqrt(k(k+1)/(6n))``, ``q_alpha`` the studentized range quantile over sqrt(2)."""
    q = float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return q * math.sqrt(k * (k + 1) / (6 * n))


def mean_ranks(values: pd.DataFrame) -> dict[str, float]:
    """Mean rank of each column over the rows: 1 = highest value in a row, ties averaged."""
    ranks = stats.rankdata(-values.to_numpy(float), axis=1, method="average")
    return {str(t): float(r) for t, r in zip(values.columns, ranks.mean(axis=0), strict=True)}


def compare(values: pd.DataFrame, fraction: float) -> TunerTest:
    """The test of :func:`values_at`'s frame (rows: blocks, columns: tuners) over its complete
    rows; rows with a missing value are dropped and counted."""
    tuners = tuple(str(t) for t in values.columns)
    complete = values.dropna()
    n, dropped = len(complete), len(values) - len(complete)
    at = f"{percent(fraction)} of the budget"
    base = {"fraction": fraction, "tuners": tuners, "n_blocks": n, "n_dropped": dropped}
    if len(tuners) < 2:
        only = f" ({tuners[0]})" if tuners else ""
        return TunerTest(**base, test=None, statistic=None, p_value=None,
                         note=f"Only one tuner{only} ran studies, so there is no tuner to compare it "
                              f"with: add another to {code('--tuner')} (e.g. {code('random')}, the "
                              "random-search baseline).")
    if n < MIN_BLOCKS:
        why = (f" ({dropped} dropped: some tuner ran no study there or had not finished a trial "
               "by then)") if dropped else ""
        few = f"Only {n} block{'s' * (n != 1)}" if n else "No block"
        return TunerTest(**base, test=None, statistic=None, p_value=None,
                         note=f"{few} (model and study seed) had a value from every tuner at {at}"
                              f"{why}; a test needs at least {MIN_BLOCKS}: run with "
                              f"{code(f'--study-seeds {MIN_BLOCKS}')} or more.")
    ranks = mean_ranks(complete)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(tuners) == 2:
            return _wilcoxon(complete, base, ranks)
        return _friedman(complete, base, ranks)


def _wilcoxon(complete: pd.DataFrame, base: dict[str, Any], ranks: dict[str, float]) -> TunerTest:
    a, b = base["tuners"]
    # rounded: accuracies are counts over images, equal differences must tie exactly
    d = np.round(complete[a].to_numpy(float) - complete[b].to_numpy(float), 12)
    if not np.any(d):
        return TunerTest(**base, test="Wilcoxon", statistic=0.0, p_value=1.0, mean_ranks=ranks,
                         note=f"every one of the {len(d)} paired studies found the same accuracy, "
                              "so there is no difference to rank")
    result = stats.wilcoxon(d, alternative="two-sided")
    nonzero = d[d != 0]
    r = stats.rankdata(np.abs(nonzero))
    w_plus, w_minus = float(r[nonzero > 0].sum()), float(r[nonzero < 0].sum())
    leader = a if w_plus > w_minus else b if w_minus > w_plus else None
    return TunerTest(**base, test="Wilcoxon", statistic=float(result.statistic),
                     p_value=float(result.pvalue), mean_ranks=ranks, leader=leader)


def _friedman(complete: pd.DataFrame, base: dict[str, Any], ranks: dict[str, float]) -> TunerTest:
    tuners = base["tuners"]
    k, n = len(tuners), len(complete)
    cd = nemenyi_cd(k, n)
    leader = min(ranks, key=lambda t: (ranks[t], t))
    matrix = complete.reset_index(drop=True)
    if (matrix.nunique(axis=1) == 1).all():
        nemenyi = pd.DataFrame(1.0, index=list(tuners), columns=list(tuners))
        return TunerTest(**base, test="Friedman", statistic=0.0, p_value=1.0, mean_ranks=ranks,
                         nemenyi=nemenyi, cd=cd, leader=None,
                         note=f"every tuner found the same accuracy in each of the {n} blocks")
    result = stats.friedmanchisquare(*(matrix[t].to_numpy(float) for t in tuners))
    nemenyi = sp.posthoc_nemenyi_friedman(matrix)
    nemenyi.index, nemenyi.columns = list(tuners), list(tuners)
    return TunerTest(**base, test="Friedman", statistic=float(result.statistic),
                     p_value=float(result.pvalue), mean_ranks=ranks, nemenyi=nemenyi.astype(float),
                     cd=cd, leader=leader)


def compare_at_fractions(found: Sequence[Block],
                         fractions: Sequence[float] = FRACTIONS) -> list[TunerTest]:
    """:func:`compare` at each fraction of the budget, over the given blocks."""
    return [compare(values_at(found, f), f) for f in fractions]


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
