"""The tasks an executor runs: plain functions from (model, parameters, data, seed) to a row's fields.

A task runs wherever the executor puts it (this process, a local worker process, a Dask worker on
another machine): it reads nothing from the run folder and writes nothing to it. It gets the dataset
(a :class:`~benchmark.data.datasets.Split`) as an argument and a ``channel`` to the coordinator, and
returns a :class:`~benchmark.execution.jobs.TaskResult`: the measured fields of its row, and what a final
produces beyond numbers (its predictions, its saved model file and ONNX export, as values); the
recorder adds the rest and writes them.

Per epoch a task sends an :class:`~benchmark.execution.jobs.EpochReport` through the channel and
gets back whether to stop (a tuner's pruner decides in the coordinator). Timing is that of the
process the task runs in (see :mod:`benchmark.execution.timing`); tasks of one process never overlap
(:data:`_ONE_AT_A_TIME`), so a Dask worker with several threads still times each task alone.
"""

from __future__ import annotations

import gc
import os
import socket
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from digitbench.benchmark import provenance
from digitbench.benchmark.data.corrupted import CORRUPTION_SEED
from digitbench.benchmark.data.datasets import Split
from digitbench.benchmark.data.train_sizes import nested_subset
from digitbench.benchmark.execution.calibration import calibration_scores
from digitbench.benchmark.execution.deployment import onnx_latency
from digitbench.benchmark.execution.jobs import EpochReport, Job, TaskResult
from digitbench.benchmark.execution.timing import cpu_seconds, latency_ms, measure, rss_mb, thread_pools
from digitbench.benchmark.payloads import Tally
from digitbench.benchmark.store import Status
from digitbench.benchmark.tuning.folds import scoring_folds
from digitbench.benchmark.tuning.trial import TrialPruned
from digitbench.common.errors import one_line, one_line_each
from digitbench.models import registry
from digitbench.models.base import Digits, probabilities

_ONE_AT_A_TIME = threading.Lock()
_prepared: set[type] = set()


class Channel(Protocol):
    """The task's line to the coordinator: ``send(report)`` returns the coordinator's answer (True:
    stop this trial)."""

    def send(self, message: EpochReport) -> Any: ...


def run_trial(channel: Channel, job: Job, split: Split) -> TaskResult:
    """Train trial ``job`` on the tuning part (or each fold), score it on validation.

    Status ``ok``, ``pruned`` (the coordinator said stop; the last validation accuracy is kept) or
    ``error`` (with ``error`` and ``traceback``)."""
    with _ONE_AT_A_TIME:
        entry = _entry(job)
        folds = scoring_folds(split, job.cv, job.tune_subsample, seed=job.seed)
        result = TaskResult(Status.OK, {"n_train": len(folds[0][0]), "n_val": len(folds[0][1]),
                                   "n_test": len(split.test)})
        reporter = EpochReporter(channel, job)
        fit_cpu = fit_wall = predict_cpu = 0.0
        correct = scored = 0
        with _guarded(result) as caught:
            try:
                for train, val in folds:
                    model = entry.create(**job.params)
                    try:
                        with measure() as fit_time:
                            model.fit(train, val, seed=job.seed, report=reporter.start())
                    finally:  # counted even when pruning ends the fit
                        fit_cpu, fit_wall = fit_cpu + fit_time.cpu_s, fit_wall + fit_time.wall_s
                    with measure() as predict_time:
                        predicted = np.asarray(model.predict(val.images))
                    predict_cpu += predict_time.cpu_s
                    correct, scored = correct + int(np.sum(predicted == val.labels)), scored + len(val)
                    del model
                result.fields["val_accuracy"] = correct / scored
            except TrialPruned as pruned:
                result.status, result.fields["val_accuracy"] = Status.PRUNED, pruned.value
        result.fields.update(fit_cpu_s=round(fit_cpu, 3), fit_wall_s=round(fit_wall, 3),
                             predict_cpu_s=round(predict_cpu, 4), history=reporter.recorded_history(),
                             warnings=one_line_each(caught))
        return _with_process(result)


def run_final(channel: Channel, job: Job, split: Split, *others: Digits) -> TaskResult:
    """Refit on train + validation with the job's seed (on train alone, watching validation, with a
    ``target``), evaluate once on test: the row's fields, the predictions and, with ``save_model``,
    the model file's bytes; with ``onnx``, its ONNX export's latency and bytes.
    With ``train_size``, the training set is the seed's nested stratified subset of that size.
    ``others`` are the test parts of the ``job.test_on`` datasets: the model is tested once on each
    (``cross_test``: JSON ``{spec: {"n_test": n, "correct": k}}``)."""
    with _ONE_AT_A_TIME:
        entry = _entry(job)
        platt = bool(job.corruptions) and hasattr(entry.cls, "calibrate")
        if job.target is None and not platt:
            train, val = _whole_training_part(split), None
        else:  # watched on the validation part epoch by epoch, or kept out for Platt scaling
            train, val = split.train, split.val
        train = nested_subset(train, job.train_size, job.seed)  # --train-sizes: the learning curve
        test = split.test
        result = TaskResult(Status.OK, {"n_train": len(train), "n_val": len(val) if val else 0,
                                   "n_test": len(test)})
        reporter = EpochReporter(channel, job)
        crossed, corrupted = others[:len(job.test_on)], others[len(job.test_on):]
        with _guarded(result) as caught:
            model = _fit_and_evaluate(result, job, entry, train, val if job.target is not None else None,
                                      test, reporter, dict(zip(job.test_on, crossed, strict=True)))
            if job.corruptions:
                _robustness(result, model, test, dict(zip(job.corruptions, corrupted, strict=True)),
                            split.val if platt else None)
                if platt and job.save_model:  # saved with its calibrator
                    result.model_bytes = _model_bytes(job, entry, model, train)
        result.fields.update(history=reporter.recorded_history(), warnings=one_line_each(caught),
                             **reporter.reached)
        return _with_process(result)


def run_submission(channel: Channel, job: Job, split: Split) -> TaskResult:
    """A submission's final: fit on the whole training part with the job's seed, and give the class
    probabilities of every (unlabelled) test image (``predict_proba``, else a one-hot vote), to be
    averaged over seeds; with ``save_model``, the model file's bytes."""
    with _ONE_AT_A_TIME:
        entry = _entry(job)
        train = _whole_training_part(split)
        result = TaskResult(Status.OK, {"n_train": len(train), "n_val": 0, "n_test": len(split.test)})
        reporter = EpochReporter(channel, job)
        with _guarded(result) as caught:
            model = entry.create(**job.params)
            with measure() as fit_time:
                model.fit(train, None, seed=job.seed, report=reporter.start())
            model.warm_up(split.test.images)
            with measure() as predict_time:
                result.probabilities = probabilities(model, split.test.images).astype(np.float32)
            result.fields.update(fit_cpu_s=round(fit_time.cpu_s, 3), fit_wall_s=round(fit_time.wall_s, 3),
                                 predict_cpu_s=round(predict_time.cpu_s, 4),
                                 predict_wall_s=round(predict_time.wall_s, 4), n_params=model.n_params())
            result.model_bytes = _model_bytes(job, entry, model, train) if job.save_model else None
        result.fields.update(history=reporter.recorded_history(), warnings=one_line_each(caught))
        return _with_process(result)


def _fit_and_evaluate(result: TaskResult, job: Job, entry: registry.Entry, train: Digits,
                      val: Digits | None, test: Digits, reporter: EpochReporter,
                      others: dict[str, Digits]) -> Any:
    model = entry.create(**job.params)
    with measure() as fit_time:
        model.fit(train, val, seed=job.seed, report=reporter.start())
    batch = min(job.latency_batch, len(test))
    for sample in (test.images, test.images[:batch]):  # tracing and set-up per shape: not timed
        model.warm_up(sample)
    with measure() as predict_time:
        predicted = np.asarray(model.predict(test.images))
    if predicted.shape != test.labels.shape or not np.isin(predicted, np.arange(10)).all():
        raise ValueError(f"predict returned {predicted.dtype} {predicted.shape}, expected labels 0..9 "
                         f"of shape {test.labels.shape}")
    b1, bn = latency_ms(model.predict, test.images, batch=batch)
    macs = model.macs_per_image() if callable(getattr(model, "macs_per_image", None)) else None
    cross = {spec: Tally(len(other), int(np.sum(np.asarray(model.predict(other.images)) == other.labels)))
             for spec, other in others.items()}
    onnx_fields, result.onnx_bytes = onnx_latency(model, test.images, predicted) if job.onnx else ({}, None)
    result.fields.update(
        cross_test={spec: tally.as_json() for spec, tally in cross.items()} or None, **onnx_fields, macs=macs,
        test_accuracy=float(np.mean(predicted == test.labels)),
        fit_cpu_s=round(fit_time.cpu_s, 3), fit_wall_s=round(fit_time.wall_s, 3),
        predict_cpu_s=round(predict_time.cpu_s, 4), predict_wall_s=round(predict_time.wall_s, 4),
        latency_ms_b1=round(b1, 4), latency_ms_bN=round(bn, 5), batch_N=batch, n_params=model.n_params())
    result.predictions = predicted.astype(np.uint8)
    result.model_bytes = _model_bytes(job, entry, model, train) if job.save_model else None
    return model


def _robustness(result: TaskResult, model: Any, test: Digits, corrupted: dict[str, Digits],
                held_out: Digits | None) -> None:
    """The fitted model tested under each corruption (``corrupt_test``: JSON ``{name: {"n_test",
    "correct"}}``), and how calibrated its probabilities are on the clean and the corrupted test
    images (``calibration``). A model without probabilities is first Platt-scaled on ``held_out``
    (the validation part, kept out of its training for this) where it can be; else it has none."""
    if held_out is not None:
        model.calibrate(held_out)
    sets = {"clean": test, **corrupted}
    scored = hasattr(model, "predict_proba")
    calibration: dict[str, Any] = {"method": ("Platt scaling on the validation part "
                                              f"({len(held_out):,} images)" if held_out is not None else
                                              "the model's own probabilities" if scored else None)}
    counts = {}
    for name, digits in sets.items():
        if scored:
            proba = np.asarray(model.predict_proba(digits.images), dtype=np.float64)
            calibration[name] = calibration_scores(proba, digits.labels)
        if name != "clean":
            predicted = np.asarray(model.predict(digits.images))
            counts[name] = Tally(len(digits), int(np.sum(predicted == digits.labels)),
                                 seed=CORRUPTION_SEED).as_json()
    result.fields.update(corrupt_test=counts, calibration=calibration if scored else None)


def _model_bytes(job: Job, entry: registry.Entry, model: Any, train: Digits) -> bytes | None:
    """The saved model file's bytes, or None with a warning for a model without save/load. A model
    saves to a path, so the file is made here in a temporary folder: the task may run on a machine
    that cannot see the run folder, where the recorder writes the bytes."""
    from digitbench.models import persist

    if not persist.can_save(entry.cls):
        warnings.warn(f"--save-models: {job.model} has no save/load methods, not saved", stacklevel=2)
        return None
    with tempfile.TemporaryDirectory(prefix="digitbench-model-") as folder:
        path = Path(folder) / f"model{entry.cls.file_suffix}"
        persist.save_model(model, path, job.model, {"dataset": job.dataset, "images": len(train),
                                                    "image_size": list(train.images.shape[1:3]),
                                                    "tuner": job.tuner, "seed": job.seed, **job.extras},
                           provenance.versions())
        return path.read_bytes()


class EpochReporter:
    """The ``report`` callback a model calls after each epoch: the metrics are recorded, sent to the
    coordinator (which may stop a trial), and, with a target, the training time until validation
    accuracy first reaches it is kept. The time a model says it spent on validation so far
    (``val_cpu_s`` / ``val_wall_s``) and on initialising before it touched the training data
    (``init_cpu_s`` / ``init_wall_s``, kept as ``init_cpu_s`` beside the time) is not training and
    is left out, as MLPerf's clock leaves them out (``models.lenet`` says both).

    With a target, ``checks_per_epoch`` (``job.target_checks``, 4 by default) asks the model to
    measure validation accuracy that many times an epoch, so the time to target is read to a
    fraction of an epoch; such in-between reports come with a fractional epoch and only count
    toward the target (no history, no pruning). With ``job.stop_at_target``, it answers True once
    the target is reached: the model stops training there (MLPerf's time to train ends at the
    target too)."""

    def __init__(self, channel: Channel, job: Job) -> None:
        self.channel, self.job = channel, job
        self.checks_per_epoch = job.target_checks if job.target is not None else 1
        self.history: dict[str, list[float]] = {}
        self.reached: dict[str, float] = {}
        self.cpu0 = self.wall0 = 0.0

    def start(self) -> EpochReporter:
        """Called just before ``fit``: the clock of the time to target starts."""
        self.cpu0, self.wall0 = cpu_seconds(), time.perf_counter()
        return self

    def __call__(self, epoch: float, metrics: dict[str, float], *, val_cpu_s: float = 0.0,
                 val_wall_s: float = 0.0, init_cpu_s: float = 0.0, init_wall_s: float = 0.0) -> bool:
        cpu = cpu_seconds() - self.cpu0 - val_cpu_s - init_cpu_s
        wall = time.perf_counter() - self.wall0 - val_wall_s - init_wall_s
        metrics = {k: float(v) for k, v in metrics.items()}
        value = metrics.get("val_accuracy")
        target = self.job.target
        if target is not None and value is not None and value >= target and not self.reached:
            self.reached = {"cpu_s_to_target": round(cpu, 3), "wall_s_to_target": round(wall, 3),
                            "epochs_to_target": round(float(epoch), 3), "init_cpu_s": round(init_cpu_s, 3)}
        stop = bool(self.reached) and self.job.stop_at_target
        if epoch != int(epoch):  # a check within an epoch: for the target only
            return stop
        for name, number in metrics.items():
            self.history.setdefault(name, []).append(round(number, 5))
        if self.channel.send(EpochReport(int(epoch), self.job.epochs, metrics)):
            raise TrialPruned(metrics.get("val_accuracy"))
        return stop

    def recorded_history(self) -> dict[str, list[float]] | None:
        return self.history or None


def _entry(job: Job) -> registry.Entry:
    for spec in job.model_paths:  # plug-ins: registered in every process that runs their tasks
        if job.model not in registry.names():
            registry.load_model_path(spec)
    entry = registry.get(job.model)
    if entry.cls not in _prepared:  # e.g. importing a framework: once per process, untimed
        prepare = getattr(entry.cls, "prepare", None)
        if callable(prepare):
            prepare()
        _prepared.add(entry.cls)
    return entry


def _whole_training_part(split: Split) -> Digits:
    """The training and validation parts together: what a final trains on without a target."""
    return Digits(np.concatenate([split.train.images, split.val.images]),
                  np.concatenate([split.train.labels, split.val.labels]))


@contextmanager
def _guarded(result: TaskResult) -> Iterator[list]:
    """Around a task's work: its warnings recorded (the list yielded), an exception turned into
    the result's error and traceback (a failing job is a row, not the end of the run), memory
    collected after."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield caught
        except Exception as exc:
            result.status, result.error = Status.ERROR, one_line(exc)
            result.traceback = traceback.format_exc()
        finally:
            gc.collect()


def _with_process(result: TaskResult) -> TaskResult:
    """Who ran the task, and that process's memory and CPU so far (for the run's CPU total)."""
    result.worker, result.worker_cpu_s = f"{socket.gethostname()}:{os.getpid()}", round(cpu_seconds(), 2)
    result.fields.update(rss_mb=rss_mb(), thread_pools=thread_pools())
    return result
