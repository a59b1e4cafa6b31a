"""The "What tuning bought" section: each tuned model's defaults against its tuned parameters on the
test set (tunability in the sense of Probst, Boulesteix & Bischl 2019: tuned minus default
performance), with what the tuning cost.

The defaults are the final rows of tuner ``none`` (the defaults refit the run adds where tuning
changed them, or a ``--tuner none`` the user asked for); the tuned ones the finals of each other
tuner, on the same seeds and test images. Where tuning kept the defaults there is nothing to refit
and the section gives the best trial's validation gain over the defaults instead, with the standard
error the choice was held to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from digitbench.benchmark.payloads import study_summary
from digitbench.benchmark.store import Status
from digitbench.reports.format import DASH, code, md_table, num, p_text, pct, points
from digitbench.reports.paired import MeanDifference, Skip, mean_difference
from digitbench.reports.section import DatasetScope, Section, has_finals
from digitbench.reports.stats import ALPHA
from digitbench.reports.table import DEFAULTS, TRIAL


@dataclass(frozen=True)
class Tunability:
    """What tuning bought one (model, tuner) on one dataset."""

    model: str
    tuner: str
    kept_defaults: bool              # the study chose the defaults: its finals are theirs
    defaults_accuracy: float | None  # mean test accuracy over the paired seeds
    tuned_accuracy: float | None
    gain: float | None               # mean tuned minus defaults, a fraction
    interval: tuple[float, float] | None  # its 95% interval: over seeds, or (one seed) the test set's
    over_seeds: bool                 # which of the two the interval is
    p_values: tuple[tuple[int, float], ...]  # (seed, McNemar exact p)
    tuning_cpu_s: float | None       # what study 0 (whose choice the finals refit) spent
    val_gain: float | None           # the best trial's validation gain over the defaults (trial 0)
    val_se: float | None             # one standard error of the validation estimate
    why: str | None = None           # why there is no test-set comparison

    @property
    def gain_per_cpu_hour(self) -> float | None:
        if self.gain is None or not self.tuning_cpu_s:
            return None
        return self.gain / (self.tuning_cpu_s / 3600)

    @property
    def significant_on_every_seed(self) -> bool:
        return bool(self.p_values) and all(p < ALPHA for _, p in self.p_values)


def tunabilities(scope: DatasetScope) -> list[Tunability]:
    """One :class:`Tunability` per tuned (model, tuner) of one dataset, in the order the rows list
    them."""
    rows, final = scope.rows, scope.final
    found = []
    tuned = final[final["tuner"] != DEFAULTS]
    for (model, tuner), group in tuned.groupby(["model", "tuner"], sort=False):
        tuning = study_summary(group["tuning"].iloc[-1])
        val_gain, val_se = _validation_gain(rows, model, tuner)
        kept = tuning.kept_defaults
        common = dict(model=model, tuner=tuner, kept_defaults=kept, tuning_cpu_s=tuning.cpu_s_used,
                      val_gain=val_gain, val_se=val_se)
        defaults = final[(final["model"] == model) & (final["tuner"] == DEFAULTS)]
        if kept:
            found.append(Tunability(**common, defaults_accuracy=group["test_accuracy"].mean(),
                                    tuned_accuracy=group["test_accuracy"].mean(), gain=0.0,
                                    interval=None, over_seeds=False, p_values=()))
            continue
        if defaults.empty:
            found.append(Tunability(**common, defaults_accuracy=None,
                                    tuned_accuracy=group["test_accuracy"].mean(), gain=None,
                                    interval=None, over_seeds=False, p_values=(),
                                    why="the defaults were not refit (`--no-refit-defaults`)"))
            continue
        try:
            paired = scope.paired((model, tuner), (model, DEFAULTS))
        except Skip as why:
            found.append(Tunability(**common, defaults_accuracy=defaults["test_accuracy"].mean(),
                                    tuned_accuracy=group["test_accuracy"].mean(), gain=None,
                                    interval=None, over_seeds=False, p_values=(), why=str(why)))
            continue
        seeds = [int(seed) for seed, _ in paired]
        gain = mean_difference(paired)
        found.append(Tunability(
            **common,
            defaults_accuracy=defaults[defaults["seed"].isin(seeds)]["test_accuracy"].mean(),
            tuned_accuracy=group[group["seed"].isin(seeds)]["test_accuracy"].mean(),
            gain=gain.mean, interval=(gain.low, gain.high), over_seeds=gain.over_seeds,
            p_values=tuple((int(seed), c.p_value) for seed, c in paired)))
    return found


def _validation_gain(rows: pd.DataFrame, model: str, tuner: str) -> tuple[float | None, float | None]:
    """The best trial's validation accuracy minus the defaults' (trial 0, where the study started
    from them) in study 0, and one standard error sqrt(p(1-p)/n) of the defaults' estimate over
    the n images that scored the trials."""
    trials = rows[(rows["kind"] == TRIAL) & (rows["model"] == model) & (rows["tuner"] == tuner)
                  & (rows["seed"] == 0) & (rows["status"] == Status.OK) & rows["val_accuracy"].notna()]
    first = trials[trials["trial"] == 0]
    if first.empty or not study_summary(first["tuning"].iloc[-1]).from_defaults:
        return None, None
    p0 = float(first["val_accuracy"].iloc[-1])
    n = study_summary(first["tuning"].iloc[-1]).images_scored
    gain = float(trials["val_accuracy"].max()) - p0
    return gain, (math.sqrt(p0 * (1 - p0) / n) if n else None)


def _tunability_lines(found: list[Tunability], scope: DatasetScope) -> list[str]:
    """The section's markdown for one dataset; nothing when no model was tuned."""
    if not found:
        return []
    lines = ["### What tuning bought", ""]
    table = []
    for t in found:
        if t.kept_defaults:
            gain = DASH if t.val_gain is None else f"{points(t.val_gain)} on validation"
            note = ("defaults kept: the best trial beat them by " + (
                f"{points(t.val_gain)} ± {100 * t.val_se:.2f} points (one standard error) on "
                "validation" if t.val_gain is not None and t.val_se is not None else "too little")
                + ", so the finals refit the defaults")
            table.append([t.model, t.tuner, pct(t.defaults_accuracy), "(the defaults)", gain, DASH, DASH,
                          num(t.tuning_cpu_s), DASH, note])
            continue
        ci = _interval(t) or DASH
        ps = ", ".join(f"seed {s}: {p_text(p)}" for s, p in t.p_values) or DASH
        note = t.why or (f"tuned beats the defaults on every seed (McNemar p < {ALPHA:g})"
                         if t.significant_on_every_seed and t.gain > 0 else
                         "not significant on every seed: the test set does not show a gain"
                         if t.gain is not None and t.gain >= 0 else "the defaults did better")
        per_hour = t.gain_per_cpu_hour
        table.append([t.model, t.tuner, pct(t.defaults_accuracy) if t.defaults_accuracy is not None else DASH,
                      pct(t.tuned_accuracy), DASH if t.gain is None else points(t.gain), ci, ps,
                      num(t.tuning_cpu_s), DASH if per_hour is None else points(per_hour), note])
    headers = ["model", "tuner", "defaults: test accuracy", "tuned: test accuracy", "gain (points)",
               "95% CI", "McNemar p per seed", "tuning CPU-s", "gain per CPU-hour (points)",
               "verdict"]
    lines += md_table(headers, table, "llrrrrlrrl") + [""]
    lines += ["Each tuned model against its own defaults, refit on the same seeds and data and tested "
              "on the same images: the gain is the mean over seeds of tuned minus defaults test "
              "accuracy, with its 95% Student-t interval over seeds, kept within ±100 points (with "
              "one seed: the 95% Wald interval of the paired difference over the test images, "
              "marked \"test set\"), and "
              "McNemar's exact test per seed on the images one got right and the other wrong. Tuning "
              "CPU-s is what the study whose choice the finals refit spent (fit and predict of every "
              "trial); the gain per CPU-hour divides the gain by it. Where a study kept the defaults, "
              "its finals are the defaults' and the gain shown is the best trial's on validation, "
              "which did not clear one standard error.", ""]
    return lines


def verdicts(found: list[Tunability]) -> list[str]:
    """One sentence per tuned (model, tuner) for the report's opening summary."""
    out = []
    for t in found:
        name = f"{code(t.model)} ({t.tuner}, {num(t.tuning_cpu_s)} tuning CPU-s)"
        if t.kept_defaults:
            shown = (f"; its best trial was {points(t.val_gain)} points on validation, within one "
                     f"standard error ({100 * t.val_se:.2f})" if t.val_gain is not None and t.val_se
                     else "")
            out.append(f"{name}: tuning kept the defaults{shown}.")
        elif t.gain is None:
            out.append(f"{name}: no test-set comparison with the defaults ({t.why}).")
        else:
            ci = f" (95% CI {_interval(t)})" if _interval(t) else ""
            ps = ", ".join(p_text(p) for _, p in t.p_values)
            out.append(f"{name}: tuned {pct(t.tuned_accuracy)} vs defaults {pct(t.defaults_accuracy)}, "
                       f"{points(t.gain)} points{ci}, McNemar p {ps}"
                       + (": significant on every seed." if t.significant_on_every_seed else "."))
    return out


def _interval(t: Tunability) -> str | None:
    if t.interval is None:
        return None
    return MeanDifference(t.gain, *t.interval, t.over_seeds).interval_text


#: Its anchor is written wherever a model finished, even with nothing tuned (the section is then
#: empty), as the report has always had it.
TUNABILITY = Section("tunability", tunabilities, _tunability_lines, anchor="tunability",
                     applies=has_finals)
