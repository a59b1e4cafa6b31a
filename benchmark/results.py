"""The typed results table: a run folder's results.csv, read once, as every reader takes it (the
report, the Python API's ``load_results``, ``submit --from``).

:func:`load_table` reads ``RUN_DIR/results.csv`` (:func:`benchmark.store.load_results`) and
:func:`typed` gives every column its type, so that no report module parses or coerces on its own:

* the measurements (:data:`NUMBER_COLUMNS`) are floats, NaN where empty;
* ``trial`` is a nullable integer, ``<NA>`` on final rows, and the added ``kind`` column says
  ``"trial"``, ``FINAL``, or ``SUBSET`` for a final on a ``--train-sizes`` subset (on disk the trial
  column holds the trial number or the store's FINAL text, and ``train_size`` the subset's size);
* ``seed`` and ``refit_trial`` are nullable integers (``refit_trial`` is set on an extra final
  only: the trial it refits);
* the JSON columns (:data:`JSON_COLUMNS`) hold the parsed objects (dicts), None where empty;
* the text columns that name a job and its run (:data:`NAME_COLUMNS`) are text, ``"?"`` where
  empty; every other column of :data:`benchmark.store.COLUMNS` is text, NaN where empty.

A cell that does not parse (JSON that is not a JSON object, text in a number column) is an
:class:`~common.errors.InputError` naming the file, the line and the column.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from digitbench.benchmark.store import (
    COLUMNS,
    FINAL,
    JSON_COLUMNS,
    NUMERIC,
    RESULTS_FILE,
    RowKind,
    load_results,
)
from digitbench.common.errors import InputError

#: Columns of numbers (the store's, which writes them): sizes, accuracies, times, counts; floats with
#: NaN where empty.
NUMBER_COLUMNS: tuple[str, ...] = NUMERIC
#: Text columns that identify a job and its invocation; empty cells read as "?".
NAME_COLUMNS: tuple[str, ...] = ("run_id", "dataset", "model", "family", "tuner")
TRIAL, SUBSET = RowKind.TRIAL, RowKind.SUBSET


def load_table(run_dir: Path) -> pd.DataFrame:
    """The typed results of a run folder; an empty or unreadable file is an InputError."""
    path = Path(run_dir) / RESULTS_FILE
    try:
        frame = load_results(path)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file (no header row)") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: not a readable CSV file ({str(exc).splitlines()[0]})") from None
    return typed(frame, path)


def typed(frame: pd.DataFrame, source: Path | str = RESULTS_FILE) -> pd.DataFrame:
    """A copy of a results frame (as :func:`benchmark.store.load_results` reads it) with typed
    columns; columns it lacks stay absent. Typing a typed frame again changes nothing.

    ``source`` names the file in errors; a row's line in it is its position plus 2 (the header is
    line 1).
    """
    frame = frame.reset_index(drop=True)
    for column in NAME_COLUMNS:
        if column in frame:
            frame[column] = frame[column].fillna("?").astype(str)
    for column in NUMBER_COLUMNS:
        if column in frame:
            frame[column] = _numbers(frame[column], source)
    for column in JSON_COLUMNS:
        if column in frame:
            frame[column] = [_json(cell, source, line, column)
                             for line, cell in enumerate(frame[column], start=2)]
    typed_elsewhere = {*NAME_COLUMNS, *NUMBER_COLUMNS, *JSON_COLUMNS, "seed", "trial"}
    for column in COLUMNS:
        if column in frame and column not in typed_elsewhere:
            frame[column] = frame[column].astype("str")
    if "seed" in frame:
        frame["seed"] = _integers(frame["seed"], source, "a whole number")
    if "refit_trial" in frame:
        frame["refit_trial"] = _integers(frame["refit_trial"], source, "a trial number")
    if "trial" in frame and "kind" not in frame:
        final = frame["trial"].astype("string").str.strip().eq(FINAL).fillna(False).to_numpy(bool)
        subset = frame["train_size"].notna().to_numpy(bool) if "train_size" in frame else final & False
        frame["kind"] = [((SUBSET if s else FINAL) if f else TRIAL).value  # plain text in the frame
                         for f, s in zip(final, subset, strict=True)]
        frame["trial"] = _integers(frame["trial"].mask(final), source, f"a trial number or {FINAL!r}")
    return frame


def extra_finals(frame: pd.DataFrame) -> pd.Series:
    """Which rows of a typed frame are extra finals (a ``refit_trial`` set: the cheapest within one
    standard error, a front point), not the primary final of their (model, tuner) or a trial."""
    if "refit_trial" not in frame:
        return pd.Series(False, index=frame.index)
    return frame["refit_trial"].notna().astype(bool)


def _bad(source: Path | str, line: int, column: str, why: str) -> InputError:
    return InputError(f"{source}: line {line}: column {column}: {why}")


def _numbers(values: pd.Series, source: Path | str, wanted: str = "a number") -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    given = values.notna() & (values.astype("string").str.strip() != "")
    _check(given & numbers.isna(), values, source, wanted)
    return numbers


def _integers(values: pd.Series, source: Path | str, wanted: str) -> pd.Series:
    if values.dtype == "Int64":
        return values
    numbers = _numbers(values, source, wanted)
    _check(numbers.notna() & (numbers != numbers.round()), values, source, wanted)
    return numbers.astype("Int64")


def _check(wrong: pd.Series, values: pd.Series, source: Path | str, wanted: str) -> None:
    """An InputError at the first cell marked ``wrong``."""
    if wrong.any():
        line = int(wrong.to_numpy().argmax())
        raise _bad(source, line + 2, str(values.name), f"expected {wanted}, got {values.iloc[line]!r}")


def _json(cell: Any, source: Path | str, line: int, column: str) -> dict[str, Any] | None:
    if isinstance(cell, dict):
        return cell
    if cell is None or (isinstance(cell, float) and pd.isna(cell)):
        return None
    if not isinstance(cell, str):
        raise _bad(source, line, column, f"expected a JSON object, got {cell!r}")
    if not cell.strip():
        return None
    try:
        value = json.loads(cell)
    except json.JSONDecodeError as exc:
        raise _bad(source, line, column, f"not JSON ({exc.msg} at character {exc.pos})") from None
    if value is not None and not isinstance(value, dict):
        raise _bad(source, line, column, f"expected a JSON object, got {type(value).__name__}")
    return value
