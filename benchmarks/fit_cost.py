"""CPU-seconds of one LeNet fit through ``LeNet.fit``, for two checkouts of digitbench side by side.

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/fit_cost.py --data-dir ../shared/data/mnist --roots /tmp/before,. \
        --rounds 4 [--model lenet-tanh] [--epochs 1] [--write benchmarks/RESULTS.md --section TITLE]

Each round runs one fresh process per checkout in turn (one thread, nothing else of ours running),
each timing the whole ``fit`` call of ``--model``'s defaults for ``--epochs`` epochs on digitbench's
54,000 training images of the official MNIST split, as a final timed to a target is; the medians and
the median of the per-round ratios are what to compare (timings here drift by up to 2x).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def import_checkout(root: Path):
    """``load_split`` and the model registry of the checkout at ``root``, installed or not: since 0.2
    its top-level folders are the subpackages of ``digitbench`` (found here through the package's
    search path, as the installed mapping does), before that they were top-level packages."""
    facade = root / "digitbench" / "__init__.py"
    if facade.is_file():
        spec = importlib.util.spec_from_file_location(
            "digitbench", facade, submodule_search_locations=[str(facade.parent), str(root)])
        sys.modules["digitbench"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        prefix = "digitbench."
    else:
        sys.path.insert(0, str(root))
        prefix = ""
    datasets = importlib.import_module(f"{prefix}benchmark.data.datasets")
    return datasets.load_split, importlib.import_module(f"{prefix}models.registry")


def child(root: str, data_dir: str, model: str, epochs: int) -> None:
    """In a fresh process: import ``root``'s digitbench, fit once, print the fit's CPU-s as JSON."""
    load_split, registry = import_checkout(Path(root).resolve())

    split = load_split("mnist", data_dir=data_dir)
    entry = registry.get(model)
    entry.cls.prepare()  # Keras imported and seeded before the clock, as a worker does
    lenet = entry.create(epochs=epochs)
    start = time.process_time()
    lenet.fit(split.train, seed=0)
    print(json.dumps({"fit_cpu_s": time.process_time() - start}))


def run(root: str, args: argparse.Namespace) -> float:
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, __file__, "--child", root, "--data-dir", str(args.data_dir),
                           "--model", args.model, "--epochs", str(args.epochs)],
                          capture_output=True, text=True, env=env, check=False, cwd=root)
    if done.returncode != 0:
        raise SystemExit(f"{root}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["fit_cpu_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--roots", help="two checkouts, comma-separated: before,after (required)")
    parser.add_argument("--model", default="lenet-tanh")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--write", type=Path)
    parser.add_argument("--section", default="One LeNet fit, two checkouts")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    if args.child:
        child(args.child, str(args.data_dir), args.model, args.epochs)
        return
    roots = [str(Path(r).resolve()) for r in (args.roots or "").split(",") if r]
    if len(roots) != 2:
        parser.error(f"--roots: expected two checkouts, got {args.roots!r}")
    times: dict[str, list[float]] = {r: [] for r in roots}
    for i in range(args.rounds):
        for root in roots:
            times[root].append(run(root, args))
            print(f"round {i + 1}: {root}: {times[root][-1]:.2f} fit CPU-s", flush=True)
    before, after = roots
    ratios = [a / b for a, b in zip(times[after], times[before], strict=True)]
    lines = [f"`{args.model}`'s defaults, {args.epochs} epoch(s) on the 54,000 training images, one "
             f"thread, one fresh process per fit, the two checkouts in turn for {args.rounds} rounds. "
             f"{args.note}".rstrip(), "",
             "| checkout | fit CPU-s by round | median |", "| --- | --- | ---: |"]
    lines += [f"| `{Path(r).name}` | {', '.join(f'{t:.2f}' for t in times[r])} | "
              f"{statistics.median(times[r]):.2f} |" for r in roots]
    lines += ["", f"After / before, median of the rounds' ratios: **x{statistics.median(ratios):.3f}** "
              f"({', '.join(f'{x:.3f}' for x in ratios)})."]
    print("\n".join(lines))
    if args.write:
        sys.path.insert(0, str(HERE))
        from results_md import machine, versions, write_section

        write_section(args.write, args.section, lines, versions("tensorflow-cpu", "keras", "numpy"),
                      machine())


if __name__ == "__main__":
    main()
