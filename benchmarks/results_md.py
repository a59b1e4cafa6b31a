"""Writes one section of benchmarks/RESULTS.md, leaving the other sections as they are.

Each benchmark script owns a ``## <title>`` section and rewrites it whole, with the date, the
machine and the package versions of the run that produced it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from digitbench.common.atomic import write_text

HEADER = ("# Benchmark results\n\nWritten by the scripts in `benchmarks/` (each rewrites its own "
          "section; see the script's docstring for how to run it). Measured on a shared machine: "
          "read the ratios, taken within one run, before the absolute numbers.\n")


def write_section(path: Path, title: str, lines: list[str], versions: dict[str, str],
                  machine: str) -> None:
    """Replace (or append) the ``## title`` section of ``path`` with ``lines`` and provenance."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join([
        f"## {title}", "",
        f"_{stamp}; {machine}; " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "._", "",
        *lines, ""])
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: body + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    write_text(path, text.rstrip("\n") + "\n")


def versions(*names: str) -> dict[str, str]:
    """Python and the installed versions of ``names`` (absent ones left out)."""
    from digitbench.benchmark.provenance import package_versions

    return package_versions(names)


def machine() -> str:
    from digitbench.benchmark.provenance import machine as info

    m = info()
    return f"{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GiB, {m['platform']}"
