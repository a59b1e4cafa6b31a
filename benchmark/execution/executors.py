"""Executors: where the coordinator's tasks run. One interface (:class:`Executor`), in the style of
``concurrent.futures``:

* ``share(name, value)``: data every task may need (a dataset), sent to the workers once;
  a task argument ``Shared(name)`` stands for it;
* ``submit(fn, *args, listener=...) -> Future``: run ``fn(channel, *args)`` on a worker, where
  ``channel.send(message)`` returns ``listener(message)``, called in the coordinator's thread;
* ``wait(futures, timeout) -> finished futures``: serves the tasks' messages while it waits;
* ``shutdown()``: stop every worker now (running tasks are abandoned).

:class:`InlineExecutor` runs tasks in the coordinator's own process (``--workers 1``: one process,
a fixed order). :class:`LocalExecutor` runs them in worker processes of this machine, started once
(``spawn``, so thread pools are sized before anything starts them), which end within a second of
the coordinator however it dies (SIGKILL included): each watches its parent. A worker that dies
mid-task is replaced and its task run again, at most :data:`MAX_RETRIES` times, then the future
fails with :class:`WorkerLost`. The Dask executor lives in :mod:`benchmark.execution.dask_executor`.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for
from typing import Any

from digitbench.common.errors import InputError

MAX_RETRIES = 2
#: The exit status of a worker process that refused to start because starting it ran the user's
#: script again, and that script calls ``digitbench.run`` outside ``if __name__ == "__main__":``.
WORKER_REFUSED = 86
Listener = Callable[[Any], Any]


@dataclass(frozen=True)
class Shared:
    """A task argument that stands for the value shared under ``name``."""

    name: str


class WorkerLost(RuntimeError):
    """The worker running a task died, and so did every retry."""


class TaskFailed(RuntimeError):
    """The task function raised (a bug: tasks turn model failures into rows); the traceback."""


class Executor(ABC):
    """Runs tasks ``fn(channel, *args)`` somewhere; ``slots`` of them at once."""

    slots: int

    @abstractmethod
    def share(self, name: str, value: Any) -> None:
        """Make ``value`` available to every task as the argument ``Shared(name)``."""

    @abstractmethod
    def submit(self, fn: Callable, *args: Any, listener: Listener) -> Future:
        """Run ``fn(channel, *args)``; the task's ``channel.send(m)`` returns ``listener(m)``."""

    @abstractmethod
    def wait(self, futures: Iterable[Future], timeout: float) -> set[Future]:
        """The finished ones of ``futures``, serving the tasks' messages meanwhile; at most
        ``timeout`` seconds when none finishes."""

    @abstractmethod
    def shutdown(self) -> None:
        """Stop every worker now; running tasks are abandoned."""

    @abstractmethod
    def describe(self) -> str:
        """Where the tasks run, for the progress line."""


def _resolve(args: tuple[Any, ...], shared: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(shared[a.name] if isinstance(a, Shared) else a for a in args)


class _Direct:
    """The channel of a task run in the coordinator's process."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    def send(self, message: Any) -> Any:
        return self.listener(message)


class InlineExecutor(Executor):
    """Runs each task in this process, one at a time, when the coordinator waits."""

    slots = 1

    def __init__(self) -> None:
        self.shared: dict[str, Any] = {}
        self.pending: deque[tuple[Future, Callable, tuple, Listener]] = deque()

    def share(self, name: str, value: Any) -> None:
        self.shared[name] = value

    def submit(self, fn: Callable, *args: Any, listener: Listener) -> Future:
        future: Future = Future()
        self.pending.append((future, fn, args, listener))
        return future

    def wait(self, futures: Iterable[Future], timeout: float) -> set[Future]:
        if self.pending:
            future, fn, args, listener = self.pending.popleft()
            try:
                future.set_result(fn(_Direct(listener), *_resolve(args, self.shared)))
            except Exception as exc:
                future.set_exception(exc)
        return {f for f in futures if f.done()}

    def shutdown(self) -> None:
        self.pending.clear()

    def describe(self) -> str:
        return "this process"


class _PipeChannel:
    """A worker's channel: a message up the pipe, then the coordinator's answer."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def send(self, message: Any) -> Any:
        self.conn.send(("message", message))
        return self.conn.recv()


def _watch_parent(parent: int) -> None:
    """End this worker when the coordinator is gone (however it died)."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:  # the kernel's own notice: SIGKILL when the parent exits
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="digitbench-watch-parent", daemon=True).start()


def _worker_main(conn: Connection, parent: int, setup: Callable[[], None] | None) -> None:
    """A local worker: set up, then run the tasks the coordinator sends, one at a time."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the coordinator, which decides
    _watch_parent(parent)
    if setup is not None:
        setup()
    conn.send(("ready", None))
    shared: dict[str, Any] = {}
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] == "share":
            shared[message[1]] = message[2]
        elif message[0] == "run":
            fn, args = message[1], message[2]
            try:
                conn.send(("done", fn(_PipeChannel(conn), *_resolve(args, shared))))
            except Exception:
                import traceback

                conn.send(("failed", traceback.format_exc()))


class WorkerStartError(InputError):
    """The worker processes could not start: nothing has run, nothing is written."""

    def __init__(self, exitcode: int | None) -> None:
        hint = (": a script that calls digitbench.run must put its calls under `if __name__ == "
                "\"__main__\":` (worker processes import the script again, as in any Python "
                "multiprocessing)" if exitcode == WORKER_REFUSED else "")
        super().__init__(f"a worker process ended while starting (exit status {exitcode}){hint}")


@dataclass
class Task:
    """A submitted task, as an executor keeps it until its future is done."""

    future: Future
    fn: Callable
    args: tuple[Any, ...]
    listener: Listener


@dataclass
class _Task(Task):
    tries: int = 0


class _Worker:
    def __init__(self, context: Any, setup: Callable[[], None] | None,
                 shared: dict[str, Any]) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, os.getpid(), setup),
                                       name="digitbench-worker", daemon=True)
        self.process.start()
        child.close()
        self.task: _Task | None = None
        self.ready = False
        for name, value in shared.items():
            self.conn.send(("share", name, value))

    def await_ready(self) -> None:
        """Wait until the worker has set itself up; one that ends first is a :class:`WorkerStartError`."""
        while not self.ready:
            wait_for([self.conn, self.process.sentinel])
            try:
                kind, _ = self.conn.recv()
            except (EOFError, OSError):
                self.process.join(1)
                raise WorkerStartError(self.process.exitcode) from None
            self.ready = kind == "ready"

    def start(self, task: _Task) -> None:
        self.task = task
        task.tries += 1
        self.conn.send(("run", task.fn, task.args))

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class LocalExecutor(Executor):
    """``workers`` processes on this machine; ``setup`` runs in each before its first task."""

    def __init__(self, workers: int, setup: Callable[[], None] | None = None) -> None:
        self.slots = workers
        self.setup = setup
        self.context = multiprocessing.get_context("spawn")
        self.shared: dict[str, Any] = {}
        self.queue: deque[_Task] = deque()
        self.workers = [_Worker(self.context, setup, self.shared) for _ in range(workers)]
        try:
            for worker in self.workers:
                worker.await_ready()
        except WorkerStartError:
            self.shutdown()
            raise

    def share(self, name: str, value: Any) -> None:
        self.shared[name] = value
        for worker in self.workers:
            worker.conn.send(("share", name, value))

    def submit(self, fn: Callable, *args: Any, listener: Listener) -> Future:
        future: Future = Future()
        self.queue.append(_Task(future, fn, args, listener))
        self._dispatch()
        return future

    def _dispatch(self) -> None:
        for worker in self.workers:
            if worker.task is None and self.queue:
                worker.start(self.queue.popleft())

    def wait(self, futures: Iterable[Future], timeout: float) -> set[Future]:
        futures = list(futures)
        deadline = time.monotonic() + timeout
        while not any(f.done() for f in futures):
            busy = [w for w in self.workers if w.task is not None]
            ready = wait_for([w.conn for w in busy] + [w.process.sentinel for w in busy],
                             max(0.0, deadline - time.monotonic()))
            for worker in busy:
                if worker.conn in ready or worker.process.sentinel in ready:
                    self._serve(worker)
            self._dispatch()
            if time.monotonic() >= deadline:
                break
        return {f for f in futures if f.done()}

    def _serve(self, worker: _Worker) -> None:
        """Answer the worker's message, or take its result, or replace it if it died."""
        task = worker.task
        assert task is not None
        try:
            if not worker.conn.poll():
                raise EOFError
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            self._replace(worker)
            return
        if kind == "ready":  # a replacement worker, set up before it took the task
            return
        if kind == "message":
            worker.conn.send(task.listener(payload))
            return
        worker.task = None
        if kind == "done":
            task.future.set_result(payload)
        else:
            task.future.set_exception(TaskFailed(payload))

    def _replace(self, worker: _Worker) -> None:
        """A worker died: start another in its place; run its task again unless retried enough."""
        worker.process.join(1)
        code = worker.process.exitcode
        task, worker.task = worker.task, None
        worker.stop()
        self.workers[self.workers.index(worker)] = _Worker(self.context, self.setup, self.shared)
        if task is None:
            return
        if task.tries > MAX_RETRIES:
            task.future.set_exception(WorkerLost(
                f"its worker process died (exit status {code}) on each of {task.tries} tries"))
        else:
            self.queue.appendleft(task)

    def shutdown(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.queue.clear()

    def describe(self) -> str:
        return f"{self.slots} worker processes on this machine"
