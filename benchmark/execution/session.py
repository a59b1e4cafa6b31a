"""One training invocation from its settings to its finished jobs: every input checked before any
work (models and ``--params``, ``--out``, ``--storage``, the datasets), the run folder prepared for
``--resume`` or ``--overwrite``, the plan made, then the coordinator run under the stop signals.
The commands that train (``run``, ``submit``) call :func:`run`; the report is theirs to write
afterwards, from the run folder alone.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable

import numpy as np

from digitbench.benchmark.config import RunConfig
from digitbench.benchmark.data.corrupted import corrupted_tests
from digitbench.benchmark.data.datasets import Split, default_cache_dir, load_split
from digitbench.benchmark.execution import signals
from digitbench.benchmark.execution.contender import Contender, study_name
from digitbench.benchmark.execution.coordinator import Coordinator
from digitbench.benchmark.execution.executors import Executor
from digitbench.benchmark.execution.jobs import TaskResult
from digitbench.benchmark.execution.locking import RunLock
from digitbench.benchmark.execution.plan import check_params, plan, subset_sizes
from digitbench.benchmark.execution.recorder import Recorder, RowConsumer
from digitbench.benchmark.execution.tasks import run_final
from digitbench.benchmark.store import GALLERY_DIR, MODELS_DIR, PREDICTIONS_DIR, ResultsStore, save_gallery
from digitbench.benchmark.tuning.folds import check_scoring as check_folds
from digitbench.benchmark.tuning.study import Study, record_of
from digitbench.benchmark.tuning.trial import OPTUNA_TUNERS
from digitbench.common.errors import NO_SPACE, InputError, NoSpaceLeft, message_line
from digitbench.models import registry
from digitbench.models.base import Digits
from digitbench.models.registry import Entry

#: What --overwrite removes from a run folder, besides results.csv.
RUN_STATE = (PREDICTIONS_DIR, MODELS_DIR, GALLERY_DIR, "optuna.db", "keras-tuner", "errors.log")


Loader = Callable[[RunConfig, list[Entry]], tuple[list[Split], list[Split]]]


def run(config: RunConfig, command: str, executor_factory: Callable[[], Executor], *,
        load: Loader | None = None, final_task: Callable[..., TaskResult] = run_final,
        consumer: RowConsumer | None = None) -> int:
    """Run every unfinished trial and final of ``config``: 0 when all finals succeeded, 1 when some
    failed, 130/143 when a stop signal ended it (see :mod:`.signals`).

    ``executor_factory()`` opens the executor once the inputs are checked. ``load`` gives the
    datasets and the ``--test-on`` ones (default :func:`load_datasets`); ``final_task`` is what
    each final runs (``submit``: :func:`~.tasks.run_submission`); ``consumer`` is told each row
    once it is written (the MLflow log)."""
    entries = check_inputs(config)
    splits, cross = (load or load_datasets)(config, entries)
    check_scoring(config, splits, entries)
    corrupted = {s.dataset: corrupted_tests(s, config.corruptions, config.cache_dir or default_cache_dir())
                 for s in splits} if config.corruptions else {}
    executor = executor_factory()  # a cluster that cannot be reached: an InputError, nothing written
    try:
        lock = RunLock(config.run_dir).acquire()
        try:
            with signals.stop_on_signals():
                store = prepare_run_dir(config, [s.dataset for s in splits])
                for split in splits:
                    if split.dataset in corrupted:
                        _save_gallery(store, split, corrupted[split.dataset])
                recorder = Recorder(config, command, store, {s.dataset: s for s in cross}, consumer)
                contenders = open_contenders(config, store, splits, entries, final_task)
                return Coordinator(config, contenders, executor, recorder,
                                   {s.dataset: s for s in cross}, corrupted).run()
        except signals.Interrupted as stop:
            executor.shutdown()  # the workers stop before the line that says how to go on
            return signals.stopped(stop, config.run_dir, command)
        except OSError as exc:
            if exc.errno not in NO_SPACE:
                raise
            executor.shutdown()
            raise NoSpaceLeft(no_space(exc, config, command)) from exc
        finally:
            lock.release()
    finally:
        executor.shutdown()


def no_space(exc: OSError, config: RunConfig, command: str) -> str:
    """What a write that found no room stopped, that nothing finished is lost (files are written
    whole or not at all, a row after its files, and a row cut short is cut off when the run resumes),
    and how to finish the run."""
    what = exc.filename if exc.filename is not None else f"to {config.run_dir}"
    results = ResultsStore(config.run_dir).path
    return (f"could not write {what}: {exc.strerror or 'no space left'}; the results so far are safe in "
            f"{results}: free some space, then finish the run with: {signals.resume_command(command)}")


def _save_gallery(store: ResultsStore, split: Split, corrupted: dict[str, Digits]) -> None:
    """The first test digit of each class, clean and under each corruption, for the report."""
    labels = split.test.labels
    first = np.array([np.flatnonzero(labels == k)[0] for k in np.unique(labels)])
    images = {"clean": split.test.images[first], **{n: d.images[first] for n, d in corrupted.items()}}
    save_gallery(store.run_dir, split.dataset, images, labels[first])


def open_executor(config: RunConfig) -> Executor:
    """The executor the settings ask for: a Dask cluster (``--cluster``), worker processes on this
    machine (``--workers`` 2 or more), or the coordinator's own process (``--workers 1``)."""
    import functools

    from digitbench.benchmark.execution.backends import configure_process
    from digitbench.benchmark.execution.executors import InlineExecutor, LocalExecutor

    setup = functools.partial(configure_process, config)
    if config.cluster is not None:
        from digitbench.benchmark.execution.dask_executor import DaskExecutor

        return DaskExecutor(config.cluster, setup)
    if config.workers == 1:
        return InlineExecutor()
    return LocalExecutor(config.workers, setup)


def check_inputs(config: RunConfig) -> list[Entry]:
    """The selected models, once their plug-ins are loaded and ``--params``, ``--out`` and
    ``--storage`` checked: bad input ends before any work starts, with nothing written."""
    for spec in config.model_paths:
        registry.load_model_path(spec)
    entries = [registry.get(name) for name in config.models]
    check_params(config, entries)
    for path in (config.run_dir, *config.run_dir.parents):
        if path.exists() and not path.is_dir():
            raise InputError(f"--out {config.run_dir}: {path} is a file, expected a folder")
    if config.storage is not None and any(t in ("optuna", "random") for t in config.tuners):
        check_storage(config.storage)
    store = ResultsStore(config.run_dir)
    if config.resume and store.exists():
        store.load()  # every row fits the columns, or one line names the first that does not
    return entries


def check_scoring(config: RunConfig, splits: list[Split], entries: list[Entry]) -> None:
    """``--cv`` and ``--tune-subsample`` against each training part, before any work: every study's
    trials must be scorable (:func:`~benchmark.tuning.folds.check_scoring`). Models that train in
    epochs are scored on the validation part, the others by ``--cv`` folds (as :class:`Study`)."""
    if all(tuner == "none" for tuner in config.tuners):
        return
    folds = sorted({1 if e.cls.trains_in_epochs else config.cv for e in entries}, reverse=True)
    for split in splits:
        for k in folds:
            check_folds(split, k, config.tune_subsample)


def check_storage(url: str) -> None:
    """An RDB URL Optuna can keep its studies in: a dialect SQLAlchemy knows (with its driver
    installed) and a database that answers. Nothing is created in it."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url)
    except Exception as exc:  # ArgumentError (not a URL), NoSuchModuleError (unknown dialect), ...
        raise InputError(f"--storage {url}: not a database URL Optuna can use ({message_line(exc)}); "
                         "e.g. sqlite:///optuna.db or postgresql://user@host/db") from None
    try:
        with engine.connect():
            pass
    except Exception as exc:
        raise InputError(f"--storage {url}: cannot connect ({message_line(exc)})") from None
    finally:
        engine.dispose()


def load_datasets(config: RunConfig, entries: list[Entry]) -> tuple[list[Split], list[Split]]:
    """The run's datasets, then the ``--test-on`` ones, loaded and checked before any work: with
    ``--native-size``, images that are not 28x28 need models that take any size, and a dataset
    tested on must have the size its models trained on; ``--train-sizes`` must fit each training part."""
    def load(spec: str) -> Split:
        return load_split(spec, data_dir=config.data_dir, cache_dir=config.cache_dir,
                          val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                          native_size=config.native_size)

    splits = [load(spec) for spec in config.datasets]
    cross = [load(spec) for spec in config.test_on]
    for split in splits:
        subset_sizes(config, split)  # a --train-sizes size this training part cannot take
    for split in splits:
        if split.image_shape != (28, 28):
            fixed = [e.name for e in entries if not e.cls.any_image_size]
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


def prepare_run_dir(config: RunConfig, datasets: list[str]) -> ResultsStore:
    """Check the run folder against --resume/--overwrite; returns its results store. ``datasets``
    are the loaded datasets' names (normalised specs), under which their studies are kept."""
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
        _delete_studies(config, datasets)
    _check_objectives(config, datasets)
    store.run_dir.mkdir(parents=True, exist_ok=True)
    return store


def _study_names(config: RunConfig, datasets: list[str], tuners: tuple[str, ...]) -> set[str]:
    return {study_name(dataset, model, tuner, seed) for dataset in datasets for model in config.models
            for tuner in tuners for seed in range(config.study_seeds)}


def _check_objectives(config: RunConfig, datasets: list[str]) -> None:
    """The run's Optuna studies that already exist were created with the run's ``--objectives``."""
    tuners = tuple(t for t in config.tuners if t in OPTUNA_TUNERS)
    if not tuners or (config.storage is None and not (config.run_dir / "optuna.db").exists()):
        return
    from digitbench.benchmark.tuning.optuna_driver import check_objectives

    check_objectives(config.storage_url, _study_names(config, datasets, tuners), config.objectives)


def _delete_studies(config: RunConfig, datasets: list[str]) -> None:
    import optuna

    names = set(optuna.get_all_study_names(config.storage_url))
    for name in sorted(names & _study_names(config, datasets, config.tuners)):
        optuna.delete_study(study_name=name, storage=config.storage_url)


def open_contenders(config: RunConfig, store: ResultsStore, splits: list[Split], entries: list[Entry],
                    final_task: Callable[..., TaskResult] = run_final) -> list[Contender]:
    """The plan, less what the store already holds, each tuned contender with its study; its finals
    run ``final_task``."""
    frame = store.load() if store.exists() else None  # read and checked once
    done = store.done_jobs(frame) if frame is not None else set()
    if done:
        print(f"resuming {store.path}: {len(done)} rows already done", file=sys.stderr, flush=True)
    studies = store.trial_rows(frame) if frame is not None else {}
    contenders = plan(config, splits, entries, done, final_task)
    for c in contenders:
        if c.tuner != "none":
            rows = studies.get((c.split.dataset, c.entry.name, c.tuner, c.study_seed), {})
            c.study = Study(config, c.split, c.entry, c.tuner, c.pinned,
                            {n: record_of(r) for n, r in rows.items()}, c.study_name, c.study_seed)
    return contenders
