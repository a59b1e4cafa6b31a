"""The checks of setting values, each ``check(where, value) -> value``: the value as the run uses it
(a tuple for a list, a Path for a path), or an :class:`InputError` naming ``where`` (the flag or the
TOML file's key) and the value. :mod:`.settings` names one for each setting."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from digitbench.common.errors import InputError

Check = Callable[[str, Any], Any]


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name}: expected a whole number of at least 1, got {value!r}")
    return value


def whole_number(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{name}: expected a whole number of at least 0, got {value!r}")
    return value


#: The most seeds (``--seeds``, ``--study-seeds``) a run takes: each one is a final of every model
#: whose fit depends on the seed (a study, for --study-seeds), planned, trained and reported one by one.
MAX_SEEDS = 1000


def seeds(name: str, value: Any) -> int:
    if positive_int(name, value) > MAX_SEEDS:
        raise InputError(f"{name}: expected a whole number from 1 to {MAX_SEEDS:,}, got {value!r}")
    return value


def fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise InputError(f"{name}: expected a number between 0 and 1, got {value!r}")
    return float(value)


def names(name: str, value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        raise InputError(f"{name}: expected a comma-separated list of names, got {value!r}")
    items = tuple(v.strip() for v in items if v.strip())
    if not items:
        raise InputError(f"{name}: the list is empty")
    return items


def path(name: str, value: Any) -> Path:
    if not isinstance(value, str | Path) or not str(value):
        raise InputError(f"{name}: expected a path, got {value!r}")
    return Path(value).expanduser()


def model_paths(name: str, value: Any) -> tuple[str, ...]:
    """``module:Class`` or ``file.py:Class`` specs; a file is made absolute, so that worker processes
    started elsewhere find the same one."""
    specs = []
    for spec in names(name, value):
        source, _, cls = spec.rpartition(":")
        specs.append(f"{Path(source).expanduser().resolve()}:{cls}" if source.endswith(".py") else spec)
    return tuple(specs)


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{name}: expected true or false, got {value!r}")
    return value


def positive_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InputError(f"{name}: expected a number above 0, got {value!r}")
    return float(value)


def one_of(*allowed: str) -> Check:
    def check(name: str, value: Any) -> str:
        if value not in allowed:
            raise InputError(f"{name}: expected one of {', '.join(allowed)}, got {value!r}")
        return value

    return check


def names_of(*allowed: str) -> Check:
    """A check of a comma-separated list (or TOML list) of names, each one of ``allowed``."""
    def check(name: str, value: Any) -> tuple[str, ...]:
        given = names(name, value)
        for item in given:
            one_of(*allowed)(name, item)
        return given

    return check


def objectives(first: str, *costs: str) -> Check:
    """A check of ``--objectives``: ``first`` (accuracy), then at most one of ``costs``, each once."""
    def check(name: str, value: Any) -> tuple[str, ...]:
        given = names(name, value)
        for item in given:
            one_of(first, *costs)(name, item)
        if given[0] != first:
            raise InputError(f"{name}: the first objective must be {first}, got {value!r}")
        if len(set(given)) != len(given):
            raise InputError(f"{name}: an objective is named twice in {value!r}")
        if len(given) > 2:
            raise InputError(f"{name}: expected {first} and at most one cost, got {value!r}")
        return given

    return check


def parse_params(name: str, value: Any) -> dict:
    """A ``--params`` value (JSON text, or a TOML table) as a dict of parameter values."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise InputError(f"{name}: expected a JSON object such as {{\"epochs\": 5}}, got {value!r}")
    return value


def train_sizes(name: str, value: Any) -> tuple[int, ...] | str:
    """``auto``, or training-set sizes as ``N1,N2,...`` text or a TOML list of whole numbers."""
    if value == "auto":
        return value
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise InputError(f"{name}: expected auto or sizes such as 500,1000,2000, got {value!r}")
    sizes = []
    for item in items:
        text = item.strip().replace("_", "") if isinstance(item, str) else item
        if isinstance(text, str) and text.isdigit():
            text = int(text)
        if isinstance(text, bool) or not isinstance(text, int) or text < 1:
            raise InputError(f"{name}: expected auto or whole numbers of at least 1, got {item!r}")
        sizes.append(text)
    return tuple(sorted(set(sizes)))


def corruptions(name: str, value: Any) -> tuple[str, ...]:
    """``all`` or corruption names (text or a TOML list), checked against the 15 of MNIST-C."""
    from digitbench.benchmark.data.corruptions import resolve

    if isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, str | tuple) or not value or not all(isinstance(v, str) for v in value):
        raise InputError(f"{name}: expected all or corruption names such as rotate,fog, got {value!r}")
    try:
        return resolve(value if isinstance(value, tuple) else value.strip())
    except InputError as exc:  # named as the setting was given: the flag or the file's key
        raise InputError(str(exc).replace("--corruptions", name, 1)) from None


def storage(name: str, value: Any) -> str:
    if not isinstance(value, str) or "://" not in value:
        raise InputError(f"{name}: expected an RDB URL such as sqlite:///study.db, got {value!r}")
    return value


def cluster(name: str, value: Any) -> str:
    if not isinstance(value, str) or "://" not in value:
        raise InputError(f"{name}: expected a Dask scheduler address such as tcp://HOST:8786, got {value!r}")
    return value


def mlflow_target(name: str, value: Any) -> str:
    """Where ``--mlflow`` logs: a URL MLflow knows (``http://HOST:PORT``, ``sqlite:///...``) as it
    is, or a local folder as its absolute path; MLflow must be installed."""
    import importlib.util

    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name}: expected an MLflow tracking server URL (http://HOST:PORT) or a "
                         f"folder, got {value!r}")
    if importlib.util.find_spec("mlflow") is None:
        raise InputError(f"{name} {value}: MLflow is not installed; pip install 'digitbench[mlflow]'")
    if "://" in value or value == "databricks" or value.startswith("databricks://"):
        return value
    folder = Path(value).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{name} {value}: is a file, expected a folder or a tracking server URL")
    return str(folder)
