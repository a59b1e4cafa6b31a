"""The settings of one run, :class:`RunConfig`, made from the declarations in :mod:`.settings`:
from a preset, a TOML file whose keys are the settings' names, the Python API's keywords and the
command line's flags.

Precedence: flags override the file, the file overrides the preset, the preset overrides the
environment (``$DIGITBENCH_WORKERS``, ``$DIGITBENCH_CACHE``), which overrides the defaults.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import field, make_dataclass, replace
from pathlib import Path
from typing import Any

from digitbench.benchmark.presets import preset
from digitbench.benchmark.settings import ALIASES, BY_NAME, OBJECTIVE_COSTS, SETTINGS
from digitbench.benchmark.store import dataset_slug
from digitbench.common.errors import InputError
from digitbench.common.runtime import KerasRuntime


class _RunConfigBase:
    """What a run's settings imply, beside the settings themselves (the fields, from SETTINGS)."""

    @property
    def runtime(self) -> KerasRuntime:
        """The Keras settings of this run, as the model receives them (``LeNet.prepare``)."""
        return KerasRuntime(backend=self.backend, threads=self.threads,
                            steps_per_execution=self.steps_per_execution,
                            deterministic=self.deterministic)

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.run_dir / 'optuna.db').resolve()}"

    @property
    def run_dir(self) -> Path:
        if self.out is not None:
            return self.out
        return Path("runs") / (self.preset or dataset_slug(self.datasets[0]))


def _field(setting) -> tuple[str, str, Any]:
    default = setting.default
    return (setting.name, setting.type,
            field(default_factory=default) if callable(default) else field(default=default))


#: Everything ``digitbench run`` needs to know, one field a setting (:data:`.settings.SETTINGS`);
#: made by :func:`build_config`.
RunConfig = make_dataclass("RunConfig", [_field(s) for s in SETTINGS], bases=(_RunConfigBase,),
                           frozen=True, namespace={"__module__": __name__})
RunConfig.__doc__ = "Everything ``digitbench run`` needs to know; built by :func:`build_config`."


def read_toml(path: Path) -> dict[str, Any]:
    """The settings of a TOML config file, keys normalised; any problem is an InputError."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    return normalise_keys(raw, str(path))


def normalise_keys(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Settings keyed as a TOML file or the Python API gives them (``dataset`` or ``datasets``,
    ``-`` or ``_``) under the settings' names; an unknown key is an InputError naming ``source``."""
    settings = {}
    for key, value in raw.items():
        name = ALIASES.get(key.replace("-", "_"), key.replace("-", "_"))
        if name not in BY_NAME:
            raise InputError(f"{source}: unknown key {key!r}; known keys: {', '.join(BY_NAME)}")
        settings[name] = value
    return settings


def build_config(flags: dict[str, Any], config_file: Path | None = None) -> RunConfig:
    """Merge defaults, preset, file and flags (``None`` flags mean "not given")."""
    from_file = read_toml(config_file) if config_file else {}
    given = {k: v for k, v in flags.items() if v is not None}

    def where(name: str) -> str:
        """Where a setting came from, for error messages: the file's key or the flag."""
        if name in from_file and name not in given:
            return f"{config_file}: {name}"
        return BY_NAME[name].option

    chosen = given.get("preset", from_file.get("preset"))
    merged: dict[str, Any] = {}
    if chosen is not None:
        merged.update(normalise_keys(preset(BY_NAME["preset"].check(where("preset"), chosen)),
                                     f"preset {chosen}"), preset=chosen)
    merged.update(from_file)
    merged.update(given)
    checked = {name: BY_NAME[name].check(where(name), value) for name, value in merged.items()}
    for setting in SETTINGS:  # the environment: below the preset, the file and the flags
        if setting.env and setting.name not in checked and (value := setting.from_env()) is not None:
            checked[setting.name] = value
    checked["workers"], checked["threads"] = _processes(checked.get("workers"), checked.get("threads"))
    if checked.get("stop_at_target") and checked.get("target") is None:
        raise InputError(f"{where('stop_at_target')}: needs a target accuracy (--target ACC)")
    if "target_checks" in checked and checked.get("target") is None:
        raise InputError(f"{where('target_checks')}: needs a target accuracy (--target ACC)")
    _objectives(checked, where)
    return replace(RunConfig(), **checked)


def _objectives(checked: dict[str, Any], where: Callable[[str], str]) -> None:
    """Two objectives: not with keras-tuner (it optimises one); the front finals' ``--cost`` is the
    second objective's unless given, and given, it must be that one."""
    objectives = checked.get("objectives", ())
    if len(objectives) < 2:
        return
    given = f"{where('objectives')} {','.join(objectives)}"
    if "keras-tuner" in checked.get("tuners", ()):
        raise InputError(f"{given}: keras-tuner optimises one objective; use --tuner optuna or "
                         "random for two")
    cost = OBJECTIVE_COSTS[objectives[1]]
    if checked.setdefault("cost", cost) != cost:
        raise InputError(f"{given}: the front is of {objectives[1]}, but {where('cost')} is "
                         f"{checked['cost']}; give --cost {cost} or leave it out")


def _processes(workers: int | None, threads: int | None) -> tuple[int, int]:
    """(workers, threads per worker): what is not given shares the cores out, at least 1 each; by
    default one worker per core with 1 thread (measured faster than one process using every core
    for tuning, see benchmarks/RESULTS.md)."""
    cores = os.cpu_count() or 1
    if workers is None:
        workers = max(1, cores // (threads or 1))
    if threads is None:
        threads = max(1, cores // workers)
    return workers, threads
