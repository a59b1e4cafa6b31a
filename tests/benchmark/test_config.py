"""Presets, TOML config files and flags, and their precedence."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digitbench.benchmark.config import build_config
from digitbench.benchmark.settings import BUILTIN_MODELS
from digitbench.common.errors import InputError


def test_defaults_are_the_embedded_dataset_and_all_builtins() -> None:
    config = build_config({})
    assert config.datasets == ("mnist-5k",) and config.models == BUILTIN_MODELS
    assert config.seeds == 1 and config.run_dir == Path("runs/mnist-5k")


def test_preset_file_and_flags_override_in_that_order(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text('preset = "standard"\nseeds = 2\nepochs = 4\nmodels = ["logreg", "svm-rbf"]\n')
    config = build_config({"epochs": 7}, toml)
    assert config.datasets == ("fashion-mnist",)         # from the preset
    assert config.seeds == 2                              # the file beats the preset's 3
    assert config.models == ("logreg", "svm-rbf")         # the file, as a TOML list
    assert config.epochs == 7                             # the flag beats the file
    assert config.run_dir == Path("runs/standard")


def test_flags_take_comma_separated_lists() -> None:
    config = build_config({"datasets": "idx:/a,mnist-5k", "models": "logreg, lenet-relu"})
    assert config.datasets == ("idx:/a", "mnist-5k")
    assert config.models == ("logreg", "lenet-relu")
    assert config.run_dir == Path("runs/idx-a")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seeds = 0\n", "seeds: expected a whole number of at least 1, got 0"),
        ("seeds = 'three'\n", "seeds: expected a whole number"),
        ("threads = -1\n", "threads: expected a whole number"),
        ("preset = 'huge'\n", "unknown preset 'huge'"),
        ("colour = 'red'\n", "unknown key 'colour'"),
        ("seeds = [\n", "invalid TOML"),
        ("val_fraction = 1.5\n", "val_fraction: expected a number between 0 and 1"),
    ],
)
def test_bad_config_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text(text)
    with pytest.raises(InputError, match=message) as error:
        build_config({}, toml)
    assert str(toml) in str(error.value) and "\n" not in str(error.value)


def test_missing_config_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such config file"):
        build_config({}, tmp_path / "absent.toml")
    with pytest.raises(InputError, match="is a directory"):
        build_config({}, tmp_path)


def test_bad_flag_values_name_the_flag() -> None:
    with pytest.raises(InputError, match="^--seeds: "):
        build_config({"seeds": 0})
    with pytest.raises(InputError, match="^--dataset: the list is empty"):
        build_config({"datasets": " , "})


@pytest.mark.parametrize(("flags", "env", "expected"), [
    ({}, None, (os.cpu_count() or 1, 1)),          # one worker per core, a thread each
    ({}, "1", (1, os.cpu_count() or 1)),           # DIGITBENCH_WORKERS=1: one process, every core
    ({"threads": 1}, None, (os.cpu_count() or 1, 1)),
    ({"threads": 1}, "1", (1, 1)),
    ({"workers": 3}, None, (3, max(1, (os.cpu_count() or 1) // 3))),
    ({"workers": 2, "threads": 4}, None, (2, 4)),
])
def test_workers_and_threads_share_out_the_cores(monkeypatch, flags, env, expected) -> None:
    if env is None:
        monkeypatch.delenv("DIGITBENCH_WORKERS", raising=False)
    else:
        monkeypatch.setenv("DIGITBENCH_WORKERS", env)
    config = build_config(flags)
    assert (config.workers, config.threads) == expected


def test_a_bad_digitbench_workers_is_one_line(monkeypatch) -> None:
    monkeypatch.setenv("DIGITBENCH_WORKERS", "two")
    with pytest.raises(InputError, match="DIGITBENCH_WORKERS: expected a whole number"):
        build_config({})
