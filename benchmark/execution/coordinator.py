"""The job loop: for each dataset x model x tuner, tune (or take the defaults), then refit the chosen
parameters for every seed on the whole training part and evaluate once on the test set.

Every trial and every final is one row of results.csv, appended as it finishes; a finished row is
never redone, so ``--resume`` continues a killed run where it stopped.
"""

from __future__ import annotations

import gc
import shutil
import signal
import traceback
import uuid
import warnings
from datetime import UTC, datetime
from typing import Any

import numpy as np

from benchmark.config import RunConfig
from benchmark.data.datasets import Split, load_split
from benchmark.execution.context import History, RunContext, create, one_line, one_line_each
from benchmark.execution.locking import RunLock
from benchmark.execution.progress import RunProgress
from benchmark.execution.shared import delete_studies, is_shared, shared_storage, study_names
from benchmark.execution.signals import Interrupted, stop_on_signals, stopped
from benchmark.execution.timing import latency_ms, measure
from benchmark.store import MODELS_DIR, PREDICTIONS_DIR, ResultsStore, unique_slug
from benchmark.tuning.study import Study
from models import registry
from models.base import Digits
from models.errors import InputError
from models.registry import Entry

#: What --overwrite removes from a run folder, besides results.csv.
RUN_STATE = (PREDICTIONS_DIR, MODELS_DIR, "optuna.db", "keras-tuner", "errors.log")


def resolve_models(config: RunConfig) -> list[Entry]:
    for spec in config.model_paths:
        registry.load_model_path(spec)
    entries = [registry.get(name) for name in config.models]
    unused = set(config.params or {}) - {k for e in entries for k in e.defaults()}
    if unused:
        raise InputError(f"--params: no selected model has parameter(s) {', '.join(sorted(unused))}")
    return entries


def prepare_run_dir(config: RunConfig) -> ResultsStore:
    """Check the run folder against --resume/--overwrite; returns its results store."""
    store = ResultsStore(config.run_dir)
    if store.exists():
        if config.overwrite:
            store.path.unlink()
            for name in RUN_STATE:
                path = store.run_dir / name
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        elif not config.resume and not is_shared(config.storage_url):  # workers join the run
            raise InputError(
                f"{store.path} already exists: pass --resume to continue that run, "
                "--overwrite to start it again, or --out for another folder"
            )
        else:
            store.repair()
    if config.overwrite and config.storage is not None:  # studies kept outside the run folder
        delete_studies(config.storage_url, study_names(config))
    store.run_dir.mkdir(parents=True, exist_ok=True)
    return store


def run(config: RunConfig, command: str, worker: int = 1) -> int:
    """Run every unfinished trial and final of ``config``; 0 when all finals succeeded, else 1.

    ``worker`` 2..N: one of the local workers that worker 1 started (``benchmark.execution.team``)."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    entries = resolve_models(config)
    splits = [
        load_split(spec, data_dir=config.data_dir, cache_dir=config.cache_dir,
                   val_fraction=config.val_fraction, test_fraction=config.test_fraction)
        for spec in config.datasets
    ]
    for entry in entries:  # frameworks imported now, untimed, not inside the first timed fit
        prepare = getattr(entry.cls, "prepare", None)
        if callable(prepare):
            prepare()
    lock = RunLock(config.run_dir, shared=shared_storage(config) is not None or worker > 1)
    lock.acquire(exclusive=config.overwrite or not lock.shared)
    try:
        with stop_on_signals():
            return _run_jobs(config, command, started, entries, splits, lock, worker)
    except Interrupted as stop:
        return stopped(stop, config.run_dir, command, shared=lock.shared)
    finally:
        lock.release()


def _run_jobs(config: RunConfig, command: str, started: str, entries: list[Entry],
              splits: list[Split], lock: RunLock, worker: int) -> int:
    """The run itself, holding the run folder's lock; a stop signal raises Interrupted."""
    store = prepare_run_dir(config) if worker == 1 else ResultsStore(config.run_dir)
    several = lock.shared or config.workers > 1  # workers split the jobs (benchmark.execution.workers)
    if several:
        lock.share()  # the other workers join once the folder is ready
    gc.freeze()  # the datasets stay for the whole run: keep the per-trial collections cheap
    done = store.done_jobs()
    studies = len(splits) * len(entries) * sum(t != "none" for t in config.tuners)
    finals = sum(len(final_seeds(entry, config)) for entry in entries)
    progress = RunProgress(studies * config.trials + len(splits) * len(config.tuners) * finals,
                           worker=f"w{worker}" if config.workers > 1 else None,
                           count_done=(lambda: len(store.done_jobs())) if several else None)
    if done and worker == 1:
        progress.log(f"resuming {store.path}: {len(done)} rows already done")
    ctx = RunContext(config, store, progress, uuid.uuid4().hex[:12], command, started)
    team = None
    if worker == 1 and config.workers > 1:
        from benchmark.execution.team import Team

        progress.log(f"{config.workers} workers of {config.threads} thread(s) each share the jobs")
        team = Team(config, command)
    failures = 0
    try:
        if several:
            from benchmark.execution.workers import run_shared

            failures = run_shared(ctx, splits, entries, done)
        else:
            for split in splits:
                for entry in entries:
                    for tuner in config.tuners:
                        failures += run_contender(ctx, split, entry, tuner, done)
    except BaseException as exc:  # a stop signal, or worker 1 failing: the others stop too
        if team is not None:
            team.stop(exc.signum if isinstance(exc, Interrupted) else signal.SIGTERM)
            team.wait()
        raise
    finally:
        progress.close()
    if team is not None:
        statuses = team.wait()  # they end once every job is done
        ended_badly = [s for s in statuses if s != 0]
        if ended_badly:
            progress.log(f"{len(ended_badly)} other worker(s) ended with status "
                         f"{', '.join(map(str, ended_badly))}")
            failures += 1
    from reports.markdown import write_report

    if several:  # workers finishing together: one writes it, the others find it up to date
        from benchmark.execution.workers import write_report_once

        report = write_report_once(store.run_dir, write_report)
    else:
        report = write_report(store.run_dir)
    progress.log(f"results: {store.path}\nreport:  {report}")
    return 1 if failures else 0


def final_seeds(entry: Entry, config: RunConfig) -> range:
    """The seeds of a model's finals: 0..N-1, or only 0 for a model whose fit ignores the seed."""
    return range(1 if getattr(entry.cls, "seed_invariant", False) else config.seeds)


def run_contender(ctx: RunContext, split: Split, entry: Entry, tuner: str, done: set) -> int:
    """Tune one model with one tuner (unless tuner is "none"), then run its finals; failures."""
    seeds = [s for s in final_seeds(entry, ctx.config)
             if (split.dataset, entry.name, tuner, "final", str(s)) not in done]
    if tuner == "none":
        params, tuning = {**entry.defaults(), **ctx.pinned(entry)}, {"tuner": "none"}
    else:
        study = Study(ctx, split, entry, tuner)
        ctx.progress.log(f"tuning {entry.name} on {split.dataset} with {tuner} "
                         f"({_budget_text(ctx.config)})")
        try:
            params = study.run()
        except RuntimeError as exc:  # no trial finished: the finals fail with that reason
            params = None
            ctx.progress.log(f"    {exc}")
        tuning = study.summary()
    failures = 0
    for seed in seeds:
        row = run_final(ctx, split, entry, tuner, seed, params, tuning)
        failures += row["status"] != "ok"
    return failures


def run_final(ctx: RunContext, split: Split, entry: Entry, tuner: str, seed: int,
              params: dict[str, Any] | None, tuning: dict[str, Any]) -> dict[str, Any]:
    """Refit ``params`` on train + validation with ``seed``, evaluate once on test, append the row."""
    label = f"{split.dataset} {entry.name} {tuner} final seed {seed}"
    row = ctx.row(split, entry, tuner=tuner, trial="final", seed=seed, params=params or {},
                  tuning=tuning)
    epochs = (params or {}).get("epochs")
    ctx.progress.job_started(label, epochs if isinstance(epochs, int) else None)
    try:
        if params is None:
            raise RuntimeError(f"tuning with {tuner} finished no trial, so there is nothing to refit")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            row.update(_train_and_evaluate(ctx, split, entry, tuner, seed, params))
        row["status"] = "ok"
        row["warnings"] = one_line_each(caught)
        if row["warnings"]:
            ctx.progress.log(f"    warning: {row['warnings']}")
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # one failing job must not end the run
        row.update(status="error", error=one_line(exc))
        with open(ctx.store.run_dir / "errors.log", "a", encoding="utf-8") as log:
            log.write(f"--- {label}\n{traceback.format_exc()}")
    ctx.append(row)
    ctx.progress.job_finished(_summary(label, row))
    return row


def _train_and_evaluate(ctx: RunContext, split: Split, entry: Entry, tuner: str, seed: int,
                        params: dict[str, Any]) -> dict[str, Any]:
    train = Digits(
        np.concatenate([split.train.images, split.val.images]),
        np.concatenate([split.train.labels, split.val.labels]),
    )
    test, epochs = split.test, params.get("epochs")
    model = create(entry, params)

    history = History()

    def report(epoch: int, metrics: dict[str, float]) -> None:
        history.add(metrics)
        ctx.progress.epoch(epoch, epochs, metrics)

    with measure() as fit_time:
        model.fit(train, None, seed=seed, report=report)
    batch = min(ctx.config.latency_batch, len(test))
    for sample in (test.images, test.images[:batch]):  # tracing and set-up per shape: not timed
        model.warm_up(sample)
    with measure() as predict_time:
        predicted = np.asarray(model.predict(test.images))
    if predicted.shape != test.labels.shape or not np.isin(predicted, np.arange(10)).all():
        raise ValueError(
            f"predict returned {predicted.dtype} {predicted.shape}, expected labels 0..9 "
            f"of shape {test.labels.shape}"
        )
    b1, bn = latency_ms(model.predict, test.images, batch=batch)
    stem = "__".join((unique_slug(split.dataset), entry.name, tuner, "final", f"seed{seed}"))
    return {
        "n_train": len(train), "n_val": 0, "n_test": len(test),
        "test_accuracy": float(np.mean(predicted == test.labels)),
        "fit_cpu_s": round(fit_time.cpu_s, 3), "fit_wall_s": round(fit_time.wall_s, 3),
        "predict_cpu_s": round(predict_time.cpu_s, 4),
        "predict_wall_s": round(predict_time.wall_s, 4),
        "latency_ms_b1": round(b1, 4), "latency_ms_bN": round(bn, 5), "batch_N": batch,
        "n_params": model.n_params(), "history": history.json(),
        "predictions": ctx.store.save_predictions(stem, test.labels, predicted, test.images),
        "model_file": _save_model(ctx, split, entry, tuner, seed, model, len(train))
        if ctx.config.save_models else None,
    }


def _save_model(ctx: RunContext, split: Split, entry: Entry, tuner: str, seed: int, model: Any,
                n_train: int) -> str | None:
    """Keep a final model as RUN_DIR/models/<dataset>/<model>-<tuner>-seed<N>.<ext> (--save-models);
    returns that path relative to RUN_DIR, or None, with a warning, where the model cannot be saved."""
    from benchmark import provenance
    from models import persist

    if not persist.can_save(entry.cls):
        warnings.warn(f"--save-models: {entry.name} has no save/load methods, not saved", stacklevel=2)
        return None
    rel = f"{MODELS_DIR}/{unique_slug(split.dataset)}/{entry.name}-{tuner}-seed{seed}{entry.cls.file_suffix}"
    persist.save_model(model, ctx.store.run_dir / rel, entry.name, {
        "dataset": split.dataset, "images": n_train, "tuner": tuner, "seed": seed, "run_id": ctx.run_id},
        provenance.versions())
    return rel


def _budget_text(config: RunConfig) -> str:
    parts = [f"at most {config.trials} trials"]
    if config.budget is not None:
        parts.append(f"{config.budget:g} CPU-s")
    if config.tune_subsample is not None:
        parts.append(f"trials on {config.tune_subsample:,} training images")
    return ", ".join(parts)


def _summary(label: str, row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return f"{label}: FAILED {row['error']}"
    return (
        f"{label}: test accuracy {100 * row['test_accuracy']:.2f}%, "
        f"fit {row['fit_cpu_s']:.1f} CPU-s ({row['fit_wall_s']:.1f} s wall)"
    )
