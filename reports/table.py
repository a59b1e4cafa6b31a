"""What the report modules share about the typed results table (:mod:`digitbench.benchmark.results`,
which reads it): its JSON cells as dicts, its trial and final rows, the datasets' slugs."""

from __future__ import annotations

from typing import Any

import pandas as pd

from digitbench.benchmark.results import SUBSET, TRIAL, extra_finals
from digitbench.benchmark.store import FINAL, Status, dataset_slug

DEFAULTS = "none"  # the tuner of the defaults' finals (untuned, or the defaults refit beside tuning)


def as_dict(cell: Any) -> dict[str, Any]:
    """A JSON cell of a typed frame as a dict: ``{}`` where it was empty."""
    return cell if isinstance(cell, dict) else {}


def trial_labels(frame: pd.DataFrame) -> pd.Series:
    """The trial column as it is written on disk: the trial number, or FINAL; an extra final's
    says the trial it refits (``final (refits trial 3)``)."""
    refits = frame["refit_trial"] if "refit_trial" in frame else pd.Series(pd.NA, index=frame.index)
    return pd.Series([(FINAL if pd.isna(t) else f"{FINAL} (refits trial {int(t)})") if kind in (FINAL, SUBSET)
                      else ("?" if pd.isna(n) else str(int(n)))
                      for kind, n, t in zip(frame["kind"], frame["trial"], refits, strict=True)],
                     index=frame.index, dtype=object)


def trial_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Tuning trial rows of a typed frame with their trial ``number``, cost (``cpu_s``: fit and
    predict) and validation accuracy (``val``, where the trial finished ok)."""
    trials = rows[rows["kind"] == TRIAL].copy()
    trials["number"] = trials["trial"].astype(int)
    trials["cpu_s"] = trials["fit_cpu_s"].fillna(0.0) + trials["predict_cpu_s"].fillna(0.0)
    trials["val"] = trials["val_accuracy"].where(trials["status"] == Status.OK)
    return trials.drop_duplicates(["dataset", "model", "tuner", "seed", "number"], keep="last")


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The primary final ok rows of a typed frame with a test accuracy (each (model, tuner)'s
    choice: the sections that compare models compare these), the last row kept where a job was
    recorded twice; the extra finals are :func:`extra_final_rows`."""
    ok = frame[(frame["kind"] == FINAL) & (frame["status"] == Status.OK) & frame["test_accuracy"].notna()
               & ~extra_finals(frame)]
    return ok.drop_duplicates(["dataset", "model", "tuner", "seed"], keep="last")


def extra_final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The extra final ok rows (each refitting another trial of its study than the choice: the
    cheapest within one standard error, a front point) with a test accuracy, the last row kept
    where a job was recorded twice."""
    ok = frame[(frame["kind"] == FINAL) & (frame["status"] == Status.OK) & frame["test_accuracy"].notna()
               & extra_finals(frame)]
    return ok.drop_duplicates(["dataset", "model", "tuner", "seed", "refit_trial"], keep="last")


def dataset_slugs(datasets: pd.Series) -> dict[str, str]:
    """Dataset spec -> unique slug, in order of first appearance."""
    slugs: dict[str, str] = {}
    for spec in datasets.unique():
        slug, n = dataset_slug(spec), 2
        while slug in slugs.values():
            slug, n = f"{dataset_slug(spec)}-{n}", n + 1
        slugs[spec] = slug
    return slugs
