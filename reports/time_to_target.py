"""Time to a target accuracy (``run --target ACC``), ranked with MLPerf's rule.

Each final that trains in epochs records the training CPU- and wall-seconds until its validation
accuracy first reached the target (validation time left out). MLPerf's training rule for a model:
at least 5 seeds, the fastest and the slowest dropped, the mean of the rest. A seed that never
reached the target is named, and counts as not reached, not as fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from digitbench.benchmark.settings import TARGET_CHECKS
from digitbench.reports.format import DASH, md_table, num, pct
from digitbench.reports.section import DatasetScope, Section
from digitbench.reports.table import as_dict

#: Seeds MLPerf's rule needs: the fastest and slowest are dropped from at least this many.
MLPERF_SEEDS = 5


def mlperf_mean(values: list[float]) -> float | None:
    """The mean without the fastest and the slowest, from at least :data:`MLPERF_SEEDS` values."""
    if len(values) < MLPERF_SEEDS:
        return None
    kept = sorted(values)[1:-1]
    return float(np.mean(kept))


def init_part(final: pd.DataFrame) -> str:
    """``: median N CPU-s a final``: the initialisation the finals left out, where recorded."""
    init = final["init_cpu_s"].dropna() if "init_cpu_s" in final else pd.Series(dtype=float)
    return f": median {num(float(init.median()))} CPU-s a final" if len(init) else ""


@dataclass(frozen=True)
class TimeToTarget:
    """The targets the finals were timed to, the validation checks an epoch, the initialisation
    left out, and one record per contender that trains in epochs, fastest first by MLPerf's rule."""

    targets: list[float]
    checks: list[int]
    init: str                     # ": median N CPU-s a final", or "" where not recorded
    rows: list[dict[str, Any]]


def _targets(final: pd.DataFrame) -> set[float]:
    return {as_dict(s).get("target") for s in final["settings"]} - {None}


def asked_for_target(scope: DatasetScope) -> bool:
    """The ``applies`` of the section: a final was run with ``--target``."""
    return scope.has_finals and bool(_targets(scope.final))


def _time_to_target(scope: DatasetScope) -> TimeToTarget:
    final = scope.final
    rows: list[dict[str, Any]] = []
    for (model, tuner), group in final.groupby(["model", "tuner"], sort=False):
        cpu, wall = group["cpu_s_to_target"], group["wall_s_to_target"]
        epochs = group["epochs_to_target"].dropna()
        history = [as_dict(h) for h in group["history"]]
        if not any("val_accuracy" in h for h in history):
            continue  # trains in one go: no epochs to time
        reached = cpu.notna()
        rows.append({
            "model": model, "tuner": tuner, "seeds": len(group), "reached": int(reached.sum()),
            "missed": [str(s) for s in sorted(group.loc[~reached, "seed"])],
            "cpu": mlperf_mean(list(cpu[reached])), "wall": mlperf_mean(list(wall[reached])),
            "cpu_all": float(cpu[reached].mean()) if reached.any() else None,
            "min_test": float(group["test_accuracy"].min()),
            "epochs": float(epochs.median()) if len(epochs) else None,
        })
    rows.sort(key=lambda r: (r["cpu"] is None, r["cpu"] if r["cpu"] is not None else np.inf,
                             r["cpu_all"] if r["cpu_all"] is not None else np.inf))
    checks = sorted({int(as_dict(s).get("target_checks") or TARGET_CHECKS) for s in final["settings"]
                     if as_dict(s).get("target") is not None})
    return TimeToTarget(sorted(_targets(final)), checks, init_part(final), rows)


def _time_to_target_lines(found: TimeToTarget, scope: DatasetScope) -> list[str]:
    """The section, or nothing when no final that trains in epochs was run with a target."""
    rows, checks = found.rows, found.checks
    if not rows:
        return []
    target = ", ".join(pct(t) for t in found.targets)
    how_often = ("at the end of each epoch (the epoch column: the epoch it was reached)" if checks == [1]
                 else f"{' or '.join(map(str, checks))} times an epoch (`--target-checks`; the epoch "
                      f"column: when it was reached, to 1/{' or 1/'.join(map(str, checks))} of an epoch)")
    table = [[rank + 1, r["model"], r["tuner"], r["seeds"], r["reached"],
              num(r["cpu"]) if r["cpu"] is not None else DASH,
              num(r["wall"]) if r["wall"] is not None else DASH,
              num(r["cpu_all"]) if r["cpu_all"] is not None else DASH,
              num(r["epochs"]) if r["epochs"] is not None else DASH,
              ", ".join(r["missed"]) or "none", pct(r["min_test"])] for rank, r in enumerate(rows)]
    return [f"### Time to {target} validation accuracy", "",
            *md_table(["#", "model", "tuner", "seeds", "reached", "CPU-s (MLPerf)", "wall-s (MLPerf)",
                       "CPU-s (mean of all that reached)", "epochs (median)",
                       "seeds that never reached it", "lowest test accuracy"], table, "rllrrrrrrlr"),
            "",
            "Training time until a final's validation accuracy first reached the target, validation "
            "itself not counted, nor the model's initialisation before it touched the training "
            f"data (building, compiling, tracing its training step on zeros{found.init}), as "
            "MLPerf's clock starts when the data is first touched. Such finals train on the "
            f"training part only and measure the validation part {how_often}. MLPerf's rule ranks "
            "the models: at least "
            f"{MLPERF_SEEDS} seeds that reached it, the fastest and the slowest dropped, the mean of "
            "the rest (a dash: fewer seeds reached it). Seeds that never reached the target are "
            "named; their time does not count as fast.", ""]


TIME_TO_TARGET = Section("time-to-target", _time_to_target, _time_to_target_lines,
                         applies=asked_for_target)
