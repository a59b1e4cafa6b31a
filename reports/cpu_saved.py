"""The "What tuning saved" section, the second half of what tuning bought: CPU saved at equal
accuracy. A study's finals also refit the cheapest of its trials within one standard error of the
best on validation (Breiman et al.'s one-standard-error rule, cost in the place of complexity;
:mod:`benchmark.tuning.front`); here that final stands against the model's defaults, refit on the
same seeds and tested on the same images: its fit CPU-s and predict time as a ratio of the
defaults', and its test accuracy against theirs with McNemar's test per seed.

And the line of the summary it feeds: of every final whose trial was scored on validation,
the cheapest whose trial was within one standard error of the best trial of the dataset, against
that best one; a line per set of images the trials were scored on, where there are several.
Every choice is made on validation; the test set is read once per final.

Finals written before extra finals existed carry no roles: for them the section says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from digitbench.benchmark.payloads import ONE_SE_CHEAPEST, study_summary
from digitbench.benchmark.tuning.front import standard_error
from digitbench.reports.format import DASH, code, md_table, num, p_text, pct, points
from digitbench.reports.paired import MeanDifference, Skip, compare_seeds, mean_difference
from digitbench.reports.section import DatasetScope, Section, has_finals
from digitbench.reports.stats import ALPHA
from digitbench.reports.table import DEFAULTS


@dataclass(frozen=True)
class Saving:
    """One study's cheapest final within one standard error against the model's defaults."""

    model: str
    tuner: str
    trial: int                      # the study's trial it refits
    is_defaults: bool               # that trial is the defaults: tuning saved nothing
    val_accuracy: float | None      # its validation accuracy, and the study's best
    best_val_accuracy: float | None
    se: float | None                # one standard error of the best's
    fit_cpu_s: float                # mean over its finals
    predict_ms: float               # mean predict CPU ms per test image
    accuracy: float                 # mean test accuracy
    defaults_fit_cpu_s: float | None = None
    defaults_predict_ms: float | None = None
    defaults_accuracy: float | None = None
    p_values: tuple[tuple[int, float], ...] = ()  # (seed, McNemar exact p)
    difference: MeanDifference | None = None  # its test accuracy minus the defaults', 95% interval
    fit_ratio_range: tuple[float, float] | None = None  # lowest and highest per-seed fit CPU ratio
    why: str | None = None          # why there is no test-set comparison

    @property
    def fit_ratio(self) -> float | None:
        return _ratio(self.fit_cpu_s, self.defaults_fit_cpu_s)

    @property
    def predict_ratio(self) -> float | None:
        return _ratio(self.predict_ms, self.defaults_predict_ms)

    @property
    def differs_on_a_seed(self) -> bool:
        return any(p < ALPHA for _, p in self.p_values)


@dataclass(frozen=True)
class CheapestWithinSE:
    """The cheapest final (by mean fit CPU-s) whose trial was within one standard error of the
    dataset's best trial on validation, and that best one's final: (model, tuner, trial, validation
    accuracy, mean test accuracy, mean fit CPU-s) each."""

    cheap: tuple[str, str, int, float, float, float]
    best: tuple[str, str, int, float, float, float]
    se: float
    scored_on: str | None = None    # the images their trials were scored on (StudySummary.scored_on)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b and pd.notna(a) and pd.notna(b) else None


def _predict_ms(rows: pd.DataFrame) -> float:
    return float((1000 * rows["predict_cpu_s"] / rows["n_test"]).mean())


def _refit_trial(row: pd.Series) -> int | None:
    """The trial a final row refits: its ``refit_trial``, or for the primary final the chosen one."""
    if pd.notna(row.get("refit_trial", pd.NA)):
        return int(row["refit_trial"])
    return study_summary(row["tuning"]).chosen_trial


def savings(scope: DatasetScope) -> list[Saving]:
    """One :class:`Saving` per tuned (model, tuner) whose finals say their roles."""
    final, extra, found = scope.final, scope.extra, []
    for (model, tuner), primary in final[final["tuner"] != DEFAULTS].groupby(["model", "tuner"], sort=False):
        summary = study_summary(primary["tuning"].iloc[-1])
        if summary.final_roles is None:
            continue
        mine = extra[(extra["model"] == model) & (extra["tuner"] == tuner)]
        cheap = primary if ONE_SE_CHEAPEST in summary.roles else \
            mine[[ONE_SE_CHEAPEST in study_summary(t).roles for t in mine["tuning"]]]
        if cheap.empty:  # --no-cheap-finals
            continue
        trial, refit = _refit_trial(cheap.iloc[-1]), study_summary(cheap["tuning"].iloc[-1])
        n = summary.images_scored
        best = summary.best_val_accuracy
        found.append(_against_defaults(scope, Saving(
            model, tuner, trial, trial == 0 and summary.from_defaults, refit.refit_val_accuracy, best,
            standard_error(best, n) if best is not None and n else None, float(cheap["fit_cpu_s"].mean()),
            _predict_ms(cheap), float(cheap["test_accuracy"].mean())), cheap, primary, summary.kept_defaults))
    return found


def _against_defaults(scope: DatasetScope, saving: Saving, cheap: pd.DataFrame, primary: pd.DataFrame,
                      kept: bool) -> Saving:
    """``saving`` with the defaults' finals beside it: the primary ones where the study kept the
    defaults, else the defaults refit (tuner none)."""
    final = scope.final
    defaults = primary if kept else final[(final["model"] == saving.model) & (final["tuner"] == DEFAULTS)]
    if defaults.empty:
        return replace(saving, why="the defaults were not refit (`--no-refit-defaults`)")
    costs = dict(defaults_fit_cpu_s=float(defaults["fit_cpu_s"].mean()),
                 defaults_predict_ms=_predict_ms(defaults),
                 defaults_accuracy=float(defaults["test_accuracy"].mean()))
    if saving.is_defaults:
        return replace(saving, **costs)
    pair = pd.concat([cheap.assign(tuner="cheap"), defaults.assign(tuner="defaults")])
    try:
        paired = compare_seeds(pair, scope.run_dir, (saving.model, "cheap"), (saving.model, "defaults"))
    except Skip as why:
        return replace(saving, **costs, why=str(why))
    seeds = [seed for seed, _ in paired]
    return replace(saving, **{**costs, "defaults_accuracy": float(
        defaults[defaults["seed"].isin(seeds)]["test_accuracy"].mean())},
        p_values=tuple((int(seed), c.p_value) for seed, c in paired), difference=mean_difference(paired),
        fit_ratio_range=_ratio_range(cheap, defaults, seeds))


def _ratio_range(cheap: pd.DataFrame, defaults: pd.DataFrame, seeds: list) -> tuple[float, float] | None:
    """The lowest and highest ratio of the cheap final's fit CPU-s to the defaults' over the seeds
    both have (how far the timing moved from seed to seed); None with fewer than two seeds."""
    if len(seeds) < 2:
        return None
    fits = [frame.groupby("seed")["fit_cpu_s"].mean() for frame in (cheap, defaults)]
    ratios = [fits[0][seed] / fits[1][seed] for seed in seeds if fits[1][seed] > 0]
    return (min(ratios), max(ratios)) if len(ratios) > 1 else None


def cheapest_within_se(scope: DatasetScope) -> list[CheapestWithinSE]:
    """The summary's lines: the finals whose trial was scored on validation, by configuration
    (model, tuner, trial), the cheapest within one standard error of the best, one line per set of
    images that scored the trials (with ``--cv``, a LeNet's trials are scored on the validation part
    and the other models' by folds of the training part: accuracies on different images are not
    held to one standard error of each other); none where no final says the validation accuracy of
    its trial."""
    rows = pd.concat([scope.final, scope.extra])
    configs: dict[str | None, list[tuple[tuple[str, str, int, float, float, float], int]]] = {}
    for _, group in rows[rows["tuner"] != DEFAULTS].groupby(["model", "tuner"], sort=False):
        for trial, finals in group.groupby(group.apply(_refit_trial, axis=1), sort=False):
            tuning = study_summary(finals["tuning"].iloc[-1])
            if tuning.refit_val_accuracy is not None and tuning.images_scored:
                configs.setdefault(tuning.scored_on, []).append((
                    (finals["model"].iloc[0], finals["tuner"].iloc[0], int(trial), tuning.refit_val_accuracy,
                     float(finals["test_accuracy"].mean()), float(finals["fit_cpu_s"].mean())),
                    tuning.images_scored))
    found = []
    for scored_on, scored in configs.items():
        best, images = max(scored, key=lambda c: c[0][3])
        se = standard_error(best[3], images)
        within = [c for c, _ in scored if c[3] >= best[3] - se]
        found.append(CheapestWithinSE(min(within, key=lambda c: (c[5], -c[3])), best, se,
                                      scored_on if len(configs) > 1 else None))
    return found


# -- rendering -------------------------------------------------------------------------------

def _savings_lines(found: list[Saving], scope: DatasetScope) -> list[str]:
    if not found:
        return []
    table = [[s.model, s.tuner, f"trial {s.trial}" + (" (the defaults)" if s.is_defaults else ""),
              _validation(s), f"{num(s.fit_cpu_s)} ({num(s.defaults_fit_cpu_s)})",
              _times(s.fit_ratio) + (f" ({_range(s.fit_ratio_range)})" if s.fit_ratio_range else ""),
              f"{num(s.predict_ms)} ({num(s.defaults_predict_ms)})", _times(s.predict_ratio),
              f"{pct(s.accuracy)} ({pct(s.defaults_accuracy) if s.defaults_accuracy is not None else DASH})",
              DASH if s.difference is None else
              f"{points(s.difference.mean)} ({s.difference.interval_text})",
              ", ".join(f"seed {seed}: {p_text(p)}" for seed, p in s.p_values) or DASH, _verdict(s)]
             for s in found]
    headers = ["model", "tuner", "cheapest within one SE", "validation: it, best (± one SE)",
               "fit CPU-s (defaults)", "fit CPU vs defaults (per seed)", "predict ms an image (defaults)",
               "predict vs defaults", "test accuracy (defaults)", "difference, points (95% CI)",
               "McNemar p per seed", "verdict"]
    return [scope.anchor_line(ANCHOR), "### What tuning saved at equal accuracy", "",
            *md_table(headers, table, "lllrrrrrrrll"), "",
            "Each study's cheapest trial (by the run's `--cost`) whose validation accuracy was within "
            "one standard error, sqrt(p(1-p)/n) of the best trial's over the n images that scored "
            "it, refit on the final seeds and tested once, against the model's defaults refit on "
            "the same seeds (where the study kept the defaults, its own finals): mean fit CPU-s and "
            "predict CPU ms per test image over seeds, their ratio to the defaults' (with several "
            "seeds, the lowest and highest ratio of one seed's fits), the difference in test "
            "accuracy with its 95% interval (over seeds, Student-t; with one seed, the paired Wald "
            "interval over the test images, \"test set\"), and McNemar's exact test per seed on the "
            "images one got right and the other wrong. \"Equal accuracy\" is the test's verdict at "
            f"{ALPHA:g}; the interval says how much accuracy the cheaper trial could cost. It was "
            "chosen on validation; the test set only measures it.", ""]


def _validation(s: Saving) -> str:
    if s.val_accuracy is None or s.best_val_accuracy is None:
        return DASH
    se = f" ± {100 * s.se:.2f}" if s.se is not None else ""
    return f"{pct(s.val_accuracy)}, {pct(s.best_val_accuracy)}{se}"


def _times(ratio: float | None) -> str:
    return DASH if ratio is None else f"{ratio:.2f}x"


def _range(ratios: tuple[float, float]) -> str:
    return f"{ratios[0]:.2f}–{ratios[1]:.2f}x"


def _difference(s: Saving) -> str:
    """Its test accuracy minus the defaults', in points, with the 95% interval where compared."""
    if s.difference is None:
        return f"{points(s.accuracy - s.defaults_accuracy)} points"
    return f"{points(s.difference.mean)} points, 95% CI {s.difference.interval_text}"


def _verdict(s: Saving) -> str:
    if s.is_defaults:
        return "the defaults are the cheapest within one SE: nothing to save"
    if s.why is not None:
        return s.why
    ratio = s.fit_ratio
    if ratio is None or ratio >= 1:
        return "no cheaper to fit than the defaults"
    if s.differs_on_a_seed:
        return (f"{1 - ratio:.0%} less fit CPU, but the test set tells them apart "
                f"(McNemar p < {ALPHA:g} on a seed)")
    return f"{1 - ratio:.0%} less fit CPU at equal test accuracy (no seed differs at {ALPHA:g})"


def saving_verdicts(found: list[Saving]) -> list[str]:
    """One sentence per study for the report's opening summary."""
    out = []
    for s in found:
        name = f"{code(s.model)} ({s.tuner}, trial {s.trial})"
        if s.is_defaults:
            out.append(f"{name}: the defaults are the cheapest within one SE on validation.")
        elif s.defaults_accuracy is None or s.fit_ratio is None:
            out.append(f"{name}: {num(s.fit_cpu_s)} fit CPU-s, test {pct(s.accuracy)}; no comparison "
                       f"with the defaults ({s.why or 'no defaults finals'}).")
        else:
            ps = ", ".join(p_text(p) for _, p in s.p_values) or DASH
            spread = f"; {_range(s.fit_ratio_range)} per seed" if s.fit_ratio_range else ""
            out.append(f"{name}: {_times(s.fit_ratio)} the defaults' fit CPU-s ({num(s.fit_cpu_s)} vs "
                       f"{num(s.defaults_fit_cpu_s)}{spread}), {_times(s.predict_ratio)} their predict time; "
                       f"test {pct(s.accuracy)} vs {pct(s.defaults_accuracy)} ({_difference(s)}; "
                       f"McNemar p {ps}).")
    return out


def cheapest_line(found: CheapestWithinSE, anchor: str) -> str:
    """The summary's line on the cheapest final within one SE of the best on validation (of the
    studies scored on one set of images, where the dataset's studies were scored on several)."""
    (model, tuner, trial, val, test, fit), best = found.cheap, found.best
    same = found.cheap[:3] == best[:3]
    against = ("; it is also the best on validation" if same else
               f" against the best's {pct(best[3])} ({code(best[0])}, {best[1]}, trial {best[2]}); "
               f"on the test set {pct(test)} against {pct(best[4])}, at {num(fit)} fit CPU-s against "
               f"{num(best[5])}" + (f" ({fit / best[5]:.2f}x)" if best[5] else ""))
    among = f", among the studies scored {found.scored_on}" if found.scored_on else ""
    return (f"- [Cheapest within one SE of the best on validation](#{anchor}){among}: {code(model)} "
            f"({tuner}, trial {trial}), {pct(val)} on validation (one SE: {100 * found.se:.2f} points)"
            f"{against}"
            + (f"; test {pct(test)}, {num(fit)} fit CPU-s" if same else "") + ".")


#: The section writes its anchor itself, only where it has lines: a report of finals without roles
#: (written before extra finals) stays as it was.
ANCHOR = "cpu-saved"
CPU_SAVED = Section("cpu-saved", savings, _savings_lines, applies=has_finals)
