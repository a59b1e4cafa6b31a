"""``run --target ACC``: each final that trains in epochs records the training time until its
validation accuracy first reached ACC (validation time left out), and the report ranks the models by
MLPerf's rule (at least 5 seeds, the fastest and slowest dropped)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from digitbench.benchmark.commands.main import main
from digitbench.benchmark.execution.jobs import Job, Kind
from digitbench.benchmark.execution.tasks import EpochReporter
from digitbench.reports.format import num
from digitbench.reports.time_to_target import mlperf_mean


class Silent:
    def send(self, message):
        return False


def test_the_time_to_target_leaves_the_reported_validation_time_out() -> None:
    job = Job(dataset="d", model="m", tuner="none", kind=Kind.FINAL, trial=None, seed=0,
              params={"epochs": 3}, epochs=3, target=0.9)
    reporter = EpochReporter(Silent(), job).start()
    reporter.cpu0 -= 10.0  # as if 10 CPU-s and 10 s had passed since fit began
    reporter.wall0 -= 10.0
    reporter(1, {"val_accuracy": 0.8}, val_cpu_s=1.0, val_wall_s=2.0)
    assert reporter.reached == {}
    reporter(2, {"val_accuracy": 0.91}, val_cpu_s=4.0, val_wall_s=3.0)
    reached = reporter.reached
    assert 6.0 <= reached["cpu_s_to_target"] < 6.5 and 7.0 <= reached["wall_s_to_target"] < 7.5
    reporter(3, {"val_accuracy": 0.95}, val_cpu_s=5.0, val_wall_s=4.0)
    assert reporter.reached == reached, "the first epoch that reached it counts"
    assert reporter.recorded_history() == {"val_accuracy": [0.8, 0.91, 0.95]}


def test_the_time_to_target_leaves_the_models_initialisation_out_and_records_it() -> None:
    """MLPerf's clock starts when the training data is first touched: the CPU- and wall-seconds a
    model says it spent initialising before that (``init_cpu_s`` / ``init_wall_s``) are left out
    too, and the CPU-seconds are kept beside the time to target."""
    job = Job(dataset="d", model="m", tuner="none", kind=Kind.FINAL, trial=None, seed=0,
              params={"epochs": 2}, epochs=2, target=0.9)
    reporter = EpochReporter(Silent(), job).start()
    reporter.cpu0 -= 10.0
    reporter.wall0 -= 10.0
    reporter(1, {"val_accuracy": 0.95}, val_cpu_s=1.0, val_wall_s=1.0, init_cpu_s=2.5, init_wall_s=3.0)
    reached = reporter.reached
    assert 6.5 <= reached["cpu_s_to_target"] < 7.0 and 6.0 <= reached["wall_s_to_target"] < 6.5
    assert reached["init_cpu_s"] == 2.5


class Recording:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send(self, message):
        self.sent.append(message)
        return False


def test_checks_within_an_epoch_count_toward_the_target_only() -> None:
    """With a target the model is asked for four checks an epoch; a check at epoch 1.25 can reach
    the target, but only whole epochs go to the history and to the coordinator."""
    job = Job(dataset="d", model="m", tuner="none", kind=Kind.FINAL, trial=None, seed=0,
              params={"epochs": 3}, epochs=3, target=0.9)
    channel = Recording()
    reporter = EpochReporter(channel, job).start()
    assert reporter.checks_per_epoch == 4
    trial = Job(dataset="d", model="m", tuner="optuna", kind=Kind.TRIAL, trial=0, seed=0, params={})
    assert EpochReporter(channel, trial).checks_per_epoch == 1, "trials: one check an epoch"
    reporter.cpu0 -= 10.0
    reporter(0.5, {"val_accuracy": 0.85}, val_cpu_s=1.0, val_wall_s=1.0)
    reporter(1, {"val_accuracy": 0.88, "loss": 0.4}, val_cpu_s=1.5, val_wall_s=1.5)
    assert reporter.reached == {}
    reporter(1.25, {"val_accuracy": 0.91}, val_cpu_s=2.0, val_wall_s=2.0)
    reached = reporter.reached
    assert reached["epochs_to_target"] == 1.25 and 8.0 <= reached["cpu_s_to_target"] < 8.5
    reporter(2, {"val_accuracy": 0.93, "loss": 0.3}, val_cpu_s=2.5, val_wall_s=2.5)
    assert reporter.reached == reached
    assert reporter.recorded_history() == {"val_accuracy": [0.88, 0.93], "loss": [0.4, 0.3]}
    assert [m.epoch for m in channel.sent] == [1, 2]


def test_target_checks_one_checks_at_the_end_of_each_epoch_only() -> None:
    """``--target-checks 1`` (the speedrun preset's): the model is asked for no check within an
    epoch, so a recipe whose schedule ends with its epochs is judged at the end of it."""
    job = Job(dataset="d", model="m", tuner="none", kind=Kind.FINAL, trial=None, seed=0,
              params={"epochs": 2}, epochs=2, target=0.9, stop_at_target=True, target_checks=1)
    reporter = EpochReporter(Recording(), job).start()
    assert reporter.checks_per_epoch == 1
    assert reporter(1, {"val_accuracy": 0.85}) is False
    assert reporter(2, {"val_accuracy": 0.93}) is True and reporter.reached["epochs_to_target"] == 2


def test_mlperf_mean_drops_the_fastest_and_the_slowest_of_at_least_five() -> None:
    assert mlperf_mean([10.0, 1.0, 4.0, 5.0, 6.0]) == pytest.approx(5.0)
    assert mlperf_mean([1.0, 2.0, 3.0, 4.0]) is None


def test_run_with_a_target_records_and_ranks_the_time_to_it(tmp_path: Path, tiny_idx: Path,
                                                            plugin_path: Path) -> None:
    # epoch-model reports val_accuracy = quality * epoch / epochs: 0.5 * 4/6 = 0.333 first reaches 0.3
    assert main(["run", "--dataset", f"idx:{tiny_idx}", "--model-path", "tinyplugin:EpochModel",
                 "--model-path", "tinyplugin:NearestCentroid", "--models", "epoch-model,nearest-centroid",
                 "--seeds", "5", "--target", "0.3", "--out", str(tmp_path / "run"),
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    frame = pd.read_csv(tmp_path / "run" / "results.csv")
    epochs = frame[frame["model"] == "epoch-model"]
    assert len(epochs) == 5 and epochs["cpu_s_to_target"].notna().all()
    assert (epochs["cpu_s_to_target"] <= epochs["fit_cpu_s"] + 0.01).all()
    assert (epochs["n_train"] == 540).all() and (epochs["n_val"] == 60).all(), "the training part only"
    one_go = frame[frame["model"] == "nearest-centroid"]
    assert one_go["cpu_s_to_target"].isna().all() and (one_go["n_train"] == 600).all()
    report = (tmp_path / "run" / "report.md").read_text()
    section = report.split("### Time to 30.00% validation accuracy", 1)[1].split("###", 1)[0]
    assert "nearest-centroid" not in section, "models that train in one go have no epochs to time"
    [row] = [line.split("|") for line in section.splitlines() if "epoch-model" in line]
    assert [c.strip() for c in row[4:6]] == ["5", "5"], "5 seeds, all reached it"
    assert row[6].strip() == num(mlperf_mean(list(epochs["cpu_s_to_target"])))


@pytest.mark.parametrize(("checks", "reached_at"), [(None, 3.75), ("2", 4.0), ("1", 4.0)])
def test_target_checks_set_how_finely_the_time_to_target_is_read(
        tmp_path: Path, tiny_idx: Path, plugin_path: Path, checks: str | None, reached_at: float) -> None:
    # val_accuracy = 0.5 * epoch / 6 first reaches 0.3 at epoch 3.6: read at 3.75 by four checks an
    # epoch (the default), at 4 by two or one
    flags = ["--target-checks", checks] if checks else []
    assert main(["run", "--dataset", f"idx:{tiny_idx}", "--model-path", "tinyplugin:EpochModel",
                 "--models", "epoch-model", "--target", "0.3", *flags, "--out", str(tmp_path / "run"),
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    frame = pd.read_csv(tmp_path / "run" / "results.csv")
    assert list(frame["epochs_to_target"]) == [reached_at]
    assert json.loads(frame["history"].iloc[0])["val_accuracy"] == pytest.approx(
        [0.5 * e / 6 for e in range(1, 7)], abs=1e-4), "whole epochs only in the history"
    report = (tmp_path / "run" / "report.md").read_text()
    [row] = [line for line in report.splitlines() if "(--target-checks)" in line]
    assert row.split("|")[2].strip() == (checks or "4")
    said = "at the end of each epoch" if checks == "1" else f"validation part {checks or 4} times an epoch"
    assert said in report.split("### Time to 30.00% validation accuracy", 1)[1]


def test_with_stop_at_target_the_reporter_asks_the_model_to_stop_once_reached() -> None:
    job = Job(dataset="d", model="m", tuner="none", kind=Kind.FINAL, trial=None, seed=0,
              params={"epochs": 3}, epochs=3, target=0.9, stop_at_target=True)
    reporter = EpochReporter(Recording(), job).start()
    assert reporter(0.5, {"val_accuracy": 0.85}) is False
    assert reporter(0.75, {"val_accuracy": 0.92}) is True, "a check within an epoch stops it too"
    assert reporter.reached["epochs_to_target"] == 0.75
    going_on = Job(dataset="d", model="m", tuner="none", kind=Kind.FINAL, trial=None, seed=0,
                   params={"epochs": 3}, epochs=3, target=0.9)
    assert EpochReporter(Recording(), going_on).start()(1, {"val_accuracy": 0.95}) is False


def test_stop_at_target_needs_a_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--dataset", "mnist-5k", "--stop-at-target", "--out", str(tmp_path / "run")]) == 2
    assert "--stop-at-target: needs a target accuracy" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_speedrun_preset_stops_lenet_speedrun_at_99_percent() -> None:
    from digitbench.benchmark.config import build_config
    from digitbench.models import registry

    config = build_config({"preset": "speedrun"})
    assert config.models == ("lenet-speedrun",) and config.seeds == 5
    assert config.target == 0.99 and config.stop_at_target and config.tuners == ("none",)
    assert config.target_checks == 1, "checked at the end of each epoch only"
    assert (config.workers, config.threads) == (1, 1), "one training at a time, on one thread"
    entry = registry.get("lenet-speedrun")
    assert entry.class_path == registry.get("lenet-relu").class_path, "a variant of the LeNet class"
    assert entry.defaults()["epochs"] == 2 and entry.defaults()["lr_schedule"] == "one-cycle"
