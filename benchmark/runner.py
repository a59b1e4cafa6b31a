"""The job loop: expand dataset x model x seed, skip finished jobs, run the rest, append rows.

Each job trains a model with its default parameters (plus ``--epochs``) on the training part
(train + validation: nothing is tuned yet), times fit and prediction, evaluates once on the test
set, stores the per-image predictions and appends one ``trial = final`` row.
"""

from __future__ import annotations

import json
import shutil
import traceback
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from benchmark import provenance
from benchmark.config import RunConfig
from benchmark.data import Split, load_split
from benchmark.errors import InputError
from benchmark.progress import RunProgress
from benchmark.results import PREDICTIONS_DIR, ResultsStore, unique_slug
from benchmark.timing import latency_ms, measure
from models import registry
from models.base import DigitModel, Digits
from models.registry import Entry


@dataclass(frozen=True)
class Job:
    split: Split
    entry: Entry
    seed: int
    tuner: str = "none"
    trial: str = "final"

    @property
    def key(self) -> tuple[str, ...]:
        return (self.split.dataset, self.entry.name, self.tuner, self.trial, str(self.seed))

    @property
    def label(self) -> str:
        return f"{self.split.dataset} {self.entry.name} seed {self.seed}"

    @property
    def file_stem(self) -> str:
        return "__".join((unique_slug(self.split.dataset), self.entry.name, self.tuner,
                          self.trial, f"seed{self.seed}"))


def resolve_models(config: RunConfig) -> list[Entry]:
    for spec in config.model_paths:
        registry.load_model_path(spec)
    return [registry.get(name) for name in config.models]


def model_params(entry: Entry, config: RunConfig) -> dict[str, Any]:
    """The parameters a job passes on top of the entry's defaults."""
    if config.epochs is not None and "epochs" in entry.defaults():
        return {"epochs": config.epochs}
    return {}


def prepare_run_dir(config: RunConfig) -> ResultsStore:
    """Check the run folder against --resume/--overwrite; returns its results store."""
    store = ResultsStore(config.run_dir)
    if store.exists():
        if config.overwrite:
            store.path.unlink()
            shutil.rmtree(store.run_dir / PREDICTIONS_DIR, ignore_errors=True)
        elif not config.resume:
            raise InputError(
                f"{store.path} already exists: pass --resume to continue that run, "
                "--overwrite to start it again, or --out for another folder"
            )
        else:
            store.repair()
    store.run_dir.mkdir(parents=True, exist_ok=True)
    return store


def run(config: RunConfig, command: str) -> int:
    """Run every unfinished job of ``config``; 0 when all succeeded, 1 when some failed."""
    entries = resolve_models(config)
    splits = [
        load_split(spec, data_dir=config.data_dir, cache_dir=config.cache_dir,
                   val_fraction=config.val_fraction, test_fraction=config.test_fraction)
        for spec in config.datasets
    ]
    store = prepare_run_dir(config)
    done = store.done_jobs()
    jobs = [
        Job(split, entry, seed)
        for split in splits for entry in entries for seed in range(config.seeds)
    ]
    todo = [job for job in jobs if job.key not in done]
    progress = RunProgress(len(todo))
    if len(todo) < len(jobs):
        progress.log(f"resuming {store.path}: {len(jobs) - len(todo)} of {len(jobs)} jobs done")
    context = {"run_id": uuid.uuid4().hex[:12], "command": command, "threads": config.threads}
    failures = 0
    try:
        for job in todo:
            row = run_job(job, config, store, progress, context)
            store.append(row)
            failures += row["status"] != "ok"
            progress.job_finished(_summary(job, row))
    finally:
        progress.close()
    from reports.markdown import write_report

    report = write_report(store.run_dir)
    progress.log(f"results: {store.path}\nreport:  {report}")
    return 1 if failures else 0


def run_job(
    job: Job, config: RunConfig, store: ResultsStore, progress: RunProgress, context: dict
) -> dict[str, Any]:
    """Train, time and evaluate one job; any exception becomes an ``error`` row."""
    params = model_params(job.entry, config)
    full_params = {**job.entry.defaults(), **params}
    row: dict[str, Any] = {
        "run_id": context["run_id"], "dataset": job.split.dataset,
        "test_split": job.split.test_split, "model": job.entry.name, "family": job.entry.family,
        "tuner": job.tuner, "trial": job.trial, "seed": job.seed,
        "params": json.dumps(full_params, sort_keys=True, default=str),
        "threads": context["threads"], "versions": json.dumps(provenance.versions()),
        "machine": json.dumps(provenance.machine()), "git_rev": provenance.git_rev(),
        "command": context["command"],
    }
    epochs = full_params.get("epochs")
    progress.job_started(job.label, epochs if isinstance(epochs, int) else None)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = job.entry.create(**params)
            row.update(_train_and_evaluate(job, model, config, store, progress))
        row["status"] = "ok"
        row["warnings"] = _one_line_each(caught)
        if row["warnings"]:
            progress.log(f"    warning: {row['warnings']}")
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # one failing job must not end the run
        row["status"] = "error"
        row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        with open(store.run_dir / "errors.log", "a", encoding="utf-8") as log:
            log.write(f"--- {job.label} ({datetime.now(UTC).isoformat()})\n")
            log.write(traceback.format_exc())
    row["utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    return row


def _train_and_evaluate(
    job: Job, model: DigitModel, config: RunConfig, store: ResultsStore, progress: RunProgress
) -> dict[str, Any]:
    split, epochs = job.split, model.get_params().get("epochs")
    train = Digits(
        np.concatenate([split.train.images, split.val.images]),
        np.concatenate([split.train.labels, split.val.labels]),
    )
    test = split.test

    def report(epoch: int, metrics: dict[str, float]) -> None:
        progress.epoch(epoch, epochs, metrics)

    with measure() as fit_time:
        model.fit(train, None, seed=job.seed, report=report)
    batch = min(config.latency_batch, len(test))
    model.warm_up(test.images[:batch])  # graph tracing and caches: not timed
    with measure() as predict_time:
        predicted = np.asarray(model.predict(test.images))
    if predicted.shape != test.labels.shape or not np.isin(predicted, np.arange(10)).all():
        raise ValueError(
            f"predict returned {predicted.dtype} {predicted.shape}, expected labels 0..9 "
            f"of shape {test.labels.shape}"
        )
    b1, bn = latency_ms(model.predict, test.images, batch=batch)
    return {
        "n_train": len(train), "n_val": 0, "n_test": len(test),
        "test_accuracy": float(np.mean(predicted == test.labels)),
        "fit_cpu_s": round(fit_time.cpu_s, 3), "fit_wall_s": round(fit_time.wall_s, 3),
        "predict_cpu_s": round(predict_time.cpu_s, 4),
        "predict_wall_s": round(predict_time.wall_s, 4),
        "latency_ms_b1": round(b1, 4), "latency_ms_bN": round(bn, 5), "batch_N": batch,
        "n_params": model.n_params(),
        "predictions": store.save_predictions(job.file_stem, test.labels, predicted),
    }


def _one_line_each(caught: list[warnings.WarningMessage]) -> str | None:
    """Distinct warnings as ``Category: first line``, joined by "; " (None when there are none)."""
    lines = dict.fromkeys(
        f"{w.category.__name__}: {str(w.message).strip().splitlines()[0]}" for w in caught
    )
    return "; ".join(lines) or None


def _summary(job: Job, row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return f"{job.label}: FAILED {row['error']}"
    return (
        f"{job.label}: test accuracy {100 * row['test_accuracy']:.2f}%, "
        f"fit {row['fit_cpu_s']:.1f} CPU-s ({row['fit_wall_s']:.1f} s wall)"
    )
