"""DaskExecutor on a real local Dask cluster: two worker processes of one thread each, on 127.0.0.1 only.

The task functions below run in the workers; they are pickled by value (cloudpickle), so the workers need
not import this test module."""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import cloudpickle  # installed with distributed, which the dev extra brings (make test)
import distributed
import pytest

from digitbench.benchmark.execution import dask_executor
from digitbench.benchmark.execution.dask_executor import DaskExecutor
from digitbench.benchmark.execution.executors import MAX_RETRIES, Shared, TaskFailed, WorkerLost
from digitbench.common.errors import InputError

cloudpickle.register_pickle_by_value(sys.modules[__name__])

# the scheduler's HTTP server moves to another port when another cluster on this machine has 8787
pytestmark = pytest.mark.filterwarnings("ignore:Port 8787 is already in use:UserWarning")

PATIENCE = 60.0  # seconds: generous, the machine may be busy


# --- tasks: they run in the Dask workers ---------------------------------------------------------------


def meet(channel: Any, data: list[int], folder: str, parties: int,
         tag: int) -> tuple[int, int, int, str | None]:
    """Wait until ``parties`` tasks are running at once (each in its own worker), then report."""
    Path(folder, f"arrived-{tag}").touch()
    deadline = time.monotonic() + PATIENCE
    while len(list(Path(folder).glob("arrived-*"))) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError("the tasks never ran at the same time")
        time.sleep(0.01)
    return os.getpid(), sum(data), tag, os.environ.get("DIGITBENCH_TEST_SETUP")


def talk(channel: Any, tag: str, epochs: int) -> list[Any]:
    return [channel.send({"tag": tag, "epoch": epoch}) for epoch in range(epochs)]


def fail(channel: Any, text: str) -> None:
    raise ValueError(text)


def survive(channel: Any, folder: str, data: list[int]) -> tuple[int, int]:
    """Log the run, say which process runs it, then wait until the test releases it."""
    with Path(folder, "runs.log").open("a") as log:
        log.write(f"{os.getpid()}\n")
    channel.send({"pid": os.getpid()})
    while not Path(folder, "release").exists():
        time.sleep(0.01)
    return os.getpid(), sum(data)


def linger(channel: Any, folder: str) -> None:
    """Send, wait until told to go on, send again; write down how that ended."""
    try:
        channel.send({"pid": os.getpid()})
        while not Path(folder, "go").exists():
            time.sleep(0.01)
        channel.send({"again": True})
        outcome = "answered"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    Path(folder, "outcome.tmp").write_text(outcome)
    Path(folder, "outcome.tmp").rename(Path(folder, "outcome"))


def mark_setup(folder: str) -> None:
    os.environ["DIGITBENCH_TEST_SETUP"] = str(os.getpid())
    with Path(folder, "setups.log").open("a") as log:
        log.write(f"{os.getpid()}\n")


# --- helpers -------------------------------------------------------------------------------------------


def eventually(condition: Callable[[], bool], what: str, patience: float = PATIENCE) -> None:
    deadline = time.monotonic() + patience
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def serve_until(executor: DaskExecutor, condition: Callable[[], bool], futures: Iterable[Future]) -> None:
    """Let the executor serve its tasks until ``condition()``."""
    futures, deadline = list(futures), time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, "timed out serving the tasks"
        executor.wait([f for f in futures if not f.done()] or futures, 0.2)


def finish(executor: DaskExecutor, futures: list[Future]) -> None:
    serve_until(executor, lambda: all(f.done() for f in futures), futures)


def worker_pids(client: Any) -> set[int]:
    return set(client.run(os.getpid).values())


def queues_of(cluster: Any, executor: DaskExecutor) -> list[str]:
    """The executor's queues still on the scheduler (it runs in this process: a peek at its state)."""
    prefix = executor.inbox.name
    return [name for name in cluster.scheduler.extensions["queues"].queues if name.startswith(prefix)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        yield cluster


@pytest.fixture
def executor(cluster: Any) -> Iterator[DaskExecutor]:
    executor = DaskExecutor(cluster.scheduler_address)
    eventually(lambda: len(executor.client.nthreads()) == 2, "the cluster has its two workers again")
    yield executor
    executor.shutdown()


# --- tests ---------------------------------------------------------------------------------------------


def test_results_and_shared_data_come_back_from_two_worker_processes(
        cluster: Any, executor: DaskExecutor, tmp_path: Path) -> None:
    assert executor.slots == 2
    assert executor.describe() == f"Dask cluster {cluster.scheduler_address}, 2 workers, 2 threads"
    executor.share("digits", list(range(1000)))  # a list stays one value
    futures = [executor.submit(meet, Shared("digits"), str(tmp_path), 2, tag, listener=print)
               for tag in range(2)]
    finish(executor, futures)
    results = [f.result() for f in futures]
    assert [(total, tag) for _, total, tag, _ in results] == [(499500, 0), (499500, 1)]
    pids = {pid for pid, *_ in results}
    assert len(pids) == 2 and pids <= worker_pids(executor.client) and os.getpid() not in pids


def test_channel_answers_each_task_in_order_through_its_own_listener(
        cluster: Any, executor: DaskExecutor) -> None:
    seen: dict[str, list[dict]] = {"a": [], "b": []}

    def listener_of(tag: str, offset: int) -> Callable[[dict], int]:
        def listener(message: dict) -> int:
            seen[tag].append(message)
            return offset + message["epoch"]
        return listener

    futures = [executor.submit(talk, "a", 3, listener=listener_of("a", 100)),
               executor.submit(talk, "b", 3, listener=listener_of("b", 200))]
    finish(executor, futures)
    assert [f.result() for f in futures] == [[100, 101, 102], [200, 201, 202]]
    assert seen == {tag: [{"tag": tag, "epoch": epoch} for epoch in range(3)] for tag in ("a", "b")}
    eventually(lambda: queues_of(cluster, executor) == [executor.inbox.name], "the reply queues are gone")


def test_a_task_that_raises_fails_its_future_with_the_remote_traceback(executor: DaskExecutor) -> None:
    future = executor.submit(fail, "boom 42", listener=print)
    finish(executor, [future])
    with pytest.raises(TaskFailed, match="ValueError: boom 42") as raised:
        future.result()
    assert 'in fail\n    raise ValueError(text)' in str(raised.value), "the traceback of the worker"


def test_a_task_whose_worker_is_killed_runs_once_more_elsewhere(
        executor: DaskExecutor, tmp_path: Path) -> None:
    executor.share("digits", list(range(10)))
    pids: list[int] = []

    def listener(message: dict) -> None:
        pids.append(message["pid"])
        if len(pids) == 1:
            os.kill(message["pid"], signal.SIGKILL)
        else:
            (tmp_path / "release").touch()

    future = executor.submit(survive, str(tmp_path), Shared("digits"), listener=listener)
    finish(executor, [future])
    assert len(pids) == 2 and pids[0] != pids[1]
    assert future.result() == (pids[1], 45)
    assert (tmp_path / "runs.log").read_text().split() == [str(pid) for pid in pids], "run exactly twice"
    eventually(lambda: len(executor.client.nthreads()) == 2, "the nanny replaced the killed worker")
    assert pids[0] not in worker_pids(executor.client)


def test_a_task_whose_workers_keep_dying_fails_with_worker_lost(
        executor: DaskExecutor, tmp_path: Path) -> None:
    pids: list[int] = []

    def listener(message: dict) -> None:
        pids.append(message["pid"])
        os.kill(message["pid"], signal.SIGKILL)

    future = executor.submit(survive, str(tmp_path), [], listener=listener)
    finish(executor, [future])
    with pytest.raises(WorkerLost, match=f"died during each of {MAX_RETRIES + 1} tries"):
        future.result()
    assert len(pids) == MAX_RETRIES + 1, "one run, MAX_RETRIES retries, then no more"
    assert len((tmp_path / "runs.log").read_text().split()) == MAX_RETRIES + 1


def test_a_task_survives_the_loss_of_every_copy_of_its_shared_data(
        executor: DaskExecutor, tmp_path: Path) -> None:
    executor.share("digits", list(range(100)))
    pids: list[int] = []

    def listener(message: dict) -> None:
        pids.append(message["pid"])
        if len(pids) == 1:  # every worker, so every copy of the scattered data
            for pid in worker_pids(executor.client):
                os.kill(pid, signal.SIGKILL)
        else:
            (tmp_path / "release").touch()

    future = executor.submit(survive, str(tmp_path), Shared("digits"), listener=listener)
    finish(executor, [future])
    assert future.result() == (pids[-1], 4950) and len(pids) == 2


def test_shutdown_stops_a_running_task_at_its_next_message(cluster: Any, tmp_path: Path) -> None:
    executor = DaskExecutor(cluster.scheduler_address)
    try:
        seen: list[dict] = []
        future = executor.submit(linger, str(tmp_path), listener=seen.append)
        serve_until(executor, lambda: bool(seen), [future])
    finally:
        executor.shutdown()
    (tmp_path / "go").touch()
    eventually(lambda: (tmp_path / "outcome").exists(), "the task ended", patience=5.0)
    assert (tmp_path / "outcome").read_text() == "WorkerLost: abandoned: the coordinator shut down"
    assert future.cancelled() and len(seen) == 1
    eventually(lambda: not queues_of(cluster, executor), "the queues are gone")


def test_setup_runs_in_each_worker_before_its_first_task_also_in_a_later_one(
        cluster: Any, tmp_path: Path) -> None:
    executor = DaskExecutor(cluster.scheduler_address, setup=functools.partial(mark_setup, str(tmp_path)))
    try:
        eventually(lambda: len(executor.client.nthreads()) == 2, "the cluster has its two workers")
        first = worker_pids(executor.client)
        assert sorted((tmp_path / "setups.log").read_text().split()) == sorted(map(str, first))
        cluster.scale(3)
        eventually(lambda: len(executor.client.nthreads()) == 3, "the third worker joined")
        assert executor.slots == 3
        executor.share("digits", [1, 2])
        futures = [executor.submit(meet, Shared("digits"), str(tmp_path), 3, tag, listener=print)
                   for tag in range(3)]
        finish(executor, futures)
        results = [f.result() for f in futures]
        assert {pid for pid, *_ in results} == worker_pids(executor.client) > first
        assert all(marked == str(pid) for pid, _, _, marked in results), "setup ran before the task"
        setups = (tmp_path / "setups.log").read_text().split()
        assert sorted(setups) == sorted(map(str, worker_pids(executor.client))), "once in each worker"
    finally:
        executor.shutdown()
        cluster.scale(2)


def test_an_unreachable_scheduler_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dask_executor, "CONNECT_TIMEOUT", 2.0)
    started = time.monotonic()
    with pytest.raises(InputError, match="^--cluster tcp://127.0.0.1:1: cannot connect: ") as raised:
        DaskExecutor("tcp://127.0.0.1:1")
    assert time.monotonic() - started < 10 and "\n" not in str(raised.value)


def test_without_dask_the_executor_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dask_executor, "distributed", None)
    with pytest.raises(InputError, match=r"--cluster needs Dask: pip install 'digitbench\[dask\]'"):
        DaskExecutor("tcp://127.0.0.1:8786")
