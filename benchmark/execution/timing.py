"""CPU and wall timing, per-image latency, and the thread limits every job runs under."""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

#: Environment variables that size the thread pools of OpenMP and TensorFlow to ``threads``, and
#: of BLAS to :data:`BLAS_THREADS`. They must be set before those libraries start their pools;
#: threadpoolctl also limits pools already running.
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

#: BLAS (numpy's and scipy's OpenBLAS) runs one thread, whatever ``threads`` says. With more, the calling
#: thread spins (``sched_yield`` in a loop) until its helper threads finish their share, and idle
#: helpers poll for about 2**28 cycles before they sleep; no setting stops the caller's spin. When
#: other work holds the cores, the helpers wait for a core and the caller's spinning is counted as
#: the fit's CPU-seconds: logistic regression on mnist-5k took 3-11 CPU-s at 2 OpenBLAS threads
#: (more beside busy loops) against 1.4-2.8 at one, for no shorter wall time
#: (``benchmarks/cpu_under_load.py``, ``benchmarks/RESULTS.md``).
BLAS_THREADS = 1

_limiters: list = []  # keep the threadpoolctl limits alive for the life of the process


def configure_threads(threads: int) -> None:
    """Fix every thread pool of this process to ``threads`` (BLAS to :data:`BLAS_THREADS`);
    call at process start. The environment sizes the pools of libraries loaded later, and those of
    the processes this one starts."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    for var in THREAD_ENV:
        os.environ[var] = str(threads)
    for var in BLAS_ENV:
        os.environ[var] = str(BLAS_THREADS)
    from threadpoolctl import threadpool_limits

    _limiters[:] = [threadpool_limits(limits=threads, user_api="openmp"),
                    threadpool_limits(limits=BLAS_THREADS, user_api="blas")]


def thread_pools() -> dict[str, int]:
    """The threads of each kind of pool loaded in this process ("blas", "openmp"), the most of any
    library of that kind, as threadpoolctl reports them."""
    from threadpoolctl import threadpool_info

    pools: dict[str, int] = {}
    for pool in threadpool_info():
        pools[pool["user_api"]] = max(pools.get(pool["user_api"], 0), int(pool["num_threads"]))
    return pools


def cpu_seconds() -> float:
    """CPU time of this process (all threads) plus its finished child processes."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def rss_mb() -> float | None:
    """Resident memory of this process now, in MiB (Linux), else None."""
    try:
        pages = int(open("/proc/self/statm").read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


@dataclass
class Measured:
    cpu_s: float = 0.0
    wall_s: float = 0.0


@contextmanager
def measure() -> Iterator[Measured]:
    """``with measure() as m: ...`` fills ``m.cpu_s`` and ``m.wall_s`` when the block ends."""
    result = Measured()
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    try:
        yield result
    finally:
        result.cpu_s = cpu_seconds() - cpu0
        result.wall_s = time.perf_counter() - wall0


def latency_ms(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    *,
    batch: int,
    singles: int = 50,
    repeats: int = 3,
) -> tuple[float, float]:
    """Wall milliseconds per image at batch size 1 and at ``batch`` (medians of repeated calls).

    The caller warms the model up first; this only times.
    """
    one = []
    for i in range(min(singles, len(images))):
        start = time.perf_counter()
        predict(images[i : i + 1])
        one.append(time.perf_counter() - start)
    chunk = images[:batch]
    big = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(chunk)
        big.append((time.perf_counter() - start) / len(chunk))
    return 1000 * statistics.median(one), 1000 * statistics.median(big)
