"""Where the speedrun's CPU-seconds go, and what each of its tricks bought (a measurement, not a test).

    .venv/bin/python benchmarks/speedrun.py --data-dir ../shared/data/mnist [--seeds 3] \\
        [--parallel 2] [--write benchmarks/RESULTS.md]

Everything runs in one invocation, one thread per process, ``--parallel`` processes at a time, so
that its figures sit side by side on one machine:

1. **Where the time goes**, for ``lenet-speedrun``'s network and ``lenet-relu``'s defaults: a plain
   Keras script trains the same network on the same 54,000 training images (digitbench's split of
   official MNIST) for two epochs in a fresh process, with digitbench's 16 training steps per call
   into TensorFlow (and once more with Keras' default of 1). Its second epoch is the cost of the
   training steps alone (CPU-s per epoch, images per CPU-second, GFLOP/s: 3 x 2 x the forward multiply-adds
   of ``macs_per_image`` per image, against numpy's float32 matrix product measured here on one
   thread); the first epoch's excess over it is start-up (tracing the step function, oneDNN's
   set-up). It also times what digitbench adds per validation check (``evaluate`` on the 6,000
   validation images) and the conversion of the images to float. Then ``digitbench run`` trains the
   same network with ``--target 0.99 --stop-at-target``: its fit CPU-s against the plain script's
   steps is the share spent outside the training steps.
2. **What each trick bought**: a ladder from ``lenet-relu``'s defaults to the speedrun recipe, one
   change a line, each a ``digitbench run`` of ``--seeds`` seeds timed to 99% validation accuracy.
   Pooling before the activation is the same function, so it is measured in the plain script: the
   steps of each network built CONV => ACT => POOL against CONV => POOL => ACT, both in one
   process, a third of an epoch each in turn over 5 rounds (the median).

With ``--variants``, part 1 alone for the two mission variants, ``lenet-relu`` and ``lenet-tanh``,
each with its own defaults (the moving average of the weights and the augmentation included, in the
plain script too: Keras' ``use_ema`` and the same random shifts and rotations), written as its own
section.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lenet_rate import matmul_gflops  # noqa: E402
from mnist_lenet import CLASS_SETTINGS, RECIPES, SPEEDRUN_BASE, SPEEDRUN_CHECKS, VARIANTS, run_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: digitbench's training steps per call into TensorFlow (``--steps-per-execution``'s default).
SPE = 16

#: The two networks of part 1, each with its variant's defaults, ``lenet-relu`` with those it had
#: when this was measured: the class's (its first convolution padded, no moving average of the
#: weights, no augmentation; docs/models.md "Each variant's own defaults" has why they changed).
NETWORKS = ("lenet-speedrun", "lenet-relu")
PINNED = {"lenet-relu": CLASS_SETTINGS}

#: The smaller net of the speedrun's candidates (benchmarks/mnist_lenet.py), on its own.
SMALL = {k: SPEEDRUN_BASE[k] for k in ("filters1", "filters2", "dense_units", "dropout", "padding")}

#: Part 2's ladder: label, model, parameters over the model's defaults, epochs, whether the training
#: stops at the target, validation checks an epoch (None: digitbench's default, 4). Its second line
#: is part 1's ``lenet-relu`` run, its last ``lenet-speedrun``'s.
LADDER = [
    ("`lenet-relu`'s defaults (the class's), 10 epochs", "lenet-relu", CLASS_SETTINGS, 10, False, None),
    ("+ stop at the target", "lenet-relu", CLASS_SETTINGS, 10, True, None),
    ("+ one epoch of a smaller net (16/32 filters, first convolution unpadded, 256 units, "
     "no dropout)", "lenet-relu", {**CLASS_SETTINGS, **SMALL}, 1, True, None),
    ("+ one-cycle schedule peaking at 1e-2, Adam betas 0.7/0.9", "lenet-relu", RECIPES["sr-b128-lr10"],
     1, True, None),
    ("+ two epochs, validation checked at the end of each only", "lenet-relu", RECIPES["sr2-b128-lr10"],
     None, True, SPEEDRUN_CHECKS),
    ("+ a narrower net (12/24 filters): `lenet-speedrun`'s defaults", "lenet-speedrun", {}, None, True,
     SPEEDRUN_CHECKS),
]


def one_thread_env() -> dict[str, str]:
    return {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
            "OMP_NUM_THREADS": "1", "KERAS_BACKEND": "tensorflow"}


def child_setup(network: str, data_dir: Path, own: bool = False) -> tuple[Any, Any, Any]:
    """A child process's start: TensorFlow on one thread before any op runs, then Keras, the model
    ``network`` with its defaults (``own``: the variant's own, else with ``PINNED``'s), and
    digitbench's split of official MNIST."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    from digitbench.benchmark.data.datasets import load_split
    from digitbench.models import registry

    model = registry.get(network).create(**({} if own else PINNED.get(network, {})))
    return keras, model, load_split("mnist", data_dir=data_dir)


def plain_keras(network: str, spe: int, data_dir: Path, own: bool = False) -> dict:
    """The child process: a plain Keras script, the network of ``network``'s defaults (pooled before
    the activation, as LeNet builds it), two epochs, ``spe`` training steps per call into TensorFlow
    (Keras' default is 1, digitbench's 16)."""
    keras, model_params, split = child_setup(network, data_dir, own)
    p = model_params.params
    start = time.process_time()
    x = (split.train.images.astype(np.float32) / 255.0)[..., None]
    xv = (split.val.images.astype(np.float32) / 255.0)[..., None]
    convert_cpu = time.process_time() - start
    keras.utils.set_random_seed(0)
    model = build_plain(keras, p, pool_first=True)
    model.compile(optimizer=keras.optimizers.Adam(p["learning_rate"], beta_1=p["beta_1"],
                                                  beta_2=p["beta_2"], use_ema=p["ema_momentum"] > 0,
                                                  ema_momentum=p["ema_momentum"] or 0.99),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"], steps_per_execution=spe)
    epoch_cpu = []
    for _ in range(2):
        start = time.process_time()
        model.fit(x, split.train.labels, batch_size=p["batch_size"], epochs=1, verbose=0)
        epoch_cpu.append(time.process_time() - start)
    model.evaluate(xv[:100], split.val.labels[:100], verbose=0)  # its own tracing, not a check's
    start = time.process_time()
    model.evaluate(xv, split.val.labels, batch_size=1000, verbose=0)
    check_cpu = time.process_time() - start
    return {"network": network, "spe": spe, "epoch_cpu": epoch_cpu,
            "check_cpu": check_cpu, "convert_cpu": convert_cpu, "n_train": len(x),
            "macs": model_params.macs_per_image(), "batch_size": p["batch_size"]}


def build_plain(keras: Any, p: dict, pool_first: bool) -> Any:
    """LeNet's network from its parameters ``p``, written in plain Keras, each convolution pooled
    before or after its activation; with ``augment``, LeNet's random shifts and rotations first."""
    layers, act, a = keras.layers, p["activation"], float(p["augment"])
    augment = [layers.RandomTranslation(a, a, fill_mode="constant"),
               layers.RandomRotation(a / 4, fill_mode="constant")] if a > 0 else []

    def conv(filters: int, padding: str) -> list:
        layer = layers.Conv2D(filters, p["kernel_size"], padding=padding)
        if pool_first:
            return [layer, layers.MaxPooling2D(2), layers.Activation(act)]
        return [layer, layers.Activation(act), layers.MaxPooling2D(2)]

    return keras.Sequential([keras.Input((28, 28, 1)), *augment, *conv(p["filters1"], p["padding"]),
                             *conv(p["filters2"], "valid"), layers.Flatten(),
                             layers.Dense(p["dense_units"], activation=act),
                             layers.Dropout(p["dropout"]), layers.Dense(10, activation="softmax")])


def pooling_ab(network: str, data_dir: Path, rounds: int = 5) -> dict:
    """The child process: both pooling orders of ``network``'s network in one process, trained in
    turn on a third of an epoch each for ``rounds`` rounds (after a warm-up); the median CPU-s per
    epoch of each, so that drift between processes does not decide the comparison."""
    keras, model, split = child_setup(network, data_dir)
    p = model.params
    x, y = (split.train.images.astype(np.float32) / 255.0)[..., None], split.train.labels
    part = len(x) // 3
    models = {}
    for pool_first in (False, True):
        keras.utils.set_random_seed(0)
        models[pool_first] = build_plain(keras, p, pool_first)
        models[pool_first].compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                                   steps_per_execution=SPE)
        models[pool_first].fit(x[:32 * p["batch_size"]], y[:32 * p["batch_size"]],
                               batch_size=p["batch_size"], verbose=0)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for pool_first, model in models.items():
            start = time.process_time()
            model.fit(x[:part], y[:part], batch_size=p["batch_size"], verbose=0)
            times[pool_first].append((time.process_time() - start) * len(x) / part)
    return {"act_first": statistics.median(times[False]), "pool_first": statistics.median(times[True]),
            "rounds": rounds}


def run_child(*flags: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *flags], capture_output=True, text=True,
                          env=one_thread_env(), check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(flags)}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_plain(network: str, spe: int, data_dir: Path, own: bool = False) -> dict:
    return run_child("--child", network, "--data-dir", str(data_dir), "--spe", str(spe),
                     *(["--own"] if own else []))


def run_digitbench(model: str, params: dict, epochs: int | None, stop: bool, checks: int | None,
                   seeds: int, data_dir: Path, work: Path, name: str) -> dict:
    """``digitbench run --target 0.99`` of ``model`` with ``params`` over its defaults (through
    benchmarks/mnist_lenet.py's runner, one thread); ``epochs`` None: the model's own."""
    args = SimpleNamespace(epochs=epochs, model=model, data_dir=data_dir, seeds=seeds, target=0.99,
                           stop=stop, target_checks=checks)
    return run_recipe(name, args, work, params)


def flops_per_image(macs: int) -> float:
    """Training FLOPs: forward, backward for inputs and for weights, 2 FLOPs a multiply-add."""
    return 3 * 2 * macs


def where_the_time_goes(plain: dict[str, dict], keras_defaults: dict[str, dict], stopped: dict[str, dict],
                        gflops: float) -> list[str]:
    lines = ["| network | multiply-adds / image | plain Keras, 16 steps a call: CPU-s / epoch (steps) | "
             "images / CPU-s | GFLOP/s | % of matmul | start-up CPU-s (1st epoch − 2nd) | plain Keras, "
             "1 step a call (Keras' default): CPU-s / epoch | one validation check, CPU-s | images to "
             "float, CPU-s | digitbench: CPU-s to 99% (median) | digitbench: fit CPU-s (median) | share "
             "of the fit outside the steps |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for network, row in plain.items():
        steps = row["epoch_cpu"][1]
        rate = flops_per_image(row["macs"]) * row["n_train"] / steps / 1e9
        run = stopped[network]
        reached = [v for v in run["cpu_s_to_target"] if v is not None]
        fit = statistics.median(run["fit_cpu_s"])
        epochs = [e for e in run["epochs_to_target"] if e is not None]
        # the fit ends at the target: its steps are that many epochs (no seed there: no such share)
        to, outside = ((f"{statistics.median(reached):.2f}",
                        f"{100 * (1 - steps * statistics.median(epochs) / fit):.0f}%")
                       if reached and epochs else ("never", "—"))
        lines.append(f"| `{network}` | {row['macs']:,} | {steps:.2f} | {row['n_train'] / steps:,.0f} | "
                     f"{rate:.1f} | {100 * rate / gflops:.0f}% | {row['epoch_cpu'][0] - steps:.2f} | "
                     f"{keras_defaults[network]['epoch_cpu'][1]:.2f} | {row['check_cpu']:.2f} | "
                     f"{row['convert_cpu']:.2f} | {to} | {fit:.2f} | {outside} |")
    return lines


def ladder_table(ladder: list[dict], pool: dict[str, dict]) -> list[str]:
    lines = ["| step | seeds reaching 99% | CPU-s to 99% (median) | fit CPU-s (median) | "
             "validation, last whole epoch | test accuracy | what it bought |",
             "| --- | ---: | ---: | ---: | --- | --- | --- |"]
    previous = None
    for (label, *_), run in zip(LADDER, ladder, strict=True):
        reached = [v for v in run["cpu_s_to_target"] if v is not None]
        to = statistics.median(reached) if len(reached) == len(run["test"]) else None
        fit = statistics.median(run["fit_cpu_s"])
        bought = []
        if previous is not None:
            bought.append(f"fit CPU-s x{previous['fit'] / fit:.2f}")
            if to is not None and previous["to"] is not None and previous["seeds"] == len(run["test"]):
                bought.append(f"CPU-s to 99% x{previous['to'] / to:.2f}")
        vals = ", ".join(f"{100 * seed[-1]:.2f}" for seed in run["val"] if seed)
        tests = ", ".join(f"{100 * t:.2f}" for t in run["test"])
        lines.append(f"| {label} | {len(reached)} of {len(run['test'])} | "
                     f"{'not every seed' if to is None else f'{to:.2f}'} | {fit:.2f} | {vals or '—'} | "
                     f"{tests} | {', '.join(bought) or '—'} |")
        previous = {"to": to, "fit": fit, "seeds": len(run["test"])}
    for network, ab in pool.items():
        lines.append(f"| pooling before the activation (`{network}`'s network, the same function; "
                     f"plain Keras steps, median of {ab['rounds']} interleaved rounds) | — | — | "
                     f"{ab['act_first']:.2f} → {ab['pool_first']:.2f} per epoch | — | — | "
                     f"steps x{ab['act_first'] / ab['pool_first']:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--write", type=Path)
    parser.add_argument("--note", default="")
    parser.add_argument("--section", help="the RESULTS.md section's title (default: the part's own)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--pooling-ab", help=argparse.SUPPRESS)
    parser.add_argument("--variants", action="store_true",
                        help=f"part 1 alone, for {' and '.join(VARIANTS)} with their own defaults")
    parser.add_argument("--own", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--spe", type=int, default=SPE, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    if args.child:
        print(json.dumps(plain_keras(args.child, args.spe, args.data_dir, args.own)))
        return
    if args.variants:
        variants(args)
        return
    if args.pooling_ab:
        print(json.dumps(pooling_ab(args.pooling_ab, args.data_dir)))
        return
    gflops = matmul_gflops(1)
    print(f"numpy float32 matmul, 1 thread: {gflops:.1f} GFLOP/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.parallel) as pool:
        work = Path(tmp)
        plain_jobs = {(n, spe): pool.submit(run_plain, n, spe, args.data_dir)
                      for n in NETWORKS for spe in (SPE, 1)}
        pooling_jobs = {n: pool.submit(run_child, "--pooling-ab", n, "--data-dir", str(args.data_dir))
                        for n in NETWORKS}
        ladder_jobs = [pool.submit(run_digitbench, model, params, epochs, stop, checks,
                                   args.seeds if stop else 1, args.data_dir, work, f"ladder-{i}")
                       for i, (_, model, params, epochs, stop, checks) in enumerate(LADDER)]
        plain = {key: job.result() for key, job in plain_jobs.items()}
        pooling = {n: job.result() for n, job in pooling_jobs.items()}
        ladder = [job.result() for job in ladder_jobs]
    stopped = {"lenet-relu": ladder[1], "lenet-speedrun": ladder[-1]}
    for (label, *_), result in zip(LADDER, ladder, strict=True):
        print(label, json.dumps(result), flush=True)
    lines = [f"numpy's float32 matrix product on one thread: **{gflops:.1f} GFLOP/s** (the best of 7).",
             "", *where_the_time_goes({n: plain[(n, SPE)] for n in NETWORKS},
                                      {n: plain[(n, 1)] for n in NETWORKS}, stopped, gflops), "",
             "What each trick bought, from `lenet-relu`'s defaults to the speedrun recipe (each line adds "
             f"one change to the line above; {args.seeds} seeds each, the first line one seed):", "",
             *ladder_table(ladder, pooling)]
    print("\n".join(lines))
    if args.write:
        from results_md import machine, versions, write_section

        intro = ["`benchmarks/speedrun.py`: one thread per process, "
                 f"{args.parallel} processes at a time; official MNIST, digitbench's split (54,000 training "
                 "and 6,000 validation images, tested on the official 10,000). "
                 f"{args.note}".rstrip(), ""]
        write_section(args.write, args.section or "Where the speedrun's CPU-seconds go", intro + lines,
                      versions("tensorflow-cpu", "keras", "numpy"), machine())


def variants(args: argparse.Namespace) -> None:
    """``--variants``: where the mission variants' CPU-seconds go, each with its own defaults."""
    gflops = matmul_gflops(1)
    print(f"numpy float32 matmul, 1 thread: {gflops:.1f} GFLOP/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.parallel) as pool:
        plain_jobs = {(n, spe): pool.submit(run_plain, n, spe, args.data_dir, True)
                      for n in VARIANTS for spe in (SPE, 1)}
        stop_jobs = {n: pool.submit(run_digitbench, n, {}, None, True, None, args.seeds, args.data_dir,
                                    Path(tmp), "own-defaults") for n in VARIANTS}
        plain = {key: job.result() for key, job in plain_jobs.items()}
        stopped = {n: job.result() for n, job in stop_jobs.items()}
    for n, result in stopped.items():
        print(n, json.dumps(result), flush=True)
    lines = [f"numpy's float32 matrix product on one thread: **{gflops:.1f} GFLOP/s** (the best of 7).",
             "", *where_the_time_goes({n: plain[(n, SPE)] for n in VARIANTS},
                                      {n: plain[(n, 1)] for n in VARIANTS}, stopped, gflops)]
    print("\n".join(lines))
    if args.write:
        from results_md import machine, versions, write_section

        intro = ["`benchmarks/speedrun.py --variants`: one thread per process, "
                 f"{args.parallel} processes at a time; official MNIST, digitbench's split; each variant "
                 f"with its own defaults, stopped at 99% validation accuracy ({args.seeds} seeds). "
                 f"{args.note}".rstrip(), ""]
        write_section(args.write, args.section or "Where the mission variants' CPU-seconds go",
                      intro + lines,
                      versions("tensorflow-cpu", "keras", "numpy"), machine())


if __name__ == "__main__":
    main()
