"""Saving and loading every built-in model: the loaded model predicts exactly as the saved one."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from models import persist, registry
from models.base import Digits, probabilities
from models.errors import InputError

pytestmark = pytest.mark.filterwarnings(
    "ignore:lbfgs failed to converge", "ignore:Liblinear failed to converge",
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")  # Keras' own

BUILTINS = ["logreg", "linear-svm", "svm-rbf", "svm-nystroem", "lenet-relu", "lenet-tanh"]
QUICK = {"epochs": 1, "max_iter": 100, "n_components": 100}


@pytest.fixture(scope="module")
def tiny(real_digits: Digits) -> tuple[Digits, np.ndarray]:
    images, labels = real_digits
    return Digits(images[:500], labels[:500]), images[500:700]


@pytest.mark.parametrize("name", BUILTINS)
def test_round_trip_predicts_identically(name: str, tiny, tmp_path: Path) -> None:
    train, test = tiny
    entry = registry.get(name)
    model = entry.create(**{k: v for k, v in QUICK.items() if k in entry.defaults()}).fit(train, seed=1)
    path = persist.save_model(model, tmp_path / f"m{entry.cls.file_suffix}", name, {"images": 500},
                              {"numpy": "2"})
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file left behind"

    loaded, meta = persist.load_model(path)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    assert meta["model"] == name and meta["params"] == json.loads(json.dumps(model.get_params()))
    assert meta["trained_on"] == {"images": 500} and "numpy" in meta["versions"]
    np.testing.assert_array_equal(loaded.predict(test), model.predict(test))
    np.testing.assert_array_equal(probabilities(loaded, test), probabilities(model, test))
    if hasattr(model, "estimator_") and hasattr(model.estimator_, "decision_function"):
        x = test.reshape(len(test), -1) / 255.0
        if hasattr(model, "features_"):            # svm-nystroem: kernel features, then the SVM
            np.testing.assert_array_equal(loaded.features_.transform(x), model.features_.transform(x))
            x = model.features_.transform(x)
        np.testing.assert_array_equal(loaded.estimator_.decision_function(x),
                                      model.estimator_.decision_function(x))


def test_sklearn_files_hold_no_pickle(tiny, tmp_path: Path) -> None:
    train, _ = tiny
    model = registry.get("svm-rbf").create().fit(train, seed=0)
    path = persist.save_model(model, tmp_path / "svm.npz", "svm-rbf")
    with np.load(path, allow_pickle=False) as npz:  # would raise on any object array
        arrays = {key: npz[key] for key in npz.files if key.startswith("estimator/")}
    assert "estimator/support_vectors_" in arrays and "estimator/_dual_coef_" in arrays
    with zipfile.ZipFile(path) as archive:
        assert {"digitbench.json", "estimator.json"} <= set(archive.namelist())


def test_sklearn_version_change_warns(tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sklearn

    train, _ = tiny
    path = persist.save_model(registry.get("logreg").create(max_iter=50).fit(train, seed=0),
                              tmp_path / "l.npz", "logreg")
    monkeypatch.setattr(sklearn, "__version__", "0.0-other")
    with pytest.warns(UserWarning, match="saved with scikit-learn"):
        persist.load_model(path)


def test_bad_model_files_are_input_errors(tmp_path: Path) -> None:
    (tmp_path / "text.npz").write_text("not a model")
    with zipfile.ZipFile(tmp_path / "plain.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    with zipfile.ZipFile(tmp_path / "other.npz", "w") as archive:
        archive.writestr("digitbench.json", json.dumps({"format": "digitbench-model",
                                                        "format_version": 1, "model": "no-such"}))
    cases = {"missing.npz": "no such model file", "": "is a folder", "text.npz": "not a digitbench model",
             "plain.keras": "not a digitbench model", "other.npz": "unknown model 'no-such'"}
    for name, expected in cases.items():
        with pytest.raises(InputError, match=expected) as info:
            persist.load_model(tmp_path / name)
        assert "\n" not in str(info.value)


def test_wrong_suffix_and_unsaveable_models(plugin_path: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"saved as \.keras files"):
        persist.check_target(registry.get("lenet-relu"), tmp_path / "m.npz")
    entry = registry.load_model_path("tinyplugin:NearestCentroid")
    assert not persist.can_save(entry.cls)
    with pytest.raises(InputError, match="cannot be saved"):
        persist.file_suffix(entry)


def test_failed_save_leaves_nothing(tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train, _ = tiny
    model = registry.get("logreg").create(max_iter=20).fit(train, seed=0)

    def broken(path: Path) -> None:
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        persist.save_model(model, tmp_path / "out" / "l.npz", "logreg")
    assert not list((tmp_path / "out").iterdir())
