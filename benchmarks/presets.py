"""Presets and the LeNet tuning loop end to end, per Keras backend (a measurement, not a test).

    .venv/bin/python benchmarks/presets.py [--cases quick,tuning] [--backends tensorflow,torch,jax]
        [--repeats 1] [--write benchmarks/RESULTS.md]

- ``quick``: ``digitbench run --preset quick`` (mnist-5k, the five built-in models, Optuna with at
  most 8 trials and 45 CPU-seconds each). Its budgets are CPU-seconds, so a faster backend shows as
  more LeNet trials run within them rather than as a shorter run.
- ``tuning``: the LeNet tuning loop alone, a fixed amount of work: ``--models lenet-relu,lenet-tanh
  --tuner optuna --trials 3 --pruner none --params '{"epochs": 2}'`` on mnist-5k, no CPU budget
  (Optuna's TPE sampler is seeded, so every backend trains the same trials).
- ``standard``: ``--preset standard`` (full Fashion-MNIST, three seeds, 600 CPU-s budgets): about
  an hour per backend on 2 cores; only when asked for.

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
    "standard": ["--preset", "standard"],
}


def run_case(case: str, backend: str, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "benchmark", "run", *CASES[case], "--backend", backend,
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # 1: a job failed, still measured
        raise RuntimeError(f"{case} {backend}: exit {done.returncode}\n{done.stderr[-2000:]}")
    frame = pd.read_csv(out / "results.csv", dtype={"trial": str})
    lenet = frame[frame["model"].str.startswith("lenet")]
    finals = frame[(frame["trial"] == "final") & (frame["status"] == "ok")]
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
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
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/digitbench-presets"))
    parser.add_argument("--write", type=Path)
    parser.add_argument("--from-log", type=Path, help="tabulate the result lines of an earlier run")
    args = parser.parse_args()
    backends = args.backends.split(",")
    results: dict[tuple[str, str], list[dict]] = {}
    if args.from_log:  # lines "CASE BACKEND {json}" printed by an earlier run
        for line in args.from_log.read_text().splitlines():
            case, backend, payload = (line.split(" ", 2) + ["", ""])[:3]
            if case in CASES and payload.startswith("{"):
                results.setdefault((case, backend), []).append(json.loads(payload))
    for case in [] if args.from_log else args.cases.split(","):
        for _ in range(args.repeats):
            for backend in backends:
                result = run_case(case, backend, args.work / f"{case}-{backend}")
                results.setdefault((case, backend), []).append(result)
                print(case, backend, json.dumps(result), flush=True)
    lines = ["| case | backend | wall-s | CPU-s | CPU vs tensorflow | LeNet trials | LeNet fit CPU-s | "
             "LeNet CPU-s per fit vs tensorflow | LeNet test accuracy | failed jobs |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for (case, backend), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs)
               for k in ("wall_s", "cpu_s", "lenet_fit_cpu_s", "lenet_trials", "failed")}
        base = results.get((case, "tensorflow"))
        ratio = per_trial = "-"
        if base:
            base_cpu = statistics.median(r["cpu_s"] for r in base)
            ratio = f"{med['cpu_s'] / base_cpu:.2f}"
            def per_fit(r: dict) -> float:  # trials and finals
                return r["lenet_fit_cpu_s"] / max(r.get("lenet_fits", r["lenet_trials"] + 2), 1)

            per_trial = f"{statistics.median(map(per_fit, runs)) / statistics.median(map(per_fit, base)):.2f}"
        accuracy = ", ".join(f"{m} {100 * a:.1f}%" for m, a in runs[-1]["lenet_accuracy"].items())
        lines.append(f"| {case} | {backend} | {med['wall_s']:.0f} | {med['cpu_s']:.0f} | {ratio} | "
                     f"{med['lenet_trials']:.0f} | {med['lenet_fit_cpu_s']:.0f} | {per_trial} | "
                     f"{accuracy} | {med['failed']:.0f} |")
    print("\n".join(lines))
    if args.write:
        from results_md import machine, versions, write_section

        intro = [f"Each case a fresh `digitbench run` per backend, {args.repeats} round(s) in turns "
                 f"(medians); 2 threads. Load average at the end: {os.getloadavg()[0]:.1f} (other "
                 "work shared the machine).", ""]
        write_section(args.write, f"End to end: {args.cases.replace(',', ', ')}", intro + lines,
                      versions("tensorflow-cpu", "keras", "torch", "jax", "optuna"), machine())


if __name__ == "__main__":
    main()
