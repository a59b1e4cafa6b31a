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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from digitbench.benchmark.store import load_predictions
from digitbench.reports.format import code, count, natural_key, p_text, points
from digitbench.reports.stats import PairedComparison, mean_interval, paired_comparison
from digitbench.reports.table import as_dict

ALPHA = 0.05


class Skip(Exception):
    """A comparison that cannot be made; the message says why, in words for the report."""


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


def comparisons_section(rows: pd.DataFrame, final: pd.DataFrame, board: pd.DataFrame,
                        run_dir: Path) -> list[str]:
    """Markdown lines of one dataset's paired comparisons.

    ``rows`` are the dataset's typed rows, ``final`` its final ok rows (one per model x tuner x
    seed) and ``board`` its leaderboard (one row per model x tuner with ``family``, mean
    ``accuracy`` and ``fit_cpu_s``, best first).
    """
    lines = ["### Paired comparisons", ""]
    lines += _variant_lines(variant_pairs(rows, final), final, run_dir)
    lines += _family_lines(rows, final, board, run_dir)
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
        "those seeds with a 95% Student-t interval over the per-seed differences (how much the "
        "difference moves from seed to seed) and each seed's own difference and McNemar p-value.",
        "",
    ]
    return lines


def _variant_lines(pairs: list[Variants], final: pd.DataFrame, run_dir: Path) -> list[str]:
    """Each pair of variants compared per tuner both ran with, or a line saying why not."""
    if not pairs:
        return ["- Variants: no two models of one class with different fixed parameters ran here."]
    lines = []
    for pair in pairs:
        title = f"Variants {pair.first} vs {pair.second} ({pair.differs}"
        tuners = [t for t in dict.fromkeys(final["tuner"])
                  if {pair.first, pair.second} <= set(final.loc[final["tuner"] == t, "model"])]
        for tuner in tuners:
            lines += _line(f"{title}, tuner {tuner})", final, run_dir, (pair.first, tuner),
                           (pair.second, tuner))
        if not tuners:
            missing = [m for m in (pair.first, pair.second) if m not in set(final["model"])]
            why = (f"{' and '.join(missing)} {'has' if len(missing) == 1 else 'have'} no finished "
                   "final model here" if missing else "they never ran with the same tuner")
            lines.append(f"- {title}): not compared, {why}.")
    return lines


def _family_lines(rows: pd.DataFrame, final: pd.DataFrame, board: pd.DataFrame,
                  run_dir: Path) -> list[str]:
    """The best of each family against the best of each other family, costlier fit first."""
    best = {family: group.iloc[0] for family, group in board.groupby("family", sort=False)}
    if len(best) < 2:
        missing = [f for f in dict.fromkeys(rows["family"]) if f not in best]
        why = (f"no finished final model of family {' or '.join(code(f) for f in missing)} here"
               if missing else f"every model here is of family {code(next(iter(best)))}")
        return [f"- Best of each family: not compared, {why}."]
    lines = []
    for a, b in combinations(best.values(), 2):
        if b["fit_cpu_s"] > a["fit_cpu_s"]:
            a, b = b, a
        title = f"Best {code(a['family'])} vs best {code(b['family'])}"
        if final["tuner"].nunique() > 1:
            title += f" (tuners {a['tuner']} and {b['tuner']})"
        lines += _line(f"{title}: {a['model']} vs {b['model']}", final, run_dir,
                       (a["model"], a["tuner"]), (b["model"], b["tuner"]))
    return lines


def _line(title: str, final: pd.DataFrame, run_dir: Path, a: tuple[str, str],
          b: tuple[str, str]) -> list[str]:
    """One comparison, headed ``title``, as a list item (plus the over-seeds line), or a line
    saying why not."""
    name_a, name_b = a[0], b[0]
    heading = f"- {title}"
    try:
        results = compare_seeds(final, run_dir, a, b)
    except Skip as why:
        return [f"{heading}: not compared, {why}."]
    seed, first = results[0]
    verdict = ("significant at 5%" if first.p_value < ALPHA
               else "**not significant** at 5%: the data do not show a difference")
    lines = [f"{heading}, seed {seed}: {name_a} − {name_b} = {points(first.difference)} points "
             f"(95% CI {points(first.low)} to {points(first.high)}), McNemar exact "
             f"p = {p_text(first.p_value)} (b = {first.b:,} images only {name_a} got right, "
             f"c = {first.c:,} only {name_b} got right, n = {first.n:,}): {verdict}."]
    if len(results) > 1:
        mean = mean_interval([r.difference for _, r in results])
        half = mean.half_width or 0.0  # never None: there are at least two seeds
        per_seed = ", ".join(f"seed {s} {points(r.difference)} (p = {p_text(r.p_value)})"
                             for s, r in results)
        lines.append(f"  - Over the {len(results)} seeds both share: mean {name_a} − {name_b} = "
                     f"{points(mean.mean)} points (95% t-interval {points(mean.mean - half)} to "
                     f"{points(mean.mean + half)}); per seed: {per_seed}.")
    return lines


def compare_seeds(final: pd.DataFrame, run_dir: Path, a: tuple[str, str],
                   b: tuple[str, str]) -> list[tuple[str, PairedComparison]]:
    """Paired comparisons of ``a`` and ``b`` (model, tuner) for every seed both have, in order."""
    rows = [{r["seed"]: r for r in final[(final["model"] == m) & (final["tuner"] == t)]
             .to_dict("records")} for m, t in (a, b)]
    seeds = sorted(set(rows[0]) & set(rows[1]), key=natural_key)
    if not seeds:
        raise Skip("they share no seed")
    results = []
    for seed in seeds:
        (y_true, pred_a), (y_b, pred_b) = (_load(run_dir, r[seed], m)
                                           for r, m in zip(rows, (a[0], b[0]), strict=True))
        if y_true.size != y_b.size:
            raise Skip(f"their test sets differ in size ({count(y_true.size)} vs "
                       f"{count(y_b.size)} images, seed {seed})")
        if not np.array_equal(y_true, y_b):
            raise Skip(f"their test labels differ (seed {seed}), so these are not the same images")
        results.append((seed, paired_comparison(y_true, pred_a, pred_b)))
    return results


def _load(run_dir: Path, row: dict, model: str) -> tuple[np.ndarray, np.ndarray]:
    rel = row.get("predictions")
    if not isinstance(rel, str) or not rel:
        raise Skip(f"no predictions file was recorded for {model} seed {row['seed']}")
    try:
        y_true, y_pred = load_predictions(run_dir, rel)
    except (OSError, KeyError, ValueError, EOFError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise Skip(f"{code(rel)} could not be read ({why})") from None
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if y_true.size == 0 or y_true.size != y_pred.size:
        raise Skip(f"{code(rel)} holds {count(y_true.size)} labels and {count(y_pred.size)} "
                   "predictions")
    return y_true, y_pred
