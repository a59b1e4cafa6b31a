"""Progress of a run: rich bars on a terminal, plain lines when output goes to a pipe or file."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from digitbench.benchmark.execution.jobs import Job
from digitbench.benchmark.store import Status


class RunProgress:
    """Shows jobs done out of the total, and the epochs of the jobs in progress."""

    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.total = total
        self.done = 0
        self._bar: Progress | None = None
        if self.console.is_terminal:
            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=self.console, transient=False,
            )
            self._jobs = self._bar.add_task("jobs", total=total)
            self._epochs = self._bar.add_task("", total=None, visible=False)
            self._bar.start()

    def log(self, message: str) -> None:
        if self._bar is not None:
            self._bar.console.print(message, highlight=False)
        else:
            print(message, file=sys.stderr, flush=True)

    def job_started(self, label: str, epochs: int | None) -> None:
        if self._bar is not None:
            self._bar.update(self._jobs, description=label)
            self._bar.reset(self._epochs, total=epochs, visible=bool(epochs), description="epochs")
        else:
            self.log(f"start {label}")

    def epoch(self, label: str, epoch: int | None, epochs: int | None, metrics: dict[str, Any]) -> None:
        shown = " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        if self._bar is not None:
            self._bar.update(self._epochs, completed=epoch, description=f"epoch {shown}")
        else:
            self.log(f"    {label}: epoch {epoch}/{epochs or '?'} {shown}")

    def job_finished(self, summary: str) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._jobs, completed=self.done, total=self.shown_total)
            self._bar.update(self._epochs, visible=False)
        self.log(f"[{self.done}/{self.shown_total}] {summary}")

    @property
    def shown_total(self) -> int:
        """The total as shown: never below the jobs done (the total is settled as studies end)."""
        return max(self.total, self.done)

    def recount(self, jobs: int) -> None:
        """``jobs`` more jobs than the total counted will run; negative: fewer (a study its budget
        stopped early, a defaults refit not needed)."""
        self.total += jobs
        if self._bar is not None:
            self._bar.update(self._jobs, total=self.shown_total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def summary(job: Job, row: dict[str, Any], study_cpu_s: float) -> str:
    """The progress line of a finished job, from its row; a trial's says the CPU-s its study used."""
    if row["status"] not in (Status.OK, Status.PRUNED):
        return f"{job.label}: FAILED {row.get('error')}"
    if job.trial is not None:
        value = row.get("val_accuracy")
        shown = f"val {100 * value:.2f}%" if value is not None else row["status"]
        return f"{job.label}: {row['status']}, {shown} ({study_cpu_s:.0f} CPU-s used)"
    tested = f"test accuracy {100 * row['test_accuracy']:.2f}%, " if "test_accuracy" in row else ""
    return f"{job.label}: {tested}fit {row['fit_cpu_s']:.1f} CPU-s ({row['fit_wall_s']:.1f} s wall)"
