"""The tables ``benchmarks/speedrun.py`` writes, from measurements given to them (no training)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _speedrun():
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("speedrun_script", BENCHMARKS / "speedrun.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plain() -> dict:
    return {"macs": 1_000_000, "n_train": 54_000, "epoch_cpu": [6.0, 5.0], "check_cpu": 0.3,
            "convert_cpu": 0.1}


def test_where_the_time_goes_gives_the_share_outside_the_steps():
    speedrun = _speedrun()
    stopped = {"net": {"cpu_s_to_target": [9.0, 11.0, 10.0], "fit_cpu_s": [12.0, 12.5, 12.0],
                       "epochs_to_target": [2, 2, 2]}}
    [*_, row] = speedrun.where_the_time_goes({"net": _plain()}, {"net": _plain()}, stopped, 100.0)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[-3:] == ["10.00", "12.00", f"{100 * (1 - 5.0 * 2 / 12.0):.0f}%"]


def test_where_the_time_goes_says_never_when_no_seed_reached_the_target():
    speedrun = _speedrun()
    stopped = {"net": {"cpu_s_to_target": [None, None], "fit_cpu_s": [30.0, 32.0],
                       "epochs_to_target": [None, None]}}
    [*_, row] = speedrun.where_the_time_goes({"net": _plain()}, {"net": _plain()}, stopped, 100.0)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[-3:] == ["never", "31.00", "—"]
