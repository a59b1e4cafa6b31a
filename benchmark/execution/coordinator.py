"""The coordinator: the one job loop of a run, in the ``digitbench run`` process the user started.

It schedules, nothing else: it asks each contender's tuner for trials (ask/tell), keeps the budgets,
hands jobs to an executor (:mod:`.executors`) as slots free up, shows progress, and passes each
finished job to the :class:`~.recorder.Recorder`, which alone writes its row and files. A job is
done exactly when its row is in the store, and a trial's outcome is told to its tuner only after its
row is written (a kill in between is settled by the next run, from the row); so any stop loses at
most the jobs that were running, and ``--resume`` does the rest.

What the finals refit, whether a defaults refit runs and which finals are recorded from an
identical one instead of trained again is :mod:`.policy`'s to decide; a contender's phases and their
transitions are :mod:`.contender`'s.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from concurrent.futures import Future
from typing import Any

from digitbench.benchmark.config import RunConfig
from digitbench.benchmark.data.datasets import Split
from digitbench.benchmark.execution import cost_estimate, policy, signals
from digitbench.benchmark.execution.contender import Choice, Contender, FinalJob, Phase
from digitbench.benchmark.execution.executors import Executor, Shared
from digitbench.benchmark.execution.jobs import EpochReport, Job, TaskResult
from digitbench.benchmark.execution.plan import describe, make_job
from digitbench.benchmark.execution.progress import RunProgress, summary
from digitbench.benchmark.execution.recorder import Recorder
from digitbench.benchmark.execution.tasks import run_trial
from digitbench.benchmark.store import Status
from digitbench.common.errors import one_line
from digitbench.models.base import Digits


class Coordinator:
    """Runs every job of ``contenders`` on ``executor``; ``cross`` are the ``--test-on`` datasets
    (spec -> split), whose test parts every final is also tested on."""

    def __init__(self, config: RunConfig, contenders: list[Contender], executor: Executor,
                 recorder: Recorder, cross: dict[str, Split],
                 corrupted: dict[str, dict[str, Digits]] | None = None) -> None:
        self.config, self.contenders, self.executor, self.recorder = config, contenders, executor, recorder
        self.cross = {spec: f"cross{j}" for j, spec in enumerate(cross)}  # spec -> shared name
        self.cross_tests = {name: cross[spec].test for spec, name in self.cross.items()}
        #: dataset -> (corruption -> shared name) of its corrupted test sets (--corruptions)
        self.corrupted = {dataset: {name: f"corrupt{i}-{j}" for j, name in enumerate(sets)}
                          for i, (dataset, sets) in enumerate((corrupted or {}).items())}
        self.cross_tests.update({self.corrupted[d][name]: digits for d, sets in (corrupted or {}).items()
                                 for name, digits in sets.items()})
        self.failures = 0
        self.twins = policy.Twins(contenders)
        #: per study (its contender's id): the trials the progress counted and not yet finished;
        #: settled when the study completes, having run fewer (its budget) or more (failed trials)
        self.trials_counted = {id(c): max(0, config.trials - c.study.finished)
                               for c in contenders if c.study is not None}
        left = sum(self.trials_counted.values())
        self.progress = RunProgress(left + sum(len(c.finals) for c in contenders))
        self.progress.log(describe(contenders, left))
        if len(config.objectives) > 1 and any(c.study is not None for c in contenders):
            self.progress.log(f"objectives {', '.join(config.objectives)}: two-objective studies, "
                              "which Optuna does not prune: every trial runs to its end")
        expected = cost_estimate.describe(contenders, config.target is not None, executor.slots)
        if expected is not None and any(f.train_size is not None for c in contenders for f in c.finals):
            self.progress.log(expected)

    def run(self) -> int:
        """Run every job; 0 when all finals succeeded, else 1. A stop signal abandons the running
        trials (told failed to their tuner, no row) and propagates."""
        if self.executor.slots > 1:
            self.progress.log(f"{self.executor.slots} jobs run at once ({self.executor.describe()})")
        gc.freeze()  # the datasets stay for the whole run: keep collections cheap
        for name, split in {c.share: c.split for c in self.contenders}.items():
            self.executor.share(name, split)
        for name, test in self.cross_tests.items():
            self.executor.share(name, test)
        for c in self.contenders:
            if c.study is not None:
                c.study.open()
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
                        self._finish(contender, job, _result(future))
        except BaseException:
            for c in self.contenders:  # a stop: running trials do not count (no row)
                if c.study is not None:
                    # a tuner that cannot be told now (its store on a full disk) is settled by the
                    # next run, from the rows; the error that stopped this one is what propagates
                    with contextlib.suppress(Exception):
                        c.study.abandon()
            raise
        finally:
            self.progress.close()
        return 1 if self.failures else 0

    def _start_next(self) -> tuple[Future, Contender, Job] | None:
        chosen = self._next_job()
        if chosen is None:
            return None
        contender, job = chosen
        listener = functools.partial(self._on_report, contender, job)
        if job.is_final:
            others = [Shared(name) for name in self.cross.values()]
            others += [Shared(self.corrupted[job.dataset][name]) for name in job.corruptions]
            future = self.executor.submit(contender.final_task, job, Shared(contender.share), *others,
                                          listener=listener)
        else:
            future = self.executor.submit(run_trial, job, Shared(contender.share), listener=listener)
        self.progress.job_started(job.label, job.epochs)
        return future, contender, job

    def _next_job(self) -> tuple[Contender, Job] | None:
        """The first contender's next job: a trial while its study asks for one, then its finals
        once the study is complete (every trial of it told) and the policy has chosen for them."""
        for c in self.contenders:
            if c.phase is Phase.CHOOSING:
                if c.study is not None:
                    asked = c.study.ask()
                    if asked is not None:
                        return c, self._job(c, asked[1], trial=asked[0])
                    if not c.study.complete:
                        continue
                    self.progress.recount(-self.trials_counted.pop(id(c)))  # trials it did not run
                self._settle(c, policy.choose(c, self.config))
                for refit in self.contenders:  # decided now, so the progress counts right away
                    if refit.phase is Phase.WAITING:
                        self._settle(refit, policy.decide_refit(refit, self.contenders))
            while c.phase is Phase.FAILED:  # nothing to refit: the finals fail with the reason
                self._finish(c, self._job(c, {}, c.next_final()), TaskResult.failed(f"RuntimeError: {c.why}"))
            while (copied := self.twins.copy(c)) is not None:
                final, tuner, result = copied
                self._finish(c, self._job(c, c.params_of(final), final), result, copied_from=tuner)
            final = self.twins.start(c)
            if final is not None:
                return c, self._job(c, c.params_of(final), final)
        return None

    def _settle(self, c: Contender, choice: Choice | None) -> None:
        """``c`` takes the policy's ``choice`` (None: not decided yet), and the progress says so
        (and counts the finals it drops or adds)."""
        if choice is not None:
            self.progress.recount(c.settle(choice))
            if choice.note is not None:
                self.progress.log(choice.note)

    def _job(self, c: Contender, params: dict[str, Any], final: FinalJob | None = None,
             trial: int | None = None) -> Job:
        return make_job(self.config, c, params, final, trial, test_on=tuple(self.cross),
                        corruptions=tuple(self.corrupted.get(c.split.dataset, {})),
                        run_id=self.recorder.run_id)

    def _on_report(self, c: Contender, job: Job, report: EpochReport) -> bool:
        """An epoch of a running job: shown, and for a trial passed to its tuner's pruner."""
        self.progress.epoch(job.label, report.epoch, report.epochs, report.metrics)
        value = report.metrics.get("val_accuracy")
        if c.study is None or job.trial is None or value is None:
            return False
        return c.study.report(job.trial, report.epoch, float(value))

    def _finish(self, c: Contender, job: Job, result: TaskResult, copied_from: str | None = None) -> None:
        """A finished job: its row written by the recorder, then its trial told to the tuner.
        ``copied_from``: the tuner whose identical final ``result`` is (see :mod:`.policy`)."""
        tuning = c.tuning_of(job.refit_trial) if job.is_final or c.study is None else c.study.settings
        if copied_from is not None:
            tuning = tuning.with_(final_copied_from=copied_from)
        elif job.is_final:
            self.twins.finished(c, FinalJob(job.seed, job.train_size, job.refit_trial), job.params, job.tuner,
                                result)
        row = self.recorder.record(c.split, c.entry, job, result, tuning)
        if job.trial is None:
            self.failures += row["status"] != Status.OK
            if row.get("warnings"):
                self.progress.log(f"    warning: {row['warnings']}")
        else:
            c.study.record(job.trial, row)
            self.trials_counted[id(c)] -= 1
        self.progress.job_finished(summary(job, row, c.study.cpu_used if c.study is not None else 0.0) + (
            f" (the same final as {copied_from}'s, recorded again, not retrained)" if copied_from else ""))


def _result(future: Future) -> TaskResult:
    try:
        return future.result()
    except Exception as exc:  # the worker was lost for good, or the task itself broke
        return TaskResult.failed(one_line(exc), str(exc))

