"""What ran where: machines, thread counts and package versions of a results frame."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Environment:
    """Distinct machines, threads and versions behind a results file."""

    machines: list[dict[str, Any]]
    threads: list[str]
    versions: dict[str, list[str]]   # package -> distinct versions, in first-seen order


def parse_json(cell: Any) -> dict[str, Any]:
    """A JSON object cell as a dict; empty, invalid or non-object cells give ``{}``.

    A Python dict repr (what pandas writes for a dict that was not JSON-encoded) is accepted too.
    """
    if not isinstance(cell, str) or not cell.strip():
        return {}
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(cell)
        except (ValueError, SyntaxError):
            continue
        return value if isinstance(value, dict) else {}
    return {}


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
    """Collect the environment facts of every row of a results frame."""
    machines: list[dict[str, Any]] = []
    for cell in frame["machine"].dropna().unique():
        info = parse_json(cell)
        if info and info not in machines:
            machines.append(info)
    versions: dict[str, list[str]] = {}
    for cell in frame["versions"].dropna().unique():
        for package, version in parse_json(cell).items():
            found = versions.setdefault(str(package), [])
            if str(version) not in found:
                found.append(str(version))
    return Environment(machines, distinct(frame["threads"]), versions)
