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

from digitbench.benchmark.provenance import digitbench_version
from digitbench.benchmark.settings import add_flag, add_flags
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
    run.add_argument("--config", type=Path, help="TOML file whose keys are these options' names "
                     "(--tune-subsample is tune_subsample); its settings override the preset's")
    add_flags(run)

    report = commands.add_parser(
        "report", help="regenerate report.md of run folders; with several, also compare them side by side")
    report.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    report.add_argument("--out", type=Path, metavar="DIR",
                        help="where the side-by-side comparison.md goes (default: compare-A-vs-B "
                             "beside the first RUN_DIR); only with two or more RUN_DIRs")
    add_flag(report, "mlflow")
    add_flag(report, "mlflow_trials")

    listing = commands.add_parser("list", help="list models, datasets and presets")
    listing.add_argument("what", nargs="?", choices=["models", "datasets", "presets"])
    add_flag(listing, "model_paths")

    from digitbench.benchmark.commands import (  # light: their heavy imports are inside their commands
        predict,
        submit,
    )

    submit.add_parser(commands)
    predict.add_parser(commands)
    return parser, dict(commands.choices)


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from digitbench.benchmark.commands.api import execute, make_config

    given = {k: v for k, v in vars(args).items() if k not in {"command", "config"} and v is not None}
    config = make_config(args.config, **given)
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
    if args.mlflow_trials and args.mlflow is None:
        raise InputError("report: --mlflow-trials needs --mlflow URL|FOLDER")
    if args.mlflow is not None:  # checked before any work: MLflow installed, a URL or a folder
        from digitbench.benchmark.checks import mlflow_target

        args.mlflow = mlflow_target("--mlflow", args.mlflow)
    first, *others = args.run_dirs
    written = write_report(first, *others, out=args.out)
    for run_dir in args.run_dirs if others else ():
        print(Path(run_dir) / "report.md")
    print(written)
    if args.mlflow is not None:
        from digitbench.benchmark.commands.api import log_to_mlflow
        from digitbench.benchmark.provenance import without_passwords

        for run_dir in args.run_dirs:
            parent = log_to_mlflow(run_dir, args.mlflow, bool(args.mlflow_trials))
            print(f"mlflow:  {run_dir} is run {parent} at {without_passwords(args.mlflow)}")
    return 0


def cmd_list(args: argparse.Namespace, argv: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    from digitbench.benchmark import presets
    from digitbench.benchmark.data.datasets import DATASETS
    from digitbench.models import registry

    for spec in args.model_paths or ():
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
        table = Table("preset", "settings", "what it answers", title="presets (digitbench run --preset "
                      "NAME; each a TOML file you can copy and run with --config)")
        for name in presets.preset_names():
            settings = presets.preset(name)
            table.add_row(name, ", ".join(f"{k}={_shown(v)}" for k, v in settings.items()),
                          presets.description(name))
        console.print(table)
    return 0


def _shown(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


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
