"""The "Paired comparisons" section: ReLU vs tanh, and best CNN vs best baseline, on the same images.

Each comparison reads the per-image predictions of both models' final rows. The headline numbers
come from the first seed both models share (difference with interval, McNemar's exact test); with
several shared seeds the mean difference over seeds follows, with a Student-t interval.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.store import load_predictions
from reports.format import code, count, natural_key
from reports.stats import PairedComparison, mean_interval, paired_comparison

RELU, TANH = "lenet-relu", "lenet-tanh"
ALPHA = 0.05


class Skip(Exception):
    """A comparison that cannot be made; the message says why, in words for the report."""


def comparisons_section(final: pd.DataFrame, board: pd.DataFrame, run_dir: Path) -> list[str]:
    """Markdown lines of one dataset's paired comparisons.

    ``final`` holds the dataset's final ok rows (one per model x tuner x seed, seeds as text) and
    ``board`` its leaderboard (one row per model x tuner with ``family`` and mean ``accuracy``,
    best first).
    """
    lines = ["### Paired comparisons", ""]
    tuners = [t for t in dict.fromkeys(final["tuner"])
              if {RELU, TANH} <= set(final.loc[final["tuner"] == t, "model"])]
    if tuners:
        for tuner in tuners:
            lines += _line(f"ReLU vs tanh (tuner {tuner})", final, run_dir,
                           (RELU, tuner), (TANH, tuner))
    else:
        missing = [m for m in (RELU, TANH) if m not in set(final["model"])]
        why = (f"{' and '.join(missing)} {'has' if len(missing) == 1 else 'have'} no finished final "
               "model here" if missing else "they never ran with the same tuner")
        lines.append(f"- ReLU vs tanh: not compared, {why}.")
    best = {family: board[board["family"] == family] for family in ("cnn", "baseline")}
    if best["cnn"].empty or best["baseline"].empty:
        missing = [f for f in ("cnn", "baseline") if best[f].empty]
        lines.append(f"- Best CNN vs best baseline: not compared, no finished final model of family "
                     f"{' or '.join(code(f) for f in missing)} here.")
    else:
        cnn, base = best["cnn"].iloc[0], best["baseline"].iloc[0]
        title = "Best CNN vs best baseline"
        if final["tuner"].nunique() > 1:
            title += f" (tuners {cnn['tuner']} and {base['tuner']})"
        lines += _line(title, final, run_dir, (cnn["model"], cnn["tuner"]),
                       (base["model"], base["tuner"]))
    lines += [
        "",
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


def _line(title: str, final: pd.DataFrame, run_dir: Path, a: tuple[str, str],
          b: tuple[str, str]) -> list[str]:
    """One comparison as a list item (plus the over-seeds line), or a line saying why not."""
    name_a, name_b = a[0], b[0]
    heading = f"- {title}: {name_a} vs {name_b}"
    try:
        results = _compare_seeds(final, run_dir, a, b)
    except Skip as why:
        return [f"{heading}: not compared, {why}."]
    seed, first = results[0]
    verdict = ("significant at 5%" if first.p_value < ALPHA
               else "**not significant** at 5%: the data do not show a difference")
    lines = [f"{heading}, seed {seed}: {name_a} − {name_b} = {_points(first.difference)} points "
             f"(95% CI {_points(first.low)} to {_points(first.high)}), McNemar exact "
             f"p = {_p(first.p_value)} (b = {first.b:,} images only {name_a} got right, "
             f"c = {first.c:,} only {name_b} got right, n = {first.n:,}): {verdict}."]
    if len(results) > 1:
        mean = mean_interval([r.difference for _, r in results])
        half = mean.half_width or 0.0  # never None: there are at least two seeds
        per_seed = ", ".join(f"seed {s} {_points(r.difference)} (p = {_p(r.p_value)})"
                             for s, r in results)
        lines.append(f"  - Over the {len(results)} seeds both share: mean {name_a} − {name_b} = "
                     f"{_points(mean.mean)} points (95% t-interval {_points(mean.mean - half)} to "
                     f"{_points(mean.mean + half)}); per seed: {per_seed}.")
    return lines


def _compare_seeds(final: pd.DataFrame, run_dir: Path, a: tuple[str, str],
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


def _points(fraction: float) -> str:
    return f"{100 * fraction:+.2f}"


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"
