"""The report's Run section (settings, wall and CPU totals) and its failed and pruned jobs."""

from __future__ import annotations

import json
from pathlib import Path

from test_report import _row, table

from digitbench.benchmark.results import load_table
from digitbench.benchmark.store import ResultsStore
from digitbench.reports.markdown import write_report
from digitbench.reports.run_info import busy_wall_s, invocations


def _settings(started: str, **extra: object) -> str:
    return json.dumps({"started": started, "preset": "quick", "datasets": ["mnist-5k"],
                       "models": ["logreg", "lenet-relu"], "tuners": ["optuna"], "trials": 8,
                       "budget": 45.0, "seeds": 1, "threads": 2, "cv": 5, **extra})


def make_resumed_run(run_dir: Path) -> Path:
    """Invocation a (00:00:00 to 00:01:40, 50 CPU-s) was killed; b resumed it (00:05:00 to 00:06:00,
    30 CPU-s). Trial 1 of lenet-relu was pruned after 2 of 15 epochs; trial 2 failed."""
    store = ResultsStore(run_dir)
    a = {"run_id": "a", "settings": _settings("2025-01-01T00:00:00+00:00")}
    b = {"run_id": "b", "settings": _settings("2025-01-01T00:05:00+00:00")}
    trial = {"tuner": "optuna", "test_accuracy": None, "predictions": None}
    store.append(_row(store, "mnist-5k", "lenet-relu", "cnn", 0, 0, 5.0, **a, **trial, trial="0",
                      utc="2025-01-01T00:01:00+00:00", process_cpu_s=30.0))
    store.append(_row(store, "mnist-5k", "lenet-relu", "cnn", 0, 0, 5.0, **a, **trial, trial="1",
                      status="pruned", val_accuracy=0.8925, params=json.dumps({"epochs": 15}),
                      history=json.dumps({"val_accuracy": [0.7875, 0.8925]}),
                      utc="2025-01-01T00:01:40+00:00", process_cpu_s=50.0))
    store.append(_row(store, "mnist-5k", "lenet-relu", "cnn", 0, 0, 5.0, **b, **trial, trial="2",
                      status="error", error="ValueError: bad filters", utc="2025-01-01T00:05:30+00:00",
                      process_cpu_s=12.0))
    store.append(_row(store, "mnist-5k", "lenet-relu", "cnn", 0, 2, 20.0, **b, tuner="optuna",
                      tuning=json.dumps({"trials": 8, "budget_cpu_s": 45.0, "trials_run": 3}),
                      utc="2025-01-01T00:06:00+00:00", process_cpu_s=30.0))
    return run_dir


def test_invocations_wall_and_cpu(tmp_path: Path) -> None:
    found = invocations(load_table(make_resumed_run(tmp_path)))
    assert [(i.run_id, i.rows, i.wall_s, i.cpu_s) for i in found] == [("a", 2, 100.0, 50.0),
                                                                      ("b", 2, 60.0, 30.0)]
    assert busy_wall_s(found) == 160.0


def test_overlapping_workers_count_wall_once(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    for run_id, start, end in (("w1", "00:00:00", "00:02:00"), ("w2", "00:01:00", "00:03:00"),
                               ("w3", "00:10:00", "00:10:30")):
        store.append(_row(store, "mnist-5k", "logreg", "baseline", 0, 0, 1.0, run_id=run_id,
                          settings=_settings(f"2025-01-01T{start}+00:00"), utc=f"2025-01-01T{end}+00:00"))
    found = invocations(load_table(tmp_path))
    assert [i.wall_s for i in found] == [120.0, 120.0, 30.0]
    assert busy_wall_s(found) == 180.0 + 30.0          # 00:00-00:03 once, then 30 s


def test_report_run_section_and_pruned_jobs(tmp_path: Path) -> None:
    text = write_report(make_resumed_run(tmp_path)).read_text(encoding="utf-8")
    run = text.split("## Run", 1)[1].split("\n## ", 1)[0]
    assert "| `a`" in run and "| 2025-01-01 00:00:00 |    2 |    100 |  50.0 | —          | abc1234" in run
    assert "| 2025-01-01 00:05:00 |    2 |   60.0 |  30.0 |" in run
    assert "| **total**  " in run and "|    4 |    160 |  80.0 |" in run
    # both invocations had the same settings: one value column
    assert "| preset                        | quick" in run
    assert "| CPU-s per study               | 45.0" in run and "| trials per study              | 8" in run
    assert "| models                        | logreg, lenet-relu" in run
    failed = text.split("## Failed and pruned jobs", 1)[1]
    assert "ValueError: bad filters" in failed
    assert "| `mnist-5k` | lenet-relu | optuna |      1 | 1: epoch 2/15, 89.25%  " in failed
    [details] = table(text, "mnist-5k", "Leaderboard details")
    assert (details["tuning budget"], details["trials run"]) == ("8 trials, 45.0 CPU-s", "3")


def test_settings_differ_between_invocations(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    for run_id, trials in (("a", 8), ("b", 12)):
        store.append(_row(store, "mnist-5k", "logreg", "baseline", 0, 0, 1.0, run_id=run_id,
                          settings=_settings("2025-01-01T00:00:00+00:00", trials=trials)))
    run = write_report(tmp_path).read_text(encoding="utf-8").split("## Run", 1)[1]
    assert "| setting                       | `a`" in run
    assert "| trials per study              | 8" in run and "| 12" in run
