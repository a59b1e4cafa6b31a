"""The coordinator: the one job loop of a run, in the ``digitbench run`` process the user started.

It plans the contenders (:mod:`benchmark.execution.plan`), owns their tuners (ask/tell), the budgets,
the progress display and the stop signals, hands jobs to an executor (:mod:`.executors`) as slots
free up, and alone appends their rows to the results store. A job is done exactly when its row is in
the store, and a trial's outcome is told to its tuner only after its row is written (a kill in
between is settled by the next run, from the row); so any stop loses at most the jobs that were
running, and ``--resume`` does the rest.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import shutil
import socket
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from benchmark import provenance
from benchmark.config import RunConfig
from benchmark.data.datasets import Split, load_split
from benchmark.execution import signals
from benchmark.execution.executors import Shared
from benchmark.execution.locking import RunLock
from benchmark.execution.plan import Contender, check_params, plan, study_name
from benchmark.execution.progress import RunProgress
from benchmark.execution.tasks import Job, run_final, run_trial
from benchmark.execution.timing import cpu_seconds
from benchmark.store import MODELS_DIR, PREDICTIONS_DIR, ResultsStore, unique_slug
from benchmark.tuning.study import Study, record_of
from models import registry
from models.atomic import write_bytes
from models.errors import InputError, one_line
from models.registry import Entry

#: What --overwrite removes from a run folder, besides results.csv.
RUN_STATE = (PREDICTIONS_DIR, MODELS_DIR, "optuna.db", "keras-tuner", "errors.log")


def check_inputs(config: RunConfig) -> list[Entry]:
    """The selected models, once their plug-ins are loaded and ``--params`` and ``--out`` checked:
    bad input ends before any work starts, with nothing written."""
    for spec in config.model_paths:
        registry.load_model_path(spec)
    entries = [registry.get(name) for name in config.models]
    check_params(config.params or {}, entries)
    for path in (config.run_dir, *config.run_dir.parents):
        if path.exists() and not path.is_dir():
            raise InputError(f"--out {config.run_dir}: {path} is a file, expected a folder")
    return entries


def load_datasets(config: RunConfig, entries: list[Entry]) -> tuple[list[Split], list[Split]]:
    """The run's datasets, then the ``--test-on`` ones, loaded and checked before any work: with
    ``--native-size``, images that are not 28x28 need models that take any size, and a dataset
    tested on must have the size its models trained on."""
    def load(spec: str) -> Split:
        return load_split(spec, data_dir=config.data_dir, cache_dir=config.cache_dir,
                          val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                          native_size=config.native_size)

    splits = [load(spec) for spec in config.datasets]
    cross = [load(spec) for spec in config.test_on]
    for split in splits:
        if split.image_shape != (28, 28):
            fixed = [e.name for e in entries if not getattr(e.cls, "any_image_size", False)]
            if fixed:
                raise InputError(f"--native-size: {split.dataset} has {_size(split)} images, but "
                                 f"{', '.join(fixed)} take(s) only 28x28; drop --native-size or "
                                 "those models")
        for other in cross:
            if other.image_shape != split.image_shape:
                raise InputError(f"--test-on {other.dataset}: its images are {_size(other)}, the "
                                 f"models train on {_size(split)} ones of {split.dataset} "
                                 "(--native-size keeps each dataset's own size)")
    return splits, cross


def _size(split: Split) -> str:
    return "x".join(map(str, split.image_shape))


def prepare_run_dir(config: RunConfig) -> ResultsStore:
    """Check the run folder against --resume/--overwrite; returns its results store."""
    store = ResultsStore(config.run_dir)
    if store.exists():
        if config.overwrite:
            store.path.unlink()
            for name in RUN_STATE:
                path = store.run_dir / name
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        elif not config.resume:
            raise InputError(f"{store.path} already exists: pass --resume to continue that run, "
                             "--overwrite to start it again, or --out for another folder")
        else:
            store.repair()
    if config.overwrite and config.storage is not None:  # studies kept outside the run folder
        _delete_studies(config)
    store.run_dir.mkdir(parents=True, exist_ok=True)
    return store


def _delete_studies(config: RunConfig) -> None:
    import optuna

    names = set(optuna.get_all_study_names(config.storage_url))
    for dataset in config.datasets:
        for model in config.models:
            for tuner in config.tuners:
                for seed in range(config.study_seeds):
                    name = study_name(dataset, model, tuner, seed)
                    if name in names:
                        optuna.delete_study(study_name=name, storage=config.storage_url)


def run(config: RunConfig, command: str, executor_factory: Any) -> int:
    """Run every unfinished trial and final of ``config``; 0 when all finals succeeded, else 1.

    ``executor_factory()`` opens the executor once the inputs are checked."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    entries = check_inputs(config)
    splits, cross = load_datasets(config, entries)
    executor = executor_factory()  # a cluster that cannot be reached: an InputError, nothing written
    try:
        lock = RunLock(config.run_dir).acquire()
        try:
            with signals.stop_on_signals():
                store = prepare_run_dir(config)
                return Coordinator(config, command, started, store, executor, splits, entries, cross).run()
        except signals.Interrupted as stop:
            executor.shutdown()  # the workers stop before the line that says how to go on
            return signals.stopped(stop, config.run_dir, command)
        finally:
            lock.release()
    finally:
        executor.shutdown()


class Coordinator:
    def __init__(self, config: RunConfig, command: str, started: str, store: ResultsStore, executor: Any,
                 splits: list[Split], entries: list[Entry], cross: list[Split] | None = None) -> None:
        self.config, self.command, self.started = config, command, started
        self.store, self.executor = store, executor
        self.run_id = uuid.uuid4().hex[:12]
        self.me = f"{socket.gethostname()}:{os.getpid()}"
        self.workers_cpu: dict[str, float] = {}
        self.failures = 0
        self.done = store.done_jobs()
        frame = store.load() if store.exists() else None
        self.contenders = plan(config, splits, entries, self.done)
        #: ``--test-on``: (spec, name the test part is shared under, how its images were prepared)
        self.cross = [(s.dataset, f"cross{j}", s) for j, s in enumerate(cross or [])]
        for c in self.contenders:
            if c.tuner != "none":
                c.study = Study(config, c.split, c.entry, c.tuner, c.pinned, _records(frame, c), c.study_name,
                                c.study_seed)
        left = sum(max(0, config.trials - c.study.finished) for c in self.contenders if c.study is not None)
        self.progress = RunProgress(left + sum(len(c.seeds) for c in self.contenders))
        self.common = {"run_id": self.run_id, "threads": config.threads,
                       "versions": json.dumps(provenance.versions()),
                       "machine": json.dumps(provenance.machine()), "git_rev": provenance.git_rev(),
                       "command": command, "settings": self._settings()}

    def _settings(self) -> str:
        """The invocation's resolved settings and start time, as JSON for every row."""
        from dataclasses import asdict

        chosen = asdict(self.config)
        for key in ("out", "data_dir", "cache_dir", "resume", "overwrite"):
            chosen.pop(key, None)
        return json.dumps({"started": self.started, "run_dir": str(self.config.run_dir), **chosen},
                          sort_keys=True, default=str)

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> int:
        if self.done:
            self.progress.log(f"resuming {self.store.path}: {len(self.done)} rows already done")
        if self.executor.slots > 1:
            self.progress.log(f"{self.executor.slots} jobs run at once ({self.executor.describe()})")
        gc.freeze()  # the datasets stay for the whole run: keep collections cheap
        shared = {c.share: c.split for c in self.contenders}
        for name, split in shared.items():
            self.executor.share(name, split)
        for _, name, split in self.cross:
            self.executor.share(name, split.test)
        for c in self.contenders:
            if c.study is not None:
                c.study.open(self.store.run_dir)
        running: dict[Future, tuple[Contender, Job]] = {}
        try:
            while True:
                while len(running) < self.executor.slots:
                    with signals.deferred():  # a trial is never asked without being tracked
                        started = self._start_next()
                    if started is None:
                        break
                    running[started[0]] = started[1:]
                if not running:
                    break
                for future in self.executor.wait(list(running), 1.0):
                    contender, job = running.pop(future)
                    with signals.deferred():  # the row and the tuner's tell, never half done
                        self._finish(contender, job, future)
        except BaseException:
            for c in self.contenders:  # a stop: running trials do not count (no row)
                if c.study is not None:
                    c.study.abandon()
            raise
        finally:
            self.progress.close()
        from reports.markdown import write_report

        report = write_report(self.store.run_dir)
        self.progress.log(f"results: {self.store.path}\nreport:  {report}")
        return 1 if self.failures else 0

    def _start_next(self) -> tuple[Future, Contender, Job] | None:
        job = self._next_job()
        if job is None:
            return None
        contender, job = job
        listener = functools.partial(self._on_message, contender, job)
        if job.trial == "final":
            others = [Shared(name) for _, name, _ in self.cross]
            future = self.executor.submit(run_final, job, Shared(contender.share), *others, listener=listener)
        else:
            future = self.executor.submit(run_trial, job, Shared(contender.share), listener=listener)
        epochs = job.params.get("epochs")
        self.progress.job_started(job.label, epochs if isinstance(epochs, int) else None)
        return future, contender, job

    def _next_job(self) -> tuple[Contender, Job] | None:
        """The first contender's next job: a trial while its study asks for one, then its finals
        once the study is complete (every trial of it told)."""
        for c in self.contenders:
            if not c.finals_started:
                if c.study is not None:
                    asked = c.study.ask()
                    if asked is not None:
                        number, params = asked
                        return c, self._job(c, str(number), c.study_seed, params)
                    if not c.study.complete:
                        continue
                if c.study_seed:  # a repeated study, for the tuning curves only: no finals
                    c.finals_started = True
                    continue
                self._choose(c)
            if c.seeds and c.params is None:  # nothing to refit: the finals fail with the reason
                for seed in c.seeds:
                    self._fail_final(c, seed)
                c.seeds = []
            if c.seeds:
                return c, self._job(c, "final", c.seeds.pop(0), c.params)
        return None

    def _choose(self, c: Contender) -> None:
        c.finals_started = True
        if c.study is None:
            c.params, c.tuning, c.why = {**c.entry.defaults(), **c.pinned}, {"tuner": "none"}, None
            return
        c.tuning = c.study.summary()
        try:
            c.params, c.why = c.study.best(), None
        except RuntimeError as exc:
            c.params, c.why = None, str(exc)
            self.progress.log(f"    {c.entry.name} on {c.split.dataset}: {exc}")

    def _job(self, c: Contender, trial: str, seed: int, params: dict[str, Any]) -> Job:
        return Job(dataset=c.split.dataset, model=c.entry.name, tuner=c.tuner, trial=trial, seed=seed,
                   params=params, model_paths=self.config.model_paths,
                   cv=c.study.cv if c.study is not None else 1, tune_subsample=self.config.tune_subsample,
                   latency_batch=self.config.latency_batch,
                   save_model=self.config.save_models and trial == "final",
                   onnx=self.config.onnx and trial == "final",
                   target=self.config.target if trial == "final" and "epochs" in c.entry.defaults()
                   else None,
                   test_on=tuple(spec for spec, _, _ in self.cross) if trial == "final" else (),
                   extras={"run_id": self.run_id})

    def _on_message(self, c: Contender, job: Job, message: dict[str, Any]) -> bool:
        """An epoch of a running job: shown, and for a trial passed to its tuner's pruner."""
        metrics = message.get("metrics", {})
        self.progress.epoch(job.label, message.get("epoch"), message.get("epochs"), metrics)
        value = metrics.get("val_accuracy")
        if c.study is None or job.trial == "final" or value is None:
            return False
        return c.study.report(int(job.trial), int(message["epoch"]), float(value))

    # -- rows ---------------------------------------------------------------------------------

    def _finish(self, c: Contender, job: Job, future: Future) -> None:
        try:
            result = dict(future.result())
        except Exception as exc:  # the worker was lost for good, or the task itself broke
            result = {"status": "error", "error": one_line(exc), "traceback": str(exc)}
        row = self._row(c, job, result)
        if job.trial == "final":
            self.failures += row["status"] != "ok"
            if row.get("warnings"):
                self.progress.log(f"    warning: {row['warnings']}")
        else:
            c.study.record(int(job.trial), row)
        self.progress.job_finished(_summary(job, row, c))

    def _row(self, c: Contender, job: Job, result: dict[str, Any]) -> dict[str, Any]:
        """The row of a finished job, appended to the store (with its predictions and model file)."""
        trace = result.pop("traceback", None)
        if trace:
            with open(self.store.run_dir / "errors.log", "a", encoding="utf-8") as log:
                log.write(f"--- {job.label}\n{trace}\n")
        worker, cpu = result.pop("worker", None), result.pop("worker_cpu_s", None)
        if worker is not None and worker != self.me:
            self.workers_cpu[worker] = cpu
        if result.get("cross_test"):  # each dataset tested on says how its images were prepared
            cross = json.loads(result["cross_test"])
            for spec, _, split in self.cross:
                if spec in cross:
                    cross[spec]["preparation"] = split.preparation
            result["cross_test"] = json.dumps(cross, sort_keys=True)
        y_pred, model_bytes = result.pop("y_pred", None), result.pop("model_bytes", None)
        onnx_bytes = result.pop("onnx_bytes", None)
        row = {**self.common, "dataset": c.split.dataset, "test_split": c.split.test_split,
               "preparation": c.split.preparation,
               "model": c.entry.name, "family": c.entry.family, "model_class": c.entry.class_path,
               "fixed": json.dumps(dict(c.entry.fixed), sort_keys=True, default=str),
               "tuner": c.tuner, "trial": job.trial,
               "seed": job.seed, "params": json.dumps(job.params, sort_keys=True, default=str),
               "tuning": json.dumps(c.study.settings if job.trial != "final" else c.tuning, sort_keys=True),
               **result}
        stem = "__".join((unique_slug(c.split.dataset), c.entry.name, c.tuner, "final", f"seed{job.seed}"))
        if y_pred is not None:
            test = c.split.test
            row["predictions"] = self.store.save_predictions(stem, test.labels, y_pred, test.images)
        if model_bytes is not None:
            row["model_file"] = self._write_model(c, job, model_bytes, c.entry.cls.file_suffix)
        if onnx_bytes is not None and self.config.save_models:
            row["onnx_file"] = self._write_model(c, job, onnx_bytes, ".onnx")
        self._append(row)
        return row

    def _write_model(self, c: Contender, job: Job, data: bytes, suffix: str) -> str:
        """RUN_DIR/models/<dataset>/<model>-<tuner>-seed<N>.<ext>, written atomically; its path."""
        rel = f"{MODELS_DIR}/{unique_slug(c.split.dataset)}/{c.entry.name}-{c.tuner}-seed{job.seed}{suffix}"
        write_bytes(self.store.run_dir / rel, data)
        return rel

    def _fail_final(self, c: Contender, seed: int) -> None:
        job = self._job(c, "final", seed, {})
        row = self._row(c, job, {"status": "error", "error": f"RuntimeError: {c.why}"})
        self.failures += 1
        self.progress.job_finished(_summary(job, row, c))

    def _append(self, row: dict[str, Any]) -> None:
        row["utc"] = datetime.now(UTC).isoformat(timespec="seconds")
        row["process_cpu_s"] = round(cpu_seconds() + sum(self.workers_cpu.values()), 2)
        self.store.append(row)


def _records(frame: Any, c: Contender) -> dict[int, dict[str, Any]]:
    """Trial rows of this contender already in results.csv (the last row of each number)."""
    if frame is None:
        return {}
    mine = frame[(frame["dataset"] == c.split.dataset) & (frame["model"] == c.entry.name)
                 & (frame["tuner"] == c.tuner) & (frame["trial"] != "final")
                 & (frame["seed"] == str(c.study_seed))]
    return {int(r["trial"]): record_of(r) for r in mine.to_dict("records")}


def _summary(job: Job, row: dict[str, Any], c: Contender) -> str:
    if row["status"] not in ("ok", "pruned"):
        return f"{job.label}: FAILED {row.get('error')}"
    if job.trial != "final":
        value = row.get("val_accuracy")
        shown = f"val {100 * value:.2f}%" if value is not None else row["status"]
        return f"{job.label}: {row['status']}, {shown} ({c.study.cpu_used:.0f} CPU-s used)"
    return (f"{job.label}: test accuracy {100 * row['test_accuracy']:.2f}%, "
            f"fit {row['fit_cpu_s']:.1f} CPU-s ({row['fit_wall_s']:.1f} s wall)")
