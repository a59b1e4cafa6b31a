"""``report.md`` of a run folder, regenerated from ``results.csv`` and ``predictions/*.npz`` alone.

Entry point: :func:`write_report`. It reads the typed results table once
(:func:`reports.table.load_table`), never the live model registry, and walks the registered
sections (:data:`reports.contents.RUN_SECTIONS`, each dataset's :data:`~reports.contents.DATASET_SECTIONS`):
each analyses the table once into its result and renders it. Figures are PNGs beside the report,
linked relatively. Every file is written to a temp file in the run folder and moved into place, so a
failure leaves the previous report intact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from digitbench.benchmark.results import load_table
from digitbench.benchmark.store import RESULTS_FILE
from digitbench.common.atomic import write_text
from digitbench.reports.contents import RUN_SECTIONS
from digitbench.reports.section import RunScope

REPORT_FILE = "report.md"


def write_report(run_dir: Path) -> Path:
    """Write ``RUN_DIR/report.md`` and its figures from the run folder's files; return its path."""
    run_dir = Path(run_dir)
    frame = load_table(run_dir)
    lines = [
        "# digitbench report",
        "",
        f"_Generated {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC from `{RESULTS_FILE}` "
        f"({len(frame)} rows) in run folder `{run_dir.name}`._",
        "",
    ]
    run = RunScope(frame, run_dir)
    for section in RUN_SECTIONS:
        lines += section.lines(run)
    path = run_dir / REPORT_FILE
    write_text(path, "\n".join(lines).rstrip("\n") + "\n")
    return path
