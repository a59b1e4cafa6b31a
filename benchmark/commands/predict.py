"""``digitbench predict --model-file FILE IMAGE...``: read your own digit pictures, prepare them as
MNIST's were (``benchmark.data.images``) and print each one's label and probability, or JSON.

Every picture is checked before the model is loaded, so a bad file costs no model loading: it ends
with one line naming it and exit status 2. Only the standard library is imported at import time.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from digitbench.benchmark.settings import add_flag


def add_parser(commands: Any) -> None:
    """Add the ``predict`` command to the CLI's sub-parsers."""
    parser = commands.add_parser(
        "predict", help="label your own digit pictures with a saved model",
        description="Label digit pictures (PNG, JPEG, ... of any size; dark ink on light paper or "
        "light on dark) with a model saved by `run --save-models` or `submit --save-model`.")
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    parser.add_argument("--model-file", type=Path, required=True, metavar="FILE",
                        help="a saved model (.keras, .skops)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of lines")
    parser.add_argument("--threads", type=int, help="threads per process (default: all cores)")
    add_flag(parser, "model_paths")


def command(args: argparse.Namespace, argv: list[str]) -> int:
    """Run ``digitbench predict``; 0 on success (input errors raise InputError)."""
    from digitbench.benchmark.execution.timing import configure_threads
    from digitbench.common.errors import InputError

    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads: expected a whole number of at least 1, got {args.threads}")
    configure_threads(args.threads or os.cpu_count() or 1)  # before TensorFlow or BLAS start
    import numpy as np

    from digitbench.benchmark.data.images import load_image
    from digitbench.models import persist, registry
    from digitbench.models.base import probabilities

    images = np.stack([load_image(path) for path in args.images])
    for spec in args.model_paths or ():
        registry.load_model_path(spec)
    model, meta = persist.load_model(args.model_file)
    size = meta.get("trained_on", {}).get("image_size", [28, 28])
    if list(size) != [28, 28]:
        raise InputError(f"--model-file {args.model_file}: trained on {size[0]}x{size[1]} images "
                         "(run --native-size); predict prepares pictures at 28x28, so it takes only "
                         "models trained on 28x28 images")
    proba = probabilities(model, images)
    labels = proba.argmax(axis=1)
    has_proba = hasattr(model, "predict_proba")
    calibrated = hasattr(model, "calibrator_")  # a Platt-scaled SVM (run --corruptions --save-models)
    results = [
        {"file": str(path), "label": int(label),
         "probability": round(float(p[label]), 6) if has_proba else None,
         "probabilities": [round(float(x), 6) for x in p] if has_proba else None,
         "calibrated": calibrated}
        for path, label, p in zip(args.images, labels, proba, strict=True)
    ]
    if args.json:
        print(json.dumps({"model_file": str(args.model_file), "model": meta["model"],
                          "predictions": results}, indent=2))
        return 0
    width = max(len(r["file"]) for r in results)
    for r in results:
        shown = f"probability {r['probability']:.3f}" if has_proba else "(no probabilities)"
        if calibrated:
            shown += " (calibrated: Platt scaling on held-out digits)"
        print(f"{r['file']:<{width}}  {r['label']}  {shown}")
    return 0
