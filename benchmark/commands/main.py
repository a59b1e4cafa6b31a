"""``digitbench``: run the benchmark, regenerate reports, list what is available.

Heavy libraries (TensorFlow, scikit-learn, matplotlib) are imported inside the commands that need
them, so ``digitbench --help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from digitbench.benchmark.commands.flags import add_execution_flags, add_model_path_flag
from digitbench.benchmark.provenance import digitbench_version
from digitbench.common.errors import InputError, NoSpaceLeft

PROG = "digitbench"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    return build_parsers()[0]


def build_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``digitbench`` parser and each command's, by name (the CLI reference is made of them)."""
    parser = _Parser(prog=PROG, description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--version", action="version", version=f"{PROG} {digitbench_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="train, time and evaluate models; write results and report")
    run.add_argument("--preset", help="quick (mnist-5k), standard (fashion-mnist), tuners (fashion-mnist: "
                     "what tuning buys, which tuner wins), full (mnist), scaling (mnist: learning curves), "
                     "speedrun (mnist: CPU-s to 99%%)")
    run.add_argument("--config", type=Path, help="TOML file whose keys mirror these flags")
    run.add_argument("--dataset", help="dataset spec(s), comma-separated (see `digitbench list`)")
    run.add_argument("--models", help="model names, comma-separated (default: the five built-ins)")
    run.add_argument("--seeds", type=int,
                     help="number of seeds per model (0..N-1, N at most 1,000; default 1)")
    run.add_argument("--epochs", type=int, help="epochs for models that train in epochs")
    add_execution_flags(run, "the jobs")
    run.add_argument("--out", type=Path, help="run folder (default runs/<preset or dataset>)")
    run.add_argument("--resume", action="store_true", default=None,
                     help="continue the run in --out, skipping finished jobs")
    run.add_argument("--overwrite", action="store_true", default=None,
                     help="discard the results already in --out and start again")
    run.add_argument("--data-dir", type=Path, help="folder with the IDX files for mnist/fashion-mnist")
    run.add_argument("--native-size", action="store_true", default=None,
                     help="keep images that are not 28x28 at their own size instead of preparing them "
                          "as MNIST's were (only models that take any size)")
    run.add_argument("--test-on", metavar="SPEC[,SPEC]",
                     help="also test every final model once on the test part of these datasets "
                          "(never tuned on them); the report tabulates trained-on against tested-on")
    run.add_argument("--cache-dir", type=Path, help="dataset cache (default ~/.cache/digitbench)")
    add_model_path_flag(run)
    run.add_argument("--latency-batch", type=int, help="large batch size for latency (default 1000)")
    run.add_argument("--backend", help="Keras backend: tensorflow (default), torch or jax "
                     "(pip install 'digitbench[torch]' / '[jax]'); see benchmarks/RESULTS.md")
    run.add_argument("--steps-per-execution", type=int, metavar="N",
                     help="Keras training steps per call into TensorFlow/JAX (default 16: the same "
                          "steps as 1, less overhead; torch always 1)")
    run.add_argument("--deterministic", action="store_true", default=None,
                     help="switch on TensorFlow's op determinism: the same seed and threads give "
                          "the same results (slower)")
    run.add_argument("--target", type=float, metavar="ACC",
                     help="time each final that trains in epochs until its validation accuracy first "
                          "reaches ACC (e.g. 0.99); such finals train on the training part only")
    run.add_argument("--stop-at-target", action="store_true", default=None,
                     help="with --target: end each such final's training once it reaches the target "
                          "(its test accuracy is then the model's at that point)")
    run.add_argument("--target-checks", type=int, metavar="N",
                     help="with --target: validation checks an epoch, the time to the target read to "
                          "1/N of an epoch (default 4; 1: at the end of each epoch only)")
    run.add_argument("--train-sizes", metavar="N1,N2,...|auto",
                     help="learning curves: every final also trained on nested stratified subsets of "
                          "these sizes (auto: 25 images a class, doubling up to the whole training part)")
    run.add_argument("--corruptions", metavar="all|NAME[,NAME]",
                     help="also test every final on its test images under these MNIST-C corruptions "
                          "(all: the 15), and measure how calibrated its probabilities are")
    run.add_argument("--no-onnx", dest="onnx", action="store_false", default=None,
                     help="do not export final models to ONNX and time them in ONNX Runtime")
    run.add_argument("--save-models", action="store_true", default=None,
                     help="keep the final models in RUN_DIR/models/ (for `digitbench predict`)")
    tune = run.add_argument_group("tuning (the same budget for every contender)")
    tune.add_argument("--tuner", help="none, optuna, keras-tuner, random (random search, the baseline), "
                      "or several comma-separated")
    tune.add_argument("--trials", type=int, help="trials per dataset x model x tuner (default 20)")
    tune.add_argument("--budget", type=float, metavar="CPU_SECONDS",
                      help="CPU-seconds per dataset x model x tuner; stops at a trial boundary")
    tune.add_argument("--study-seeds", type=int, metavar="N",
                      help="repeat each study with seeds 0..N-1 (N at most 1,000) for the tuning "
                           "curves' bands (finals refit study 0's choice; default 1)")
    tune.add_argument("--no-refit-defaults", dest="refit_defaults", action="store_false", default=None,
                      help="do not refit the defaults beside the tuned parameters (by default, where "
                           "tuning chose other values, the finals refit the defaults too, on the same "
                           "seeds, so the report can say what tuning bought on the test set)")
    tune.add_argument("--sampler", help="Optuna sampler: tpe (default) or random")
    tune.add_argument("--pruner", help="Optuna pruner: median (default), hyperband or none")
    tune.add_argument("--oracle", help="keras-tuner oracle: bayesian (default), random, hyperband")
    tune.add_argument("--tune-subsample", type=int, metavar="N",
                      help="tuning trials train on a stratified N-image subsample")
    tune.add_argument("--cv", type=int, metavar="K",
                      help="folds scoring trials of models without epochs (default 5; 1: hold-out)")
    tune.add_argument("--storage", help="where the Optuna studies are kept (default "
                      "sqlite:///RUN_DIR/optuna.db; any URL optuna-dashboard reads)")
    tune.add_argument("--params", help='fixed parameter values as JSON, e.g. \'{"epochs": 5}\'')

    report = commands.add_parser(
        "report", help="regenerate report.md of run folders; with several, also compare them side by side")
    report.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    report.add_argument("--out", type=Path, metavar="DIR",
                        help="where the side-by-side comparison.md goes (default: compare-A-vs-B "
                             "beside the first RUN_DIR); only with two or more RUN_DIRs")

    listing = commands.add_parser("list", help="list models, datasets and presets")
    listing.add_argument("what", nargs="?", choices=["models", "datasets", "presets"])
    add_model_path_flag(listing, default=[])

    from digitbench.benchmark.commands import (  # light: their heavy imports are inside their commands
        predict,
        submit,
    )

    submit.add_parser(commands)
    predict.add_parser(commands)
    return parser, dict(commands.choices)


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from digitbench.benchmark.commands.api import execute, make_config

    flags = {k: v for k, v in vars(args).items() if k not in {"command", "config"}}
    flags["datasets"] = flags.pop("dataset")
    flags["model_paths"] = flags.pop("model_path")
    flags["tuners"] = flags.pop("tuner")
    config = make_config(args.config, **{k: v for k, v in flags.items() if v is not None})
    code = execute(config, shlex.join([PROG, *argv]))
    if code in (0, 1):
        print(f"results: {config.run_dir / 'results.csv'}\nreport:  {config.run_dir / 'report.md'}",
              file=sys.stderr, flush=True)
    return code


def cmd_report(args: argparse.Namespace, argv: list[str]) -> int:
    from digitbench.benchmark.commands.api import write_report

    if args.out is not None and len(args.run_dirs) < 2:
        raise InputError("report: --out is for comparing two or more RUN_DIRs; "
                         "a single run's report is RUN_DIR/report.md")
    first, *others = args.run_dirs
    written = write_report(first, *others, out=args.out)
    for run_dir in args.run_dirs if others else ():
        print(Path(run_dir) / "report.md")
    print(written)
    return 0


def cmd_list(args: argparse.Namespace, argv: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    from digitbench.benchmark.config import PRESETS
    from digitbench.benchmark.data.datasets import DATASETS
    from digitbench.models import registry

    for spec in args.model_path:
        registry.load_model_path(spec)
    console = Console()
    if args.what in (None, "models"):
        from digitbench.benchmark.tuning.space import dimensions

        table = Table("model", "family", "source", "defaults", "tuned", title="models")
        for name in registry.names():
            entry = registry.get(name)
            defaults = ", ".join(f"{k}={v}" for k, v in entry.defaults().items())
            tuned = ", ".join(f"{k}: {d.describe()}" for k, d in dimensions(entry.cls).items()
                              if k not in entry.fixed)
            table.add_row(name, entry.family, entry.source, defaults, tuned or "nothing")
        console.print(table)
    if args.what in (None, "datasets"):
        table = Table("spec", "what", title="datasets")
        for spec, what in DATASETS.items():
            table.add_row(spec, what)
        console.print(table)
    if args.what in (None, "presets"):
        table = Table("preset", "settings", title="presets")
        for name, settings in PRESETS.items():
            table.add_row(name, ", ".join(f"{k}={_shown(v)}" for k, v in settings.items()))
        console.print(table)
    return 0


def _shown(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def cmd_submit(args: argparse.Namespace, argv: list[str]) -> int:
    from digitbench.benchmark.commands.submit import command

    return command(args, argv)


def cmd_predict(args: argparse.Namespace, argv: list[str]) -> int:
    from digitbench.benchmark.commands.predict import command

    return command(args, argv)


COMMANDS = {"run": cmd_run, "report": cmd_report, "list": cmd_list, "submit": cmd_submit,
            "predict": cmd_predict}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow can be imported
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args, argv)
    except InputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except NoSpaceLeft as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; finished jobs are saved, continue with --resume",
              file=sys.stderr)
        return 130
