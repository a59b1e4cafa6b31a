"""What one results row becomes in MLflow: its run's name, params, metrics (with steps for the epoch
curves) and tags. Pure functions of a typed row (:func:`benchmark.results.typed`), so the live log
and ``digitbench report --mlflow`` log the same thing; :mod:`.mlflow_sync` sends them.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pandas as pd

from digitbench.benchmark.payloads import StudySummary
from digitbench.benchmark.results import NUMBER_COLUMNS
from digitbench.benchmark.store import JOB_KEY, RowKind
from digitbench.reports.stats import accuracy_interval

#: A nested run's tag holding its row's identity: the invocation (run_id) and the job key, as JSON.
ROW_TAG = "digitbench.row"
#: The parent run's tag holding its run folder's id (the run_id of the folder's first row).
FOLDER_TAG = "digitbench.folder"
#: Set last on a run whose logging finished: a run without it was cut short (a kill), and is
#: deleted and logged again.
COMPLETE_TAG = "digitbench.complete"

#: Number columns that are params (what the job was), not measurements.
PARAM_NUMBERS = ("n_train", "n_val", "n_test", "train_size", "refit_trial", "batch_N", "threads")
#: Longest param value MLflow keeps.
PARAM_MAX = 6000


def row_identity(row: pd.Series) -> str:
    """The text of :data:`ROW_TAG` for a typed row: the same for a row read from results.csv and
    for the row as the recorder wrote it."""
    values = [row.get("run_id")] + [_plain(row.get(k)) for k in JOB_KEY]
    values[JOB_KEY.index("trial") + 1] = _plain(row.get("trial")) if row.get("kind") == RowKind.TRIAL \
        else RowKind.FINAL.value
    return json.dumps(values)


def run_name(row: pd.Series) -> str:
    """``MODEL TUNER seed 0`` for a final (`` n500`` added on a subset, `` trial 7`` for an extra
    final) or ``MODEL TUNER trial 3`` for a trial."""
    name = f"{row['model']} {row['tuner']}"
    if row.get("kind") == RowKind.TRIAL:
        return f"{name} trial {_plain(row['trial'])}"
    name += f" seed {_plain(row['seed'])}"
    if _plain(row.get("train_size")) is not None:
        name += f" n{_plain(row['train_size'])}"
    if _plain(row.get("refit_trial")) is not None:
        name += f" trial {_plain(row['refit_trial'])}"
    return name


def params(row: pd.Series) -> dict[str, str]:
    """The model's parameters, then what the job was: dataset, model, tuner, seed, the training,
    validation and test sizes (and the subset or refit trial where set)."""
    found = {str(k): v for k, v in (row.get("params") or {}).items()}
    found.update({k: row.get(k) for k in ("dataset", "model", "tuner", "seed", "trial", *PARAM_NUMBERS)})
    return {k: str(_plain(v))[:PARAM_MAX] for k, v in found.items() if _plain(v) is not None}


def metrics(row: pd.Series) -> list[tuple[str, float, int]]:
    """(name, value, step) of every measurement of the row: the number columns as they are named in
    results.csv (CPU-s, wall-s, latency, time to the target ...); the test accuracy's 95% Wilson
    interval over the test images; the CPU-s tuning used; accuracies on other datasets and under
    corruptions; ECE, NLL and Brier score; and the epoch curves, ``history/<metric>`` at steps 1..E."""
    found = [(c, float(row[c]), 0) for c in NUMBER_COLUMNS
             if c not in PARAM_NUMBERS and c in row and finite(row[c])]
    accuracy, n_test = row.get("test_accuracy"), row.get("n_test")
    if finite(accuracy) and finite(n_test) and n_test >= 1:
        low, high = accuracy_interval(round(accuracy * n_test), int(n_test))
        found += [("test_accuracy_low", low, 0), ("test_accuracy_high", high, 0)]
    if row.get("kind") != RowKind.TRIAL and row.get("tuning"):
        used = StudySummary.from_json(row["tuning"]).cpu_s_used
        if used is not None:
            found.append(("tuning_cpu_s", float(used), 0))
    for column in ("cross_test", "corrupt_test"):
        for name, counts in (row.get(column) or {}).items():
            if counts.get("n_test"):
                accuracy = counts["correct"] / counts["n_test"]
                found.append((f"{column}/{metric_name(name)}/accuracy", accuracy, 0))
    for name, scores in (row.get("calibration") or {}).items():
        if isinstance(scores, dict):
            found += [(f"calibration/{metric_name(name)}/{k}", float(scores[k]), 0)
                      for k in ("ece", "nll", "brier") if finite(scores.get(k))]
    for name, values in (row.get("history") or {}).items():
        found += [(f"history/{metric_name(name)}", float(v), epoch)
                  for epoch, v in enumerate(values, start=1) if finite(v)]
    return found


def tags(row: pd.Series) -> dict[str, str]:
    """Who and where: the row's identity and invocation, its kind and status, the digitbench version
    and git revision, the machine's CPU and cores, the thread counts; the final's roles and the
    tuner's reason for its choice; the error of a failed job."""
    versions, machine = row.get("versions") or {}, row.get("machine") or {}
    tuning = StudySummary.from_json(row["tuning"]) if row.get("tuning") else StudySummary()
    found = {
        ROW_TAG: row_identity(row), "digitbench.run_id": row.get("run_id"),
        "digitbench.kind": row.get("kind"),
        "digitbench.status": row.get("status"), "digitbench.version": versions.get("digitbench"),
        "digitbench.git_rev": row.get("git_rev"), "digitbench.model_class": row.get("model_class"),
        "digitbench.family": row.get("family"), "digitbench.cpu": machine.get("cpu"),
        "digitbench.cores": machine.get("cores"), "digitbench.threads": row.get("threads"),
        "digitbench.thread_pools": row.get("thread_pools"), "digitbench.error": row.get("error"),
        "digitbench.warnings": row.get("warnings"),
    }
    if row.get("kind") != RowKind.TRIAL:
        found["digitbench.final_roles"] = ",".join(tuning.roles)
        found["digitbench.chosen_because"] = tuning.chosen_because
    return {k: str(_plain(v))[:PARAM_MAX] for k, v in found.items() if _plain(v) is not None}


def verdicts(table: pd.DataFrame, run_dir: str) -> list[tuple[str, float, int]]:
    """The parent run's metrics: what tuning bought each tuned (model, tuner) of each dataset, as
    the report's Tunability section says it, ``tuning_bought/<dataset>/<model>/<tuner>/``: the gain
    in test accuracy over the defaults refit on the same seeds (``gain``, with its 95% interval
    ``gain_low`` and ``gain_high``), the McNemar p of each seed (``p_seed<N>``), and the CPU-s the
    study spent (``tuning_cpu_s``)."""
    from digitbench.reports.section import RunScope
    from digitbench.reports.tunability import tunabilities

    found = []
    for scope in RunScope(table, run_dir).datasets:
        for t in tunabilities(scope):
            prefix = f"tuning_bought/{metric_name(scope.slug)}/{metric_name(t.model)}/{metric_name(t.tuner)}"
            values = {"gain": t.gain, "tuning_cpu_s": t.tuning_cpu_s,
                      **dict(zip(("gain_low", "gain_high"), t.interval or (), strict=False)),
                      **{f"p_seed{seed}": p for seed, p in t.p_values}}
            found += [(f"{prefix}/{k}", float(v), 0) for k, v in values.items() if finite(v)]
    return found


def run_params(row: pd.Series) -> dict[str, str]:
    """A parent run's params: the settings of the invocation that created it (its first row's)."""
    settings = row.get("settings") or {}
    return {k: (",".join(map(str, v)) if isinstance(v, list | tuple) else str(_plain(v)))[:PARAM_MAX]
            for k, v in settings.items() if v is not None and k not in ("started", "run_dir")}


def run_tags(row: pd.Series, run_dir: str) -> dict[str, str]:
    """A parent run's tags: its folder's id and path, and the version, machine and command of the
    invocation that created it."""
    versions, machine = row.get("versions") or {}, row.get("machine") or {}
    found = {FOLDER_TAG: folder_id(row, run_dir), "digitbench.run_dir": run_dir,
             "digitbench.version": versions.get("digitbench"), "digitbench.git_rev": row.get("git_rev"),
             "digitbench.cpu": machine.get("cpu"), "digitbench.cores": machine.get("cores"),
             "digitbench.threads": row.get("threads"), "digitbench.command": row.get("command")}
    return {k: str(_plain(v))[:PARAM_MAX] for k, v in found.items() if _plain(v) is not None}


def folder_id(first: pd.Series, run_dir: str) -> str:
    """A run folder's id: the run_id of its first row (rows are only appended, so it never changes;
    ``--overwrite`` starts a new one), or its path for files written before rows had one."""
    run_id = first.get("run_id")
    return str(run_id) if run_id not in (None, "?") and not pd.isna(run_id) else run_dir


def metric_name(text: str) -> str:
    """``text`` with the characters MLflow refuses in a metric name replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", str(text))


def finite(value: Any) -> bool:
    """Whether ``value`` is a finite number (not a bool, not NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _plain(value: Any) -> Any:
    """A cell as a plain Python value: None for empty cells, whole floats as ints."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value
