"""What every job of one ``digitbench run`` shares: settings, results store, progress, provenance."""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from benchmark import provenance
from benchmark.config import RunConfig
from benchmark.data.datasets import Split
from benchmark.execution.progress import RunProgress
from benchmark.execution.timing import cpu_seconds, rss_mb
from benchmark.store import ResultsStore
from models.base import DigitModel
from models.registry import Entry


@dataclass
class RunContext:
    config: RunConfig
    store: ResultsStore
    progress: RunProgress
    run_id: str
    command: str
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def settings(self) -> str:
        """The invocation's resolved settings and start time, as JSON for every row."""
        chosen = asdict(self.config)
        for key in ("out", "data_dir", "cache_dir", "resume", "overwrite"):
            chosen.pop(key, None)
        return json.dumps({"started": self.started, "run_dir": str(self.config.run_dir), **chosen},
                          sort_keys=True, default=str)

    def pinned(self, entry: Entry) -> dict[str, Any]:
        """Parameters no tuner may change: the variant's fixed ones, then the user's overrides."""
        defaults = entry.defaults()
        chosen = {k: v for k, v in (self.config.params or {}).items() if k in defaults}
        if self.config.epochs is not None and "epochs" in defaults:
            chosen["epochs"] = self.config.epochs
        return {**chosen, **entry.fixed}

    def row(self, split: Split, entry: Entry, *, tuner: str, trial: str, seed: int,
            params: dict[str, Any], tuning: dict[str, Any]) -> dict[str, Any]:
        """The fields every result row of this job carries; the caller adds the measurements."""
        return {
            "run_id": self.run_id, "dataset": split.dataset, "test_split": split.test_split,
            "model": entry.name, "family": entry.family, "tuner": tuner, "trial": trial,
            "seed": seed, "params": json.dumps(params, sort_keys=True, default=str),
            "tuning": json.dumps(tuning, sort_keys=True), "threads": self.config.threads,
            "versions": json.dumps(provenance.versions()),
            "machine": json.dumps(provenance.machine()), "git_rev": provenance.git_rev(),
            "command": self.command, "settings": self.settings(),
        }

    def append(self, row: dict[str, Any]) -> None:
        row["utc"] = datetime.now(UTC).isoformat(timespec="seconds")
        row["rss_mb"] = rss_mb()
        row["process_cpu_s"] = round(cpu_seconds(), 2)
        self.store.append(row)


def create(entry: Entry, params: dict[str, Any]) -> DigitModel:
    """A model of ``entry`` with the full parameter set ``params`` (fixed ones included)."""
    return entry.create(**{k: v for k, v in params.items() if k not in entry.fixed})


class History:
    """Collects the per-epoch metrics a model reports, as ``{metric: [value per epoch]}``."""

    def __init__(self) -> None:
        self.metrics: dict[str, list[float]] = {}

    def add(self, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.metrics.setdefault(name, []).append(round(float(value), 5))

    def json(self) -> str | None:
        return json.dumps(self.metrics, sort_keys=True) if self.metrics else None


def one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]


def one_line_each(caught: list[warnings.WarningMessage]) -> str | None:
    """Distinct warnings as ``Category: first line``, joined by "; " (None when there are none)."""
    lines = dict.fromkeys(
        f"{w.category.__name__}: {str(w.message).strip().splitlines()[0]}" for w in caught
    )
    return "; ".join(lines) or None
