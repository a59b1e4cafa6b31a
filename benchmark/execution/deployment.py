"""Deployment latency: a final model exported to ONNX and timed in ONNX Runtime at batch 1.

A model that can (``export_onnx`` / ``onnx_input``, see ``models.base``) is exported once, loaded in
ONNX Runtime with one thread, checked against the original's labels on the whole test set, then
timed over :data:`CALLS` single-image calls (after a warm-up): the p50 and p99 in milliseconds go
next to the framework's own batch-1 latency. A model whose export fails is not timed, and the row's
warnings say why.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

CALLS = 1000
WARM_UP = 50
CHUNK = 1000


def onnx_session(data: bytes) -> Any:
    """An ONNX Runtime session of the graph ``data`` on one CPU thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def labels_of(output: np.ndarray) -> np.ndarray:
    """Labels from a graph's first output: class scores (argmax) or labels already."""
    output = np.asarray(output)
    return output.argmax(axis=1) if output.ndim == 2 else output.astype(np.int64)


def onnx_latency(model: Any, images: np.ndarray,
                 predicted: np.ndarray) -> tuple[dict[str, Any], bytes | None]:
    """The row's fields ``onnx_ms_b1_p50``, ``onnx_ms_b1_p99``, ``onnx_mismatches`` (test images
    whose ONNX label differs from the model's), and the graph's bytes; ``({}, None)`` for a model
    without export."""
    if not callable(getattr(model, "export_onnx", None)) or not callable(getattr(model, "onnx_input", None)):
        return {}, None
    try:
        with tempfile.TemporaryDirectory(prefix="digitbench-onnx-") as folder, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the converters' own deprecation notes, not the model's
            path = Path(folder) / "model.onnx"
            model.export_onnx(path)
            data = path.read_bytes()
        session = onnx_session(data)
    except Exception as exc:  # an unsupported layer or converter: recorded, not fatal
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        warnings.warn(f"ONNX export failed, not timed: {type(exc).__name__}: {first}", stacklevel=2)
        return {}, None
    name = session.get_inputs()[0].name
    x = model.onnx_input(images)
    onnx_labels = np.concatenate([labels_of(session.run(None, {name: x[i : i + CHUNK]})[0])
                                  for i in range(0, len(x), CHUNK)])
    for i in range(WARM_UP):
        session.run(None, {name: x[i % len(x) : i % len(x) + 1]})
    times = []
    for i in range(CALLS):
        one = x[i % len(x) : i % len(x) + 1]
        start = time.perf_counter()
        session.run(None, {name: one})
        times.append(time.perf_counter() - start)
    times_ms = [1000 * t for t in times]
    return {"onnx_ms_b1_p50": round(statistics.median(times_ms), 4),
            "onnx_ms_b1_p99": round(float(np.percentile(times_ms, 99)), 4),
            "onnx_mismatches": int(np.sum(onnx_labels != predicted))}, data
