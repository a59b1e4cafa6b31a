"""The results record: one CSV row per dataset x model x tuner x trial x seed, appended as jobs finish.

``RUN_DIR/results.csv`` has a header row and is read directly by ``pandas.read_csv``. Each row is
written with a single ``write`` and flushed to disk, so a killed run loses nothing that finished;
a torn last line (killed mid-write) is cut off when the file is opened again. Reading it checks
every complete row against the columns' types (:func:`check_rows`): a line typed into it by hand is
refused with one line naming the file, the line and the column, and the file is left as it is.

Per-image predictions of final models live beside it in ``RUN_DIR/predictions/*.npz`` (arrays
``y_true`` and ``y_pred``, uint8, plus ``wrong_index`` and ``wrong_images`` of the misclassified
test digits), named by the row's ``predictions`` column (relative path).
"""

from __future__ import annotations

import csv
import enum
import hashlib
import io
import json
import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import pandas as pd

from digitbench.benchmark.payloads import DESCRIBED, fits
from digitbench.common.atomic import atomic_path, writing
from digitbench.common.errors import InputError

RESULTS_FILE = "results.csv"
PREDICTIONS_DIR = "predictions"
MODELS_DIR = "models"  # saved final models (run --save-models): models/<dataset slug>/<file>

class Status(enum.StrEnum):
    """A row's status, one spelling everywhere: the job finished, its tuner pruned it, or it failed."""

    OK = "ok"
    PRUNED = "pruned"
    ERROR = "error"


class RowKind(enum.StrEnum):
    """What a row is: a tuning trial, a final (tested once), or a final trained on a --train-sizes
    subset (a learning curve's point). On disk the ``trial`` column holds a trial's number or
    ``final``, and ``train_size`` a subset's size; the typed table has a ``kind`` column of these."""

    TRIAL = "trial"
    FINAL = "final"
    SUBSET = "subset"


#: The types of column: what their cells hold, as :func:`check_rows` checks them.
TEXT, NUMBER, JSON, TRIAL, SEED, STATUS, TIME = "text", "number", "json", "trial", "seed", "status", "time"


class Column(NamedTuple):
    """One column of results.csv: its name, the type of its cells (any may be empty but ``trial``,
    ``seed`` and ``status``) and what it holds."""

    name: str
    type: str
    doc: str


#: The columns of results.csv, in order, each declared once.
SCHEMA: tuple[Column, ...] = (
    Column("run_id", TEXT, "one id per `digitbench run` invocation"),
    Column("utc", TIME, "ISO-8601 UTC time the row was written"),
    Column("dataset", TEXT, "dataset spec, e.g. `mnist-5k`, `idx:/data/mnist`"),
    Column("test_split", TEXT, "where the test set came from (`official test set`, `stratified hold-out "
                               "...`)"),
    Column("data_source", TEXT, "where the images were read from (a folder, a file, `keras.datasets.mnist "
                                "download`)"),
    Column("preparation", TEXT, "how the images reached the models (`28x28 as read`, `prepared as MNIST "
                                "...`)"),
    Column("n_train", NUMBER, "images in the training part the job trained on"),
    Column("n_val", NUMBER, "images in the validation part"),
    Column("n_test", NUMBER, "images in the test set"),
    Column("model", TEXT, "registry name, e.g. `lenet-relu`"),
    Column("family", TEXT, "`baseline` | `cnn` | a plug-in's family"),
    Column("model_class", TEXT, "the registry entry's class, `module:Class`: entries of one class are "
                                "variants"),
    Column("fixed", JSON, "JSON of the parameters the registry entry fixes (its variant), e.g. activation"),
    Column("tuner", TEXT, "`none` | `optuna` | `keras-tuner`"),
    Column("trial", TRIAL, "trial number, or `final` (FINAL) for models evaluated on the test set"),
    Column("seed", SEED, "finals: the final's seed; trials: their study's seed (--study-seeds)"),
    Column("train_size", NUMBER, "finals on a --train-sizes subset: its size (n_train); empty: the whole "
                                 "part"),
    Column("refit_trial", NUMBER, "an extra final (the cheapest within one standard error, a front "
                                  "point): the number of the study-0 trial it refits; empty on the "
                                  "primary final and on trials"),
    Column("params", JSON, "JSON of the full parameter set"),
    Column("tuning", JSON, "JSON: tuner settings and budget; on final rows also what tuning used"),
    Column("val_accuracy", NUMBER, "empty where the model saw no validation set"),
    Column("test_accuracy", NUMBER, "final rows only"),
    Column("fit_cpu_s", NUMBER, "CPU-seconds of the fit"),
    Column("fit_wall_s", NUMBER, "wall-seconds of the fit"),
    Column("predict_cpu_s", NUMBER, "CPU-seconds predicting the whole test set"),
    Column("predict_wall_s", NUMBER, "wall-seconds predicting the whole test set"),
    Column("latency_ms_b1", NUMBER, "wall ms per image, one image per call"),
    Column("latency_ms_bN", NUMBER, "wall ms per image at batch size batch_N"),
    Column("batch_N", NUMBER, "the large batch latency_ms_bN was timed at (--latency-batch)"),
    Column("n_params", NUMBER, "trainable parameters (networks), else empty"),
    Column("macs", NUMBER, "multiply-adds per predicted image, for models that say (macs_per_image)"),
    Column("onnx_ms_b1_p50", NUMBER, "final rows: ONNX Runtime, 1 thread, 1,000 single-image calls: the "
                                     "median ms"),
    Column("onnx_ms_b1_p99", NUMBER, "... and the 99th percentile"),
    Column("onnx_mismatches", NUMBER, "test images whose ONNX label differs from the model's own (0: "
                                      "identical)"),
    Column("cpu_s_to_target", NUMBER, "--target: CPU-seconds of training until validation first reached it"),
    Column("wall_s_to_target", NUMBER, "--target: the same in wall-seconds"),
    Column("epochs_to_target", NUMBER, "--target: the epoch (to a quarter) at which it was reached"),
    Column("init_cpu_s", NUMBER, "--target: the model's initialisation before it touched the training "
                                 "data (building, compiling, a traced step on zeros), left out of "
                                 "cpu_s_to_target"),
    Column("cross_test", JSON, "finals with --test-on: JSON {dataset: {`n_test`: n, `correct`: k}}"),
    Column("corrupt_test", JSON, "finals with --corruptions: JSON {corruption: {`n_test`: n, `correct`: k, "
                                 "`seed`: s}}"),
    Column("calibration", JSON, "finals with --corruptions: JSON {`method`, `clean`/corruption: ECE, NLL, "
                                "Brier, bins}"),
    Column("history", JSON, "JSON {metric: [value per epoch]} of models that report epochs, else empty"),
    Column("threads", NUMBER, "thread count the job ran with (--threads: TensorFlow and OpenMP)"),
    Column("thread_pools", TEXT, "JSON: the job's process's thread pools as threadpoolctl saw them, e.g. "
                                 "{`blas`: 1}"),
    Column("rss_mb", NUMBER, "resident memory of the process when the row was written (MiB)"),
    Column("process_cpu_s", NUMBER, "CPU-seconds the invocation's process (and children) had used at that "
                                    "time"),
    Column("status", STATUS, "one of STATUSES: `ok` | `pruned` | `error`"),
    Column("error", TEXT, "one line, where status is `error`"),
    Column("warnings", TEXT, "warnings the job raised (e.g. ConvergenceWarning), one line each, `; `-joined"),
    Column("predictions", TEXT, "relative path of the .npz with y_true/y_pred, final rows only"),
    Column("model_file", TEXT, "relative path of the saved final model (run --save-models), else empty"),
    Column("onnx_file", TEXT, "relative path of its ONNX export (run --save-models), else empty"),
    Column("versions", JSON, "JSON: python and package versions"),
    Column("machine", JSON, "JSON: cpu model, cores, memory, platform"),
    Column("git_rev", TEXT, "digitbench's git revision (`+dirty` when modified), or `unknown`"),
    Column("command", TEXT, "the command line of the invocation"),
    Column("settings", JSON, "JSON: the invocation's resolved settings (preset, budgets, ...) and its "
                             "start time"),
)
COLUMNS: tuple[str, ...] = tuple(c.name for c in SCHEMA)
TYPES: dict[str, str] = {c.name: c.type for c in SCHEMA}
#: Columns holding a number or nothing.
NUMERIC: tuple[str, ...] = tuple(c.name for c in SCHEMA if c.type == NUMBER)
#: Columns holding JSON or nothing.
JSON_COLUMNS: tuple[str, ...] = tuple(c.name for c in SCHEMA if c.type == JSON)
#: The statuses a row has (benchmark.execution writes them).
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)

#: The fields that identify a job: a row with these values and status "ok" means the job is done.
JOB_KEY: tuple[str, ...] = ("dataset", "model", "tuner", "trial", "seed", "train_size", "refit_trial")


def dataset_slug(spec: str) -> str:
    """A short file-name-safe name of a dataset spec: ``idx:/abs/dir`` -> ``idx-dir``."""
    scheme, sep, rest = spec.partition(":")
    if sep:
        parts = [p for p in re.split(r"[\\/]+", rest) if p and p != "."]
        spec = f"{scheme}-{parts[-1]}" if parts else scheme
    slug = re.sub(r"[^a-z0-9._-]+", "-", spec.lower()).strip("-.")
    return re.sub(r"-{2,}", "-", slug) or "dataset"


def unique_slug(spec: str) -> str:
    """:func:`dataset_slug`, plus a hash of the whole spec where it names a folder."""
    if ":" not in spec:
        return dataset_slug(spec)
    return f"{dataset_slug(spec)}-{hashlib.sha1(spec.encode()).hexdigest()[:8]}"


#: The ``trial`` cell of a final row; trial rows hold their number.
FINAL = RowKind.FINAL

#: A job's key as the code uses it: (dataset, model, tuner, trial number or None for a final, seed,
#: training subset size or None for the whole training part, the trial an extra final refits or
#: None for a trial or a primary final).
JobKey = tuple[str, str, str, int | None, int, int | None, int | None]


def trial_cell(number: int | None) -> str:
    """The ``trial`` cell of a job: its number as text, or ``final`` (None)."""
    return FINAL if number is None else str(number)


def trial_number(cell: Any) -> int | None:
    """The trial number a ``trial`` cell holds; None for a final."""
    return None if str(cell) == FINAL else int(cell)


def job_key(row: Mapping[str, Any]) -> JobKey:
    """The key of a row's job; ``train_size`` and ``refit_trial`` are absent or empty in files
    written before learning curves and extra finals."""
    return (str(row["dataset"]), str(row["model"]), str(row["tuner"]), trial_number(row["trial"]),
            int(row["seed"]), _optional_int(row.get("train_size")), _optional_int(row.get("refit_trial")))


def _optional_int(cell: Any) -> int | None:
    return None if cell is None or cell == "" or pd.isna(cell) else int(cell)


def cut_torn_line(f: BinaryIO) -> int:
    """Cut a torn last line off the open results file ``f`` (binary, readable and writable) and
    return its size: a file that does not end in a newline was left by a writer killed mid-write,
    and everything after its last newline goes. A file ending in a newline is not touched."""
    size = os.fstat(f.fileno()).st_size
    if size:
        f.seek(size - 1)
        if f.read(1) != b"\n":
            f.seek(0)
            size = f.truncate(f.read().rfind(b"\n") + 1)
    return size


class ResultsStore:
    """Append-only results.csv of one run folder."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / RESULTS_FILE

    def exists(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def repair(self) -> None:
        """Check the file, then cut a torn last line (from a kill mid-write): the header must be
        ours or an older version's (the file is then upgraded) and every complete row must fit the
        columns (:func:`check_rows`). A file refused with an InputError is left exactly as it is."""
        if not self.exists():
            return
        text = _complete_lines(_read_text(self.path))
        header = text.split("\n", 1)[0].split(",")
        if text and header != list(COLUMNS) and not (
                set(header) <= set(COLUMNS) and set(REQUIRED) <= set(header)):
            raise InputError(
                f"{self.path}: row 1: header does not match this digitbench version's columns; "
                "use another --out folder or --overwrite"
            )
        frame = load_results(self.path) if text else None
        with open(self.path, "rb+") as f:
            cut_torn_line(f)
        if frame is not None and header != list(COLUMNS):
            self._upgrade(frame)

    def _upgrade(self, frame: pd.DataFrame) -> None:
        """Rewrite a file written by an older digitbench (a subset of today's columns), read as
        ``frame``, with today's header, the new columns empty; the old file is replaced in one
        rename, never half-written."""
        with atomic_path(self.path) as tmp:
            frame.to_csv(tmp, index=False, columns=list(COLUMNS), lineterminator="\n")

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one row (missing columns empty) and flush it to disk.

        The coordinator is the only writer. An append writes the header if the file is empty, cuts a
        torn last row left by a writer killed mid-write, then writes its row with one ``write`` and
        ``fsync``; the coordinator holds stop signals back meanwhile.
        """
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown result columns: {sorted(unknown)}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame([{c: row.get(c) for c in COLUMNS}], columns=list(COLUMNS))
        buf = io.StringIO()
        frame.to_csv(buf, index=False, header=True, lineterminator="\n")
        header, line = buf.getvalue().split("\n", 1)
        with writing(self.path), open(self.path, "ab+") as f:
            size = cut_torn_line(f)
            f.write(((header + "\n" if not size else "") + line).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())

    def load(self) -> pd.DataFrame:
        return load_results(self.path)

    def done_jobs(self, frame: pd.DataFrame | None = None) -> set[JobKey]:
        """Keys of the jobs that finished with status ok (of ``frame``, the file as :meth:`load`
        read it, when the caller has it already)."""
        if frame is None and not self.exists():
            return set()
        frame = self.load() if frame is None else frame
        ok = frame[frame["status"] == Status.OK]
        return {job_key(r) for r in ok[list(JOB_KEY)].to_dict("records")}

    def trial_rows(self, frame: pd.DataFrame | None = None
                   ) -> dict[tuple[str, str, str, int], dict[int, dict[str, Any]]]:
        """The trial rows of every study, (dataset, model, tuner, study seed) -> trial number ->
        row (the last row of each number, its ``params`` a dict as the recorder's rows have it); of
        ``frame`` as for :meth:`done_jobs`."""
        studies: dict[tuple[str, str, str, int], dict[int, dict[str, Any]]] = {}
        if frame is not None or self.exists():
            frame = self.load() if frame is None else frame
            for row in frame[frame["trial"] != FINAL].to_dict("records"):
                dataset, model, tuner, number, seed, *_ = job_key(row)
                row["params"] = json.loads(row["params"]) if isinstance(row["params"], str) else {}
                studies.setdefault((dataset, model, tuner, seed), {})[number] = row
        return studies

    def save_predictions(self, name: str, y_true: np.ndarray, y_pred: np.ndarray,
                         images: np.ndarray | None = None) -> str:
        """Store per-image predictions atomically; returns the path relative to the run folder.

        With ``images`` (the test images), the misclassified ones are kept too, as ``wrong_index``
        (positions in the test set) and ``wrong_images`` (uint8), so that the report can show them
        without the dataset.
        """
        rel = Path(PREDICTIONS_DIR) / f"{name}.npz"
        arrays = {"y_true": y_true.astype(np.uint8), "y_pred": y_pred.astype(np.uint8)}
        if images is not None:
            wrong = np.flatnonzero(y_true != y_pred)
            arrays.update(wrong_index=wrong.astype(np.int32), wrong_images=images[wrong].astype(np.uint8))
        with atomic_path(self.run_dir / rel) as tmp:
            np.savez_compressed(tmp, **arrays)
        return rel.as_posix()


#: Where a run keeps a few test digits under each corruption (--corruptions), for the report's gallery.
GALLERY_DIR = "corruptions"


def save_gallery(run_dir: Path, dataset: str, images: dict[str, np.ndarray], labels: np.ndarray) -> str:
    """Store a few test digits of ``dataset`` as each corruption left them (``images``: "clean" and
    one (k, 28, 28) uint8 array per corruption, the same digits in each) atomically; its path."""
    rel = Path(GALLERY_DIR) / f"{unique_slug(dataset)}.npz"
    with atomic_path(Path(run_dir) / rel) as tmp:
        np.savez_compressed(tmp, labels=labels.astype(np.uint8),
                            **{k: v.astype(np.uint8) for k, v in images.items()})
    return rel.as_posix()


def load_gallery(run_dir: Path, dataset: str) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """What :func:`save_gallery` stored for ``dataset``, or None where there is none."""
    path = Path(run_dir) / GALLERY_DIR / f"{unique_slug(dataset)}.npz"
    if not path.exists():
        return None
    with np.load(path) as data:
        return {k: data[k] for k in data.files if k != "labels"}, data["labels"]


def save_probabilities(run_dir: Path, name: str, scores: np.ndarray) -> str:
    """Store a submission seed's ``(n, 10)`` class scores atomically (``predictions/NAME.npz``,
    array ``proba``); returns the path relative to the run folder."""
    rel = Path(PREDICTIONS_DIR) / f"{name}.npz"
    with atomic_path(Path(run_dir) / rel) as tmp:
        np.savez_compressed(tmp, proba=scores.astype(np.float32))
    return rel.as_posix()


def load_probabilities(run_dir: Path, rel: str) -> np.ndarray:
    with np.load(Path(run_dir) / rel) as data:
        return data["proba"]


#: Columns a results file must have to be read at all; columns added by later versions of
#: digitbench are read as empty from older files.
REQUIRED = ("dataset", "model", "family", "tuner", "trial", "seed", "status")


def load_results(path: Path | str) -> pd.DataFrame:
    """Read a results.csv with the column types digitbench writes (trial and seed as text), in
    :data:`COLUMNS` order; columns an older version did not write are filled as empty.

    Every complete row is checked first (:func:`check_rows`). A torn last line (the file does not
    end in a newline) is no row: it is left out, and cut off by the next resume or append."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file (is this a digitbench run folder?)")
    raw = _read_text(path)
    text = _complete_lines(raw)
    if not text:
        raise InputError(f"{path}: no header row ({'empty file' if not raw else 'only a torn line'})")
    check_rows(path, text)
    frame = pd.read_csv(
        io.StringIO(text),
        dtype={"trial": str, "seed": str, "run_id": str, "error": str, "warnings": str,
               "git_rev": str},
        keep_default_na=True,
    )
    extra = [c for c in frame.columns if c not in COLUMNS]
    return frame.reindex(columns=[*COLUMNS, *extra])


def check_rows(path: Path, text: str) -> None:
    """Raise an InputError, one line naming ``path`` (whose complete lines are ``text``) and the
    line in the file (the header is line 1) and where it applies the column, for the first row that
    does not fit: a missing required column, a row with another number of fields than the header,
    or a cell that is not of its column's type (:func:`_fits`)."""
    header, cells, lines = _split_rows(path, text)
    frame = pd.DataFrame(cells, columns=header, dtype=str)
    bad = {}
    for name in header:
        fits = _fits(name, frame[name])
        if fits is not None and not fits[0].all():
            bad[name] = (int(np.argmin(fits[0].to_numpy())), fits[1])
    if not bad:
        return
    name, (row, what) = min(bad.items(), key=lambda item: item[1][0])  # first line, then column
    value = frame[name].iat[row]
    problem = f"empty, expected {what}" if value == "" else f"{value[:40]!r} is not {what}"
    raise InputError(f"{path}: line {lines[row]}, column {name}: {problem}")


def _split_rows(path: Path, text: str) -> tuple[list[str], list[list[str]], list[int]]:
    """(header, the rows' fields, the line each row starts on) of a results file's complete lines
    ``text``; blank lines are skipped, as pandas does. A header without a :data:`REQUIRED` column or
    with one twice, a row with another number of fields than the header, or one that is no CSV, is
    an InputError."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        if not header:
            raise InputError(f"{path}: line 1 is empty, expected the header")
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InputError(f"{path}: row 1: missing column(s) {', '.join(missing)}")
        twice = next((c for i, c in enumerate(header) if c in header[:i]), None)
        if twice is not None:
            raise InputError(f"{path}: row 1: column {twice} appears twice")
        rows, lines, end = [], [], reader.line_num
        for fields in reader:
            start, end = end + 1, reader.line_num
            if not fields:
                continue
            if len(fields) != len(header):
                raise InputError(f"{path}: line {start} has {len(fields)} fields, expected "
                                 f"{len(header)} as in the header")
            rows.append(fields)
            lines.append(start)
    except csv.Error as exc:
        raise InputError(f"{path}: line {reader.line_num}: not a CSV row ({exc})") from None
    return header, rows, lines


def _fits(name: str, cells: pd.Series) -> tuple[pd.Series, str] | None:
    """Which of column ``name``'s ``cells`` (text, ``""`` where empty) fit its type, and the type
    in words; None for columns of free text (and columns this version does not know)."""
    empty = cells == ""
    kind = TYPES.get(name, TEXT)
    if kind == NUMBER:
        nan = cells.str.lower().isin(("nan", "+nan", "-nan"))  # numbers too, as float() reads them
        return empty | nan | pd.to_numeric(cells, errors="coerce").notna(), "a number"
    if kind == TRIAL:
        return cells.str.fullmatch(r"\d+") | (cells == FINAL), f"a trial number or '{FINAL}'"
    if kind == SEED:
        return cells.str.fullmatch(r"-?\d+"), "a whole number"
    if kind == STATUS:
        return cells.isin(STATUSES), f"one of {', '.join(STATUSES)}"
    if kind == TIME:
        return empty | cells.map(_is_time), "an ISO 8601 time with its UTC offset"
    if kind == JSON:
        return empty | cells.map(lambda text: _json_fits(name, text)), \
            f"JSON of the shape {DESCRIBED.get(name, '{name: value}')}"
    return None


def _is_time(text: str) -> bool:
    """An ISO 8601 time with an offset, as the report reads it (``datetime.fromisoformat``)."""
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def _json_fits(column: str, text: str) -> bool:
    """Whether ``text`` is JSON of ``column``'s shape (parsed once)."""
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return fits(column, value)


def _read_text(path: Path) -> str:
    """A results file's text; one that cannot be read or is not UTF-8 is an InputError."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None


def _complete_lines(text: str) -> str:
    """``text`` without a torn last line (what follows its last newline; see :func:`cut_torn_line`)."""
    return text if text.endswith("\n") else text[: text.rfind("\n") + 1]


def load_predictions(run_dir: Path, rel: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(Path(run_dir) / rel) as data:
        return data["y_true"], data["y_pred"]


def load_misclassified(run_dir: Path, rel: str) -> tuple[np.ndarray, np.ndarray]:
    """(positions in the test set, (k, 28, 28) uint8 images) of the digits a final model got wrong;
    empty arrays for prediction files written without images."""
    with np.load(Path(run_dir) / rel) as data:
        if "wrong_index" not in data.files:
            return np.empty(0, np.int32), np.empty((0, 28, 28), np.uint8)
        return data["wrong_index"], data["wrong_images"]
