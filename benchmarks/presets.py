"""Presets and tuning loops end to end, per Keras backend and number of worker processes (a
measurement, not a test).

    .venv/bin/python benchmarks/presets.py [--cases quick,tuning] [--backends tensorflow,torch,jax]
        [--workers 1,2] [--repeats 1] [--write benchmarks/RESULTS.md]

- ``quick``: ``digitbench run --preset quick`` (mnist-5k, the five built-in models, Optuna with at
  most 8 trials and 30 CPU-seconds each). Its budgets are CPU-seconds, so a faster backend shows as
  more LeNet trials run within them rather than as a shorter run.
- ``tuning``: the LeNet tuning loop alone, a fixed amount of work: ``--models lenet-relu,lenet-tanh
  --tuner optuna --trials 3 --pruner none --params '{"epochs": 2}'`` on mnist-5k, no CPU budget
  (with one worker Optuna's TPE sampler is seeded, so every backend trains the same trials).
- ``tuning-lenet``: 12 trials of lenet-relu, 3 epochs each, on a 2,000-image subsample of mnist-5k,
  no pruning, no budget: fixed work for comparing ``--workers``.
- ``tuning-svm``: 24 trials of svm-rbf on a 2,000-image subsample of mnist-5k scored on the
  validation part, no budget: the same for a single-threaded solver.
- ``standard``: ``--preset standard`` (full Fashion-MNIST, 54,000 training images, three seeds):
  about 40 minutes on 2 cores; only when asked for.

``--workers N`` runs each case with ``--workers N`` (threads: the cores shared out, so 2 cores give
1 x 2 threads or 2 x 1 thread).

Each run is a fresh ``digitbench run`` process; wall-seconds and CPU-seconds (``getrusage``) are the
whole process, start to exit; "LeNet fit CPU-s" adds ``fit_cpu_s`` over the LeNet rows (trials and
finals). Several backends are run in turns, ``--repeats`` rounds, medians.
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

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "quick": ["--preset", "quick"],
    "tuning": ["--dataset", "mnist-5k", "--models", "lenet-relu,lenet-tanh", "--tuner", "optuna",
               "--trials", "3", "--pruner", "none", "--params", '{"epochs": 2}'],
    "tuning-lenet": ["--dataset", "mnist-5k", "--models", "lenet-relu", "--tuner", "optuna",
                     "--trials", "12", "--pruner", "none", "--tune-subsample", "2000",
                     "--params", '{"epochs": 3}'],
    "tuning-svm": ["--dataset", "mnist-5k", "--models", "svm-rbf", "--tuner", "optuna",
                   "--trials", "24", "--cv", "1", "--tune-subsample", "2000"],
    "standard": ["--preset", "standard"],
}


def run_case(case: str, backend: str, workers: int, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "digitbench", "run", *CASES[case], "--backend", backend,
                           "--workers", str(workers), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # 1: a job failed, still measured
        raise RuntimeError(f"{case} {backend}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return summarize(out, wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))


def summarize(out: Path, wall: float, cpu: float) -> dict:
    """What the table shows of one finished run in ``out``, timed from outside."""
    frame = pd.read_csv(out / "results.csv", dtype={"trial": str})
    lenet = frame[frame["model"].str.startswith("lenet")]
    finals = frame[(frame["trial"] == "final") & (frame["status"] == "ok")]
    trials = frame[frame["trial"] != "final"]
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "trials": int(len(trials)),
        "trial_cpu_s": float(pd.to_numeric(trials["fit_cpu_s"], errors="coerce").sum()),
        "lenet_fit_cpu_s": float(pd.to_numeric(lenet["fit_cpu_s"], errors="coerce").sum()),
        "lenet_trials": int((lenet["trial"] != "final").sum()),
        "lenet_fits": int(pd.to_numeric(lenet["fit_cpu_s"], errors="coerce").notna().sum()),
        "lenet_accuracy": {m: float(a) for m, a in
                           finals[finals["model"].str.startswith("lenet")]
                           .groupby("model")["test_accuracy"].mean().items()},
        "failed": int((frame["status"] == "error").sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="quick,tuning")
    parser.add_argument("--backends", default="tensorflow,torch,jax")
    parser.add_argument("--workers", default="1", help="comma-separated --workers values to compare")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/digitbench-presets"))
    parser.add_argument("--write", type=Path)
    parser.add_argument("--title", help="section title in --write (default: from the cases)")
    parser.add_argument("--from-log", type=Path, help="tabulate the result lines of an earlier run")
    parser.add_argument("--from-run", nargs=4, metavar=("CASE", "RUN_DIR", "WALL_S", "CPU_S"),
                        help="tabulate a run made by hand (e.g. under /usr/bin/time), with "
                             "--backends and --workers naming its one configuration")
    args = parser.parse_args()
    setups = [(b, int(w)) for b in args.backends.split(",") for w in args.workers.split(",")]
    results: dict[tuple[str, str, int], list[dict]] = {}
    if args.from_log:  # lines "CASE BACKEND WORKERS {json}" printed by an earlier run
        for line in args.from_log.read_text().splitlines():
            case, backend, workers, payload = (line.split(" ", 3) + ["", "", ""])[:4]
            if case in CASES and payload.startswith("{"):
                results.setdefault((case, backend, int(workers)), []).append(json.loads(payload))
    extra: list[str] = []
    if args.from_run:
        case, run_dir, wall, cpu = args.from_run
        results[(case, *setups[0])] = [summarize(Path(run_dir), float(wall), float(cpu))]
        extra = ["", f"Where the time of `{case}` went, per model (from its results.csv):", "",
                 *per_model(Path(run_dir))]
    for case in [] if args.from_log or args.from_run else args.cases.split(","):
        for _ in range(args.repeats):  # configurations in turns: drift hits them all alike
            for backend, workers in setups:
                result = run_case(case, backend, workers, args.work / f"{case}-{backend}-{workers}")
                results.setdefault((case, backend, workers), []).append(result)
                print(case, backend, workers, json.dumps(result), flush=True)
    lines = table(results, setups[0]) + extra
    print("\n".join(lines))
    if args.write:
        from results_md import machine, versions, write_section

        cores = os.cpu_count() or 1
        intro = [f"Each case a fresh `digitbench run` per configuration, {args.repeats} round(s) in "
                 f"turns (medians); {cores} cores shared out among the workers (`--workers 1`: 1 "
                 f"process x {cores} threads; `--workers {cores}`: {cores} processes x 1 thread). "
                 "Ratios against the first configuration of the same case; above 1 is better. "
                 f"Load average at the end: {os.getloadavg()[0]:.1f}.", ""]
        title = args.title or f"End to end: {args.cases.replace(',', ', ')}"
        write_section(args.write, title, intro + lines,
                      versions("tensorflow-cpu", "keras", "torch", "jax", "optuna"), machine())


def per_model(run_dir: Path) -> list[str]:
    """Trials, tuning CPU and finals of each model of one run, as a markdown table."""
    frame = pd.read_csv(run_dir / "results.csv", dtype={"trial": str})
    lines = ["| model | trials | tuning CPU-s | finals | final fit CPU-s each | final fit wall-s each "
             "| test accuracy |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for model, rows in frame.groupby("model", sort=False):
        trials, finals = rows[rows["trial"] != "final"], rows[rows["trial"] == "final"]
        tuning = (trials["fit_cpu_s"].fillna(0) + trials["predict_cpu_s"].fillna(0)).sum()
        lines.append(f"| {model} | {len(trials)} | {tuning:.0f} | {len(finals)} | "
                     f"{finals['fit_cpu_s'].mean():.0f} | {finals['fit_wall_s'].mean():.0f} | "
                     f"{100 * finals['test_accuracy'].mean():.2f}% |")
    return lines


def table(results: dict[tuple[str, str, int], list[dict]], first: tuple[str, int]) -> list[str]:
    """The markdown table: per case and configuration, medians and ratios to the case's first."""
    lines = ["| case | backend | workers | wall-s | CPU-s | trials | trials / wall-min | "
             "wall-s vs first | CPU-s vs first | LeNet fit CPU-s per fit vs first | "
             "LeNet test accuracy | failed jobs |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]

    def per_fit(r: dict) -> float:  # LeNet trials and finals
        return r["lenet_fit_cpu_s"] / max(r.get("lenet_fits", r["lenet_trials"] + 2), 1)

    for (case, backend, workers), runs in results.items():
        med = {k: statistics.median(r.get(k, 0) for r in runs)
               for k in ("wall_s", "cpu_s", "trials", "lenet_fit_cpu_s", "failed")}
        base = results.get((case, *first)) or runs
        base_wall = statistics.median(r["wall_s"] for r in base)
        base_cpu = statistics.median(r["cpu_s"] for r in base)
        lenet = "-"
        if med["lenet_fit_cpu_s"] and statistics.median(map(per_fit, base)):
            lenet = f"{statistics.median(map(per_fit, base)) / statistics.median(map(per_fit, runs)):.2f}"
        accuracy = ", ".join(f"{m} {100 * a:.1f}%" for m, a in runs[-1]["lenet_accuracy"].items()) or "-"
        lines.append(f"| {case} | {backend} | {workers} | {med['wall_s']:.0f} | {med['cpu_s']:.0f} | "
                     f"{med['trials']:.0f} | {60 * med['trials'] / med['wall_s']:.1f} | "
                     f"{base_wall / med['wall_s']:.2f} | {base_cpu / med['cpu_s']:.2f} | {lenet} | "
                     f"{accuracy} | {med['failed']:.0f} |")
    return lines

if __name__ == "__main__":
    main()
