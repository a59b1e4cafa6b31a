"""Runs logged to MLflow (``--mlflow``), read back through MLflow's own client from a real tracking
server started here on 127.0.0.1 (a temporary database and artifact root), and from a local folder
without a server: one parent run per run folder, a nested run per final with the metrics of
results.csv, the report, a saved LeNet that ``mlflow.pyfunc.load_model`` loads and that predicts
with its recorded accuracy; each final logged once across ``kill -9`` and ``--resume``; a server
that is down costs no result, and ``report --mlflow`` logs what is missing later, once."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("mlflow")  # noqa: E402 - the dev extra installs it; `make test` has it
from mlflow import MlflowClient  # noqa: E402

from digitbench.benchmark.commands.main import main  # noqa: E402
from digitbench.reports import mlflow_fields as fields  # noqa: E402
from digitbench.reports import mlflow_sync  # noqa: E402

#: The columns a nested run's metrics must equal, as results.csv holds them.
MEASURED = ("test_accuracy", "fit_cpu_s", "fit_wall_s", "predict_cpu_s", "predict_wall_s",
            "latency_ms_b1", "latency_ms_bN")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 with a SQLite store and an artifact root in a temporary
    folder; its URL once it answers /health. Stopped (its whole process group) at the end."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed in the teardown
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        stop(process)
        log.close()


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, then SIGKILL to whatever of it is left."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_command(run_dir: Path, tiny_idx: Path, target: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "digitbench", "run", "--dataset", f"idx:{tiny_idx}", "--no-onnx",
            "--workers", "1", "--out", str(run_dir), "--cache-dir", str(run_dir.parent / "cache"),
            "--mlflow", target, *extra]


def children(target: str, run_dir: Path) -> tuple[list, list]:
    """The parent runs of ``run_dir`` and their nested runs, read through MLflow's client."""
    uri = mlflow_sync.tracking(target)[0]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(mlflow_sync.EXPERIMENT)
    if experiment is None or not (run_dir / "results.csv").exists():
        return [], []
    experiment = experiment.experiment_id
    folder = fields.folder_id(pd.read_csv(run_dir / "results.csv", nrows=1).iloc[0], str(run_dir))
    parents = client.search_runs([experiment], f"tags.`{fields.FOLDER_TAG}` = '{folder}'")
    nested = [r for p in parents
              for r in client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{p.info.run_id}'")]
    return parents, nested


def load_model(uri: str, model_uri: str):
    """``mlflow.pyfunc.load_model`` of a model logged at tracking ``uri``; MLflow's tracking URI is
    the process's again after."""
    import mlflow

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        return mlflow.pyfunc.load_model(model_uri)
    finally:
        mlflow.set_tracking_uri(before)


def finals_of(run_dir: Path) -> pd.DataFrame:
    import digitbench

    return digitbench.load_results(run_dir, kind="final")


def test_a_run_is_one_parent_with_a_nested_run_per_final_and_a_lenet_that_predicts(
        server: str, tmp_path: Path, tiny_idx: Path, real_digits) -> None:
    run_dir = tmp_path / "run"
    done = subprocess.run(run_command(run_dir, tiny_idx, server, "--models", "logreg,lenet-relu",
                                      "--params", '{"epochs": 1}', "--save-models"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "warning: MLflow" not in done.stderr
    parents, nested = children(server, run_dir)
    finals = finals_of(run_dir)
    assert len(parents) == 1 and len(finals) == 2
    assert sorted(fields.row_identity(r) for _, r in finals.iterrows()) == \
        sorted(r.data.tags[fields.ROW_TAG] for r in nested), "one nested run per final, none twice"
    client = MlflowClient(server)
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.info.run_name == "run"
    assert "report.md" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    by_row = {r.data.tags[fields.ROW_TAG]: r for r in nested}
    for _, row in finals.iterrows():
        logged = by_row[fields.row_identity(row)]
        assert logged.info.status == "FINISHED"
        assert {c: logged.data.metrics[c] for c in MEASURED} == {c: row[c] for c in MEASURED}
        assert logged.data.params["dataset"] == row["dataset"] and logged.data.params["seed"] == "0"
        assert logged.data.tags["digitbench.cpu"] == row["machine"]["cpu"]
    lenet = finals[finals["model"] == "lenet-relu"].iloc[0]
    history = client.get_metric_history(by_row[fields.row_identity(lenet)].info.run_id, "history/accuracy")
    assert [m.step for m in history] == [1] and history[0].value == lenet["history"]["accuracy"][0]

    from digitbench.models.lenet import as_input

    model = load_model(server, by_row[fields.row_identity(lenet)].data.tags[mlflow_sync.MODEL_TAG])
    test = real_digits.images[600:800], real_digits.labels[600:800]  # the tiny folder's test part
    predicted = np.asarray(model.predict(as_input(test[0]))).argmax(axis=1)
    assert (predicted == test[1]).mean() == lenet["test_accuracy"]


def test_a_run_killed_after_its_first_logged_final_and_resumed_logs_each_final_once(
        server: str, tmp_path: Path, tiny_idx: Path, plugin_path: Path) -> None:
    run_dir = tmp_path / "run"
    command = run_command(run_dir, tiny_idx, server, "--model-path", "tinyplugin:EpochModel",
                          "--models", "epoch-model", "--seeds", "4",
                          "--params", '{"seconds_per_epoch": 0.3}')
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not (run_dir / "results.csv").exists() or not any(
            fields.COMPLETE_TAG in r.data.tags for r in children(server, run_dir)[1]):
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"no final was logged: {child.communicate()[1][-2000:]}")
        time.sleep(0.1)
    child.kill()  # SIGKILL
    child.communicate(timeout=60)
    assert len(finals_of(run_dir)) < 4, "the kill must land before the last final"
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    parents, nested = children(server, run_dir)
    finals = finals_of(run_dir)
    assert len(parents) == 1 and len(finals) == 4
    assert sorted(r.data.tags[fields.ROW_TAG] for r in nested) == \
        sorted(fields.row_identity(r) for _, r in finals.iterrows()), "each final logged once"
    assert parents[0].info.status == "FINISHED"


def test_a_server_that_is_down_costs_no_result_and_report_logs_the_rest_once(
        server: str, tmp_path: Path, tiny_idx: Path, plugin_path: Path) -> None:
    """Also: the paired verdict of what tuning bought is on the parent (poor-defaults: tuning always
    changes its defaults, which are refit beside it on the same seed)."""
    run_dir = tmp_path / "run"
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = subprocess.run(run_command(run_dir, tiny_idx, down, "--model-path", "tinyplugin:PoorDefaults",
                                      "--models", "poor-defaults", "--tuner", "optuna", "--trials", "3"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    warnings = [line for line in done.stderr.splitlines() if "warning: MLflow" in line]
    assert len(warnings) == 1, done.stderr[-3000:]
    assert f"digitbench report {run_dir} --mlflow {down}" in warnings[0]
    finals = finals_of(run_dir)
    assert set(finals["tuner"]) == {"optuna", "none"} and (run_dir / "report.md").exists()
    for _ in range(2):  # the second time logs nothing more
        assert main(["report", str(run_dir), "--mlflow", server]) == 0
        parents, nested = children(server, run_dir)
        assert len(parents) == 1 and len(nested) == len(finals)
        assert sorted(r.data.tags[fields.ROW_TAG] for r in nested) == \
            sorted(fields.row_identity(r) for _, r in finals.iterrows())
    verdict = {k.rsplit("/", 1)[1]: v for k, v in parents[0].data.metrics.items()
               if k.startswith("tuning_bought/") and "/poor-defaults/optuna/" in k}
    primary = finals[finals["refit_trial"].isna()].set_index("tuner")["test_accuracy"]
    assert verdict["gain"] == pytest.approx(primary["optuna"] - primary["none"])
    assert 0 < verdict["p_seed0"] <= 1 and verdict["tuning_cpu_s"] > 0


def test_a_nested_run_cut_short_is_logged_again(server: str, tmp_path: Path, tiny_idx: Path) -> None:
    """A nested run without the complete tag (its logging killed midway) is replaced, not kept
    beside the new one."""
    run_dir = tmp_path / "run"
    done = subprocess.run(run_command(run_dir, tiny_idx, server, "--models", "logreg"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(server)
    (parent,), (logged,) = children(server, run_dir)
    client.delete_tag(logged.info.run_id, fields.COMPLETE_TAG)  # as a kill mid-logging leaves it
    assert main(["report", str(run_dir), "--mlflow", server]) == 0
    _, nested = children(server, run_dir)
    assert len(nested) == 1 and nested[0].info.run_id != logged.info.run_id
    assert client.get_run(logged.info.run_id).info.lifecycle_stage == "deleted"


def test_a_local_folder_is_a_store_without_a_server_and_trials_are_logged_when_asked(
        tmp_path: Path, tiny_idx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    done = subprocess.run(run_command(run_dir, tiny_idx, "./mlruns", "--models", "logreg", "--tuner",
                                      "optuna", "--trials", "2", "--mlflow-trials", "--save-models"),
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    store = str(tmp_path / "mlruns")
    assert (tmp_path / "mlruns" / mlflow_sync.DATABASE).exists()
    import digitbench

    rows = digitbench.load_results(run_dir)
    parents, nested = children(store, run_dir)
    assert len(parents) == 1 and (rows["kind"] == "trial").sum() == 2
    assert sorted(r.data.tags[fields.ROW_TAG] for r in nested) == \
        sorted(fields.row_identity(r) for _, r in rows.iterrows()), "every trial and final, once"
    assert main(["report", str(run_dir), "--mlflow", "mlruns"]) == 0
    assert len(children(store, run_dir)[1]) == len(rows), "logged once"

    from digitbench.models.baselines import pixels

    final = next(r for r in nested if r.data.tags["digitbench.kind"] == "final")
    model = load_model(mlflow_sync.tracking(store)[0], final.data.tags[mlflow_sync.MODEL_TAG])
    labels = model.predict(pixels(np.zeros((3, 28, 28), np.uint8)))
    assert labels.shape == (3,) and set(labels) <= set(range(10)), "the scikit-learn flavour predicts digits"


def test_mlflow_not_installed_is_one_line_before_any_work(tmp_path: Path, capsys,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real(name, *a))
    code = main(["run", "--models", "logreg", "--out", str(tmp_path / "run"), "--mlflow", "http://x:1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "--mlflow" in err[0] and "pip install 'digitbench[mlflow]'" in err[0]
    assert not (tmp_path / "run").exists()
