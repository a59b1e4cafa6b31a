"""The Python API: run a benchmark from the keys of a TOML config file, load its results as a typed
pandas DataFrame, write its report. The ``digitbench`` command is a thin layer over these calls.

    import digitbench
    run_dir = digitbench.run(dataset="mnist-5k", models="logreg,svm-rbf", seeds=2)
    finals = digitbench.load_results(run_dir, kind="final")

Heavy libraries (TensorFlow, scikit-learn, matplotlib) are imported inside the calls that need them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitbench.common.errors import NO_SPACE, InputError, NoSpaceLeft

if TYPE_CHECKING:  # pandas is imported by the calls that need it: `import digitbench` stays light
    import pandas as pd


class RunStopped(RuntimeError):
    """A stop signal (Ctrl-C, SIGTERM) ended the run; its finished jobs are saved in ``run_dir``
    and the same call with ``resume=True`` continues it."""

    def __init__(self, run_dir: Path, status: int):
        super().__init__(f"run stopped (exit status {status}); finished jobs are saved in {run_dir}, "
                         "continue with resume=True")
        self.run_dir, self.status = run_dir, status


def make_config(config: str | Path | Mapping[str, Any] | None = None, **settings: Any):
    """The checked settings of a run (:class:`~digitbench.benchmark.config.RunConfig`) from a TOML
    file or a mapping of its keys, and keyword settings that override them; bad input is an
    :class:`InputError` before any work."""
    from digitbench.benchmark.config import build_config, normalise_keys

    if isinstance(config, Mapping):
        return build_config({**normalise_keys(config, "config"), **normalise_keys(settings, "run()")})
    return build_config(normalise_keys(settings, "run()"), Path(config) if config is not None else None)


def execute(config, command: str) -> int:
    """Run every unfinished job of ``config`` and write its report: the exit status of ``digitbench
    run`` (0 all finals succeeded, 1 some failed, 128 + N stopped by signal N)."""
    from digitbench.benchmark.execution.backends import configure_process

    configure_process(config)  # thread pools sized before TensorFlow or BLAS run anything
    from digitbench.benchmark.execution.session import open_executor
    from digitbench.benchmark.execution.session import run as run_session

    tracker = None
    if config.mlflow is not None:  # rows are logged as the recorder writes them (--mlflow)
        from digitbench.reports.mlflow_sync import LiveLog

        tracker = LiveLog(config.mlflow, config.run_dir, config.mlflow_trials)
    code = run_session(config, command, functools.partial(open_executor, config),
                       consumer=tracker.row_written if tracker is not None else None)
    _write_run_report(config, code)
    if tracker is not None:
        tracker.finish(code)
    return code


def _write_run_report(config, code: int) -> None:
    if code in (0, 1):  # finished (some finals may have failed), not stopped by a signal
        try:
            write_report(config.run_dir)
        except OSError as exc:
            if exc.errno not in NO_SPACE:
                raise
            raise NoSpaceLeft(f"the run finished but its report could not be written ({exc.strerror}: "
                              f"{exc.filename or config.run_dir}); every result is in "
                              f"{config.run_dir / 'results.csv'}: free some space, then write the "
                              f"report with: digitbench report {config.run_dir}") from exc


def run(config: str | Path | Mapping[str, Any] | None = None, /, **settings: Any) -> Path:
    """Run a benchmark and write its report; returns the run folder.

    ``config`` is a TOML file or a dict of its keys; ``settings`` are the same keys as keyword
    arguments (``dataset="mnist-5k"``, ``models=["logreg", "lenet-relu"]``, ``seeds=3``,
    ``tuner="optuna"``, ``out="runs/mine"``, ``resume=True``, ...) and override the file's. Bad input
    raises :class:`InputError` before any work; a stop signal raises :class:`RunStopped`; a full disk
    raises :class:`NoSpaceLeft`, whose message says how to finish (the results so far are safe).
    Finals that failed are rows with ``status == "error"``, not exceptions.
    """
    _refuse_in_a_starting_worker()
    cfg = make_config(config, **settings)
    given = ", ".join([*([repr(config)] if config is not None else []),
                       *(f"{k}={v!r}" for k, v in settings.items())])
    code = execute(cfg, f"digitbench.run({given})")
    if code not in (0, 1):
        raise RunStopped(cfg.run_dir, code)
    return cfg.run_dir


def _refuse_in_a_starting_worker() -> None:
    """A worker process starts by running the user's script again, as module ``__mp_main__``; a
    script that calls :func:`run` outside ``if __name__ == "__main__":`` would start a run in every
    worker. Such a worker ends at once instead, and the coordinator says what to do (one line)."""
    caller = inspect.currentframe().f_back.f_back  # the frame that called run()
    if caller is not None and caller.f_globals.get("__name__") == "__mp_main__":
        from digitbench.benchmark.execution.executors import WORKER_REFUSED

        raise SystemExit(WORKER_REFUSED)


def load_results(run_dir: str | Path, kind: str | None = None) -> pd.DataFrame:
    """A run folder's ``results.csv`` as a typed DataFrame, one row per trial or final.

    Numbers are floats (NaN where empty), ``trial`` and ``seed`` nullable integers, the JSON columns
    (``params``, ``tuning``, ``versions``, ...) parsed into dicts, and the ``kind`` column says
    ``"trial"``, ``"final"`` or ``"subset"`` (a final trained on a ``train_sizes`` subset).
    ``kind`` keeps only rows of that kind.
    """
    from digitbench.benchmark.results import load_table
    from digitbench.benchmark.store import RowKind

    if kind is not None and kind not in tuple(RowKind):
        raise InputError(f"load_results: kind must be one of {', '.join(RowKind)}, got {kind!r}")
    table = load_table(Path(run_dir))
    return table if kind is None else table[table["kind"] == kind].reset_index(drop=True)


def write_report(run_dir: str | Path, *others: str | Path, out: str | Path | None = None) -> Path:
    """Write ``RUN_DIR/report.md`` (and its figures) from the run folder alone; returns its path.
    With more run folders, also write their side-by-side comparison (in ``out``) and return that."""
    from digitbench.reports.markdown import write_report as write_one

    report = write_one(Path(run_dir))
    for other in others:
        write_one(Path(other))
    if not others:
        if out is not None:
            raise InputError("write_report: out is for comparing two or more run folders; "
                             "a single run's report is RUN_DIR/report.md")
        return report
    from digitbench.reports.side_by_side import default_out, write_comparison

    folders = [Path(run_dir), *map(Path, others)]
    return write_comparison(folders, Path(out) if out is not None else default_out(folders))


def log_to_mlflow(run_dir: str | Path, target: str, trials: bool = False) -> str:
    """Log a run folder to MLflow (``target``: a tracking server's URL or a local folder): a parent
    run for the folder, a nested run per final (per trial too with ``trials``), the report and its
    figures. Rows already logged there are not logged again. Returns the parent run's id.

    The folder is locked meanwhile, so a run still writing it is refused (:class:`InputError`).
    """
    from digitbench.benchmark.checks import mlflow_target
    from digitbench.benchmark.execution.locking import RunLock
    from digitbench.benchmark.results import load_table

    target = mlflow_target("--mlflow", target)
    load_table(Path(run_dir))  # not a run folder: one line, before anything is sent
    lock = RunLock(Path(run_dir)).acquire()
    try:
        from digitbench.reports.mlflow_sync import sync

        return sync(target, Path(run_dir), trials)[1]
    finally:
        lock.release()


def show_versions() -> None:
    """Print digitbench's version, Python's and those of the packages that shape results, and this
    machine (as scikit-learn's ``show_versions``): what to paste into a bug report."""
    from digitbench.benchmark import provenance

    for name, value in {**provenance.versions(), **provenance.machine()}.items():
        print(f"{name:>16}: {value}")
