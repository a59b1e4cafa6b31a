"""``--cluster tcp://HOST:PORT``: the coordinator's tasks on an existing Dask cluster (the interface of
:mod:`benchmark.execution.executors`). How it works:

* ``submit`` sends ``_run(fn, ...)`` as a Dask task (``pure=False``) and returns a
  ``concurrent.futures.Future`` that ``wait`` completes from the Dask future: the result,
  :class:`TaskFailed` with the remote traceback when ``fn`` raised, or :class:`WorkerLost`;
* ``share`` scatters the value once (``hash=False``); Dask copies it from worker to worker to the tasks that
  need it. Not ``broadcast=True``: the docs say it conflicts with the Active Memory Manager, on by default;
* ``setup`` is a ``WorkerPlugin``: Dask runs it in each worker there now, and in each worker that joins later
  as it registers, before it gets any task;
* the channel is ``distributed.Queue`` (Pub/Sub is gone from distributed; a ``Variable`` holds one value, so
  answers could be read twice or missed). Tasks put their messages in the executor's inbox; ``wait`` empties
  it every 50 ms and answers in the run's own reply queue, on which the task blocks. Each run of a task has
  its own, so a re-run never reads an answer meant for a run that died. Both sides close their handles when
  a run ends (the scheduler drops a queue with no handle left; a dead worker's stay: a few bytes);
* worker loss: Dask runs a task again when its worker dies. Each run first asks the coordinator to start;
  the one after 1 + MAX_RETRIES runs is refused and the future fails with WorkerLost (so does the scheduler's
  KilledWorker, if its ``allowed-failures`` is lower). A task Dask cancels (its shared data died with the
  workers that held it) is submitted again, shared data scattered again, at most MAX_RETRIES times;
* a run nobody wants any more stops at its next message, so its worker (whose tasks hold a process-wide
  lock) is free: ``shutdown`` answers it "abandoned"; if the coordinator died, an answer awaited for 10 s
  makes the task ask the scheduler whether it still runs it (``Client.processing``).
"""

from __future__ import annotations

import contextlib
import itertools
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from digitbench.benchmark.execution.executors import (
    MAX_RETRIES,
    Executor,
    Listener,
    Shared,
    Task,
    TaskFailed,
    WorkerLost,
)
from digitbench.common.errors import InputError

try:  # the optional extra digitbench[dask]
    import cloudpickle
    import distributed
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:
    distributed = None
    WorkerPlugin = object

CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler
POLL = 0.05  # seconds between two looks at the inbox while the coordinator waits
CHECK = 10.0  # seconds a task waits for an answer before asking whether it is still wanted


class _Setup(WorkerPlugin):
    """Runs ``fn`` in each worker process: those there when registered, and each later one as it joins."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn

    def setup(self, worker: Any) -> None:
        self.fn()


class _Channel:
    """A run's channel, in the worker: a message into the inbox, then the answer from its reply queue."""

    def __init__(self, inbox: str, task: str) -> None:
        self.client, self.worker = distributed.get_client(), distributed.get_worker()
        self.key, self.task, self.run = self.worker.get_current_task(), task, uuid.uuid4().hex
        self.inbox = distributed.Queue(inbox, client=self.client)
        self.replies = distributed.Queue(f"{inbox}-{task}-{self.run}", client=self.client)

    def send(self, message: Any) -> Any:
        return self.ask("message", message)

    def ask(self, kind: str, payload: Any) -> Any:
        self.inbox.put([self.task, self.run, kind, cloudpickle.dumps(payload)])
        while True:
            try:
                verdict, value = cloudpickle.loads(self.replies.get(timeout=CHECK))
            except TimeoutError:
                [running] = self.client.processing([self.worker.address]).values()
                if self.key in running:
                    continue
                verdict, value = "abandoned", "the coordinator is gone, or Dask moved the task"
            if verdict == "abandoned":
                raise WorkerLost(f"abandoned: {value}")
            return value

    def close(self) -> None:
        self.inbox.close()
        self.replies.close()


def _run(fn: Callable, inbox: str, task: str, *args: Any) -> Any:
    """The Dask task: ask to start (refused after too many runs), then ``fn(channel, *args)``."""
    channel = _Channel(inbox, task)
    try:
        channel.ask("start", None)
        try:
            return fn(channel, *args)
        except WorkerLost:
            raise
        except Exception:
            raise TaskFailed(traceback.format_exc()) from None
    finally:
        channel.close()


@dataclass
class _Task(Task):
    job: Any = None  # the distributed.Future of the latest submission
    runs: int = 0  # runs started
    resubmits: int = 0
    run: str = ""  # the latest run
    replies: dict[str, Any] = field(default_factory=dict)  # run -> its reply Queue


class DaskExecutor(Executor):
    """Tasks on the Dask cluster at ``address``; ``setup`` runs in each worker before its first task."""

    def __init__(self, address: str, setup: Callable[[], None] | None = None) -> None:
        if distributed is None:
            raise InputError("--cluster needs Dask: pip install 'digitbench[dask]'")
        self.address = address
        try:
            self.client = distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except Exception as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise InputError(f"--cluster {address}: cannot connect: {reason}") from None
        name = f"digitbench-{uuid.uuid4().hex[:12]}"
        self.plugin = f"{name}-setup" if setup is not None else None
        try:
            self.inbox = distributed.Queue(f"{name}-inbox", client=self.client)
            if setup is not None:
                self.client.register_plugin(_Setup(setup), name=self.plugin)
        except BaseException:
            self.client.close()
            raise
        self.shared: dict[str, tuple[Any, Any]] = {}  # name -> (value, its distributed.Future)
        self.tasks: dict[str, _Task] = {}
        self.ids = itertools.count()

    @property
    def slots(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def describe(self) -> str:
        threads = self.client.nthreads()
        workers, total = len(threads), sum(threads.values())
        return (f"Dask cluster {self.address}, {workers} worker{'s' * (workers != 1)}, "
                f"{total} thread{'s' * (total != 1)}")

    def share(self, name: str, value: Any) -> None:
        [future] = self.client.scatter([value], hash=False)  # in a list, so that a list stays whole
        self.shared[name] = (value, future)

    def submit(self, fn: Callable, *args: Any, listener: Listener) -> Future:
        name, task = str(next(self.ids)), _Task(Future(), fn, args, listener)
        self.tasks[name] = task
        self._submit(name, task)
        return task.future

    def _submit(self, name: str, task: _Task) -> None:
        for arg in task.args:
            if isinstance(arg, Shared) and self.shared[arg.name][1].status != "finished":
                self.share(arg.name, self.shared[arg.name][0])  # lost with the workers that held it
        args = [self.shared[a.name][1] if isinstance(a, Shared) else a for a in task.args]
        key = f"{getattr(task.fn, '__name__', 'task')}-{uuid.uuid4().hex}"
        task.job = self.client.submit(_run, task.fn, self.inbox.name, name, *args, key=key, pure=False)

    def wait(self, futures: Iterable[Future], timeout: float) -> set[Future]:
        futures = list(futures)
        deadline = time.monotonic() + timeout
        while True:
            self._serve()
            self._settle()
            done = {f for f in futures if f.done()}
            remaining = deadline - time.monotonic()
            if done or remaining <= 0:
                return done
            time.sleep(min(POLL, remaining))

    def _serve(self) -> None:
        """Answer the messages in the inbox: a run asking to start, or a message for the listener."""
        for name, run, kind, payload in self.inbox.get(batch=True):
            task = self.tasks.get(name)
            if task is None or task.future.done():
                answer: tuple[str, Any] = ("abandoned", "the task is over")
            elif kind == "start":
                task.run, task.runs = run, task.runs + 1
                answer = ("go", None)
                if task.runs > 1 + MAX_RETRIES:
                    answer = ("abandoned", "its workers died too often")
                    task.future.set_exception(WorkerLost(
                        f"its Dask worker died during each of {task.runs - 1} tries"))
            elif run != task.run:
                answer = ("abandoned", "a newer run of the task replaced this one")
            else:
                answer = ("answer", task.listener(cloudpickle.loads(payload)))
            replies = {} if task is None else task.replies
            if run not in replies:
                replies[run] = distributed.Queue(f"{self.inbox.name}-{name}-{run}", client=self.client)
            replies[run].put(cloudpickle.dumps(answer))
            if task is None:
                replies[run].close()

    def _settle(self) -> None:
        """Complete the futures of the tasks Dask is done with; submit again those it cancelled."""
        for name, task in list(self.tasks.items()):
            job = task.job
            if not task.future.done():
                if not job.done():
                    continue
                if job.status == "finished":
                    task.future.set_result(job.result())
                elif job.status == "error":
                    exc = job.exception()
                    lost = isinstance(exc, distributed.KilledWorker)
                    task.future.set_exception(WorkerLost(f"Dask gave up: {exc}") if lost else exc)
                elif task.resubmits < MAX_RETRIES:  # cancelled: its shared data was lost
                    with contextlib.suppress(OSError, TimeoutError):  # workers still dying: next time
                        self._submit(name, task)
                        task.resubmits += 1
                    continue
                else:
                    task.future.set_exception(WorkerLost(f"Dask cancelled it {task.resubmits + 1} times"))
            del self.tasks[name]
            for queue in task.replies.values():
                queue.close()

    def shutdown(self) -> None:
        """Cancel the tasks (a running one stops at its next message) and disconnect; the cluster stays."""
        jobs = [task.job for task in self.tasks.values()]
        with contextlib.suppress(Exception):
            for task in self.tasks.values():
                task.future.cancel()
                for queue in task.replies.values():  # a run waiting for an answer gets this one
                    queue.put(cloudpickle.dumps(("abandoned", "the coordinator shut down")))
                    queue.close()
            self.tasks.clear()
            self.client.cancel(jobs)
            self.inbox.close()
            if self.plugin is not None:
                self.client.unregister_worker_plugin(self.plugin)
        self.client.close()
