"""The report's opening: per dataset, its answers in a few lines, each a verdict with its number and
its test, linking to the section that shows the detail.

What is answered: the best model and its interval; what the best model of the costliest family buys
over the best of each other family, and at what CPU; variants of one class against each other (each
from its own defaults where the defaults ran); what tuning bought; which tuner won; which parameters
mattered. No model or family is named here: they come from the rows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from digitbench.reports.comparisons import Skip, compare_seeds, variant_pairs
from digitbench.reports.format import code, num, p_text, pct, points
from digitbench.reports.importance import top_parameters
from digitbench.reports.table import as_dict
from digitbench.reports.time_to_target import mlperf_mean
from digitbench.reports.tunability import DEFAULTS, kept_defaults, verdicts
from digitbench.reports.tuner_comparison import verdict

ALPHA = 0.05


def anchor(kind: str, slug: str) -> str:
    """The id of one dataset's section of ``kind`` (``leaderboard``, ``comparisons``, ...)."""
    return f"{kind}-{slug}"


def anchor_line(kind: str, slug: str) -> str:
    """The HTML anchor written just before that section's heading."""
    return f'<a id="{anchor(kind, slug)}"></a>'


def dataset_summary(rows: pd.DataFrame, final: pd.DataFrame, board: pd.DataFrame, dataset: str,
                    run_dir: Path, slug: str) -> list[str]:
    """The opening lines of one dataset (``board``: its leaderboard, best first)."""
    lines = [f"**{code(dataset)}**", ""]
    if final.empty:
        return lines + ["- No model finished on this dataset.", ""]
    best = board.iloc[0]
    spread = (f" ± {100 * best['half_width']:.2f} over {best['seeds']} seeds"
              if best["half_width"] is not None and pd.notna(best["half_width"]) else "")
    lines.append(f"- [Best model](#{anchor('leaderboard', slug)}): {code(best['model'])} (tuner "
                 f"{best['tuner']}), {pct(best['accuracy'])}{spread} on the test set, "
                 f"{num(best['fit_cpu_s'])} fit CPU-s.")
    lines += _family_lines(final, board, run_dir, slug)
    lines += _variant_lines(rows, final, run_dir, slug)
    tuned = verdicts(rows, final, run_dir)
    if tuned:
        lines.append(f"- [What tuning bought](#{anchor('tunability', slug)}):")
        lines += [f"  - {line}" for line in tuned]
    which = verdict(rows)
    if which:
        lines.append(f"- [Which tuner wins](#{anchor('tuners', slug)}) {which}")
    top = top_parameters(rows)
    if top:
        lines.append(f"- [Which parameters mattered](#{anchor('importance', slug)}): " + "; ".join(
            f"{code(model)} ({tuner}): " + ", ".join(f"{name} {share:.2f}" for name, share in params)
            for (model, tuner), params in top.items()) + " (fANOVA importance).")
    return lines + [""]


def _comparison(final: pd.DataFrame, run_dir: Path, a: tuple[str, str], b: tuple[str, str]) -> str:
    """``a`` minus ``b`` in points over their shared seeds, with McNemar's p per seed."""
    try:
        results = compare_seeds(final, run_dir, a, b)
    except Skip as why:
        return f"not compared ({why})"
    mean = sum(r.difference for _, r in results) / len(results)
    significant = all(r.p_value < ALPHA for _, r in results)
    ps = ", ".join(p_text(r.p_value) for _, r in results)
    seeds = f"{len(results)} seeds" if len(results) > 1 else "one seed"
    verdict_text = "significant at 5%" if significant else "not significant at 5% on every seed"
    return f"{points(mean)} points over {seeds} (McNemar p {ps}: {verdict_text})"


def _family_lines(final: pd.DataFrame, board: pd.DataFrame, run_dir: Path, slug: str) -> list[str]:
    """The best model of the costliest family against the best of each other family."""
    best = {family: group.iloc[0] for family, group in board.groupby("family", sort=False)}
    if len(best) < 2:
        return []
    costliest = max(best.values(), key=lambda r: r["fit_cpu_s"])
    lines = []
    for other in best.values():
        if other["family"] == costliest["family"]:
            continue
        ratio = (f"{costliest['fit_cpu_s'] / other['fit_cpu_s']:.1f}x the fit CPU-s "
                 f"({num(costliest['fit_cpu_s'])} vs {num(other['fit_cpu_s'])})"
                 if other["fit_cpu_s"] > 0 else f"{num(costliest['fit_cpu_s'])} fit CPU-s")
        result = _comparison(final, run_dir, (costliest["model"], costliest["tuner"]),
                             (other["model"], other["tuner"]))
        lines.append(f"- [Best {code(costliest['family'])} vs best {code(other['family'])}]"
                     f"(#{anchor('comparisons', slug)}): {code(costliest['model'])} − "
                     f"{code(other['model'])} = {result}, at {ratio}.")
    return lines


def _variant_lines(rows: pd.DataFrame, final: pd.DataFrame, run_dir: Path, slug: str) -> list[str]:
    """Each pair of variants, from their defaults where both have defaults finals, else under the
    first tuner both ran."""
    lines = []
    for pair in variant_pairs(rows, final):
        tuners = [t for t in dict.fromkeys(final["tuner"])
                  if {pair.first, pair.second} <= set(final.loc[final["tuner"] == t, "model"])]
        if not tuners:
            continue
        tuner = DEFAULTS if DEFAULTS in tuners else tuners[0]
        how = ("each from its own defaults" if tuner == DEFAULTS
               else f"each from its own defaults, which tuning by {tuner} kept"
               if all(_kept_defaults(final, model, tuner) for model in (pair.first, pair.second))
               else f"both tuned by {tuner}")
        result = _comparison(final, run_dir, (pair.first, tuner), (pair.second, tuner))
        to_target = _to_target(final, tuner, (pair.first, pair.second))
        lines.append(f"- [{code(pair.first)} vs {code(pair.second)}](#{anchor('comparisons', slug)}) "
                     f"({pair.differs}, {how}): {result}{to_target}.")
    return lines


def _to_target(final: pd.DataFrame, tuner: str, models: tuple[str, str]) -> str:
    """Both models' mean CPU-s to the target, where the finals were timed to one."""
    shown = []
    for model in models:
        group = final[(final["model"] == model) & (final["tuner"] == tuner)]
        times = group["cpu_s_to_target"]
        value = mlperf_mean(list(times)) if times.notna().all() else None
        if value is not None:
            shown.append(f"{code(model)} {num(value)}")
    return (f"; CPU-s to the target (MLPerf's rule): {', '.join(shown)}" if len(shown) == 2 else "")


def _kept_defaults(final: pd.DataFrame, model: str, tuner: str) -> bool:
    """Whether the study of ``model`` by ``tuner`` refit its defaults (trial 0, the defaults)."""
    tuning = final.loc[(final["model"] == model) & (final["tuner"] == tuner), "tuning"]
    return bool(len(tuning)) and all(kept_defaults(as_dict(t)) for t in tuning)
