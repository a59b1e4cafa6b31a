"""Each setting is declared once, in benchmark/settings.py: its flag, TOML key, help, report label,
RunConfig field and default all come from that declaration, and no other module declares them."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from digitbench.benchmark.commands.main import build_parsers
from digitbench.benchmark.config import RunConfig, build_config, normalise_keys
from digitbench.benchmark.presets import preset, preset_names
from digitbench.benchmark.settings import SETTINGS, help_text
from digitbench.common.errors import InputError
from digitbench.reports.run_sections import SETTINGS as REPORTED

ROOT = Path(__file__).resolve().parents[2]
#: Options of other commands that share a spelling with a setting but mean something else.
OTHER_MEANINGS = {("benchmark/commands/submit.py", "--out"),  # the submission file, not a run folder
                  ("benchmark/commands/main.py", "--out"),    # `report --out`: the comparison's folder
                  ("benchmark/commands/predict.py", "--threads")}  # predict's one process, no workers


def test_every_setting_is_a_field_a_flag_a_toml_key_and_its_own_help() -> None:
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    assert list(fields) == [s.name for s in SETTINGS], "RunConfig is made of the settings, in order"
    _, commands = build_parsers()
    run_help = commands["run"].format_help()
    for s in SETTINGS:
        field = fields[s.name]
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        assert default == s.initial(), s.name
        assert normalise_keys({s.name: 1}, "test") == {s.name: 1}, "its name is its TOML key"
        if s.cli:
            assert f"{s.option} " in run_help or f"{s.option}\n" in run_help, s.option
            first_words = " ".join(help_text(s).replace("%%", "%").split()[:4])
            assert first_words in " ".join(run_help.split()), s.name
        assert REPORTED.get(s.name) == s.label, f"{s.name}: the report's label is the declared one"


def test_no_other_module_declares_a_setting_flag() -> None:
    """No ``add_argument`` of a setting's flag outside settings.py (a literal first argument; submit's
    refused flags are built from a table, so they cannot pass for a setting's)."""
    flags = {s.option for s in SETTINGS if s.cli}
    for folder in ("benchmark", "models", "reports", "common", "digitbench"):
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "add_argument" and node.args
                        and isinstance(node.args[0], ast.Constant) and node.args[0].value in flags):
                    assert (rel, node.args[0].value) in OTHER_MEANINGS, f"{rel} declares {node.args[0].value}"


def test_every_preset_is_a_file_of_setting_keys() -> None:
    assert preset_names()[0] == "quick"
    for name in preset_names():
        config = build_config({"preset": name})
        assert config.preset == name
        for key in normalise_keys(preset(name), name):
            assert getattr(config, key) is not None


def test_the_environment_gives_defaults_below_everything_given(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DIGITBENCH_CACHE", str(tmp_path / "cache"))
    assert build_config({}).cache_dir == tmp_path / "cache"
    assert build_config({"cache_dir": str(tmp_path / "mine")}).cache_dir == tmp_path / "mine"
    monkeypatch.setenv("DIGITBENCH_WORKERS", "1")
    assert build_config({"preset": "speedrun"}).workers == 1 and build_config({}).workers == 1
    monkeypatch.setenv("DIGITBENCH_CACHE", "")
    assert build_config({}).cache_dir is None, "an empty variable is not set"


def test_an_unknown_key_names_the_known_ones() -> None:
    with pytest.raises(InputError, match="^run.toml: unknown key 'sedes'; known keys: preset, datasets,"):
        normalise_keys({"sedes": 3}, "run.toml")


def test_a_job_carries_the_settings_declared_for_it_under_their_names() -> None:
    from digitbench.benchmark.execution.jobs import Job

    job_fields = {f.name for f in dataclasses.fields(Job)}
    carried = [s.name for s in SETTINGS if s.job]
    assert carried and set(carried) <= job_fields
