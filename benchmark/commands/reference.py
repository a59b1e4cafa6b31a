"""The CLI reference page of the docs (``docs/reference/cli.md``), made from the parser itself, so
the page cannot say what the parser does not do: ``make docs`` writes it, a test compares them.

    python -m digitbench.benchmark.commands.reference > docs/reference/cli.md
"""

from __future__ import annotations

import argparse
import functools

from digitbench.benchmark.commands.main import PROG, build_parsers
from digitbench.benchmark.settings import SETTINGS

#: Help is wrapped at this width whatever the terminal's, so the page is the same everywhere.
WIDTH = 100


def cli_reference() -> str:
    """The markdown page: ``digitbench --help``, then each command's ``--help``."""
    parser, commands = build_parsers()
    lines = ["# CLI reference", "",
             f"Every command of `{PROG}` with its options, as `{PROG} COMMAND --help` prints them. "
             "This page is generated from the parser (`make docs`); a test fails when they differ.",
             "", "Settings of `run` can also come from a TOML file (`--config FILE`) whose keys are "
             "the flags' names (`--tune-subsample` is `tune_subsample`), or from the Python API's "
             "keyword arguments (`digitbench.run(tune_subsample=5000)`).", ""]
    for name, command in [(PROG, parser), *((f"{PROG} {n}", c) for n, c in commands.items())]:
        lines += [f"## `{name}`", "", "```text", _help(command).rstrip(), "```", ""]
    lines += ["## Environment variables", "",
              "Each gives a setting's default; a preset, a `--config` file and a flag override it.", "",
              "| variable | setting | flag |", "| --- | --- | --- |"]
    lines += [f"| `{s.env}` | `{s.name}` | `{s.option}` |" for s in SETTINGS if s.env]
    return "\n".join(lines) + "\n"


def _help(parser: argparse.ArgumentParser) -> str:
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=WIDTH)
    return parser.format_help()


if __name__ == "__main__":
    print(cli_reference(), end="")
