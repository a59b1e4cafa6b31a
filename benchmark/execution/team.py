"""Local workers (``--workers N``): N processes on this machine share the trials and finals of one run.

The process started by the user is worker 1. Once the run folder is ready it starts workers 2..N,
each a fresh Python process (``python -m benchmark.execution.team``) with the same settings, its own thread
pools (``--threads`` each) and its own session, so that a terminal's Ctrl-C reaches worker 1 only,
which passes the signal on to the others. The workers coordinate exactly as the workers of a shared
storage do (``benchmark.execution.workers``), through the run's SQLite ``optuna.db``. Each process measures
and records its own CPU time, so a trial's or a final's CPU-seconds are those of the process that
ran it.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import replace

from benchmark.config import RunConfig


def configure_process(config: RunConfig) -> None:
    """Thread pools, Keras backend and model switches of this process: before anything runs."""
    from benchmark.backends import configure_backend
    from benchmark.execution.timing import configure_threads

    configure_threads(config.threads)
    configure_backend(config.backend, config.threads)  # KERAS_BACKEND, before Keras is imported
    os.environ["DIGITBENCH_STEPS_PER_EXECUTION"] = str(config.steps_per_execution)  # models.lenet
    if config.deterministic:  # read by models.lenet.import_keras before TensorFlow runs an op
        os.environ["DIGITBENCH_DETERMINISTIC"] = "1"


class Team:
    """Workers 2..N of a run, started by worker 1."""

    def __init__(self, config: RunConfig, command: str) -> None:
        joining = replace(config, resume=True, overwrite=False)  # the folder is ready: join it
        self.processes: list[subprocess.Popen] = []
        for number in range(2, config.workers + 1):
            process = subprocess.Popen([sys.executable, "-m", "benchmark.execution.team"],
                                       stdin=subprocess.PIPE, start_new_session=True)
            assert process.stdin is not None
            process.stdin.write(pickle.dumps((joining, command, number)))
            process.stdin.close()
            self.processes.append(process)

    def stop(self, signum: int) -> None:
        """Pass a stop signal on: each worker abandons its job and exits."""
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.kill(process.pid, signum)
                except ProcessLookupError:
                    pass

    def wait(self) -> list[int]:
        """Wait for every worker to end; their exit statuses."""
        return [process.wait() for process in self.processes]


def worker_main() -> int:
    """Worker 2..N: settings from worker 1 on stdin, then its share of the run."""
    config, command, number = pickle.loads(sys.stdin.buffer.read())
    sys.stdin.close()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    configure_process(config)
    from benchmark.execution.coordinator import run
    from models.errors import InputError

    try:
        return run(config, command, worker=number)
    except InputError as exc:
        print(f"digitbench worker {number}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(worker_main())
