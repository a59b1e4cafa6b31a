"""Saving and loading fitted models: one file per model, that says which registry model it holds.

A model file is what the model's own ``save(path)`` writes (Keras' ``.keras`` archive for the
LeNets, a ``skops.io`` ``.skops`` file for the scikit-learn baselines; both are zip archives) plus one
more member, ``digitbench.json``: the registry name, the model class, the parameters, where it was
trained, and the package versions. :func:`load_model` reads that member, looks the name up in the
registry, checks the class, and calls the class's ``load(path)``. Neither format runs code when
loaded (no pickle; a ``.skops`` file holding a type outside ``models.baselines.TRUSTED_TYPES`` is
refused). Files are written atomically: a temporary file beside the target, then a rename.
"""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from digitbench.common.atomic import atomic_path
from digitbench.common.errors import InputError, require_file
from digitbench.models import registry
from digitbench.models.base import DigitModel

META_MEMBER = "digitbench.json"
FORMAT = "digitbench-model"
FORMAT_VERSION = 1


def class_path(cls: type) -> str:
    """``module:Class``, as :attr:`models.registry.Entry.class_path` records it."""
    return f"{cls.__module__}:{cls.__qualname__}"


def same_class(recorded: object, cls: type) -> bool:
    """Whether a file's recorded class is ``cls``; files saved before 0.2 name our built-ins by their
    old top-level module (``models.lenet:LeNet``, now ``digitbench.models.lenet:LeNet``)."""
    current = class_path(cls)
    return recorded == current or f"digitbench.{recorded}" == current


def can_save(cls: type) -> bool:
    """Whether models of ``cls`` implement the optional ``save`` / ``load`` pair."""
    return all(callable(getattr(cls, name, None)) for name in ("save", "load")) and bool(
        getattr(cls, "file_suffix", ""))


def file_suffix(entry: registry.Entry) -> str:
    """The file name ending of ``entry``'s saved models; InputError if it cannot be saved."""
    if not can_save(entry.cls):
        raise InputError(f"model {entry.name} ({class_path(entry.cls)}) cannot be saved: its class "
                         "has no save(path) / load(path) methods and file_suffix")
    return entry.cls.file_suffix


def check_target(entry: registry.Entry, path: Path) -> Path:
    """``path`` as a place to save ``entry``'s model: the right suffix, not a folder."""
    suffix = file_suffix(entry)
    if path.suffix != suffix:
        raise InputError(f"{path}: {entry.name} models are saved as {suffix} files; "
                         f"name the file ...{suffix}")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a file name")
    return path


def save_model(model: DigitModel, path: str | Path, name: str,
               trained_on: dict[str, Any] | None = None,
               versions: dict[str, str] | None = None) -> Path:
    """Save the fitted ``model`` (registry name ``name``) to ``path`` atomically; returns the path.

    ``trained_on`` (e.g. dataset, image count, seed) and ``versions`` (the package versions the
    caller trained with) are recorded for whoever loads the file.
    """
    path = check_target(registry.get(name), Path(path))
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model": name,
        "class": class_path(type(model)), "params": model.get_params(),
        "trained_on": trained_on or {}, "saved_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions or {},
    }
    with atomic_path(path) as tmp:
        model.save(tmp)
        if not zipfile.is_zipfile(tmp):
            raise ValueError(f"{class_path(type(model))}.save did not write a zip archive, so the "
                             "file cannot say which model it holds")
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(META_MEMBER, json.dumps(meta, sort_keys=True, default=str))
    return path


def read_meta(path: str | Path) -> dict[str, Any]:
    """The ``digitbench.json`` member of a model file; InputError for anything else."""
    path = require_file(Path(path), expected="a model file", missing="no such model file")
    try:
        with zipfile.ZipFile(path) as archive:
            if META_MEMBER not in archive.namelist():
                raise InputError(f"{path}: not a digitbench model file (a zip archive without "
                                 f"{META_MEMBER}); save one with `digitbench run --save-models`")
            meta = json.loads(archive.read(META_MEMBER))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise InputError(f"{path}: not a digitbench model file ({type(exc).__name__}: "
                         f"{str(exc)[:120]}); save one with `digitbench run --save-models`") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{path}: not a digitbench model file (no {FORMAT} header)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path}: model file format version {meta.get('format_version')}, this "
                         f"digitbench reads version {FORMAT_VERSION}")
    return meta


def load_model(path: str | Path) -> tuple[DigitModel, dict[str, Any]]:
    """The fitted model saved in ``path`` and the file's metadata (name, params, trained_on ...)."""
    meta = read_meta(path)
    try:
        entry = registry.get(str(meta.get("model")))
    except InputError as exc:
        raise InputError(f"{path}: {exc} (a plug-in model needs --model-path {meta.get('class')})") from None
    if not same_class(meta.get("class"), entry.cls):
        raise InputError(f"{path}: holds a {meta.get('class')} but model {entry.name} is now "
                         f"{class_path(entry.cls)}")
    if not can_save(entry.cls):
        raise InputError(f"{path}: model {entry.name} has no load(path) method")
    try:
        model = entry.cls.load(Path(path))
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: cannot load {entry.name} ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:160]})") from None
    return model, meta
