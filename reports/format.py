"""Markdown formatting: tables, numbers with about three significant digits, code spans."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

DASH = "—"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
             align: str | None = None) -> list[str]:
    """A GitHub-flavoured markdown table; ``align`` has one 'l' or 'r' per column."""
    align = align or "l" * len(headers)
    cells = [[_cell(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(3, *(len(r[i]) for r in cells)) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        padded = [c.rjust(w) if a == "r" else c.ljust(w)
                  for c, w, a in zip(row, widths, align, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if a == "r" else "-" * w
            for w, a in zip(widths, align, strict=True)]
    return [line(cells[0]), line(rule)] + [line(r) for r in cells[1:]]


def contender_labels(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """Each (model, tuner) as ``model``, or as ``model (tuner)`` where that model comes with
    several tuners: the one way every table and figure names a contender."""
    pairs = list(pairs)
    tuners: dict[str, set[str]] = {}
    for model, tuner in pairs:
        tuners.setdefault(model, set()).add(tuner)
    return [model if len(tuners[model]) == 1 else f"{model} ({tuner})" for model, tuner in pairs]


def _cell(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def code(text: str) -> str:
    """Inline code span that survives backticks in ``text``."""
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def num(value: Any) -> str:
    """A measurement with about three significant digits; missing values as a dash."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return DASH
    if not math.isfinite(x):
        return DASH
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1 or x == 0:
        return f"{x:.2f}"
    return f"{x:#.3g}" if abs(x) >= 0.001 else f"{x:.2e}"


def count(value: Any) -> str:
    try:
        return f"{int(float(value)):,}"
    except (TypeError, ValueError, OverflowError):
        return DASH


def pct(fraction: float) -> str:
    return f"{100 * fraction:.2f}%"


def pct_interval(mean: float, low: float, high: float) -> str:
    """An accuracy with its interval, all fractions: ``97.10% [96.80–97.40]``."""
    return f"{pct(mean)} [{100 * low:.2f}–{100 * high:.2f}]"


def natural_key(value: Any) -> tuple[int, float, str]:
    """Sort key putting numbers (seeds, batch sizes, also as text) first by value, then other text."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def points(fraction: float) -> str:
    """A difference of two accuracies (fractions) in signed percentage points: ``+0.52``."""
    return f"{100 * fraction:+.2f}"


def p_text(p: float) -> str:
    """A p-value: three decimals, or scientific below 0.001."""
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"
