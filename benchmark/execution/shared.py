"""A shared storage: what lets several ``digitbench run`` workers split one run between them.

A storage URL that is not SQLite (``postgresql://...``) makes the run shared: every process started
with it (and the same arguments) is a worker. Workers coordinate through the database only:

* tuning trials are Optuna trials of the study (see ``tune_optuna.tune_shared``);
* the jobs no two workers may both do (each final, and a keras-tuner study, which lives in its
  project folder) are claimed through the storage too, one Optuna study per contender named
  ``<dataset>__<model>__<tuner>__jobs``, one trial per attempt with user attribute ``job``
  (:class:`Jobs`);
* every trial or claim in progress beats a heartbeat; one whose worker died (SIGKILL, a lost machine)
  goes stale after the grace period (3 heartbeats), is marked failed by the next worker that looks,
  and is retried (Optuna's ``RetryHeartbeatStaleTrialCallback``: same parameters, new number).
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
import warnings
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from benchmark.execution import signals
from benchmark.execution.locking import worker_id
from models.errors import InputError

#: Retries of a trial or job whose worker died, before giving up on it.
MAX_RETRY = 2
log = logging.getLogger(__name__)


def is_shared(storage_url: str) -> bool:
    """Whether ``storage_url`` is a database server that workers on several machines share
    (anything but SQLite, which only the local workers of one ``--workers`` run share)."""
    return not storage_url.lower().startswith("sqlite")


def _ignore_optuna_warnings() -> None:
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")


def shared_storage(config: Any) -> Any:
    """The open storage of a run whose ``--storage`` is shared, else None. Opened before the run
    folder is touched, so that a wrong URL, a missing driver or a server that does not answer ends
    with one line and leaves nothing behind."""
    return open_storage(config.storage_url, config.heartbeat) if is_shared(config.storage_url) else None


@functools.cache
def open_storage(url: str, heartbeat: int) -> Any:
    """An Optuna RDB storage with heartbeats every ``heartbeat`` seconds, a grace period of three,
    and retry of the trials whose worker stopped beating. A missing driver or a server that does
    not answer is an InputError."""
    import optuna
    import sqlalchemy

    _ignore_optuna_warnings()
    logging.getLogger("optuna").setLevel(logging.WARNING)
    shown = sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    sqlite = not is_shared(url)
    # SQLite (the local workers of --workers): Python's sqlite3 runs reads outside any transaction,
    # so two workers could both see a job WAITING and both take it. Every transaction here starts
    # with BEGIN IMMEDIATE, which one connection at a time holds: read-then-write is atomic.
    engine_kwargs = ({"connect_args": {"isolation_level": None, "timeout": 120}} if sqlite
                     else {"pool_pre_ping": True})
    for attempt in range(4):
        try:
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=MAX_RETRY),
            )
            if sqlite:
                sqlalchemy.event.listen(storage.engine, "begin",
                                        lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
                storage.engine.dispose()
            return storage
        except ImportError:
            raise InputError(f"--storage {shown}: its database driver is not installed "
                             "(PostgreSQL: pip install 'digitbench[postgres]')") from None
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
            # Workers starting together on an empty database race to create its tables: the
            # losers see a duplicate key; a moment later the tables are there.
            if attempt == 3:
                reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
                raise InputError(f"--storage {shown}: cannot use it: {reason}") from None
            time.sleep(0.5 + random.random())
    raise AssertionError("unreachable")


def fail_stale(study: Any) -> None:
    """Mark failed (and queue a retry of) the trials whose worker stopped beating, and the orphans:
    trials RUNNING without a single heartbeat for ten grace periods (a worker killed between
    taking a trial and its first beat, which Optuna's check never sees)."""
    import optuna
    import sqlalchemy
    from optuna.trial import TrialState

    optuna.storages.fail_stale_trials(study)
    storage = study._storage
    while hasattr(storage, "_backend"):  # under Optuna's cache
        storage = storage._backend
    cutoff = datetime.now() - timedelta(seconds=max(60, 10 * storage.grace_period))
    query = sqlalchemy.text(
        "SELECT t.trial_id FROM trials t LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
        "WHERE t.study_id = :study AND t.state = 'RUNNING' AND h.trial_id IS NULL "
        "AND t.datetime_start < :cutoff")
    with storage.engine.connect() as connection:
        orphans = [r[0] for r in connection.execute(query, {"study": study._study_id, "cutoff": cutoff})]
    retry = storage.get_heartbeat_stale_trial_callback()
    for trial_id in orphans:
        try:
            if storage.set_trial_state_values(trial_id, TrialState.FAIL) and retry is not None:
                retry(study, storage.get_trial(trial_id))
        except optuna.exceptions.UpdateFinishedTrialError:
            pass


class Heartbeat:
    """Beats for one running trial from a daemon thread until the block ends."""

    def __init__(self, storage: Any, trial_id: int) -> None:
        self.storage, self.trial_id = storage, trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="digitbench-heartbeat")

    def _beat(self) -> None:
        interval = self.storage.get_heartbeat_interval()
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception as exc:  # the database went away for a moment: try again next beat
                log.warning("heartbeat of trial id %s failed: %s", self.trial_id, exc)
            if self._stop.wait(interval):
                return

    def start(self) -> Heartbeat:
        self.storage.record_heartbeat(self.trial_id)  # stale-able from the first moment
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=5)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tell(study: Any, trial_id: int, number: int, value: float | None = None, state: Any = None,
         attrs: dict[str, Any] | None = None) -> bool:
    """Finish trial ``number`` (a stop signal waits for it); False when another worker had already
    marked it failed (its heartbeat looked stale), in which case Optuna retries it elsewhere."""
    import optuna

    with signals.deferred():
        try:
            for key, val in (attrs or {}).items():
                study._storage.set_trial_user_attr(trial_id, key, val)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "already finished": reported below
            frozen = study.tell(number, value, state=state, skip_if_finished=True)
    if state is None and frozen.state != optuna.trial.TrialState.COMPLETE:
        log.warning("trial %s was marked %s by another worker before it finished",
                    number, frozen.state.name)
        return False
    return True


class Jobs:
    """Claims on the jobs of one contender that must run once in all: ``seed0``, ``seed1``... (its
    finals) and ``tuning`` (a keras-tuner study).

    Every attempt is a trial with user attribute ``job``. The attempt that counts is the
    lowest-numbered one not failed; a worker claims it by moving it from WAITING to RUNNING, which
    the storage lets exactly one worker do, and beats its heartbeat while it works. A finished job
    is COMPLETE (value: the final's test accuracy). A job whose model raised is FAIL with user
    attribute ``error``: not tried again by the workers that were running then, but by workers
    started later (like ``--resume``). A job abandoned on a stop signal is FAIL with ``interrupted``,
    and one whose worker died is failed by the heartbeat: both are tried again.
    """

    def __init__(self, storage: Any, name: str, started: datetime) -> None:
        import optuna

        self.storage, self.name, self.started = storage, name, started
        self.study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
                                         direction="maximize")

    def _attempts(self, job: str) -> list[Any]:
        return sorted((t for t in self.study.get_trials(deepcopy=False) if t.user_attrs.get("job") == job),
                      key=lambda t: t.number)

    def claim(self, job: str) -> Claim | str:
        """A :class:`Claim` on ``job``, or why not: "done", "failed" (an error this round, or its
        workers died too often) or "busy" (another worker has it)."""
        import optuna
        from optuna.trial import TrialState

        fail_stale(self.study)
        while True:
            attempts = self._attempts(job)
            if any(t.state == TrialState.COMPLETE for t in attempts):
                return "done"
            failed = [t for t in attempts if t.state == TrialState.FAIL]
            if any("error" in t.user_attrs and (t.datetime_complete or self.started) >= self.started
                   for t in failed):
                return "failed"
            died = [t for t in failed if not {"error", "interrupted", "surplus"} & set(t.user_attrs)]
            live = [t for t in attempts if t.state in (TrialState.WAITING, TrialState.RUNNING)]
            if not live and len(died) > MAX_RETRY:
                return "failed"
            if not live:
                self.study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING,
                                                               user_attrs={"job": job}))
                continue
            first = live[0]
            if first.state == TrialState.RUNNING:
                return "busy"
            with signals.deferred():  # taken and beating, or not taken: never taken and silent
                try:
                    if not self.storage.set_trial_state_values(first._trial_id, TrialState.RUNNING):
                        continue  # another worker took it first
                except optuna.exceptions.UpdateFinishedTrialError:
                    continue
                claim = Claim(self, first.number, first._trial_id)
            for extra in live[1:]:  # duplicate attempts queued by racing workers
                try:
                    self.storage.set_trial_user_attr(extra._trial_id, "surplus", True)
                    self.storage.set_trial_state_values(extra._trial_id, TrialState.FAIL)
                except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
                    pass
            self.storage.set_trial_user_attr(first._trial_id, "worker", worker_id())
            return claim


class Claim:
    """One worker's hold on a job, beating its heartbeat from the start until :meth:`finish` or
    :meth:`abandon` (or :meth:`stop`, when the worker fails and the job must go stale)."""

    def __init__(self, jobs: Jobs, number: int, trial_id: int) -> None:
        self.jobs, self.number, self.trial_id = jobs, number, trial_id
        self.heartbeat = Heartbeat(jobs.storage, trial_id).start()

    def stop(self) -> None:
        self.heartbeat.stop()

    def finish(self, value: float | None = None, error: str | None = None) -> None:
        from optuna.trial import TrialState

        self.stop()
        if error is not None:
            tell(self.jobs.study, self.trial_id, self.number, state=TrialState.FAIL,
                 attrs={"error": error})
        else:
            tell(self.jobs.study, self.trial_id, self.number, 0.0 if value is None else value)

    def abandon(self) -> None:
        """Give the job back (a stop signal): another worker runs it."""
        from optuna.trial import TrialState

        self.stop()
        tell(self.jobs.study, self.trial_id, self.number, state=TrialState.FAIL,
             attrs={"interrupted": True})


def wait(seconds: float) -> None:
    """Sleep between passes over jobs other workers hold; a stop signal ends it."""
    signals.check()
    time.sleep(seconds)


def delete_studies(url: str, names: Iterable[str]) -> list[str]:
    """Delete the studies of ``names`` that ``url`` holds (``--overwrite``); returns their names."""
    import optuna

    storage = open_storage(url, heartbeat=10)  # one-line errors for a missing driver or server
    present = {s.study_name for s in storage.get_all_studies()}
    gone = [n for n in names if n in present]
    for name in gone:
        optuna.delete_study(study_name=name, storage=storage)
    return gone


def jobs_name(dataset: str, model: str, tuner: str) -> str:
    """The study holding the job claims of one contender."""
    from benchmark.store import unique_slug

    return f"{unique_slug(dataset)}__{model}__{tuner}__jobs"


def study_names(config: Any) -> list[str]:
    """Every study a run of ``config`` keeps in its storage: tuning studies and job claims."""
    from benchmark.store import unique_slug

    names = []
    for dataset in config.datasets:
        for model in config.models:
            names.append(f"{unique_slug(dataset)}__{model}")  # = Study.name
            names += [jobs_name(dataset, model, tuner) for tuner in config.tuners]
    return names
