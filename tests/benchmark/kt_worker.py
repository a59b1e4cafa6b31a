"""A tiny keras-tuner study for the tests; run as a script it is the process the SIGKILL test kills.

    python kt_worker.py DIRECTORY LOG MAX_TRIALS BLOCK_AT

Each evaluation appends ``start N {params}`` and ``done N`` to LOG; trial number BLOCK_AT writes
``block N`` instead and then waits until it is killed.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmark.tuning.kerastuner_driver import tune_kerastuner


class Tiny:
    """A model-like class with a float, an int and a choice to tune."""

    @classmethod
    def search_space(cls, space: Any) -> dict[str, Any]:
        return {
            "C": space.float("C", 1e-3, 10.0, log=True),
            "depth": space.int("depth", 1, 8),
            "kernel": space.choice("kernel", ["linear", "rbf", "poly"]),
        }


def accuracy(params: dict[str, Any]) -> float:
    """A smooth, made-up validation accuracy: best at C = 1, depth 4, rbf."""
    return 0.9 - 0.02 * math.log10(params["C"]) ** 2 - 0.01 * abs(params["depth"] - 4) + (
        0.05 if params["kernel"] == "rbf" else 0.0
    )


def _append(log: Path, line: str) -> None:
    with log.open("a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def main(directory: str, log: str, max_trials: str, block_at: str) -> None:
    path = Path(log)

    def evaluate(number: int, params: dict[str, Any], report: Any) -> float:
        _append(path, f"start {number} {json.dumps(params, sort_keys=True)}")
        if number == int(block_at):
            _append(path, f"block {number}")
            time.sleep(600)
        _append(path, f"done {number}")
        return accuracy(params)

    finished = tune_kerastuner(
        search_space=Tiny.search_space, evaluate=evaluate, oracle="random", max_trials=int(max_trials),
        out_of_budget=lambda: False, directory=Path(directory), project="tiny", seed=1, max_epochs=None,
    )
    print(finished)


if __name__ == "__main__":
    main(*sys.argv[1:])
