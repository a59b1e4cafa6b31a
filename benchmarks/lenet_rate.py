"""LeNet-5 training rate: digitbench against a plain Keras script, per Keras backend and TensorFlow
setting, next to this CPU's arithmetic limit (a measurement, not a test).

    .venv/bin/python benchmarks/lenet_rate.py [--epochs 2] [--repeats 3] [--batch 64]
        [--configs plain-tf,db-tf,db-torch,...] [--write benchmarks/RESULTS.md]

Every configuration runs in its own fresh process on the full 60,000 Fashion-MNIST training images
(``/usr/share/datasets/fashion-mnist``), the configurations interleaved A/B/C/A/B/C over
``--repeats`` rounds so that load from other work on the machine spreads over all of them; each
figure is the median over the rounds. The network is digitbench's LeNet with the classic LeNet-5
sizes: 6 and 16 filters of 5x5, a 120-wide dense layer, ReLU, Adam (1e-3), batch 64.

- ``plain-*``: a plain Keras script building the same network (``plain_fit`` below): Keras' own
  defaults, nothing set but the backend.
- ``db-*``: ``digitbench run --dataset fashion-mnist --models lenet-relu --tuner none`` with those
  parameters, read back from results.csv (``fit_cpu_s``, ``fit_wall_s``, ``test_accuracy``).

CPU-seconds are the training's own (``time.process_time`` around ``fit``, all threads); images/s is
training images over fit wall-seconds. GFLOP/s counts 3x the forward multiply-adds of the network
(forward, and backward for weights and inputs) from its layer shapes, against numpy's float32 matmul
rate measured here with the same thread count.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist_lenet import CLASS_SETTINGS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FASHION = Path("/usr/share/datasets/fashion-mnist")
#: with the class's padding and no moving average or augmentation, which the variants' defaults add
#: (the plain script has neither)
LENET5 = {**CLASS_SETTINGS, "filters1": 6, "filters2": 16, "kernel_size": 5, "dense_units": 120}

# name: (kind, backend, environment, extra digitbench flags or plain-script options)
CONFIGS: dict[str, tuple[str, str, dict[str, str], dict]] = {
    "plain-tf": ("plain", "tensorflow", {}, {}),
    "plain-tf-b32": ("plain", "tensorflow", {}, {"batch_size": 32}),
    "plain-tf-xla": ("plain", "tensorflow", {}, {"jit_compile": True}),
    "plain-tf-nodnn": ("plain", "tensorflow", {"TF_ENABLE_ONEDNN_OPTS": "0"}, {}),
    "plain-tf-probe": ("plain", "tensorflow", {}, {"probe": True}),
    "plain-tf-1t-probe": ("plain", "tensorflow",
                          {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}, {"probe": True}),
    "plain-tf-1inter": ("plain", "tensorflow", {"TF_NUM_INTEROP_THREADS": "1"}, {}),
    "plain-tf-spe": ("plain", "tensorflow", {}, {"steps_per_execution": 16}),
    "plain-tf-b128": ("plain", "tensorflow", {}, {"batch_size": 128}),
    "plain-tf-spe4": ("plain", "tensorflow", {}, {"steps_per_execution": 4}),
    "plain-tf-b256": ("plain", "tensorflow", {}, {"batch_size": 256}),
    "plain-tf-b128-spe": ("plain", "tensorflow", {}, {"batch_size": 128, "steps_per_execution": 16}),
    "plain-tf-b256-spe": ("plain", "tensorflow", {}, {"batch_size": 256, "steps_per_execution": 16}),
    "plain-torch": ("plain", "torch", {}, {}),
    "plain-torch-passive": ("plain", "torch", {"OMP_WAIT_POLICY": "PASSIVE"}, {}),
    "plain-torch-1t": ("plain", "torch", {"OMP_NUM_THREADS": "1"}, {}),
    "plain-jax": ("plain", "jax", {}, {}),
    "plain-tf-1t": ("plain", "tensorflow",
                    {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}, {}),
    "db-tf": ("digitbench", "tensorflow", {}, {}),
    "db-tf-1t": ("digitbench", "tensorflow", {}, {"threads": 1}),
    "db-tf-spe1": ("digitbench", "tensorflow", {}, {"flags": ["--steps-per-execution", "1"]}),
    "db-tf-b128": ("digitbench", "tensorflow", {}, {"batch_size": 128}),
    "db-torch-1t": ("digitbench", "torch", {}, {"threads": 1}),
    "db-torch": ("digitbench", "torch", {}, {}),
    "db-jax": ("digitbench", "jax", {}, {}),
    "db-tf-2w": ("digitbench", "tensorflow", {}, {"threads": 1, "workers": 2}),
    "db-tf-final-2w": ("digitbench", "tensorflow", {},
                       {"threads": 1, "workers": 2, "seeds": 1, "models": "logreg,lenet-relu"}),
}


NOTES = {
    "plain-tf-b32": "plain Keras, TensorFlow, Keras' default batch 32",
    "plain-tf": "plain Keras, TensorFlow, batch 64",
    "plain-tf-spe": "plain Keras, steps_per_execution=16",
    "plain-tf-b128": "plain Keras, batch 128",
    "plain-tf-xla": "plain Keras, jit_compile=True (XLA)",
    "plain-tf-nodnn": "plain Keras, TF_ENABLE_ONEDNN_OPTS=0",
    "plain-tf-1inter": "plain Keras, 1 inter-op thread",
    "plain-tf-probe": "plain Keras, batch 64, each step timed",
    "plain-tf-1t-probe": "plain Keras, batch 64, 1 thread, each step timed",
    "plain-tf-spe4": "plain Keras, steps_per_execution=4",
    "plain-tf-b128-spe": "plain Keras, batch 128, steps_per_execution=16",
    "plain-tf-b256": "plain Keras, batch 256",
    "plain-torch": "plain Keras, torch backend",
    "plain-torch-passive": "plain Keras, torch backend, OMP_WAIT_POLICY=PASSIVE",
    "plain-torch-1t": "plain Keras, torch backend, 1 OpenMP thread",
    "db-torch-1t": "digitbench --backend torch --threads 1",
    "plain-jax": "plain Keras, JAX backend",
    "db-tf": "digitbench, TensorFlow (default: batch 64, steps_per_execution 16)",
    "db-tf-spe1": "digitbench, TensorFlow, --steps-per-execution 1 (as plain Keras)",
    "db-tf-1t": "digitbench, TensorFlow, --threads 1",
    "db-tf-b128": "digitbench, TensorFlow, batch 128",
    "db-torch": "digitbench --backend torch",
    "db-jax": "digitbench --backend jax",
    "db-tf-2w": "digitbench default --workers 2 x 1 thread: two trainings at once (seeds 0, 1); "
                "images/s is their sum, CPU-s per training",
    "db-tf-final-2w": "digitbench default --workers 2 x 1 thread: the LeNet final beside a logistic "
                      "regression (max_iter 10) that ends first, then alone in its 1-thread worker",
}


# ---------------------------------------------------------------- one configuration (a child)


def fashion_arrays() -> tuple[np.ndarray, ...]:
    """Fashion-MNIST train/test images and labels read straight from the IDX files."""
    def idx(name: str, offset: int) -> np.ndarray:
        return np.frombuffer(gzip.decompress((FASHION / f"{name}.gz").read_bytes()), np.uint8,
                             offset=offset)

    return (idx("train-images-idx3-ubyte", 16).reshape(-1, 28, 28),
            idx("train-labels-idx1-ubyte", 8).astype(np.int64),
            idx("t10k-images-idx3-ubyte", 16).reshape(-1, 28, 28),
            idx("t10k-labels-idx1-ubyte", 8).astype(np.int64))


def plain_fit(epochs: int, batch_size: int = 64, jit_compile: bool | str = "auto",
              steps_per_execution: int = 1, probe: bool = False) -> dict:
    """The plain Keras script: the same network, data and epochs, Keras' defaults otherwise."""
    x, y, xt, yt = fashion_arrays()
    x = (x.astype(np.float32) / 255.0)[..., None]
    xt = (xt.astype(np.float32) / 255.0)[..., None]
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(6, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(16, 5, padding="valid", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(120, activation="relu"),
        layers.Dropout(0.0),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    epoch_wall, epoch_cpu, steps = [], [], []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = (time.perf_counter(), time.process_time())
            self.last = self.t[0]

        def on_train_batch_end(self, batch, logs=None):  # only with probe: wall time of each step
            now = time.perf_counter()
            steps.append(now - self.last)
            self.last = now

        def on_epoch_end(self, epoch, logs=None):
            epoch_wall.append(round(time.perf_counter() - self.t[0], 2))
            epoch_cpu.append(round(time.process_time() - self.t[1], 2))

    cpu0, wall0 = time.process_time(), time.perf_counter()
    clock = Clock()
    if not probe:
        clock.on_train_batch_end = keras.callbacks.Callback.on_train_batch_end.__get__(clock)
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[clock])
    fit_cpu, fit_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    accuracy = float(np.mean(model.predict(xt, batch_size=1000, verbose=0).argmax(1) == yt))
    return {"fit_cpu_s": fit_cpu, "fit_wall_s": fit_wall, "test_accuracy": accuracy,
            "n_train": len(x), "epoch_wall": epoch_wall, "epoch_cpu": epoch_cpu,
            "backend": keras.backend.backend(), **(stall_summary(steps) if probe else {})}


def stall_summary(steps: list[float]) -> dict:
    """Steps of more than 50 ms (a step takes about 5 ms here): how many, their total, the longest."""
    steps = np.array(steps[1:])  # the first traces the step function
    long = steps[steps > 0.05]
    return {"steps": len(steps), "median_step_ms": round(1000 * float(np.median(steps)), 2),
            "stalls": len(long), "stall_s": round(float(long.sum()), 2),
            "longest_step_s": round(float(steps.max()), 3)}


def digitbench_fit(epochs: int, batch_size: int, backend: str, threads: int, out: Path,
                   flags: tuple[str, ...] = (), workers: int = 1, seeds: int | None = None,
                   models: str = "lenet-relu") -> dict:
    """``digitbench run`` in a child process, its LeNet fit read back from results.csv. With
    ``workers`` above 1 and ``seeds`` (default: as many as workers) above 1, as many seeds train at
    once, one per worker: images/s is the sum of their rates (reported as the wall time one training
    of n_train x epochs would take at that rate), CPU-s the mean per training. Other ``models`` run
    beside it (a logistic regression: at most 10 iterations, so that it ends first)."""
    import pandas as pd

    params = json.dumps({**LENET5, "epochs": epochs, "batch_size": batch_size,
                         **({"max_iter": 10} if "logreg" in models else {})})
    subprocess.run(
        [sys.executable, "-m", "digitbench", "run", "--dataset", "fashion-mnist", "--models",
         models, "--tuner", "none", "--params", params, "--threads", str(threads),
         "--workers", str(workers), "--seeds", str(seeds or workers), "--backend", backend,
         "--latency-batch", "100", "--out", str(out), "--overwrite", *flags],
        check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rows = pd.read_csv(out / "results.csv")
    rows = rows[rows["model"] == "lenet-relu"]
    n_train = int(rows["n_train"].iloc[0])
    rate = float((n_train * epochs / rows["fit_wall_s"]).sum())
    return {"fit_cpu_s": float(rows["fit_cpu_s"].mean()), "fit_wall_s": n_train * epochs / rate,
            "test_accuracy": float(rows["test_accuracy"].mean()), "n_train": n_train,
            "trainings": len(rows), "backend": json.loads(rows["settings"].iloc[0]).get("backend")}


def child_main(name: str, epochs: int, batch: int, threads: int) -> None:
    kind, backend, env, options = CONFIGS[name]
    os.environ.update(env)
    if kind == "plain":
        os.environ["KERAS_BACKEND"] = backend
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        result = plain_fit(epochs, **{"batch_size": batch, **options})
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = digitbench_fit(epochs, options.get("batch_size", batch), backend,
                                    options.get("threads", threads), Path(tmp) / "run",
                                    tuple(options.get("flags", ())), options.get("workers", 1),
                                    options.get("seeds"), options.get("models", "lenet-relu"))
    print("RESULT " + json.dumps(result))


def run_child(name: str, epochs: int, batch: int, threads: int) -> dict:
    """One configuration in a fresh process; adds the whole process's CPU and wall seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", name, "--epochs", str(epochs),
                           "--batch", str(batch), "--threads", str(threads)],
                          cwd=ROOT, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1][7:])
    result["process_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    result["process_wall_s"] = time.perf_counter() - wall0
    return result


# ---------------------------------------------------------------- the machine's arithmetic


def matmul_gflops(threads: int, n: int = 2048, repeats: int = 7) -> float:
    """Best float32 matmul rate of numpy's BLAS with ``threads`` threads, in GFLOP/s (the best of
    ``repeats``: what the cores can do when the other work on the machine leaves them alone)."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    with threadpool_limits(threads):
        a @ b
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def lenet_flops_per_image(f1: int = 6, f2: int = 16, k: int = 5, dense: int = 120) -> float:
    """Training FLOPs per image: 3 x 2 x the forward multiply-adds of the conv and dense layers."""
    conv1 = 28 * 28 * f1 * k * k * 1            # "same" padding
    side = (14 - k + 1)                          # after pooling, "valid" conv
    conv2 = side * side * f2 * k * k * f1
    flat = (side // 2) ** 2 * f2
    macs = conv1 + conv2 + flat * dense + dense * 10
    return 3 * 2 * macs


# ---------------------------------------------------------------- report


def table(results: dict[str, list[dict]], baseline: str, gflops: float, flops: float) -> list[str]:
    lines = ["| configuration | what | fit CPU-s / epoch | images/s | GFLOP/s | % of matmul | "
             "CPU-s vs baseline | images/s vs baseline | test accuracy | runs |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    base = summary(results[baseline])
    for name, runs in results.items():
        s = summary(runs)
        rate = s["images_per_s"]
        lines.append(
            f"| `{name}` | {NOTES.get(name, '')} | {s['cpu_per_epoch']:.1f} | {rate:,.0f} | "
            f"{rate * flops / 1e9:.1f} | "
            f"{100 * rate * flops / 1e9 / gflops:.0f}% | {s['cpu_per_epoch'] / base['cpu_per_epoch']:.2f} | "
            f"{rate / base['images_per_s']:.2f}x | {100 * s['accuracy']:.2f}% | {len(runs)} |")
    for name, runs in results.items():
        probed = [r for r in runs if "stalls" in r]
        if probed:
            lines.append("")
            lines.append(f"`{name}`, per run (each step timed, {probed[0]['steps']} steps): " + "; ".join(
                f"epochs {r['epoch_wall']} s wall / {r['epoch_cpu']} CPU-s, median step "
                f"{r['median_step_ms']} ms, {r['stalls']} steps over 50 ms ({r['stall_s']} s in all), "
                f"longest {r['longest_step_s']} s" for r in probed) + ".")
    return lines


def summary(runs: list[dict]) -> dict:
    epochs = runs[0]["epochs"]
    return {
        "cpu_per_epoch": statistics.median(r["fit_cpu_s"] / epochs for r in runs),
        "images_per_s": statistics.median(r["n_train"] * epochs / r["fit_wall_s"] for r in runs),
        "accuracy": statistics.median(r["test_accuracy"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="plain-tf,db-tf,plain-torch,db-torch,plain-jax,db-jax")
    parser.add_argument("--baseline", default="plain-tf")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write every run as JSON here")
    parser.add_argument("--hog", type=int, default=0, metavar="N",
                        help="keep N busy-looping processes running beside each configuration "
                             "(other work on the machine, made repeatable)")
    parser.add_argument("--write", type=Path, help="update this markdown file's section")
    parser.add_argument("--section", default="LeNet-5 training rate", help="its title")
    parser.add_argument("--from-json", type=Path, help="tabulate the runs of an earlier --json")
    parser.add_argument("--matmul", type=float, help="GFLOP/s to use instead of measuring")
    parser.add_argument("--note", default="", help="a sentence added to the section's introduction")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args.child, args.epochs, args.batch, args.threads)
    names = args.configs.split(",")
    unknown = set(names) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configurations {sorted(unknown)}; known: {', '.join(CONFIGS)}")
    saved = json.loads(args.from_json.read_text()) if args.from_json else {}
    gflops = {int(t): g for t, g in saved.get("_matmul_gflops", {}).items()}
    if args.matmul:
        gflops[args.threads] = args.matmul
    gflops = gflops or {t: matmul_gflops(t) for t in sorted({1, args.threads})}
    flops = lenet_flops_per_image(**{"f1": 6, "f2": 16, "k": 5, "dense": 120})
    print(f"matmul float32: {', '.join(f'{g:.0f} GFLOP/s on {t} thread(s)' for t, g in gflops.items())}; "
          f"LeNet-5 training: {flops / 1e6:.2f} MFLOP per image", flush=True)
    results: dict[str, list[dict]] = {name: [] for name in names}
    if args.from_json:
        results = {n: r for n, r in saved.items() if n in names}
        args.repeats = max(len(r) for r in results.values())
        args.epochs = results[names[0]][0]["epochs"]
    for round_ in range(0 if args.from_json else args.repeats):
        for name in names:
            hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    for _ in range(args.hog)]
            try:
                result = run_child(name, args.epochs, args.batch, args.threads)
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()
            result["epochs"] = args.epochs
            results[name].append(result)
            extra = "".join(f" {k} {result[k]}" for k in (
                "epoch_wall", "epoch_cpu", "median_step_ms", "stalls", "stall_s", "longest_step_s")
                if k in result)
            print(f"round {round_ + 1} {name}: fit {result['fit_cpu_s']:.1f} CPU-s "
                  f"{result['fit_wall_s']:.1f} s wall, accuracy {result['test_accuracy']:.4f}{extra}",
                  flush=True)
            if args.json:
                args.json.write_text(json.dumps({"_matmul_gflops": gflops, **results}, indent=1))
    lines = table(results, args.baseline if args.baseline in results else names[0],
                  gflops[args.threads], flops)
    print("\n".join(lines))
    if args.write:
        from results_md import machine, versions, write_section

        load = os.getloadavg()
        intro = [
            f"LeNet-5 (6/16 filters of 5x5, 120-wide dense, ReLU, Adam, batch {args.batch} unless "
            "said) on the "
            f"60,000 Fashion-MNIST training images, {args.epochs} epochs a run, {args.threads} threads, "
            f"{args.repeats} round(s), interleaved unless said (medians). Baseline: `{args.baseline}`. "
            + (f"{args.hog} busy-looping process(es) ran beside every configuration. " if args.hog else "")
            +
            f"Matmul (numpy float32, {args.threads} threads): {gflops[args.threads]:.0f} GFLOP/s; "
            f"training costs {flops / 1e6:.2f} MFLOP per image. Load average at the end: "
            f"{load[0]:.1f} (other work shared the machine). {args.note}".rstrip(), ""]
        write_section(args.write, args.section, intro + lines,
                      versions("tensorflow-cpu", "keras", "torch", "jax", "numpy"), machine())


if __name__ == "__main__":
    main()
