"""The recorder: alone turns a finished task into a row of results.csv plus its files.

For each finished job it writes what the task sent back as values (the predictions, the model file,
the ONNX export, the traceback for ``errors.log``), then appends the row: the job's key and
parameters, the contender's settings, the task's measured fields and the invocation's provenance.
JSON-valued columns are serialised here, once. The coordinator calls it and tells a trial's tuner
only after the row is written. Whoever consumes rows as they are written (the MLflow log) is
handed each one after it is in the store, never before.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from digitbench.benchmark import provenance
from digitbench.benchmark.config import RunConfig
from digitbench.benchmark.data.datasets import Split
from digitbench.benchmark.execution.jobs import Job, TaskResult
from digitbench.benchmark.execution.timing import cpu_seconds
from digitbench.benchmark.payloads import StudySummary, Tally
from digitbench.benchmark.store import (
    FINAL,
    MODELS_DIR,
    ResultsStore,
    save_probabilities,
    trial_cell,
    unique_slug,
)
from digitbench.common.atomic import write_bytes, writing
from digitbench.models.registry import Entry

#: Settings of an invocation that say where things are, not what was measured: left out of rows.
#: (``mlflow`` too: a tracking server's URL may hold a password.)
_NOT_SETTINGS = ("out", "data_dir", "cache_dir", "resume", "overwrite", "mlflow")

#: What is told of each row once it is written (e.g. the MLflow log): the row as results.csv holds
#: it. The consumer must not raise: the row is safe in the store whatever it does.
RowConsumer = Callable[[dict[str, Any]], None]


class Recorder:
    """Writes the rows and files of one invocation's finished jobs into its run folder."""

    def __init__(self, config: RunConfig, command: str, store: ResultsStore,
                 cross: dict[str, Split], consumer: RowConsumer | None = None) -> None:
        self.config, self.store, self.consumer = config, store, consumer
        self.run_id = uuid.uuid4().hex[:12]
        self.cross = cross  # --test-on spec -> its split, for how its images were prepared
        self.me = f"{socket.gethostname()}:{os.getpid()}"
        self.workers_cpu: dict[str, float] = {}  # worker -> its CPU-seconds so far
        chosen = {k: provenance.without_passwords(v) if isinstance(v, str) else v
                  for k, v in asdict(config).items() if k not in _NOT_SETTINGS}
        settings = {"started": datetime.now(UTC).isoformat(timespec="seconds"),
                    "run_dir": str(config.run_dir), **chosen}
        self.common = {"run_id": self.run_id, "threads": config.threads,
                       "versions": provenance.versions(), "machine": provenance.machine(),
                       "git_rev": provenance.git_rev(), "command": provenance.without_passwords(command),
                       "settings": settings}

    def record(self, split: Split, entry: Entry, job: Job, result: TaskResult,
               tuning: StudySummary) -> dict[str, Any]:
        """Append the row of ``job`` (run on ``split`` by ``entry``; ``tuning`` is the contender's
        tuning summary) with its files; returns the row as written, before serialisation."""
        if result.traceback:
            path = self.store.run_dir / "errors.log"
            with writing(path), open(path, "a", encoding="utf-8") as log:
                log.write(f"--- {job.label}\n{result.traceback}\n")
        if result.worker is not None and result.worker != self.me and result.worker_cpu_s is not None:
            self.workers_cpu[result.worker] = result.worker_cpu_s
        row = {**self.common, "dataset": split.dataset, "test_split": split.test_split,
               "data_source": split.source, "preparation": split.preparation, "model": entry.name,
               "family": entry.family, "model_class": entry.class_path, "fixed": dict(entry.fixed),
               "tuner": job.tuner,
               "trial": trial_cell(job.trial), "seed": job.seed, "train_size": job.train_size,
               "refit_trial": job.refit_trial,
               "params": job.params,
               "tuning": tuning.as_json(), **result.row_fields()}
        cross = row.get("cross_test")
        if cross:  # each dataset tested on says how its images were prepared
            row["cross_test"] = {
                spec: replace(Tally.from_json(counts), preparation=self.cross[spec].preparation).as_json()
                for spec, counts in cross.items()}
        stem = "__".join((unique_slug(split.dataset), entry.name, job.tuner, FINAL, f"seed{job.seed}",
                          *([f"n{job.train_size}"] if job.train_size is not None else []),
                          *([f"trial{job.refit_trial}"] if job.refit_trial is not None else [])))
        if result.probabilities is not None:
            row["predictions"] = save_probabilities(self.store.run_dir, stem, result.probabilities)
        if result.predictions is not None:
            test = split.test
            row["predictions"] = self.store.save_predictions(stem, test.labels, result.predictions,
                                                             test.images)
        if result.model_bytes is not None:
            row["model_file"] = self._write_model(split, entry, job, result.model_bytes,
                                                  entry.cls.file_suffix)
        if result.onnx_bytes is not None and self.config.save_models:
            row["onnx_file"] = self._write_model(split, entry, job, result.onnx_bytes, ".onnx")
        row["utc"] = datetime.now(UTC).isoformat(timespec="seconds")
        row["process_cpu_s"] = round(cpu_seconds() + sum(self.workers_cpu.values()), 2)
        cells = {k: _cell(v) for k, v in row.items()}
        self.store.append(cells)
        if self.consumer is not None:
            self.consumer(cells)
        return row

    def _write_model(self, split: Split, entry: Entry, job: Job, data: bytes, suffix: str) -> str:
        """RUN_DIR/models/<dataset>/<model>-<tuner>-seed<N>.<ext>, written atomically; its path."""
        size = f"-n{job.train_size}" if job.train_size is not None else ""
        refit = f"-trial{job.refit_trial}" if job.refit_trial is not None else ""
        name = f"{entry.name}-{job.tuner}-seed{job.seed}{size}{refit}{suffix}"
        rel = f"{MODELS_DIR}/{unique_slug(split.dataset)}/{name}"
        write_bytes(self.store.run_dir / rel, data)
        return rel


def _cell(value: Any) -> Any:
    """A row value as results.csv holds it: dicts and lists as JSON, the rest as they are."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return value
