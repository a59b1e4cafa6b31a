"""Two runs with the same seeds and threads, side by side, give identical results files, timings aside."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from digitbench.benchmark.store import load_results

#: Columns that measure time or memory, or name the invocation: allowed to differ between runs.
TIMING = ["run_id", "utc", "fit_cpu_s", "fit_wall_s", "predict_cpu_s", "predict_wall_s", "latency_ms_b1",
          "latency_ms_bN", "onnx_ms_b1_p50", "onnx_ms_b1_p99", "cpu_s_to_target", "wall_s_to_target",
          "rss_mb", "process_cpu_s", "command", "settings"]
TUNING_TIMING = {"cpu_s_used", "refit_cost"}  # refit_cost: the refit trial's measured CPU


def _start(out: Path, tiny_idx: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "digitbench", "run", "--dataset", f"idx:{tiny_idx}",
           "--models", "logreg,lenet-relu", "--tuner", "optuna", "--trials", "2", "--cv", "2",
           "--epochs", "2", "--params", '{"dense_units": 64}', "--seeds", "1", "--threads", "2",
           "--latency-batch", "50", "--deterministic", "--out", str(out),
           # which other trials are cheapest is measured CPU, not a result: the extra finals are
           # left out here (their refits are as deterministic as any final)
           "--no-cheap-finals", "--front-finals", "0"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONHASHSEED": "0"})


def _run_side_by_side(outs: list[Path], tiny_idx: Path) -> None:
    """Both runs at once: each shares the cores with the other, which must not change a result."""
    runs = [_start(out, tiny_idx) for out in outs]
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-2000:]


def _comparable(run_dir: Path) -> pd.DataFrame:
    frame = load_results(run_dir / "results.csv").drop(columns=TIMING)
    frame["tuning"] = [json.dumps({k: v for k, v in json.loads(t).items() if k not in TUNING_TIMING},
                                  sort_keys=True) if isinstance(t, str) else t for t in frame["tuning"]]
    return frame


def test_same_seed_same_results(tmp_path: Path, tiny_idx: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _run_side_by_side([first, second], tiny_idx)
    a, b = _comparable(first), _comparable(second)
    tuned = a[a["tuner"] != "none"]
    assert len(tuned) == 2 * (2 + 1)    # 2 models x (2 trials + 1 final)
    # and a final of each model's defaults where its tuning chose something else (--refit-defaults)
    assert len(a) - len(tuned) <= 2 and set(a.loc[a["tuner"] == "none", "trial"].astype(str)) <= {"final"}
    pd.testing.assert_frame_equal(a, b)
    for rel in a["predictions"].dropna():
        with np.load(first / rel) as x, np.load(second / rel) as y:
            assert np.array_equal(x["y_pred"], y["y_pred"])
    # the runs really differ in what may differ, and the report says they were deterministic
    assert load_results(first / "results.csv")["run_id"].iloc[0] != \
        load_results(second / "results.csv")["run_id"].iloc[0]
    settings = json.loads(load_results(first / "results.csv")["settings"].iloc[0])
    assert settings["deterministic"] is True
    report = (first / "report.md").read_text(encoding="utf-8")
    assert re.search(r"\| deterministic ops \(--deterministic\) +\| yes ", report), "the settings table"
