"""The run's invocations: how it was invoked, with which settings, and what each cost in wall and
CPU time (the report's "Run" section, :mod:`reports.run_sections`, and the side-by-side runs table
read them).

All of it comes from the typed results table (:mod:`reports.table`): every row carries its
invocation's ``settings`` (with the start time), the ``utc`` time it was written and
``process_cpu_s``, the CPU-seconds the invocation's process had used by then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from digitbench.reports.machine import distinct
from digitbench.reports.table import as_dict


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
