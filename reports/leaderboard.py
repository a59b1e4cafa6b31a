"""The leaderboard of one dataset: one row per (model, tuner), as a frame and as two markdown tables.

:func:`leaderboard` averages the final rows over seeds. :func:`leaderboard_table` is the table a
reader sees first, narrow enough for a screen (:data:`LEADERBOARD_COLUMNS`): rank, model, tuner,
test accuracy with its interval, fit CPU-s, predict and ONNX milliseconds per image and the
multiply-adds (or parameters) of one prediction. :func:`details_table` holds everything else the
rows measured about the same contenders, in the same order.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from digitbench.benchmark.payloads import StudySummary, study_summary
from digitbench.reports.format import DASH, md_table, natural_key, num, pct
from digitbench.reports.machine import distinct
from digitbench.reports.stats import AccuracyInterval, seeds_accuracy_interval

#: The leaderboard's headers: at most nine, so that the table fits a screen.
LEADERBOARD_COLUMNS = ("#", "model", "tuner", "test accuracy (95% CI)", "fit CPU-s",
                       "predict ms/img", "ONNX ms/img", "multiply-adds/img (or params)")


def leaderboard(final: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, tuner): mean test accuracy with its 95% interval and mean costs."""
    rows = []
    for (model, tuner), group in final.groupby(["model", "tuner"], sort=False):
        interval = accuracy_of(group)
        means = {c: group[c].mean()
                 for c in ("fit_cpu_s", "fit_wall_s", "predict_cpu_s", "latency_ms_b1",
                           "latency_ms_bN", "onnx_ms_b1_p50", "onnx_ms_b1_p99", "macs")}
        mismatches = group["onnx_mismatches"].dropna()
        params = sorted({int(v) for v in group["n_params"].dropna()})
        tuning = study_summary(group["tuning"].iloc[-1])
        rows.append({"model": model, "tuner": tuner, "family": distinct(group["family"])[0],
                     "budget": _budget(tuner, tuning), "trials_run": tuning.trials_run,
                     "seeds": interval.seeds, "accuracy": interval.mean, "low": interval.low,
                     "high": interval.high, **means,
                     "batch_N": distinct(group["batch_N"]), "params": params,
                     "onnx_mismatches": int(mismatches.max()) if len(mismatches) else None})
    board = pd.DataFrame(rows)
    return board.sort_values(["accuracy", "model", "tuner"], ascending=[False, True, True],
                             kind="stable", ignore_index=True)


def leaderboard_table(board: pd.DataFrame) -> list[str]:
    """The leaderboard as markdown (:data:`LEADERBOARD_COLUMNS`), best row in bold."""
    rows = []
    for rank, r in board.iterrows():
        model, acc = r["model"], pct(r["accuracy"])
        if rank == 0:
            model, acc = f"**{model}**", f"**{acc}**"
        interval = f"[{100 * r['low']:.2f}–{100 * r['high']:.2f}]"
        rows.append([rank + 1, model, r["tuner"], f"{acc} {interval}", num(r["fit_cpu_s"]),
                     num(r["latency_ms_b1"]), _onnx(r), _cost(r)])
    return md_table(LEADERBOARD_COLUMNS, rows, "rllrrrrr")


def details_table(board: pd.DataFrame) -> list[str]:
    """What the leaderboard leaves out, one row per contender in the leaderboard's order."""
    batches = sorted({n for ns in board["batch_N"] for n in ns}, key=natural_key)
    batch = f"batch {batches[0]}" if len(batches) == 1 else "batch N"
    headers = ["#", "model", "tuner", "family", "tuning budget", "trials run", "seeds", "fit wall-s",
               "predict CPU-s", f"ms/img, {batch}", "ONNX ms/img: p50 (p99)", "multiply-adds/img",
               "params"]
    rows = []
    for rank, r in board.iterrows():
        bn = num(r["latency_ms_bN"])
        if len(batches) > 1 and r["batch_N"]:
            bn += f" (N={'/'.join(r['batch_N'])})"
        trials = DASH if r["trials_run"] is None or pd.isna(r["trials_run"]) else int(r["trials_run"])
        rows.append([rank + 1, r["model"], r["tuner"], r["family"], r["budget"], trials, r["seeds"],
                     num(r["fit_wall_s"]), num(r["predict_cpu_s"]), bn, _onnx(r, p99=True), _macs(r["macs"]),
                     _span(r["params"])])
    return md_table(headers, rows, "rllllrrrrrrrr")


def _onnx(r: pd.Series, p99: bool = False) -> str:
    """ONNX Runtime's median (and 99th percentile), with a warning where its labels differ from
    the model's own."""
    if pd.isna(r["onnx_ms_b1_p50"]):
        return DASH
    text = num(r["onnx_ms_b1_p50"]) + (f" ({num(r['onnx_ms_b1_p99'])})" if p99 else "")
    if r["onnx_mismatches"]:
        text += f", {r['onnx_mismatches']} labels differ"
    return text


def _cost(r: pd.Series) -> str:
    """Multiply-adds per prediction where known, else the parameter count."""
    if r["macs"] is not None and pd.notna(r["macs"]):
        return _macs(r["macs"])
    return f"{_span(r['params'])} params" if r["params"] else DASH


def _macs(value: Any) -> str:
    if value is None or pd.isna(value):
        return DASH
    return f"{value / 1e6:.2f} M" if value >= 1e5 else f"{value:,.0f}"


def accuracy_of(group: pd.DataFrame) -> AccuracyInterval:
    """The mean test accuracy of one configuration's final rows (one per seed) with the report's
    interval (:func:`reports.stats.seeds_accuracy_interval`) over their test images."""
    n_test = group["n_test"].dropna()
    return seeds_accuracy_interval(group["test_accuracy"].to_numpy(dtype=float),
                                   float(n_test.iloc[0]) if len(n_test) else None)


def _budget(tuner: str, tuning: StudySummary) -> str:
    """A study's budget as ``20 trials, 600 CPU-s``; "defaults" for untuned models."""
    if tuner == "none":
        return "defaults"
    if tuning == StudySummary():
        return DASH
    budget = f"{'?' if tuning.trials is None else tuning.trials} trials"
    return budget + (f", {num(tuning.budget_cpu_s)} CPU-s" if tuning.budget_cpu_s else "")


def _span(values: list[int]) -> str:
    if not values:
        return DASH
    return f"{values[0]:,}" if len(values) == 1 else f"{values[0]:,}–{values[-1]:,}"
