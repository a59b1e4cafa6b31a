"""The run's own story in ``report.md``: how it was invoked, with which settings and budgets, what it
cost in wall and CPU time, and which jobs failed or were pruned.

All of it comes from the typed results table (:mod:`reports.table`): every row carries its
invocation's ``settings`` (with the start time), the ``utc`` time it was written and
``process_cpu_s``, the CPU-seconds the invocation's process had used by then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from digitbench.benchmark.settings import SETTINGS as DECLARED
from digitbench.reports.format import DASH, code, md_table, num, pct
from digitbench.reports.machine import distinct
from digitbench.reports.table import as_dict, trial_labels

#: Settings shown per invocation, with their labels, in the order they are declared.
SETTINGS = {s.name: s.label for s in DECLARED if s.label}
_KEY = ["dataset", "model", "tuner", "trial", "seed"]


@dataclass(frozen=True)
class Invocation:
    """One ``digitbench run`` invocation: its settings and what it cost."""

    run_id: str
    settings: dict[str, Any]
    start: datetime | None
    end: datetime | None
    cpu_s: float | None
    rows: int
    git_revs: list[str]
    commands: list[str]
    versions: list[str]  # digitbench's version(s) that wrote its rows

    @property
    def wall_s(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return max(0.0, (self.end - self.start).total_seconds())


def _time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def invocations(frame: pd.DataFrame) -> list[Invocation]:
    """One :class:`Invocation` per run id of a typed results frame, in order of start."""
    found = []
    for run_id, rows in frame.groupby("run_id", sort=False):
        settings = next((s for s in rows["settings"] if s), {})
        times = [t for t in map(_time, distinct(rows["utc"])) if t is not None]
        start = _time(settings.get("started")) or min(times, default=None)
        cpu = rows["process_cpu_s"].max()
        found.append(Invocation(run_id, settings, start, max(times, default=None),
                                None if pd.isna(cpu) else float(cpu), len(rows),
                                distinct(rows["git_rev"]), distinct(rows["command"]),
                                _digitbench_versions(rows)))
    return sorted(found, key=lambda inv: (inv.start is None, inv.start or datetime.min, inv.run_id))


def _digitbench_versions(rows: pd.DataFrame) -> list[str]:
    if "versions" not in rows:
        return []
    return distinct(pd.Series([as_dict(v).get("digitbench") for v in rows["versions"]], dtype=object))


def busy_wall_s(found: list[Invocation]) -> float | None:
    """Wall time during which at least one invocation ran (overlapping workers counted once)."""
    spans = sorted((i.start, i.end) for i in found if i.start and i.end)
    if not spans:
        return None
    total, (start, end) = 0.0, spans[0]
    for s, e in spans[1:]:
        if s > end:
            total += (end - start).total_seconds()
            start, end = s, e
        else:
            end = max(end, e)
    return total + (end - start).total_seconds()


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


def run_section(frame: pd.DataFrame) -> list[str]:
    """Invocations with their wall and CPU totals, then the settings and budgets each used."""
    found = invocations(frame)
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
    unused |= {"study_seeds"} if tuners <= {"none"} else set()
    unused |= {"oracle"} if "keras-tuner" not in tuners else set()
    unused |= {"target_checks"} if all(i.settings.get("target") is None for i in with_settings) else set()
    keys = [k for k in SETTINGS if k not in unused and any(k in i.settings for i in with_settings)]
    headers = ["setting", *(code(i.run_id) for i in with_settings)]
    table = [[SETTINGS[k], *(_setting(i.settings.get(k)) for i in with_settings)] for k in keys]
    if all(len(set(r[1:])) == 1 for r in table):  # one invocation, or all resumed alike
        headers, table = ["setting", "value"], [r[:2] for r in table]
    return lines + md_table(headers, table) + [""]


def failed_and_pruned_section(frame: pd.DataFrame) -> list[str]:
    """Error rows whose job has no ok row, then the pruned trials; nothing when there are none."""
    frame = frame.assign(trial=trial_labels(frame))
    keyed = frame[_KEY].astype(str).agg("\x1f".join, axis=1)
    done = set(keyed[frame["status"] == "ok"])
    errors = frame[frame["status"] == "error"]
    pruned = frame[frame["status"] == "pruned"]
    if errors.empty and pruned.empty:
        return []
    lines = ["## Failed and pruned jobs", ""]
    open_errors = errors[~keyed[errors.index].isin(done)]
    if not open_errors.empty:
        rows = [[code(str(r["dataset"])), r["model"], r["tuner"], r["trial"], r["seed"], r["error"]]
                for r in open_errors[[*_KEY, "error"]].astype(object).fillna(DASH).to_dict("records")]
        lines += ["Failed:", ""] + md_table([*_KEY, "error"], rows) + [""]
    retried = len(errors) - len(open_errors)
    if retried:
        lines += [f"{retried} earlier failure(s) succeeded when retried and are not listed.", ""]
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
