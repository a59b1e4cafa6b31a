"""Which tuner wins, beyond chance: the tests of the tuners' paired values in the blocks of
:mod:`reports.tuner_stats` (see there for blocks and budgets).

Tests at each fraction of the budget (:func:`compare`), over every block of a dataset, and pooled
over the datasets: two tuners, the two-sided Wilcoxon signed-rank test of the paired accuracies;
three or more, the Friedman test with the Nemenyi post-hoc test, the mean ranks (1 = best in a
block, ties averaged) and Nemenyi's critical difference. Fewer than :data:`MIN_BLOCKS` blocks: no
test.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from scipy import stats

from digitbench.reports.format import code, num
from digitbench.reports.stats import ALPHA
from digitbench.reports.tuner_stats import FRACTIONS, Block, percent, values_at

#: Blocks a test needs at the least (``--study-seeds 3`` gives three for each model).
MIN_BLOCKS = 3
#: Paired studies Wilcoxon's exact two-sided test needs to reach 5% at all (p >= 2/2^n).
WILCOXON_MIN_FOR_5PCT = 6


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
