"""The executors on their own: shared data, the channel to the coordinator, tasks that fail, worker
processes that die mid-task (run again, at most MAX_RETRIES times), and workers that end with their
coordinator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import process_alive

from digitbench.benchmark.execution.executors import (
    MAX_RETRIES,
    InlineExecutor,
    LocalExecutor,
    Shared,
    TaskFailed,
    WorkerLost,
)


# Task functions: importable by module name, so that spawned workers find them.
def add_shared(channel, data, extra):
    return {"sum": sum(data) + extra, "pid": os.getpid()}


def chatty(channel, count):
    return [channel.send({"n": n}) for n in range(count)]


def broken(channel):
    raise ValueError("this task is broken")


def dies_first_time(channel, marker):
    """SIGKILLs its own process on the first try (leaving a mark), returns on the next."""
    marker = Path(marker)
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return int(marker.read_text()) != os.getpid()


def always_dies(channel, log):
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\n")
    os.kill(os.getpid(), signal.SIGKILL)


def until_done(executor, futures, seconds=120.0):
    deadline, done = time.monotonic() + seconds, set()
    while len(done) < len(futures) and time.monotonic() < deadline:
        done |= executor.wait([f for f in futures if f not in done], 1.0)
    assert len(done) == len(futures), "tasks did not finish"
    return [f.result() if f.exception() is None else f.exception() for f in futures]


@pytest.fixture()
def local():
    executor = LocalExecutor(2)
    yield executor
    executor.shutdown()


@pytest.mark.parametrize("kind", ["inline", "local"])
def test_shared_data_and_the_channel_reach_the_tasks(kind: str, request) -> None:
    executor = InlineExecutor() if kind == "inline" else request.getfixturevalue("local")
    executor.share("data", [1, 2, 3])
    seen: list[dict] = []

    def listener(message):
        seen.append(message)
        return message["n"] * 10

    futures = [executor.submit(add_shared, Shared("data"), k, listener=listener) for k in range(4)]
    futures.append(executor.submit(chatty, 3, listener=listener))
    results = until_done(executor, futures)
    assert [r["sum"] for r in results[:4]] == [6, 7, 8, 9]
    assert results[4] == [0, 10, 20] and seen == [{"n": 0}, {"n": 1}, {"n": 2}]
    pids = {r["pid"] for r in results[:4]}
    assert pids == {os.getpid()} if kind == "inline" else os.getpid() not in pids


def test_two_local_workers_run_tasks_side_by_side(local: LocalExecutor, tmp_path: Path) -> None:
    local.share("data", [0])
    futures = [local.submit(add_shared, Shared("data"), k, listener=print) for k in range(6)]
    assert len({r["pid"] for r in until_done(local, futures)}) == 2


@pytest.mark.parametrize("kind", ["inline", "local"])
def test_a_task_that_raises_fails_its_future_with_the_traceback(kind: str, request) -> None:
    executor = InlineExecutor() if kind == "inline" else request.getfixturevalue("local")
    [error] = until_done(executor, [executor.submit(broken, listener=print)])
    assert "this task is broken" in str(error)
    if kind == "local":
        assert isinstance(error, TaskFailed) and "Traceback" in str(error)


def test_a_task_whose_worker_dies_runs_again_on_a_new_worker(local: LocalExecutor, tmp_path: Path) -> None:
    [ran_elsewhere] = until_done(local, [local.submit(dies_first_time, str(tmp_path / "mark"),
                                                      listener=print)])
    assert ran_elsewhere is True
    local.share("data", [5])  # the replacement worker gets what is shared from now on, and before
    [result] = until_done(local, [local.submit(add_shared, Shared("data"), 0, listener=print)])
    assert result["sum"] == 5


def test_a_task_that_kills_every_worker_fails_after_the_retries(local: LocalExecutor, tmp_path: Path) -> None:
    log = tmp_path / "tries.log"
    [error] = until_done(local, [local.submit(always_dies, str(log), listener=print)])
    assert isinstance(error, WorkerLost) and "died" in str(error)
    assert len(log.read_text().split()) == 1 + MAX_RETRIES


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_end_when_their_coordinator_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sys, time
        from digitbench.benchmark.execution.executors import LocalExecutor
        executor = LocalExecutor(2)
        print(" ".join(str(w.process.pid) for w in executor.workers), flush=True)
        time.sleep(600)
    """)
    coordinator = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in coordinator.stdout.readline().split()]
    assert len(pids) == 2
    coordinator.kill()
    coordinator.wait(30)
    deadline = time.monotonic() + 15
    while any(process_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(process_alive(p) for p in pids)
