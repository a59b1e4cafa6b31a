"""``digitbench submit``: train on all of Kaggle's ``train.csv``, predict ``test.csv``, write
``ImageId,Label`` (ids from 1, one row per test row, in file order), atomically.

Leakage guard: every image of Kaggle's test.csv is also one of the public 70,000 MNIST digits, so a
model that trained on MNIST would look the answers up. ``submit`` therefore trains on
``kaggle:DIR/train.csv`` and nothing else, and refuses every option that would add images (another
dataset spec, ``--data-dir``, extra data, a pre-trained model file). Parameters carry no images:
``--from RUN_DIR`` may take them from a run on any dataset, and the summary says where from.

This module imports only the standard library at import time (the CLI builds its parser from it).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from digitbench.benchmark.settings import add_flags
from digitbench.common.errors import InputError

LEAKAGE = ("every Kaggle test image is also in the public 70,000 MNIST digits, so training on MNIST "
           "would look the answers up; submit trains on kaggle:DIR/train.csv only")

#: Options of `run` (and others) that would bring in images other than train.csv's: accepted by the
#: parser only so that they are refused with the reason, not as unknown flags.
_REFUSED = {flag: "refused_" + flag[2:].replace("-", "_")
            for flag in ("--dataset", "--data-dir", "--extra", "--extra-data", "--model-file")}


def add_parser(commands: Any) -> None:
    """Add the ``submit`` command to the CLI's sub-parsers."""
    parser = commands.add_parser(
        "submit", help="train on kaggle:DIR/train.csv, predict test.csv, write a Kaggle submission",
        description="Train on all of kaggle:DIR/train.csv, predict every row of DIR/test.csv and "
        "write ImageId,Label (ids from 1). Leakage guard: " + LEAKAGE + ".")
    parser.add_argument("dataset", metavar="kaggle:DIR", help="folder with train.csv and test.csv")
    parser.add_argument("--model", required=True, help="registry name, e.g. lenet-relu")
    parser.add_argument("--from", dest="from_run", type=Path, metavar="RUN_DIR",
                        help="take the model's tuned parameters from RUN_DIR/results.csv")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE", help="submission CSV")
    parser.add_argument("--save-model", type=Path, metavar="FILE",
                        help="also save the trained model (FILE-seedN.ext for each seed when N > 1)")
    parser.add_argument("--run-dir", type=Path, metavar="DIR",
                        help="the submission's run folder: a results row and the test-set probabilities "
                             "of each seed (default: OUT's name with -run, beside it)")
    add_flags(parser, "submit")
    for flag, dest in _REFUSED.items():
        parser.add_argument(flag, dest=dest, action="append", help=argparse.SUPPRESS)


def check_leakage(args: argparse.Namespace) -> Path:
    """The ``DIR`` of ``kaggle:DIR``; InputError for anything that would add other images."""
    for flag, dest in _REFUSED.items():
        if getattr(args, dest, None):
            raise InputError(f"submit: {flag} refused: {LEAKAGE}")
    kind, sep, folder = str(args.dataset).strip().partition(":")
    several = "," in folder and not Path(folder).expanduser().exists()
    if kind.lower() != "kaggle" or not sep or several:
        raise InputError(f"submit: dataset {args.dataset!r} refused: {LEAKAGE} (give one kaggle:DIR)")
    if not folder:
        raise InputError(f"submit: expected kaggle:DIR, got {args.dataset!r}")
    return Path(folder).expanduser().resolve()


def command(args: argparse.Namespace, argv: list[str]) -> int:
    """Run ``digitbench submit``; 0 on success (input errors raise InputError). The seeds are the
    finals of a run (``--run-dir``) through the one job loop: trained side by side by the workers
    (or on ``--cluster``), recorded as they finish, and continued by ``--resume``."""
    folder = check_leakage(args)
    if args.out.is_dir():
        raise InputError(f"{args.out}: is a folder, expected the submission file name")
    from digitbench.benchmark.commands.kaggle import Plan, resolve_params, train_and_submit
    from digitbench.benchmark.config import build_config
    from digitbench.benchmark.execution.backends import configure_process
    from digitbench.models import persist, registry

    for spec in args.model_paths or ():
        registry.load_model_path(spec)
    entry = registry.get(args.model)
    params, notes = resolve_params(entry, args.from_run, args.params, args.epochs, f"kaggle:{folder}")
    if args.save_model is not None:
        persist.check_target(entry, args.save_model)
    config = build_config({
        "datasets": f"kaggle:{folder}", "models": entry.name, "tuners": "none", "seeds": args.seeds,
        "params": {k: v for k, v in params.items() if k not in entry.fixed},
        "threads": args.threads, "workers": args.workers, "cluster": args.cluster,
        "out": args.run_dir or args.out.with_name(f"{args.out.stem}-run"), "resume": args.resume,
        "overwrite": args.overwrite, "cache_dir": args.cache_dir, "model_paths": args.model_paths,
        "save_models": args.save_model is not None, "onnx": False})
    configure_process(config)  # thread pools sized before TensorFlow or BLAS run anything
    plan = Plan(folder, entry, params, notes, args.out, args.save_model, config)
    return train_and_submit(plan, shlex.join(["digitbench", *argv]))
