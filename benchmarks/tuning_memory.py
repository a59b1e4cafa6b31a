"""Resident memory over many LeNet tuning trials, for each tuner (a measurement, not a test).

    .venv/bin/python benchmarks/tuning_memory.py [--trials 30] [--out runs/bench-memory]

Runs ``digitbench run`` on mnist-5k with lenet-relu, 1-epoch trials on a 1,000-image subsample, and
reads the ``rss_mb`` column of results.csv: growth = RSS after the last trial minus RSS after the
first (the first trial pays for importing and initialising TensorFlow).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-memory"))
    args = parser.parse_args()
    print("| tuner | trials | RSS after trial 0 (MiB) | after last (MiB) | growth (MiB) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for tuner, extra in (("optuna", ["--pruner", "none"]), ("keras-tuner", ["--oracle", "random"])):
        out = args.out / tuner
        subprocess.run(
            [sys.executable, "-m", "digitbench", "run", "--dataset", "mnist-5k",
             "--models", "lenet-relu", "--tuner", tuner, *extra, "--trials", str(args.trials),
             "--tune-subsample", "1000", "--params", '{"epochs": 1}', "--out", str(out),
             "--workers", "1", "--overwrite"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        frame = pd.read_csv(out / "results.csv", dtype={"trial": str})
        trials = frame[frame["trial"] != "final"].sort_values("utc", kind="stable")
        first, last = trials["rss_mb"].iloc[0], trials["rss_mb"].iloc[-1]
        print(f"| {tuner} | {len(trials)} | {first:.0f} | {last:.0f} | {last - first:+.0f} |")


if __name__ == "__main__":
    main()
