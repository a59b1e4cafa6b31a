"""The report's opening: per dataset, its answers in a few lines, each a verdict with its number and
its test, linking to the section that shows the detail.

What is answered: the best model and its interval; what the best model of the costliest family buys
over the best of each other family, and at what CPU; variants of one class against each other (each
from its own defaults where the defaults ran); what tuning bought; which tuner won; which parameters
mattered. No model or family is named here: they come from the rows.

The summary computes none of it again: it reads the result objects of the dataset's sections
(the leaderboard, :data:`~reports.comparisons.COMPARISONS`, :data:`~reports.tunability.TUNABILITY`,
:data:`~reports.tuner_comparison.TUNERS`, :data:`~reports.importance.IMPORTANCE`) through the
dataset's scope, which analyses each once, and its paired comparisons, which it tests once.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from digitbench.benchmark.payloads import study_summary
from digitbench.reports.comparisons import COMPARISONS, Compared, Variants, best_of_families, compared
from digitbench.reports.cpu_saved import (
    ANCHOR,
    CPU_SAVED,
    CheapestWithinSE,
    Saving,
    cheapest_line,
    cheapest_within_se,
    saving_verdicts,
)
from digitbench.reports.format import code, num, p_text, pct, points
from digitbench.reports.importance import IMPORTANCE, Importances, top_parameters
from digitbench.reports.section import DatasetScope, RunScope, Section, has_rows
from digitbench.reports.stats import ALPHA
from digitbench.reports.table import DEFAULTS
from digitbench.reports.time_to_target import mlperf_mean
from digitbench.reports.tunability import TUNABILITY, Tunability, verdicts
from digitbench.reports.tuner_comparison import TUNERS, TunerComparison, verdict


@dataclass(frozen=True, eq=False)
class FamilyGap:
    """The best model of the costliest family (``costliest``, a leaderboard row) against the best
    of another family."""

    costliest: pd.Series
    other: pd.Series
    compared: Compared


@dataclass(frozen=True, eq=False)
class VariantGap:
    """Two variants compared under ``tuner``: the defaults' where both have defaults finals, else
    the first tuner both ran; ``kept``: tuning kept both models' defaults; ``to_target``: each
    model's mean CPU-s to the target (MLPerf's rule), where both have one."""

    pair: Variants
    tuner: str
    kept: bool
    compared: Compared
    to_target: list[tuple[str, float]]


@dataclass(frozen=True, eq=False)
class DatasetSummary:
    """What one dataset's opening says, from its sections' results; ``best`` is None where no
    model finished."""

    scope: DatasetScope
    best: pd.Series | None = None
    families: tuple[FamilyGap, ...] = ()
    variants: tuple[VariantGap, ...] = ()
    tunability: tuple[Tunability, ...] = ()
    tuners: TunerComparison | None = None
    importances: Importances | None = None
    savings: tuple[Saving, ...] = ()
    cheapest: tuple[CheapestWithinSE, ...] = ()


def summarise(scope: DatasetScope) -> DatasetSummary:
    """The opening of one dataset, from the results of its sections."""
    if not scope.has_finals:
        return DatasetSummary(scope)
    return DatasetSummary(scope, scope.board.iloc[0], tuple(_families(scope)), tuple(_variants(scope)),
                          tuple(scope.analysed(TUNABILITY)), scope.analysed(TUNERS),
                          scope.analysed(IMPORTANCE), tuple(scope.analysed(CPU_SAVED)),
                          tuple(cheapest_within_se(scope)))


def _families(scope: DatasetScope) -> list[FamilyGap]:
    """The best model of the costliest family against the best of each other family."""
    best = best_of_families(scope.board)
    if len(best) < 2:
        return []
    costliest = max(best.values(), key=lambda r: r["fit_cpu_s"])
    return [FamilyGap(costliest, other, compared(scope, (costliest["model"], costliest["tuner"]),
                                                 (other["model"], other["tuner"])))
            for other in best.values() if other["family"] != costliest["family"]]


def _variants(scope: DatasetScope) -> list[VariantGap]:
    """Each pair of variants, from their defaults where both have defaults finals, else under the
    first tuner both ran (as the paired comparisons compared them)."""
    found = []
    for v in scope.analysed(COMPARISONS).variants:
        if not v.by_tuner:
            continue
        tuner = DEFAULTS if DEFAULTS in v.by_tuner else next(iter(v.by_tuner))
        models = (v.pair.first, v.pair.second)
        found.append(VariantGap(v.pair, tuner, all(_kept_defaults(scope.final, m, tuner) for m in models),
                                v.by_tuner[tuner], _to_target(scope.final, tuner, models)))
    return found


def _to_target(final: pd.DataFrame, tuner: str, models: tuple[str, str]) -> list[tuple[str, float]]:
    """Both models' mean CPU-s to the target, where the finals were timed to one."""
    shown = []
    for model in models:
        times = final.loc[(final["model"] == model) & (final["tuner"] == tuner), "cpu_s_to_target"]
        value = mlperf_mean(list(times)) if times.notna().all() else None
        if value is not None:
            shown.append((model, value))
    return shown if len(shown) == 2 else []


def _kept_defaults(final: pd.DataFrame, model: str, tuner: str) -> bool:
    """Whether the study of ``model`` by ``tuner`` refit its defaults (trial 0, the defaults)."""
    tuning = final.loc[(final["model"] == model) & (final["tuner"] == tuner), "tuning"]
    return bool(len(tuning)) and all(study_summary(t).kept_defaults for t in tuning)


# -- rendering -------------------------------------------------------------------------------

def _summary(run: RunScope) -> list[DatasetSummary]:
    return [summarise(scope) for scope in run.datasets]


def _summary_lines(found: list[DatasetSummary], run: RunScope) -> list[str]:
    lines = ["## Summary", ""]
    for summary in found:
        lines += dataset_lines(summary)
    return lines + ["Settings, machine and package versions are at the end of the report.", ""]


def dataset_lines(found: DatasetSummary) -> list[str]:
    """The opening lines of one dataset."""
    scope = found.scope
    lines = [f"**{code(scope.dataset)}**", ""]
    best = found.best
    if best is None:
        return lines + ["- No model finished on this dataset.", ""]
    seeds = f"{best['seeds']} seed" + ("s" if best["seeds"] > 1 else "")
    spread = f" [{100 * best['low']:.2f}–{100 * best['high']:.2f}] (95%, {seeds})"
    lines.append(f"- [Best model](#{scope.anchor('leaderboard')}): {code(best['model'])} (tuner "
                 f"{best['tuner']}), {pct(best['accuracy'])}{spread} on the test set, "
                 f"{num(best['fit_cpu_s'])} fit CPU-s.")
    lines += [_family_line(gap, scope) for gap in found.families]
    lines += [_variant_line(gap, scope) for gap in found.variants]
    tuned = verdicts(list(found.tunability))
    if tuned:
        lines.append(f"- [What tuning bought](#{scope.anchor('tunability')}):")
        lines += [f"  - {line}" for line in tuned]
    saved = saving_verdicts(list(found.savings))
    if saved:
        lines.append(f"- [What tuning saved at equal accuracy](#{scope.anchor(ANCHOR)}), the cheapest "
                     "trial within one standard error of the best on validation against the defaults:")
        lines += [f"  - {line}" for line in saved]
    anchor = scope.anchor(ANCHOR if found.savings else "leaderboard")
    lines += [cheapest_line(cheapest, anchor) for cheapest in found.cheapest]
    which = verdict(found.tuners) if found.tuners is not None else None
    if which:
        lines.append(f"- [Which tuner wins](#{scope.anchor('tuners')}) {which}")
    top = top_parameters(found.importances) if found.importances is not None else {}
    if top:
        lines.append(f"- [Which parameters mattered](#{scope.anchor('importance')}): " + "; ".join(
            f"{code(model)} ({tuner}): " + ", ".join(f"{name} {share:.2f}" for name, share in params)
            for (model, tuner), params in top.items()) + " (fANOVA importance).")
    return lines + [""]


def _comparison(found: Compared) -> str:
    """``a`` minus ``b`` in points over their shared seeds, with McNemar's p per seed."""
    if found.why is not None:
        return f"not compared ({found.why})"
    results = found.results
    mean = sum(r.difference for _, r in results) / len(results)
    significant = all(r.p_value < ALPHA for _, r in results)
    ps = ", ".join(p_text(r.p_value) for _, r in results)
    seeds = f"{len(results)} seeds" if len(results) > 1 else "one seed"
    verdict_text = "significant at 5%" if significant else "not significant at 5% on every seed"
    return f"{points(mean)} points over {seeds} (McNemar p {ps}: {verdict_text})"


def _family_line(gap: FamilyGap, scope: DatasetScope) -> str:
    costliest, other = gap.costliest, gap.other
    ratio = (f"{costliest['fit_cpu_s'] / other['fit_cpu_s']:.1f}x the fit CPU-s "
             f"({num(costliest['fit_cpu_s'])} vs {num(other['fit_cpu_s'])})"
             if other["fit_cpu_s"] > 0 else f"{num(costliest['fit_cpu_s'])} fit CPU-s")
    return (f"- [Best {code(costliest['family'])} vs best {code(other['family'])}]"
            f"(#{scope.anchor('comparisons')}): {code(costliest['model'])} − "
            f"{code(other['model'])} = {_comparison(gap.compared)}, at {ratio}.")


def _variant_line(gap: VariantGap, scope: DatasetScope) -> str:
    pair, tuner = gap.pair, gap.tuner
    how = ("each from its own defaults" if tuner == DEFAULTS
           else f"each from its own defaults, which tuning by {tuner} kept" if gap.kept
           else f"both tuned by {tuner}")
    to_target = (f"; CPU-s to the target (MLPerf's rule): "
                 f"{', '.join(f'{code(model)} {num(value)}' for model, value in gap.to_target)}"
                 if gap.to_target else "")
    return (f"- [{code(pair.first)} vs {code(pair.second)}](#{scope.anchor('comparisons')}) "
            f"({pair.differs}, {how}): {_comparison(gap.compared)}{to_target}.")


SUMMARY = Section("summary", _summary, _summary_lines, applies=has_rows)
