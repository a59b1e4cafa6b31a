"""Fit CPU-seconds on an idle machine and beside two busy loops (a measurement, not a test).

    .venv/bin/python benchmarks/cpu_under_load.py [--repeats 3] [--workers 1,2]
        [--models logreg,linear-svm,svm-rbf,lenet-relu] [--source DIR] [--write FILE | --no-write]

CPU-seconds are the suite's unit of cost, so a fit should cost about the same whatever else the
machine runs. Each round runs the same finals (``digitbench run --dataset mnist-5k --seeds 1 --tuner
none --epochs 1``) once idle and once beside two ``while True: pass`` processes that this script
starts and stops, for each ``--workers`` setting (1: one process with every core's thread; 2: two
processes of one thread each, the default on 2 cores), configurations in turns so that drift hits
them alike. Each figure is the ``fit_cpu_s`` column of the run's results.csv, the median over the
rounds. ``--source DIR`` runs another checkout of digitbench (e.g. ``git worktree add /tmp/old
REV``) to compare with an earlier revision. The table goes to the "CPU-seconds beside busy
processes" section of ``benchmarks/RESULTS.md`` (with the machine and versions).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SECTION = "CPU-seconds beside busy processes"
BUSY = "while True: pass"


def fit_cpu(source: Path, workers: int, models: str, out: Path, busy: int) -> dict[str, float]:
    """Run the finals once with ``busy`` busy loops beside them: {model: fit CPU-seconds}."""
    shutil.rmtree(out, ignore_errors=True)
    loops = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(busy)]
    try:
        subprocess.run(
            [sys.executable, "-m", "digitbench", "run", "--dataset", "mnist-5k", "--models", models,
             "--seeds", "1", "--workers", str(workers), "--tuner", "none", "--epochs", "1",
             "--out", str(out)],
            cwd=source, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    frame = pd.read_csv(out / "results.csv")
    frame = frame[frame["status"] == "ok"]
    return {str(m): float(c) for m, c in zip(frame["model"], frame["fit_cpu_s"], strict=True)}


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def table(results: dict[tuple[int, str, int], list[float]], models: list[str],
          settings: list[int], blas: int | None) -> list[str]:
    """Markdown rows: each model and --workers setting, idle and busy medians and their ratio."""
    lines = ["| model | `--workers` | threads per worker (BLAS) | idle fit CPU-s | beside 2 busy "
             "loops | ratio |", "| --- | ---: | --- | ---: | ---: | ---: |"]
    for model in models:
        for workers in settings:
            idle, busy = results.get((workers, model, 0)), results.get((workers, model, 2))
            if not idle or not busy:
                continue
            i, b = statistics.median(idle), statistics.median(busy)
            threads = threads_per_worker(workers)
            pools = f"{threads} ({min(threads, blas)})" if blas is not None else str(threads)
            lines.append(f"| {model} | {workers} | {pools} | {i:.2f} | {b:.2f} | {b / i:.2f}x |")
    return lines


def blas_threads(source: Path) -> int | None:
    """The BLAS thread count the checkout at ``source`` fixes, or None where it follows --threads."""
    done = subprocess.run(
        [sys.executable, "-c", "from digitbench.benchmark.execution import timing; "
                               "print(getattr(timing, 'BLAS_THREADS', ''))"],
        cwd=source, capture_output=True, text=True, check=True)
    value = done.stdout.strip()
    return int(value) if value else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", default="1,2", help="--workers settings, comma-separated")
    parser.add_argument("--models", default="logreg,linear-svm,svm-rbf,lenet-relu")
    parser.add_argument("--source", type=Path, default=ROOT, help="the digitbench checkout to run")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-cpu-under-load"))
    parser.add_argument("--write", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--title", default=SECTION, help="section title in --write")
    args = parser.parse_args()
    settings = [int(w) for w in args.workers.split(",")]
    models = args.models.split(",")
    source = args.source.resolve()
    results: dict[tuple[int, str, int], list[float]] = {}
    for round_ in range(args.repeats):
        for workers in settings:
            for busy in (0, 2):
                got = fit_cpu(source, workers, args.models, args.work.resolve() / "run", busy)
                print(round_, f"--workers {workers}", "busy" if busy else "idle", got, flush=True)
                for model, cpu in got.items():
                    results.setdefault((workers, model, busy), []).append(cpu)
    blas = blas_threads(source)
    lines = table(results, models, settings, blas)
    print("\n".join(lines))
    if args.no_write:
        return
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from results_md import machine, versions, write_section

    rev = subprocess.run(["git", "-C", str(source), "rev-parse", "--short=12", "HEAD"],
                         capture_output=True, text=True).stdout.strip() or "unknown"
    intro = [f"`digitbench run --dataset mnist-5k --models {args.models} --seeds 1 --tuner none "
             "--epochs 1 --workers N` (digitbench " + rev + "), once idle and once beside two "
             "`python -c 'while True: pass'` processes, in turns; medians of "
             f"{args.repeats} round(s) of each run's `fit_cpu_s`. Threads per worker: the cores "
             "shared out among the workers; "
             + ("BLAS follows them (a revision before BLAS was fixed at one thread). "
                if blas is None else
                f"in brackets the BLAS (OpenBLAS) threads, which digitbench fixes at {blas} "
                "(`benchmark/execution/timing.py`: with more, the calling thread spins while it "
                "waits for its helpers). ")
             + f"The machine is shared with other work; load average at the end: "
             f"{os.getloadavg()[0]:.1f}. Goal: ratios within 1.3x.", ""]
    write_section(args.write, args.title, intro + lines,
                  versions("numpy", "scipy", "scikit-learn", "threadpoolctl", "tensorflow-cpu",
                           "keras"), machine())
    print(f"written: {args.write}")


if __name__ == "__main__":
    main()
