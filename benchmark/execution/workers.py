"""The job loop of one worker of a shared storage (``--storage postgresql://...``).

Every worker walks the same job matrix. For each contender (dataset x model x tuner) it tunes while
the study has trials left to start (Optuna: trial by trial; keras-tuner: the whole study, claimed by
one worker), then claims each final through the storage and runs the ones it got. Jobs other workers
hold are left for later: the worker goes on to the next contender and, once through the matrix,
comes back to them every few seconds until all are done, so that a job whose worker died is picked
up by one still alive. Rows go to the shared RUN_DIR/results.csv (appends are locked), so when a
worker ends, the run's results and report are complete.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmark.data.datasets import Split
from benchmark.execution.context import RunContext
from benchmark.execution.locking import FileLock
from benchmark.execution.shared import Claim, Jobs, jobs_name, open_storage, wait
from benchmark.execution.signals import Interrupted
from benchmark.store import RESULTS_FILE, job_key
from benchmark.tuning.study import Study
from models.registry import Entry


def run_shared(ctx: RunContext, splits: list[Split], entries: list[Entry], done: set) -> int:
    """Run this worker's share of the run; returns how many finals it ran that failed."""
    config = ctx.config
    storage = open_storage(config.storage_url, config.heartbeat)
    started = datetime.now()  # Optuna's trial times are local and naive too
    pending = [(split, entry, tuner) for split in splits for entry in entries for tuner in config.tuners]
    announced: set[tuple[str, str, str]] = set()
    failures, waiting_for = 0, None
    while True:
        left = []
        for split, entry, tuner in pending:
            complete, failed = _contender(ctx, storage, started, split, entry, tuner, done, announced)
            failures += failed
            if not complete:
                left.append((split, entry, tuner))
        if not left:
            return failures
        if len(left) != waiting_for:
            waiting_for = len(left)
            ctx.progress.log(f"waiting for {len(left)} contender(s) whose last jobs other workers hold")
        pending = left
        wait(min(5, config.heartbeat))


def _contender(ctx: RunContext, storage: Any, started: datetime, split: Split, entry: Entry,
               tuner: str, done: set, announced: set) -> tuple[bool, int]:
    """One pass over a contender: (whether all its jobs are done, finals of it that failed here)."""
    jobs = Jobs(storage, jobs_name(split.dataset, entry.name, tuner), started)
    if tuner == "none":
        params, tuning = {**entry.defaults(), **ctx.pinned(entry)}, {"tuner": "none"}
    else:
        study = Study(ctx, split, entry, tuner)
        if (split.dataset, entry.name, tuner) not in announced:
            announced.add((split.dataset, entry.name, tuner))
            ctx.progress.log(f"tuning {entry.name} on {split.dataset} with {tuner} "
                             f"(at most {ctx.config.trials} trials, shared with other workers)")
        if tuner == "optuna":
            if not study.run_shared(storage):
                return False, 0
        elif _claimed(jobs.claim("tuning"), lambda: _tune_alone(study)) == "busy":
            return False, 0
        study.refresh()
        try:
            params = study.best()[1]
        except RuntimeError as exc:  # no trial finished: the finals fail with that reason
            params = None
            ctx.progress.log(f"    {exc}")
        tuning = study.summary()
    complete, failures = True, 0
    from benchmark.execution.coordinator import final_seeds

    for seed in final_seeds(entry, ctx.config):
        key = (split.dataset, entry.name, tuner, "final", str(seed))
        if key in done:
            continue
        claim = jobs.claim(f"seed{seed}")
        if claim == "busy":
            complete = False
        elif isinstance(claim, Claim):
            failures += _final(ctx, claim, key, split, entry, tuner, seed, params, tuning)
    return complete, failures


def _tune_alone(study: Study) -> float:
    """A keras-tuner study, run by the one worker that claimed it; its best validation accuracy."""
    try:
        study.run()
    except RuntimeError:  # no trial finished: the finals say so
        pass
    return study.summary().get("best_val_accuracy") or 0.0


def _claimed(claim: Claim | str, job: Any) -> str:
    """Run ``job()`` under ``claim`` (heartbeat, then finish or give back); "busy", "done", "ran"."""
    if not isinstance(claim, Claim):
        return claim
    try:
        value = job()
    except Interrupted:
        claim.abandon()
        raise
    finally:
        claim.stop()  # also when the job crashed: the claim goes stale and is retried
    claim.finish(value)
    return "ran"


def _final(ctx: RunContext, claim: Claim, key: tuple[str, ...], split: Split, entry: Entry,
           tuner: str, seed: int, params: dict[str, Any] | None, tuning: dict[str, Any]) -> int:
    """Run one claimed final (unless its row is already there: a worker that died just after
    writing it); 1 when it failed."""
    from benchmark.execution.coordinator import run_final

    recorded = _recorded_final(ctx, key)
    if recorded is not None:
        claim.finish(recorded)
        return 0
    try:
        row = run_final(ctx, split, entry, tuner, seed, params, tuning)
    except Interrupted:
        claim.abandon()
        raise
    finally:
        claim.stop()
    if row["status"] == "ok":
        claim.finish(row["test_accuracy"])
        return 0
    claim.finish(error=row.get("error") or "failed")
    return 1


def _recorded_final(ctx: RunContext, key: tuple[str, ...]) -> float | None:
    """Test accuracy of an ok row of final ``key`` in results.csv, if there is one."""
    if not ctx.store.exists():
        return None
    frame = ctx.store.load()
    ok = frame[frame["status"] == "ok"]
    for row in ok.to_dict("records"):
        if job_key(row) == key:
            return float(row["test_accuracy"])
    return None


def write_report_once(run_dir: Path, write_report: Callable[[Path], Path]) -> Path:
    """The run's report, written by one worker at a time, and not again while it is newer than
    results.csv (another worker that finished just before wrote it from the same rows)."""
    with FileLock(run_dir / ".report.lock"):
        report, results = run_dir / "report.md", run_dir / RESULTS_FILE
        if report.exists() and results.exists() and report.stat().st_mtime_ns > results.stat().st_mtime_ns:
            return report
        return write_report(run_dir)
