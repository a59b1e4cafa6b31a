"""Fitted scikit-learn estimators as a safe ``.npz``: no pickle, so loading runs no code.

Every attribute of the estimator (constructor parameters and fitted state: ``coef_``, and for
kernel SVMs ``support_vectors_``, ``_dual_coef_``, ``_intercept_``, ``_n_support`` ...) is stored,
numeric arrays as ``.npy`` members and everything else (numbers, strings, booleans, None, tuples of
those) in one JSON member. Loading builds a fresh estimator of the class the *caller* names (never a
class named by the file) and sets the attributes back, so that it predicts exactly as the original.
Any other kind of attribute (an object array, a nested estimator) is refused when saving. A model
made of several estimators (features, then a classifier) stores each as a named part.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

STATE_MEMBER = "estimator.json"
PART = "estimator"   # the name of a model's only estimator


def _plain(name: str, value: Any) -> Any:
    """A JSON-safe form of a non-array attribute, tuples tagged so that they come back as tuples."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple):
        return {"tuple": [_plain(name, item) for item in value]}
    raise TypeError(f"cannot save estimator attribute {name} of type {type(value).__name__} safely")


def _unplain(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(_unplain(item) for item in value["tuple"])
    return value


def save_estimator(estimator: Any, path: Path, extra: dict[str, Any]) -> None:
    """Write ``estimator``'s attributes and ``extra`` (JSON) to the ``.npz`` file ``path``."""
    save_estimators({PART: estimator}, path, extra)


def save_estimators(parts: dict[str, Any], path: Path, extra: dict[str, Any]) -> None:
    """Write each named estimator's attributes (arrays as ``NAME/ATTRIBUTE``) and ``extra``."""
    import sklearn

    arrays: dict[str, np.ndarray] = {}
    described = {}
    for part, estimator in parts.items():
        plain = {}
        for name, value in vars(estimator).items():
            if isinstance(value, np.ndarray):
                if value.dtype.hasobject:
                    raise TypeError(f"cannot save estimator attribute {name} (object array) safely")
                arrays[f"{part}/{name}"] = value
            else:
                plain[name] = _plain(name, value)
        described[part] = {"class": _class_name(estimator), "attributes": plain}
    state = {"sklearn": sklearn.__version__, "parts": described, **extra}
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(STATE_MEMBER, json.dumps(state, sort_keys=True))


def _class_name(estimator: Any) -> str:
    return f"{type(estimator).__module__}.{type(estimator).__qualname__}"


def read_state(path: Path) -> dict[str, Any]:
    """The JSON member of a file written by :func:`save_estimators`."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(STATE_MEMBER))


def load_estimator(path: Path, estimator: Any) -> Any:
    """Set the attributes stored in ``path`` on ``estimator`` (a new instance of the right class)."""
    return load_estimators(path, {PART: estimator})[PART]


def load_estimators(path: Path, parts: dict[str, Any]) -> dict[str, Any]:
    """Set each stored part's attributes on the new estimator of the same name in ``parts``."""
    import warnings

    import sklearn

    state = read_state(path)
    if state["sklearn"] != sklearn.__version__:
        warnings.warn(f"{path}: saved with scikit-learn {state['sklearn']}, loading with "
                      f"{sklearn.__version__}; predictions may differ", UserWarning, stacklevel=3)
    if set(state["parts"]) != set(parts):
        raise ValueError(f"{path}: holds parts {sorted(state['parts'])}, expected {sorted(parts)}")
    for part, estimator in parts.items():
        stored = state["parts"][part]
        if stored["class"] != _class_name(estimator):
            raise ValueError(f"{path}: holds a {stored['class']}, expected a {_class_name(estimator)}")
        for name, value in stored["attributes"].items():
            setattr(estimator, name, _unplain(value))
    with np.load(path, allow_pickle=False) as npz:
        for key in npz.files:
            part, _, name = key.partition("/")
            if part in parts and name:
                setattr(parts[part], name, npz[key])
    return parts
