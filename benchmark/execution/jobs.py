"""The typed records that cross the execution layers: a :class:`Job` goes from the coordinator to a
task, :class:`EpochReport` messages come back while it runs, and a :class:`TaskResult` when it ends.

Text appears only where results.csv is written and read (:mod:`benchmark.store`); here a job's kind
is a :class:`Kind` and its trial number an ``int``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitbench.benchmark.settings import TARGET_CHECKS
from digitbench.benchmark.store import RowKind, Status

#: What a job is: a tuning trial (scored on validation) or a final (evaluated on test); the row
#: of a final that trained on a --train-sizes subset reads SUBSET. One spelling with the rows'.
Kind = RowKind


@dataclass(frozen=True)
class Job:
    """One trial or one final of a (dataset, model, tuner) contender, as a task needs it."""

    dataset: str
    model: str                       # registry name
    tuner: str
    kind: Kind
    trial: int | None                # the trial's number; None for a final
    seed: int
    params: dict[str, Any]           # the full parameter set, fixed ones included
    train_size: int | None = None    # finals: train on this nested stratified subset (--train-sizes)
    refit_trial: int | None = None   # an extra final: the trial it refits (None: the primary final)
    epochs: int | None = None        # epochs of a model that trains in epochs, else None
    model_paths: tuple[str, ...] = ()  # --model-path plug-ins the worker must register
    cv: int = 1                      # trials: folds of models without epochs (1: the validation part)
    tune_subsample: int | None = None
    latency_batch: int = 1000
    save_model: bool = False         # finals: return the model file's bytes
    onnx: bool = True                # finals: export to ONNX and time it in ONNX Runtime
    target: float | None = None      # finals: train on the training part, watch validation, and
    #                                  time the training until its accuracy first reaches this
    stop_at_target: bool = False     # finals with a target: training ends once it is reached
    target_checks: int = TARGET_CHECKS  # finals with a target: validation checks an epoch
    test_on: tuple[str, ...] = ()    # finals: the --test-on datasets, whose test parts follow the split
    corruptions: tuple[str, ...] = ()  # finals: --corruptions, whose test sets follow the --test-on ones
    extras: dict[str, Any] = field(default_factory=dict)  # recorded in a saved model file

    def __post_init__(self) -> None:
        if (self.kind is Kind.FINAL) != (self.trial is None):
            raise ValueError(f"a {self.kind.name.lower()} job with trial number {self.trial!r}")
        if self.refit_trial is not None and (self.kind is not Kind.FINAL or self.train_size is not None):
            raise ValueError(f"a {self.kind.name.lower()} job refitting trial {self.refit_trial}")

    @property
    def is_final(self) -> bool:
        return self.kind is Kind.FINAL

    @property
    def label(self) -> str:
        what = f"final seed {self.seed}" if self.is_final else f"trial {self.trial}"
        if self.train_size is not None:
            what += f" on {self.train_size:,} images"
        if self.refit_trial is not None:
            what += f" refitting trial {self.refit_trial}"
        return f"{self.dataset} {self.model} {self.tuner} {what}"


@dataclass(frozen=True)
class EpochReport:
    """A running job's progress, sent to the coordinator after each epoch: the epoch (1-based),
    the job's total epochs where known, and the metrics (``val_accuracy`` among them when the model
    validates). The coordinator answers whether to stop (a trial's pruner decides)."""

    epoch: int
    epochs: int | None
    metrics: dict[str, float]


@dataclass
class TaskResult:
    """What a task returns: the measured fields of its row (``fields``: column -> value), the files
    a final produces (as values, written by the recorder), and who ran it."""

    status: Status                         # OK, PRUNED or ERROR
    fields: dict[str, Any] = field(default_factory=dict)
    error: str | None = None               # one line, where status is "error"
    traceback: str | None = None           # for RUN_DIR/errors.log
    predictions: np.ndarray | None = None  # finals: the predicted label of every test image
    probabilities: np.ndarray | None = None  # submissions: (n, 10) class scores of every test image
    model_bytes: bytes | None = None       # finals with --save-models: the model file
    onnx_bytes: bytes | None = None        # finals: the ONNX export, where there is one
    worker: str | None = None              # "host:pid" of the process that ran the task
    worker_cpu_s: float | None = None      # that process's CPU-seconds so far

    @classmethod
    def failed(cls, error: str, traceback: str | None = None) -> TaskResult:
        return cls(status=Status.ERROR, error=error, traceback=traceback)

    def row_fields(self) -> dict[str, Any]:
        """The columns this result fills: its measured fields, status and error."""
        return {**self.fields, "status": self.status, "error": self.error}
