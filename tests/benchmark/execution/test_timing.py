"""CPU/wall measurement and thread limits (behaviour, not speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from digitbench.benchmark.execution.timing import (
    BLAS_ENV,
    BLAS_THREADS,
    THREAD_ENV,
    configure_threads,
    cpu_seconds,
    latency_ms,
    measure,
)


def test_measure_separates_cpu_from_waiting() -> None:
    with measure() as busy:
        end = time.process_time() + 0.2
        while time.process_time() < end:
            pass
    with measure() as idle:
        time.sleep(0.2)
    assert busy.cpu_s >= 0.19 and busy.wall_s >= 0.19
    assert idle.wall_s >= 0.19 and idle.cpu_s < 0.1


def test_cpu_seconds_include_finished_child_processes() -> None:
    before = cpu_seconds()
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
    assert cpu_seconds() - before >= 0.1


def test_latency_reports_per_image_milliseconds() -> None:
    calls: list[int] = []

    def predict(images: np.ndarray) -> np.ndarray:
        calls.append(len(images))
        time.sleep(0.002)
        return np.zeros(len(images), dtype=np.int64)

    b1, bn = latency_ms(predict, np.zeros((100, 28, 28), np.uint8), batch=100, singles=5)
    assert calls == [1] * 5 + [100] * 3
    assert b1 >= 2.0 and bn < b1 / 10


def test_configure_threads_sets_every_pool(monkeypatch) -> None:
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        monkeypatch.delenv(var, raising=False)
    configure_threads(1)
    assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["TF_NUM_INTRAOP_THREADS"] == "1"
    from threadpoolctl import threadpool_info

    assert all(pool["num_threads"] == 1 for pool in threadpool_info())


def test_tensorflow_gets_the_configured_thread_counts() -> None:
    code = (
        "from digitbench.benchmark.execution.timing import configure_threads\n"
        "configure_threads(1)\n"
        "from digitbench.models.lenet import import_keras\n"
        "import_keras()\n"
        "import tensorflow as tf\n"
        "t = tf.config.threading\n"
        "print(t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert done.stdout.split() == ["1", "1"]
    assert "oneDNN" not in done.stderr, "TensorFlow's start-up log lines are silenced"



def test_blas_runs_one_thread_whatever_the_other_pools_run() -> None:
    """OpenBLAS loaded before configure_threads (numpy's) and after it (scipy's, in a library
    imported later) both run BLAS_THREADS; OpenMP runs the threads asked for."""
    code = (
        "import json, numpy\n"
        "from digitbench.benchmark.execution.timing import configure_threads, thread_pools\n"
        "configure_threads(2)\n"
        "import scipy.linalg, sklearn.svm, threadpoolctl\n"
        "print(json.dumps([[p['user_api'], p['filepath'], p['num_threads']] "
        "for p in threadpoolctl.threadpool_info()]))\n"
        "print(json.dumps(thread_pools()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (*BLAS_ENV, *THREAD_ENV)}
    done = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    listed, recorded = done.stdout.splitlines()
    pools = json.loads(listed)
    assert json.loads(recorded) == {"blas": BLAS_THREADS, "openmp": 2}, "what rows record (thread_pools)"
    blas = [n for api, _, n in pools if api == "blas"]
    assert len(blas) >= 2 and set(blas) == {BLAS_THREADS}, pools
    assert {n for api, _, n in pools if api == "openmp"} == {2}, pools
