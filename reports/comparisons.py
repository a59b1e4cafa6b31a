"""The "Paired comparisons" section: variants of one model class, and the best model of each
family against the best of each other family, on the same test images.

Each comparison reads the per-image predictions of both models' final rows. The headline numbers
come from the first seed both models share (difference with interval, McNemar's exact test); with
several shared seeds the mean difference over seeds follows, with a Student-t interval.

Which models are variants of one another comes from the rows alone (:func:`variant_pairs`); no
model or family is named here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import pandas as pd

from digitbench.reports.format import code, p_text, points
from digitbench.reports.paired import Contender, Skip
from digitbench.reports.section import DatasetScope, Section, has_finals
from digitbench.reports.stats import ALPHA, PairedComparison, difference_interval
from digitbench.reports.table import as_dict


@dataclass(frozen=True)
class Variants:
    """Two models of one class, ``first`` listed before ``second`` in the rows, and what differs."""

    first: str
    second: str
    differs: str  # e.g. "activation relu vs tanh"


def variant_pairs(rows: pd.DataFrame, final: pd.DataFrame) -> list[Variants]:
    """Every pair of variants among one dataset's models, in the order the rows list the models.

    ``rows`` are the dataset's typed rows, ``final`` its final ok rows. Two models of the same
    ``model_class`` whose ``fixed`` parameters differ are variants (their last row says).

    Rows written before those columns existed (``model_class`` empty) fall back to what the final
    rows show: models of the same ``family`` whose final rows name the same set of parameters in
    ``params`` are taken for variants of one class, and what each fixes is the parameters whose
    value is the same in all of its final rows; two of them are variants where such a parameter,
    constant in both, has different values. Models without a final row are not inferred.
    """
    order = list(dict.fromkeys(rows["model"]))
    classes: dict[tuple[Any, ...], list[str]] = {}
    fixed: dict[str, dict[str, Any]] = {}
    recorded = rows[rows["model_class"].notna() & (rows["model_class"] != "")]
    for model, group in recorded.groupby("model", sort=False):
        classes.setdefault(("class", group["model_class"].iloc[-1]), []).append(model)
        fixed[model] = as_dict(group["fixed"].iloc[-1])
    for model, group in final[~final["model"].isin(fixed)].groupby("model", sort=False):
        params = [as_dict(p) for p in group["params"]]
        names = frozenset(k for p in params for k in p)
        classes.setdefault(("inferred", group["family"].iloc[-1], names), []).append(model)
        fixed[model] = {k: params[0][k] for k in names
                        if all(k in p and p[k] == params[0][k] for p in params)}
    pairs = []
    for (source, *_), models in classes.items():
        for a, b in combinations(sorted(models, key=order.index), 2):
            if source == "class":  # a parameter one entry fixes and the other leaves at its default
                keys = [k for k in sorted({*fixed[a], *fixed[b]})
                        if k not in fixed[a] or k not in fixed[b] or fixed[a][k] != fixed[b][k]]
            else:
                keys = [k for k in sorted(set(fixed[a]) & set(fixed[b])) if fixed[a][k] != fixed[b][k]]
            if keys:
                differs = ", ".join(f"{k} {_value(fixed[a], k)} vs {_value(fixed[b], k)}" for k in keys)
                pairs.append(Variants(a, b, differs))
    return sorted(pairs, key=lambda p: (order.index(p.first), order.index(p.second)))


def _value(fixed: dict[str, Any], key: str) -> str:
    if key not in fixed:
        return "default"
    value = fixed[key]
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class Compared:
    """``a`` against ``b`` (model, tuner) on the same test images, per seed both have (in order);
    ``why`` says why not where they could not be compared."""

    a: Contender
    b: Contender
    results: list[tuple[str, PairedComparison]]
    why: str | None = None


def compared(scope: DatasetScope, a: Contender, b: Contender) -> Compared:
    """``a`` against ``b`` on the dataset's finals (each pair read and tested once by the scope)."""
    try:
        return Compared(a, b, scope.paired(a, b))
    except Skip as why:
        return Compared(a, b, [], str(why))


@dataclass(frozen=True)
class VariantComparison:
    """Two variants compared under each tuner both ran with (in the finals' order); ``missing``
    names those of the two without a finished final."""

    pair: Variants
    by_tuner: dict[str, Compared]
    missing: list[str]


@dataclass(frozen=True)
class FamilyComparison:
    """The best of one family against the best of another, the costlier fit first."""

    family_a: str
    family_b: str
    compared: Compared


@dataclass(frozen=True)
class Comparisons:
    variants: list[VariantComparison]
    families: list[FamilyComparison]
    families_why: str | None  # why the families were not compared
    several_tuners: bool      # the finals ran with more than one tuner (titles name them)


def best_of_families(board: pd.DataFrame) -> dict[str, pd.Series]:
    """Family -> its best leaderboard row, families in the leaderboard's order."""
    return {family: group.iloc[0] for family, group in board.groupby("family", sort=False)}


def _comparisons(scope: DatasetScope) -> Comparisons:
    final = scope.final
    variants = []
    for pair in variant_pairs(scope.rows, final):
        tuners = [t for t in dict.fromkeys(final["tuner"])
                  if {pair.first, pair.second} <= set(final.loc[final["tuner"] == t, "model"])]
        variants.append(VariantComparison(
            pair, {t: compared(scope, (pair.first, t), (pair.second, t)) for t in tuners},
            [m for m in (pair.first, pair.second) if m not in set(final["model"])]))
    best = best_of_families(scope.board)
    families, why = [], None
    if len(best) < 2:
        missing = [f for f in dict.fromkeys(scope.rows["family"]) if f not in best]
        why = (f"no finished final model of family {' or '.join(code(f) for f in missing)} here"
               if missing else f"every model here is of family {code(next(iter(best)))}")
    for a, b in combinations(best.values(), 2):
        if b["fit_cpu_s"] > a["fit_cpu_s"]:
            a, b = b, a
        families.append(FamilyComparison(a["family"], b["family"], compared(
            scope, (a["model"], a["tuner"]), (b["model"], b["tuner"]))))
    return Comparisons(variants, families, why, final["tuner"].nunique() > 1)


# -- rendering -------------------------------------------------------------------------------

def _comparisons_lines(found: Comparisons, scope: DatasetScope) -> list[str]:
    """The paired comparisons of one dataset, then how to read them."""
    lines = ["### Paired comparisons", ""]
    lines += _variant_lines(found.variants)
    lines += _family_lines(found)
    lines += [
        "",
        "Variants are models of one class that differ in the parameters their entries fix; "
        "between families, the best model of each family meets the best of each other family, "
        "the one whose fit cost more CPU-seconds first (the difference is what its extra cost "
        "bought). "
        "Both models of a comparison predicted the same test images. b counts the images only the "
        "first model got right, c those only the second got right; McNemar's exact test asks "
        "whether b and c differ by more than chance (two-sided binomial test of b out of b + c), "
        "and the verdict follows it at the 5% level. The difference in accuracy is in percentage "
        "points, with a 95% Wald interval for paired proportions (approximate: it can disagree "
        "with the exact test near the 5% boundary). These headline numbers use the first seed "
        "both models share; where they share several seeds, a sub-item gives the mean difference over "
        "those seeds with a 95% Student-t interval over the per-seed differences, kept within ±100 "
        "points (how much the "
        "difference moves from seed to seed) and each seed's own difference and McNemar p-value.",
        "",
    ]
    return lines


def _variant_lines(variants: list[VariantComparison]) -> list[str]:
    """Each pair of variants compared per tuner both ran with, or a line saying why not."""
    if not variants:
        return ["- Variants: no two models of one class with different fixed parameters ran here."]
    lines = []
    for v in variants:
        pair = v.pair
        title = f"Variants {pair.first} vs {pair.second} ({pair.differs}"
        for tuner, found in v.by_tuner.items():
            lines += _line(f"{title}, tuner {tuner})", found)
        if not v.by_tuner:
            why = (f"{' and '.join(v.missing)} {'has' if len(v.missing) == 1 else 'have'} no finished "
                   "final model here" if v.missing else "they never ran with the same tuner")
            lines.append(f"- {title}): not compared, {why}.")
    return lines


def _family_lines(found: Comparisons) -> list[str]:
    """The best of each family against the best of each other family, costlier fit first."""
    if found.families_why is not None:
        return [f"- Best of each family: not compared, {found.families_why}."]
    lines = []
    for f in found.families:
        (model_a, tuner_a), (model_b, tuner_b) = f.compared.a, f.compared.b
        title = f"Best {code(f.family_a)} vs best {code(f.family_b)}"
        if found.several_tuners:
            title += f" (tuners {tuner_a} and {tuner_b})"
        lines += _line(f"{title}: {model_a} vs {model_b}", f.compared)
    return lines


def _line(title: str, found: Compared) -> list[str]:
    """One comparison, headed ``title``, as a list item (plus the over-seeds line), or a line
    saying why not."""
    name_a, name_b = found.a[0], found.b[0]
    heading = f"- {title}"
    if found.why is not None:
        return [f"{heading}: not compared, {found.why}."]
    results = found.results
    seed, first = results[0]
    verdict = ("significant at 5%" if first.p_value < ALPHA
               else "**not significant** at 5%: the data do not show a difference")
    lines = [f"{heading}, seed {seed}: {name_a} − {name_b} = {points(first.difference)} points "
             f"(95% CI {points(first.low)} to {points(first.high)}), McNemar exact "
             f"p = {p_text(first.p_value)} (b = {first.b:,} images only {name_a} got right, "
             f"c = {first.c:,} only {name_b} got right, n = {first.n:,}): {verdict}."]
    if len(results) > 1:
        mean, low, high = difference_interval([r.difference for _, r in results])
        per_seed = ", ".join(f"seed {s} {points(r.difference)} (p = {p_text(r.p_value)})"
                             for s, r in results)
        lines.append(f"  - Over the {len(results)} seeds both share: mean {name_a} − {name_b} = "
                     f"{points(mean)} points (95% t-interval {points(low)} to "
                     f"{points(high)}); per seed: {per_seed}.")
    return lines


COMPARISONS = Section("comparisons", _comparisons, _comparisons_lines, anchor="comparisons",
                      applies=has_finals)
