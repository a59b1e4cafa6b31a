"""What ran where: machines, thread counts, Keras backends and package versions of a results frame,
and the markdown of the report's "Machine and software" section (:data:`reports.run_sections.MACHINE`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from digitbench.benchmark.results import typed
from digitbench.reports.format import DASH, md_table, num
from digitbench.reports.table import as_dict

_MACHINE_LABELS = {"cpu": "CPU", "cores": "Cores", "memory_gb": "Memory",
                   "platform": "Platform", "python": "Python"}


@dataclass(frozen=True)
class Environment:
    """Distinct machines, threads and versions behind a results file."""

    machines: list[dict[str, Any]]
    threads: list[str]
    versions: dict[str, list[str]]   # package -> distinct versions, in first-seen order
    backends: list[str] = field(default_factory=list)  # Keras backends (older results have none)


def distinct(values: pd.Series) -> list[str]:
    """Non-empty values as text, duplicates removed, in order of first appearance."""
    seen: dict[str, None] = {}
    for value in values.dropna():
        text = _text(value)
        if text:
            seen.setdefault(text, None)
    return list(seen)


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def environment(frame: pd.DataFrame) -> Environment:
    """Collect the environment facts of every row of a results frame, typed here if it is not
    (:func:`reports.table.typed`; typing a typed frame changes nothing)."""
    frame = typed(frame)
    machines: list[dict[str, Any]] = []
    for info in frame["machine"]:
        if info and info not in machines:
            machines.append(info)
    versions: dict[str, list[str]] = {}
    for cell in frame["versions"]:
        for package, version in as_dict(cell).items():
            found = versions.setdefault(str(package), [])
            if str(version) not in found:
                found.append(str(version))
    settings = list(frame["settings"]) if "settings" in frame else []
    backends = sorted({str(s["backend"]) for s in map(as_dict, settings) if s.get("backend")})
    return Environment(machines, distinct(frame["threads"]), versions, backends)


def machine_lines(env: Environment) -> list[str]:
    """``## Machine and software``: the machine(s), threads used, Keras backends, then the package
    versions."""
    lines = ["## Machine and software", ""]
    machines = env.machines or [{}]
    keys = [k for k in _MACHINE_LABELS if any(k in m for m in machines)]
    keys += [k for m in machines for k in m if k not in keys]
    headers = ["", "value"] if len(machines) == 1 else ["", *(f"machine {i + 1}"
                                                           for i in range(len(machines)))]
    rows = [[_MACHINE_LABELS.get(k, k), *(_machine_value(k, m.get(k)) for m in machines)]
            for k in keys]
    rows.append(["Threads used", *([", ".join(env.threads) or DASH] * len(machines))])
    if env.backends:  # older results files have none
        rows.append(["Keras backend", *([", ".join(env.backends)] * len(machines))])
    lines += md_table(headers, rows) + [""]
    if env.versions:
        rows = [[p, ", ".join(v)] for p, v in env.versions.items()]
        lines += md_table(["package", "version"], rows) + [""]
    return lines


def _machine_value(key: str, value: Any) -> str:
    if value is None or value == "":
        return DASH
    if key == "memory_gb":
        return f"{num(value)} GB"
    return str(value)
