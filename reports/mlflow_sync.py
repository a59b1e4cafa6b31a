"""A run folder in MLflow: a parent run per run folder, a nested run per final (and per tuning trial
with ``--mlflow-trials``), the report and its figures on the parent, saved models in MLflow's own
Keras and scikit-learn flavours.

Logging consumes rows; it never makes them. :class:`LiveLog` is handed each row once the recorder
has written it (``digitbench run --mlflow``), and :func:`sync` logs a whole run folder from its
results.csv (``digitbench report DIR --mlflow``); both go through :class:`MlflowLog`, so a row is
logged the same way whichever logs it.

**Exactly once, by tags, not by local state a kill could lose.** The parent run is found by the run
folder's id (:data:`~.mlflow_fields.FOLDER_TAG`), each nested run by its row's identity (the
invocation's run_id and the job key, :data:`~.mlflow_fields.ROW_TAG`). A nested run gets
:data:`~.mlflow_fields.COMPLETE_TAG` as its last write; one without it was cut short (a ``kill -9``
mid-logging) and is deleted and logged again. So a run killed and resumed, or a folder logged again
by ``report --mlflow``, logs each row once.

**A tracker that fails never costs a result.** The row is in results.csv before anything is sent; a
failure (the server down, a timeout) is one warning line naming what was not logged and the command
that logs it later, and the live log stops trying for the rest of the run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from digitbench.benchmark.provenance import without_passwords
from digitbench.benchmark.results import load_table, typed
from digitbench.benchmark.store import RESULTS_FILE, RowKind, Status
from digitbench.common.errors import InputError, message_line
from digitbench.reports import mlflow_fields as fields
from digitbench.reports.markdown import REPORT_FILE

#: The MLflow experiment the runs go to, unless ``MLFLOW_EXPERIMENT_NAME`` names another.
EXPERIMENT = "digitbench"
#: MLflow 3's UI opens an experiment as a GenAI one (traces) unless its kind says model training.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
#: In a local folder (``--mlflow FOLDER``): MLflow's database and the artifacts. MLflow 3 keeps its
#: plain-file store only in maintenance mode and refuses it by default; a SQLite file is what it
#: recommends for a store without a server.
DATABASE, ARTIFACTS = "mlflow.db", "artifacts"
#: MLflow's HTTP client waits minutes for a server that is down (7 retries, doubling); a benchmark
#: that logs as it goes waits a few seconds, then carries on. Set unless the user set them.
CLIENT_ENVIRONMENT = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                      "MLFLOW_HTTP_REQUEST_TIMEOUT": "30", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                      "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
                      "MLFLOW_PRINT_MODEL_URLS_ON_CREATION": "false"}
#: MLflow's INFO lines a local store prints as it creates its tables: not the run's progress.
QUIET_LOGGERS = ("mlflow.store.db.utils", "alembic.runtime.migration")
#: A nested run's tag holding its logged model's URI (``models:/m-...``), for
#: ``mlflow.pyfunc.load_model``.
MODEL_TAG = "digitbench.model_uri"
#: Report figures: the images report.md links.
_FIGURE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def tracking(target: str) -> tuple[str, str | None]:
    """The tracking URI of ``--mlflow TARGET`` and, for a local folder, where its artifacts go."""
    if "://" in target or target.startswith("databricks"):
        return target, None
    folder = Path(target)
    return f"sqlite:///{folder / DATABASE}", (folder / ARTIFACTS).as_uri()


class MlflowLog:
    """The MLflow runs of one run folder: finds or creates them, and logs rows not yet logged."""

    def __init__(self, target: str, run_dir: Path, trials: bool = False) -> None:
        from mlflow import MlflowClient

        for name, value in CLIENT_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        self.uri, self.artifacts = tracking(target)
        if self.artifacts is not None:
            Path(target).mkdir(parents=True, exist_ok=True)
        self.run_dir, self.trials = Path(run_dir).resolve(), trials
        self.client = MlflowClient(self.uri)
        self.parent: str | None = None
        self.experiment: str | None = None
        self.logged: set[str] = set()  # row identities logged under the parent

    def log_rows(self, frame: pd.DataFrame, whole: bool = True) -> int:
        """Log the rows of a typed ``frame`` that are not logged yet (finals; trials too where asked
        for); how many were. ``whole``: ``frame`` is the folder's whole table, not just new rows."""
        wanted = frame if self.trials else frame[frame["kind"] != RowKind.TRIAL]
        if wanted.empty:
            return 0
        self._open((frame if whole else load_table(self.run_dir)).iloc[0])
        count = 0
        for _, row in wanted.iterrows():
            identity = fields.row_identity(row)
            if identity not in self.logged:
                self._log_row(row)
                self.logged.add(identity)
                count += 1
        return count

    def log_report(self, table: pd.DataFrame) -> None:
        """The paired verdicts of the whole ``table`` (what tuning bought) as the parent's metrics,
        and report.md with the figures it links as its artifacts (replacing earlier ones)."""
        if self.parent is None:
            return
        self._log(self.parent, {}, fields.verdicts(table, str(self.run_dir)))
        report = self.run_dir / REPORT_FILE
        if not report.exists():
            return
        self.client.log_artifact(self.parent, str(report))
        for link in dict.fromkeys(_FIGURE.findall(report.read_text(encoding="utf-8"))):
            figure = (self.run_dir / link).resolve()
            if figure.is_file() and figure.is_relative_to(self.run_dir):
                parent = Path(link).parent.as_posix()
                self.client.log_artifact(self.parent, str(figure), None if parent == "." else parent)

    def set_status(self, status: str) -> None:
        """The parent run's status: RUNNING, FINISHED, FAILED (some finals failed) or KILLED."""
        if self.parent is None:
            return
        if status == "RUNNING":
            self.client.update_run(self.parent, status="RUNNING")
        else:
            self.client.set_terminated(self.parent, status)

    def _open(self, first: pd.Series) -> None:
        """Find the parent run of this folder (``first``: its first row) or create it, and read
        which rows its nested runs hold; a nested run cut short is deleted, to be logged again."""
        if self.parent is not None:
            return
        experiment = self.experiment = self._experiment()
        key = fields.folder_id(first, str(self.run_dir))
        found = self.client.search_runs([experiment], f"tags.`{fields.FOLDER_TAG}` = '{key}'",
                                        max_results=1)
        if found:
            self.parent = found[0].info.run_id
        else:
            run = self.client.create_run(experiment, run_name=self.run_dir.name,
                                         tags=fields.run_tags(first, str(self.run_dir)))
            self.parent = run.info.run_id
            self._log(self.parent, fields.run_params(first), [])
        for child in self._children(experiment):
            if fields.COMPLETE_TAG in child.data.tags:
                self.logged.add(child.data.tags.get(fields.ROW_TAG, ""))
            else:
                self.client.delete_run(child.info.run_id)

    def _experiment(self) -> str:
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(name, artifact_location=self.artifacts, tags=EXPERIMENT_TAGS)

    def _children(self, experiment: str) -> Iterator[Any]:
        token = None
        while True:
            page = self.client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{self.parent}'",
                                           max_results=1000, page_token=token)
            yield from page
            token = page.token
            if not token:
                return

    def _log_row(self, row: pd.Series) -> None:
        """One nested run: params, metrics, tags, the saved model, then the complete tag and the
        status (FAILED for a job that failed)."""
        took = sum(row.get(c) for c in ("fit_wall_s", "predict_wall_s") if fields.finite(row.get(c)))
        end = _millis(row.get("utc"))
        child = self.client.create_run(
            self.experiment, start_time=None if end is None else end - int(took * 1000),
            run_name=fields.run_name(row), tags={**fields.tags(row), "mlflow.parentRunId": self.parent})
        run_id = child.info.run_id
        self._log(run_id, fields.params(row), fields.metrics(row))
        model_file = row.get("model_file")  # NaN where no model was kept
        if isinstance(model_file, str) and model_file and row.get("status") == Status.OK:
            self._log_model(run_id, self.run_dir / model_file, row.get("versions") or {})
        self.client.set_tag(run_id, fields.COMPLETE_TAG, "true")
        failed = row.get("status") == Status.ERROR
        self.client.set_terminated(run_id, "FAILED" if failed else "FINISHED", end_time=end)

    def _log(self, run_id: str, params: Mapping[str, str], metrics: list[tuple[str, float, int]]) -> None:
        from mlflow.entities import Metric, Param

        stamp = int(datetime.now().timestamp() * 1000)
        params_list = [Param(k, v) for k, v in params.items()]
        metric_list = [Metric(k, v, stamp, step) for k, v, step in metrics]
        for start in range(0, max(len(params_list), len(metric_list)), 100):  # MLflow's batch limit
            self.client.log_batch(run_id, metrics=metric_list[start:start + 100],
                                  params=params_list[start:start + 100])

    def _log_model(self, run_id: str, path: Path, versions: Mapping[str, str]) -> None:
        """The saved model in MLflow's own flavour (Keras, scikit-learn), so that
        ``mlflow.pyfunc.load_model`` predicts; a model of another kind as its file."""
        import mlflow

        from digitbench.models import persist

        try:
            model, meta = persist.load_model(path)
        except InputError:  # a plug-in's model, its class not registered here: the file as it is
            model, meta = None, {}
        size = tuple(meta.get("trained_on", {}).get("image_size", (28, 28)))
        flavour = _flavour(model)
        if flavour is None:
            self.client.log_artifact(run_id, str(path), "model_file")
            return
        module, native, requirements = flavour
        x = model.onnx_input(np.zeros((1, *size), np.uint8))
        y = native.predict(x, verbose=0) if module == "keras" else native.predict(x)
        signature = mlflow.models.infer_signature(x, np.asarray(y))
        pinned = [f"{name}=={versions[name]}" for name in requirements if name in versions]
        options = {"serialization_format": "skops", "skops_trusted_types": _untrusted(native)} \
            if module == "sklearn" else {}
        with _active_run(self.uri, run_id):
            info = getattr(mlflow, module).log_model(native, name="model", signature=signature,
                                                     pip_requirements=pinned or None, **options)
        self.client.set_tag(run_id, MODEL_TAG, info.model_uri)


class LiveLog:
    """``digitbench run --mlflow``: each row logged once the recorder has written it; at the end,
    the rows not logged yet (written by a run killed before it logged them) and the report."""

    def __init__(self, target: str, run_dir: Path, trials: bool) -> None:
        self.target, self.run_dir, self.trials = target, Path(run_dir), trials
        self.shown = without_passwords(target)  # as messages name it
        self.log: MlflowLog | None = None
        self.failed = False

    def row_written(self, cells: dict[str, Any]) -> None:
        """The recorder's consumer: log the row it has just written."""
        row = typed(pd.DataFrame([cells]))

        def log_row(log: MlflowLog) -> None:
            opened = log.parent is not None
            log.log_rows(row, whole=False)
            if not opened and log.parent is not None:
                log.set_status("RUNNING")  # a resumed run's parent runs again

        self._guarded(fields.run_name(row.iloc[0]), log_row)

    def finish(self, code: int) -> None:
        """The run has ended with ``code`` (its report written where it finished): the rows still
        missing, the report, and the parent's status."""
        if code in (0, 1):
            def rest(log: MlflowLog) -> None:
                table = load_table(self.run_dir)
                log.log_rows(table)
                log.log_report(table)
                log.set_status("FINISHED" if code == 0 else "FAILED")
                if log.parent is not None:
                    print(f"mlflow:  run {log.parent} at {self.shown}", file=sys.stderr, flush=True)

            self._guarded("the run's report and the rows not logged yet", rest)
        elif self.log is not None and self.log.parent is not None:
            self._guarded("the run's status", lambda log: log.set_status("KILLED"))

    def _guarded(self, what: str, work: Any) -> None:
        if self.failed:
            return
        try:
            if self.log is None:
                self.log = MlflowLog(self.target, self.run_dir, self.trials)
            work(self.log)
        except Exception as exc:  # the tracker's failure is never the run's
            self.failed = True
            print(f"digitbench: warning: MLflow at {self.shown}: could not log {what} "
                  f"({type(exc).__name__}: {message_line(exc)}); every result is in "
                  f"{self.run_dir / RESULTS_FILE}; nothing more is sent this run; log it later with: "
                  f"digitbench report {self.run_dir} --mlflow {self.shown}", file=sys.stderr, flush=True)


def sync(target: str, run_dir: Path, trials: bool = False) -> tuple[int, str]:
    """Log a run folder: every row not logged yet, the report, and the parent's status (FINISHED,
    or FAILED where a final failed); the count of rows logged and the parent run's id."""
    table = load_table(Path(run_dir))
    log = MlflowLog(target, run_dir, trials)
    count = log.log_rows(table)
    finals = table[table["kind"] != RowKind.TRIAL]
    if log.parent is not None:
        log.log_report(table)
        log.set_status("FAILED" if (finals["status"] == Status.ERROR).any() else "FINISHED")
    return count, log.parent or ""


def _flavour(model: Any) -> tuple[str, Any, tuple[str, ...]] | None:
    """(MLflow module, the library's model, the packages it needs) of a digitbench model: its Keras
    network, or its scikit-learn estimator; None for other models (plug-ins)."""
    if not callable(getattr(model, "onnx_input", None)):
        return None
    keras = sys.modules.get("keras")
    network = getattr(model, "model_", None)
    if keras is not None and isinstance(network, keras.Model):
        return "keras", network, ("keras", "tensorflow-cpu", "tensorflow")
    if callable(getattr(model, "exported_estimator", None)):
        return "sklearn", model.exported_estimator(), ("scikit-learn", "numpy")
    return None


def _untrusted(estimator: Any) -> list[str]:
    """The types of ``estimator`` skops does not trust by default: ours, built by digitbench."""
    import skops.io

    return skops.io.get_untrusted_types(data=skops.io.dumps(estimator))


@contextlib.contextmanager
def _active_run(uri: str, run_id: str) -> Iterator[None]:
    """``run_id`` as MLflow's active run (its flavours log models into the active run), the
    caller's tracking URI restored after."""
    import mlflow

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(run_id=run_id):
            yield
    finally:
        mlflow.set_tracking_uri(before)


def _millis(utc: Any) -> int | None:
    try:
        return int(datetime.fromisoformat(str(utc)).timestamp() * 1000)
    except ValueError:
        return None
