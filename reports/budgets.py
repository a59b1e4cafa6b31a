"""The "Tuning" section: the budget every tuned contender shared, then what each study used, from
the finals' ``tuning`` cells."""

from __future__ import annotations

from typing import Any

from digitbench.benchmark.payloads import StudySummary, study_summary
from digitbench.reports.format import DASH, count, md_table, num, pct
from digitbench.reports.section import DatasetScope, Section, has_finals
from digitbench.reports.table import DEFAULTS

Studies = dict[tuple[str, str], StudySummary]  # (model, tuner) -> its last final's tuning cell


def _or_dash(value: Any) -> Any:
    return DASH if value is None else value


def _studies(scope: DatasetScope) -> Studies:
    return {(r["model"], r["tuner"]): study_summary(r["tuning"]) for r in scope.final.to_dict("records")
            if r["tuner"] != DEFAULTS}


def _budgets_lines(studies: Studies, scope: DatasetScope) -> list[str]:
    if not studies:
        return ["All models trained with their default parameters (no tuning).", ""]
    budgets = {(t.trials, t.budget_cpu_s) for t in studies.values()}
    lines = ["### Tuning", ""]
    if len(budgets) == 1:
        trials, cpu = next(iter(budgets))
        cpu_text = f" and {num(cpu)} CPU-seconds" if cpu else ""
        lines.append(f"Every tuned contender had the same budget: at most {trials} trials{cpu_text} "
                     "per model and tuner. The test set was not used in tuning; the finals refit "
                     "the chosen trial on the whole training part. Where the first trial was the "
                     "model's defaults, a better trial replaced them only if it beat them by more "
                     "than one standard error of the validation estimate.")
    else:
        lines.append("**Budgets differ between contenders** (see the table): their comparison is "
                     "not on equal terms.")
    rows = []
    for (model, tuner), t in studies.items():
        method = t.sampler and f"{t.sampler}, {t.pruner} pruner" or t.oracle
        if t.sampler and t.objectives and len(t.objectives) > 1:
            method = f"{t.sampler}, objectives {' & '.join(t.objectives)}, not pruned"
        budget = f"{t.trials} trials" + (f", {num(t.budget_cpu_s)} CPU-s" if t.budget_cpu_s else "")
        scoring = (f"{_or_dash(t.scoring)}: trained on {count(t.tune_images)}, "
                   f"scored on {count(t.val_images)}")
        rows.append([model, tuner, method or DASH, budget, scoring, _or_dash(t.trials_run),
                     _or_dash(t.pruned), _or_dash(t.failed), num(t.cpu_s_used), _or_dash(t.stopped_by),
                     pct(t.best_val_accuracy) if t.best_val_accuracy is not None else DASH,
                     _or_dash(t.chosen_because)])
    headers = ["model", "tuner", "method", "budget", "trials scored by", "trials run", "pruned", "failed",
               "tuning CPU-s", "stopped by", "best val accuracy", "refit"]
    return lines + [""] + md_table(headers, rows, "lllllrrrrlrl") + [""]


TUNING = Section("tuning", _studies, _budgets_lines, applies=has_finals)
