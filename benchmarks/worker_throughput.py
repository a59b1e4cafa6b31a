"""Throughput of 1, 2 and 3 workers sharing one study through PostgreSQL, on one machine.

Each configuration runs the same small study from scratch (by default: svm-rbf on mnist-5k, 24 Optuna
trials on a 2,000-image subsample scored on the validation part, one thread per worker, one final)
with N ``digitbench run`` workers on a fresh database, and reports trials per wall-minute and per
CPU-minute, and their ratios to one worker (above 1: more trials per minute): for the whole run (all
the workers' CPU: start-up, trials, the final and the report) and for the tuning phase alone (from
results.csv: the trials and the coordination between them). One SQLite run on its own is the
reference for the coordination's cost.

    .venv/bin/python benchmarks/worker_throughput.py [--trials 24] [--workers 1,2,3] [--model svm-rbf]
        [--threads-alone 2]     # one process x 2 threads against N workers x 1 thread

Needs the PostgreSQL server programs (Debian package ``postgresql``): a throwaway cluster on
127.0.0.1 is started for the measurement (tests/pgcluster.py) unless ``--server URL`` names one.
Numbers depend on what else the machine runs: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import pgcluster  # noqa: E402


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_workers(n: int, storage: str, out: Path, args: argparse.Namespace,
                threads: int = 1) -> tuple[float, float]:
    """Wall and CPU seconds of ``n`` workers, ``threads`` threads each, running the study to the end."""
    command = [sys.executable, "-m", "benchmark", "run", "--dataset", args.dataset,
               "--models", args.model, "--tuner", "optuna", "--trials", str(args.trials),
               "--cv", "1", "--tune-subsample", str(args.subsample), "--seeds", "1",
               "--threads", str(threads), "--workers", "1", "--storage", storage, "--out", str(out)]
    cpu0, wall0 = children_cpu(), time.perf_counter()
    workers = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=open(out.parent / f"{out.name}-{i}.log", "w"))  # noqa: SIM115
               for i in range(n)]
    if any([w.wait() != 0 for w in workers]):
        logs = "\n".join((out.parent / f"{out.name}-{i}.log").read_text()[-800:] for i in range(n))
        raise SystemExit(f"a worker failed:\n{logs}")
    return time.perf_counter() - wall0, children_cpu() - cpu0


def tuning_phase(out: Path) -> tuple[float, float]:
    """Wall and CPU seconds of the tuning phase alone, from results.csv: from the start of the first
    trial to the end of the last (rows carry their UTC time, whole seconds), and for each worker
    (run id) the CPU its process used from the start of its first trial to its last trial row
    (``process_cpu_s``): trials plus the coordination between them, without start-up, final, report."""
    import pandas as pd

    frame = pd.read_csv(out / "results.csv", dtype={"trial": str})
    trials = frame[frame["trial"] != "final"].copy()
    end = pd.to_datetime(trials["utc"])
    start = end - pd.to_timedelta(trials["fit_wall_s"].fillna(0) + trials["predict_wall_s"].fillna(0), "s")
    wall = (end.max() - start.min()).total_seconds()
    own = trials["fit_cpu_s"].fillna(0) + trials["predict_cpu_s"].fillna(0)
    cpu = 0.0
    for _, rows in trials.assign(own=own).groupby("run_id"):
        rows = rows.sort_values("process_cpu_s")
        cpu += rows["process_cpu_s"].iloc[-1] - rows["process_cpu_s"].iloc[0] + rows["own"].iloc[0]
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--model", default="svm-rbf")
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--subsample", type=int, default=2000)
    parser.add_argument("--server", help="a PostgreSQL server URL (default: a throwaway cluster)")
    parser.add_argument("--threads-alone", type=int, default=1,
                        help="threads of the SQLite run on its own (2 on 2 cores: one process x 2 "
                             "threads against N workers x 1 thread)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="digitbench-throughput-"))
    cluster = None
    if args.server is None:
        cluster = Path(tempfile.mkdtemp(prefix="digitbench-throughput-pg-"))
        args.server = pgcluster.start(cluster)
    try:
        # Warm the dataset cache, so that no configuration pays for parsing it.
        subprocess.run([sys.executable, "-m", "benchmark", "run", "--dataset", args.dataset,
                        "--models", args.model, "--trials", "1", "--workers", "1",
                        "--out", str(scratch / "warm")],
                       cwd=ROOT, check=True, capture_output=True)
        rows = []
        wall, cpu = run_workers(1, f"sqlite:///{scratch / 'alone.db'}", scratch / "alone", args,
                                args.threads_alone)
        rows.append((f"1 x {args.threads_alone} thread(s) (SQLite, no sharing)", wall, cpu,
                     *tuning_phase(scratch / "alone")))
        for n in map(int, args.workers.split(",")):  # N workers x 1 thread
            storage = pgcluster.create_database(args.server, f"throughput_{uuid.uuid4().hex[:8]}")
            wall, cpu = run_workers(n, storage, scratch / f"shared{n}", args)
            rows.append((f"{n} (PostgreSQL)", wall, cpu, *tuning_phase(scratch / f"shared{n}")))
        load = os.getloadavg()
        print(f"{args.model} on {args.dataset}: {args.trials} trials on {args.subsample} images, one "
              f"final, --threads 1 per worker; {os.cpu_count()} cores; load average "
              f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end\n")
        base = next(r for r in rows if r[0].startswith("1 (PostgreSQL"))
        for title, w, c in (("whole run (start-up, trials, final, report)", 1, 2),
                            ("tuning phase (trials and their coordination)", 3, 4)):
            print(f"{title}:\n")
            print("| workers | wall-s | CPU-s | trials / wall-min | trials / CPU-min | wall ratio "
                  "| CPU ratio |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            for row in rows:
                per_wall, per_cpu = 60 * args.trials / row[w], 60 * args.trials / row[c]
                print(f"| {row[0]} | {row[w]:.1f} | {row[c]:.1f} | {per_wall:.1f} | {per_cpu:.1f} | "
                      f"{base[w] / row[w]:.2f} | {base[c] / row[c]:.2f} |")
            print()
    finally:
        if cluster is not None:
            pgcluster.stop(cluster)
            shutil.rmtree(cluster, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
