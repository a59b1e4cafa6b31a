"""The model registry: names -> (class, fixed parameters), built-ins and plug-ins alike.

Plug-ins come in two ways and are then used exactly like the built-ins:

* an installed package declaring an entry point in the group ``digitbench.models``
  (``tiny = mypkg.models:TinyModel``), registered under the entry point's name;
* ``--model-path package.module:Class`` or ``--model-path path/to/file.py:Class``, registered
  under ``Class.name``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from digitbench.common.errors import InputError
from digitbench.models.base import DigitModel

ENTRY_POINT_GROUP = "digitbench.models"


@dataclass(frozen=True)
class Entry:
    """One registry entry: a model class, the parameters fixed for this variant (no tuner changes
    them) and the variant's own defaults (where it starts from, overriding the class's; a tuner may
    change them)."""

    name: str
    cls: type[DigitModel]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    source: str = "built-in"
    own_defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.cls.family

    @property
    def class_path(self) -> str:
        """``module:Class`` of the model class: entries with the same one are variants of it."""
        return f"{self.cls.__module__}:{self.cls.__qualname__}"

    def defaults(self) -> dict[str, Any]:
        """Every parameter with the value this entry uses unless told otherwise: the class's
        defaults, then the variant's own, then its fixed ones."""
        return {**self.cls.defaults, **self.own_defaults, **self.fixed}

    def create(self, **params: Any) -> DigitModel:
        """A new, unfitted model; ``params`` override defaults but not the variant's fixed ones."""
        clash = {k for k, v in params.items() if k in self.fixed and self.fixed[k] != v}
        if clash:
            raise ValueError(f"{self.name}: parameter(s) {sorted(clash)} are fixed by this variant")
        return self.cls(**{**self.own_defaults, **params, **self.fixed})


_entries: dict[str, Entry] = {}
_plugins_loaded = False


def register(name: str, cls: type, source: str = "built-in", *,
             defaults: Mapping[str, Any] | None = None, **fixed: Any) -> Entry:
    """Register ``cls`` under ``name`` with ``fixed`` parameters and the variant's own ``defaults``
    (parameters it starts from instead of the class's; tuners may change them, and the class's
    ``check_params`` must accept them); returns the entry."""
    if not (isinstance(cls, type) and issubclass(cls, DigitModel)):
        raise TypeError(f"{name}: {cls!r} is not a subclass of digitbench.DigitModel")
    if not cls.family:
        raise TypeError(f"{name}: {cls.__name__} declares no family")
    if cls.trains_in_epochs != ("epochs" in cls.defaults):
        raise TypeError(f"{name}: {cls.__name__} " + (
            "declares trains_in_epochs = True but has no 'epochs' parameter" if cls.trains_in_epochs
            else "has an 'epochs' parameter: declare trains_in_epochs = True"))
    own = dict(defaults or {})
    unknown = (set(fixed) | set(own)) - set(cls.defaults)
    if unknown:
        raise TypeError(f"{name}: {cls.__name__} has no parameter(s) {sorted(unknown)}")
    both = sorted(set(fixed) & set(own))
    if both:
        raise TypeError(f"{name}: parameter(s) {both} are both fixed and a default; fixed ones cannot "
                        "be tuned, so give them once, as fixed")
    entry = Entry(name, cls, dict(fixed), source, own)
    try:
        cls.check_params(entry.defaults())
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: {cls.__name__} refuses the variant's parameters: {exc}") from None
    previous = _entries.get(name)
    if previous is not None and (previous.cls, previous.fixed, previous.own_defaults) != (
            entry.cls, entry.fixed, entry.own_defaults):
        raise ValueError(f"model name {name!r} is already registered ({previous.source})")
    _entries[name] = entry
    return entry


#: Importing these modules registers the built-ins (neither imports TensorFlow at import time);
#: listings show the built-ins in this order, whatever order the modules were imported in.
BUILTIN_MODULES = (
    "digitbench.models.baselines", "digitbench.models.kernel_approx", "digitbench.models.lenet")


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def _listing_order(item: tuple[int, Entry]) -> tuple[int, int]:
    position, entry = item
    module = entry.cls.__module__
    rank = BUILTIN_MODULES.index(module) if entry.source == "built-in" and module in BUILTIN_MODULES \
        else len(BUILTIN_MODULES)
    return rank, position


#: Module names of digitbench before 0.2, when its packages were installed at the top level.
OLD_TOP_LEVEL = ("models", "benchmark", "reports")


def import_hint(exc: BaseException) -> str:
    """`` (...)`` telling a plug-in written for digitbench 0.1 (``from models.base import
    DigitModel``) its new import, where ``exc`` is that import failing; else ``""``."""
    name = getattr(exc, "name", None) or ""
    if isinstance(exc, ImportError) and name.split(".")[0] in OLD_TOP_LEVEL:
        return (f" (digitbench 0.2 moved its modules under one import name: write `from digitbench "
                f"import DigitModel, Digits, register` instead of importing from {name})")
    return ""


def load_plugins() -> None:
    """Register the models of every installed ``digitbench.models`` entry point (once)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
            register(ep.name, cls, source=f"entry point {ep.value}")
        except Exception as exc:  # a broken plug-in is the user's input, not our crash
            raise InputError(
                f"entry point {ep.name} = {ep.value} (group {ENTRY_POINT_GROUP}): "
                f"{type(exc).__name__}: {exc}{import_hint(exc)}"
            ) from exc


def load_model_path(spec: str) -> Entry:
    """Import ``package.module:Class`` or ``path/to/file.py:Class`` and register the class under
    ``Class.name``. A module is looked for on ``sys.path``, then in the current folder (as ``python
    -m`` would, but after the installed packages, so a file there never hides one of them)."""
    source, _, class_name = spec.rpartition(":")
    if not source or not class_name or not class_name.isidentifier():
        raise InputError(f"--model-path {spec!r}: expected package.module:Class or path/to/file.py:Class")
    try:
        module = _import_file(Path(source)) if source.endswith(".py") else _import_module(source)
    except InputError as exc:
        raise InputError(f"--model-path {spec}: {exc}") from None
    except Exception as exc:
        raise InputError(f"--model-path {spec}: cannot import {source}: {type(exc).__name__}: "
                         f"{exc}{import_hint(exc)}") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise InputError(f"--model-path {spec}: {source} has no {class_name}")
    name = getattr(cls, "name", "") or class_name.lower()
    try:
        return register(name, cls, source=f"--model-path {spec}")
    except (TypeError, ValueError) as exc:
        raise InputError(f"--model-path {spec}: {exc}") from exc


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        here = str(Path.cwd())
        if exc.name != name.split(".")[0] or here in sys.path:
            raise
        sys.path.append(here)  # not found installed: the current folder, as `python -m` has it
        return importlib.import_module(name)


def _import_file(path: Path) -> ModuleType:
    """The module of a ``.py`` file, imported under its file name (``nearest_centroid.py`` ->
    ``nearest_centroid``), so that worker processes and saved models name it alike."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    known = sys.modules.get(path.stem)
    if known is not None:
        if Path(getattr(known, "__file__", "") or "").resolve() == path:
            return known
        raise InputError(f"a module named {path.stem} is already imported from elsewhere; "
                         "rename the file")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise InputError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[path.stem]
        raise
    return module


def names() -> list[str]:
    """Registered model names: built-ins first (baselines, then networks), then plug-ins."""
    _load_builtins()
    load_plugins()
    return [entry.name for _, entry in sorted(enumerate(_entries.values()), key=_listing_order)]


def builtin_names() -> list[str]:
    return [name for name in names() if _entries[name].source == "built-in"]


def get(name: str) -> Entry:
    """The entry called ``name``; an unknown name is an InputError listing the known ones."""
    _load_builtins()
    if name not in _entries:
        load_plugins()
    if name not in _entries:
        raise InputError(f"unknown model {name!r}; known models: {', '.join(names())}")
    return _entries[name]
