"""The results record: one CSV row per dataset x model x tuner x trial x seed, appended as jobs finish.

``RUN_DIR/results.csv`` has a header row and is read directly by ``pandas.read_csv``. Each row is
written with a single ``write`` and flushed to disk, so a killed run loses nothing that finished;
a torn last line (killed mid-write) is cut off when the file is opened again.

Per-image predictions of final models live beside it in ``RUN_DIR/predictions/*.npz`` (arrays
``y_true`` and ``y_pred``, uint8, plus ``wrong_index`` and ``wrong_images`` of the misclassified
test digits), named by the row's ``predictions`` column (relative path).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from models.atomic import atomic_path
from models.errors import InputError

RESULTS_FILE = "results.csv"
PREDICTIONS_DIR = "predictions"
MODELS_DIR = "models"  # saved final models (run --save-models): models/<dataset slug>/<file>

#: Column order of results.csv. JSON-valued columns: params, tuning, versions, machine.
COLUMNS: tuple[str, ...] = (
    "run_id",          # one id per `digitbench run` invocation
    "utc",             # ISO-8601 UTC time the row was written
    "dataset",         # dataset spec, e.g. "mnist-5k", "idx:/data/mnist"
    "test_split",      # where the test set came from ("official test set", "stratified hold-out ...")
    "preparation",     # how the images reached the models ("28x28 as read", "prepared as MNIST ...")
    "n_train", "n_val", "n_test",
    "model",           # registry name, e.g. "lenet-relu"
    "family",          # "baseline" | "cnn" | a plug-in's family
    "model_class",     # the registry entry's class, "module:Class": entries of one class are variants
    "fixed",           # JSON of the parameters the registry entry fixes (its variant), e.g. activation
    "tuner",           # "none" | "optuna" | "keras-tuner"
    "trial",           # trial number as text, or "final" for models evaluated on the test set
    "seed",            # finals: the final's seed; trials: their study's seed (--study-seeds)
    "params",          # JSON of the full parameter set
    "tuning",          # JSON: tuner settings and budget; on final rows also what tuning used
    "val_accuracy",    # empty where the model saw no validation set
    "test_accuracy",   # final rows only
    "fit_cpu_s", "fit_wall_s",
    "predict_cpu_s", "predict_wall_s",  # predicting the whole test set
    "latency_ms_b1",   # wall ms per image, one image per call
    "latency_ms_bN",   # wall ms per image at batch size batch_N
    "batch_N",
    "n_params",        # trainable parameters (networks), else empty
    "macs",            # multiply-adds per predicted image, for models that say (macs_per_image)
    "onnx_ms_b1_p50", "onnx_ms_b1_p99",  # final rows: ONNX Runtime, 1 thread, 1,000 single-image calls
    "onnx_mismatches",  # test images whose ONNX label differs from the model's own (0: identical)
    "cpu_s_to_target", "wall_s_to_target",  # --target: training time until validation first reached it
    "epochs_to_target",  # --target: the epoch (to a quarter) at which it was reached
    "cross_test",      # finals with --test-on: JSON {dataset: {"n_test": n, "correct": k}}
    "history",         # JSON {metric: [value per epoch]} of models that report epochs, else empty
    "threads",         # thread count the job ran with
    "rss_mb",          # resident memory of the process when the row was written (MiB)
    "process_cpu_s",   # CPU-seconds the invocation's process (and children) had used at that time
    "status",          # "ok" | "error" (later: "pruned")
    "error",           # one line, where status is "error"
    "warnings",        # warnings the job raised (e.g. ConvergenceWarning), one line each, "; "-joined
    "predictions",     # relative path of the .npz with y_true/y_pred, final rows only
    "model_file",      # relative path of the saved final model (run --save-models), else empty
    "onnx_file",       # relative path of its ONNX export (run --save-models), else empty
    "versions",        # JSON: python and package versions
    "machine",         # JSON: cpu model, cores, memory, platform
    "git_rev",         # digitbench's git revision ("+dirty" when modified), or "unknown"
    "command",         # the command line of the invocation
    "settings",        # JSON: the invocation's resolved settings (preset, budgets, ...) and start time
)

#: The fields that identify a job: a row with these values and status "ok" means the job is done.
JOB_KEY: tuple[str, ...] = ("dataset", "model", "tuner", "trial", "seed")


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


def job_key(row: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in JOB_KEY)


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
        """Cut a torn last line (from a kill mid-write) and check the header is ours."""
        if not self.exists():
            return
        with open(self.path, "rb+") as f:
            cut_torn_line(f)
        header = self.path.read_text(encoding="utf-8").split("\n", 1)[0].split(",")
        if header == list(COLUMNS):
            return
        if set(header) <= set(COLUMNS) and set(REQUIRED) <= set(header):
            self._upgrade()
            return
        raise InputError(
            f"{self.path}: row 1: header does not match this digitbench version's columns; "
            "use another --out folder or --overwrite"
        )

    def _upgrade(self) -> None:
        """Rewrite a file written by an older digitbench (a subset of today's columns) with today's
        header, the new columns empty; the old file is replaced in one rename, never half-written."""
        frame = load_results(self.path)
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
        with open(self.path, "ab+") as f:
            size = cut_torn_line(f)
            f.write(((header + "\n" if not size else "") + line).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())

    def load(self) -> pd.DataFrame:
        return load_results(self.path)

    def done_jobs(self) -> set[tuple[str, ...]]:
        """Keys of the jobs that finished with status ok."""
        if not self.exists():
            return set()
        frame = self.load()
        ok = frame[frame["status"] == "ok"]
        return {job_key(r) for r in ok[list(JOB_KEY)].to_dict("records")}

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


#: Columns a results file must have to be read at all; columns added by later versions of
#: digitbench are read as empty from older files.
REQUIRED = ("dataset", "model", "family", "tuner", "trial", "seed", "status")


def load_results(path: Path | str) -> pd.DataFrame:
    """Read a results.csv with the column types digitbench writes (trial and seed as text), in
    :data:`COLUMNS` order; columns an older version did not write are filled as empty."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file (is this a digitbench run folder?)")
    frame = pd.read_csv(
        path,
        dtype={"trial": str, "seed": str, "run_id": str, "error": str, "warnings": str,
               "git_rev": str},
        keep_default_na=True,
    )
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: row 1: missing column(s) {', '.join(missing)}")
    extra = [c for c in frame.columns if c not in COLUMNS]
    return frame.reindex(columns=[*COLUMNS, *extra])


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
