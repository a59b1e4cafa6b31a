"""The docs' CLI reference is the parser's own help: a flag added, renamed or reworded without
``make docs`` fails here."""

from __future__ import annotations

from pathlib import Path

from digitbench.benchmark.commands.main import build_parsers
from digitbench.benchmark.commands.reference import cli_reference

PAGE = Path(__file__).resolve().parents[3] / "docs" / "reference" / "cli.md"


def test_the_page_is_what_the_parser_says() -> None:
    assert PAGE.read_text() == cli_reference(), f"{PAGE} is out of date: run `make docs`"


def test_every_command_and_flag_is_on_the_page() -> None:
    page = cli_reference()
    parser, commands = build_parsers()
    for name, command in commands.items():
        assert f"## `digitbench {name}`" in page
        for line in command.format_usage().split():
            if line.startswith("[--"):
                assert line.strip("[]").split()[0] in page, (name, line)
