"""The run's own sections of ``report.md``, after the datasets': the jobs that failed or were
pruned, the jobs that warned, the invocations with their settings and costs, the machine and the
package versions; and the line a report without rows has instead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from digitbench.benchmark.settings import SETTINGS as DECLARED
from digitbench.benchmark.store import Status
from digitbench.reports.format import DASH, code, md_table, num, pct
from digitbench.reports.machine import Environment, environment, machine_lines
from digitbench.reports.run_info import Invocation, busy_wall_s, invocations
from digitbench.reports.section import RunScope, Section, has_rows
from digitbench.reports.table import DEFAULTS, as_dict, trial_labels

#: Settings shown per invocation, with their labels, in the order they are declared.
SETTINGS = {s.name: s.label for s in DECLARED if s.label}
_KEY = ["dataset", "model", "tuner", "trial", "seed"]


def _no_rows(run: RunScope) -> bool:
    return not run.has_rows


def _nothing(run: RunScope) -> None:
    return None


def _no_results_lines(_: None, run: RunScope) -> list[str]:
    return ["No results yet: `results.csv` has no rows.", ""]


NO_RESULTS = Section("no-results", _nothing, _no_results_lines, applies=_no_rows)


# -- failed and pruned jobs ------------------------------------------------------------------


@dataclass(frozen=True)
class Failures:
    """Error rows whose job has no ok row, how many earlier failures a retry mended, and the
    pruned trials."""

    errors: pd.DataFrame
    retried: int
    pruned: pd.DataFrame


def _failures(run: RunScope) -> Failures:
    frame = run.frame.assign(trial=trial_labels(run.frame))
    keyed = frame[_KEY].astype(str).agg("\x1f".join, axis=1)
    done = set(keyed[frame["status"] == Status.OK])
    errors = frame[frame["status"] == Status.ERROR]
    open_errors = errors[~keyed[errors.index].isin(done)]
    return Failures(open_errors, len(errors) - len(open_errors), frame[frame["status"] == Status.PRUNED])


def failed_or_pruned(run: RunScope) -> bool:
    """The ``applies`` of the section: a job failed or a trial was pruned."""
    return run.has_rows and bool(run.frame["status"].isin([Status.ERROR, Status.PRUNED]).any())


def _failures_lines(found: Failures, run: RunScope) -> list[str]:
    """Error rows whose job has no ok row, then the pruned trials."""
    lines = ["## Failed and pruned jobs", ""]
    open_errors, pruned = found.errors, found.pruned
    if not open_errors.empty:
        rows = [[code(str(r["dataset"])), r["model"], r["tuner"], r["trial"], r["seed"], r["error"]]
                for r in open_errors[[*_KEY, "error"]].astype(object).fillna(DASH).to_dict("records")]
        lines += ["Failed:", ""] + md_table([*_KEY, "error"], rows) + [""]
    if found.retried:
        lines += [f"{found.retried} earlier failure(s) succeeded when retried and are not listed.", ""]
    if not pruned.empty:
        lines += ["Pruned tuning trials (stopped early because their validation accuracy trailed "
                  "the other trials at the same epoch):", ""]
        rows = []
        for (dataset, model, tuner), group in pruned.groupby(["dataset", "model", "tuner"], sort=False):
            rows.append([code(str(dataset)), model, tuner, len(group),
                         "; ".join(_pruned_line(r) for r in group.to_dict("records"))])
        lines += md_table(["dataset", "model", "tuner", "pruned", "trial: when, validation accuracy"],
                          rows, "lllrl") + [""]
    return lines


def _pruned_line(row: dict[str, Any]) -> str:
    epochs = len(as_dict(row["history"]).get("val_accuracy", []))
    planned = as_dict(row["params"]).get("epochs")
    when = f"epoch {epochs}" + (f"/{planned}" if planned else "") if epochs else "early"
    val = row["val_accuracy"]
    return f"{row['trial']}: {when}, {pct(val) if pd.notna(val) else DASH}"


FAILED_AND_PRUNED = Section("failed-and-pruned", _failures, _failures_lines, applies=failed_or_pruned)


# -- warnings --------------------------------------------------------------------------------

def _warned(run: RunScope) -> pd.DataFrame:
    """Finished jobs that raised warnings (a solver that did not converge, say)."""
    frame = run.frame
    warned = frame[(frame["status"] == Status.OK) & frame["warnings"].notna()]
    return warned.assign(trial=trial_labels(warned))


def warned(run: RunScope) -> bool:
    """The ``applies`` of the section: a finished job warned."""
    return run.has_rows and bool(((run.frame["status"] == Status.OK) & run.frame["warnings"].notna()).any())


def _warnings_lines(found: pd.DataFrame, run: RunScope) -> list[str]:
    key = ["dataset", "model", "tuner", "trial", "seed"]
    rows = [[code(str(r["dataset"])), r["model"], r["tuner"], r["trial"], r["seed"], r["warnings"]]
            for r in found[key + ["warnings"]].astype(object).fillna(DASH).to_dict("records")]
    return ["## Warnings", "", "These jobs finished but warned; their results stand as measured.",
            ""] + md_table([*key, "warnings"], rows) + [""]


WARNINGS = Section("warnings", _warned, _warnings_lines, applies=warned)


# -- the invocations and their settings ------------------------------------------------------

def _setting(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "" or value == {} or value == []:
        return DASH
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return num(value) if isinstance(value, float) else str(value)


def _invocations(run: RunScope) -> list[Invocation]:
    return invocations(run.frame)


def _run_lines(found: list[Invocation], run: RunScope) -> list[str]:
    """Invocations with their wall and CPU totals, then the settings and budgets each used."""
    lines = ["## Run", ""]
    rows = [[code(i.run_id), f"{i.start:%Y-%m-%d %H:%M:%S}" if i.start else DASH, i.rows,
             num(i.wall_s), num(i.cpu_s), ", ".join(i.versions) or DASH, ", ".join(i.git_revs) or DASH,
             "; ".join(code(c) for c in i.commands) or DASH] for i in found]
    cpu = [i.cpu_s for i in found if i.cpu_s is not None]
    if len(found) > 1:
        rows.append(["**total**", "", sum(i.rows for i in found), num(busy_wall_s(found)),
                     num(sum(cpu)) if cpu else DASH, "", "", ""])
    lines += md_table(["invocation (run id)", "started (UTC)", "rows", "wall-s", "CPU-s", "digitbench",
                       "git revision", "command"], rows, "llrrrlll") + [""]
    lines += ["Wall-s runs from the invocation's start to its last row (workers running at the same "
              "time are counted once in the total); CPU-s is what its process and child processes "
              "used, data loading, tuning, finals and latency measurements included. A resumed run "
              "is several invocations.", ""]
    with_settings = [i for i in found if i.settings]
    if not with_settings:
        return lines + ["The results file records no settings (written by an older digitbench).", ""]
    tuners = {t for i in with_settings for t in i.settings.get("tuners") or []}
    unused = {"sampler"} if "optuna" not in tuners else set()
    unused |= {"pruner"} if not tuners & {"optuna", "random"} else set()
    unused |= {"study_seeds"} if tuners <= {DEFAULTS} else set()
    unused |= {"oracle"} if "keras-tuner" not in tuners else set()
    unused |= {"target_checks"} if all(i.settings.get("target") is None for i in with_settings) else set()
    keys = [k for k in SETTINGS if k not in unused and any(k in i.settings for i in with_settings)]
    headers = ["setting", *(code(i.run_id) for i in with_settings)]
    table = [[SETTINGS[k], *(_setting(i.settings.get(k)) for i in with_settings)] for k in keys]
    if all(len(set(r[1:])) == 1 for r in table):  # one invocation, or all resumed alike
        headers, table = ["setting", "value"], [r[:2] for r in table]
    return lines + md_table(headers, table) + [""]


RUN = Section("run", _invocations, _run_lines, applies=has_rows)


# -- the machine -----------------------------------------------------------------------------

def _environment(run: RunScope) -> Environment:
    return environment(run.frame)


def _machine_lines(env: Environment, run: RunScope) -> list[str]:
    return machine_lines(env)


MACHINE = Section("machine", _environment, _machine_lines, applies=has_rows)
