"""Saving and loading every built-in model: the loaded model predicts exactly as the saved one."""

from __future__ import annotations

import copy
import io
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from digitbench.common.errors import InputError
from digitbench.models import persist, registry
from digitbench.models.base import DigitModel, Digits, probabilities
from digitbench.models.baselines import TRUSTED_TYPES, SklearnModel, pixels

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
    if isinstance(model, SklearnModel):            # and the estimators' own scores
        assert path.suffix == ".skops"
        x = pixels(test)
        if hasattr(model, "features_"):            # svm-nystroem: kernel features, then the SVM
            np.testing.assert_array_equal(loaded.features_.transform(x), model.features_.transform(x))
            x = model.features_.transform(x)
        np.testing.assert_array_equal(loaded.estimator_.decision_function(x),
                                      model.estimator_.decision_function(x))
        if hasattr(model.estimator_, "predict_proba"):   # logreg
            np.testing.assert_array_equal(loaded.estimator_.predict_proba(x),
                                          model.estimator_.predict_proba(x))


@pytest.fixture(scope="module")
def logreg(tiny) -> DigitModel:
    train, _ = tiny
    return registry.get("logreg").create(max_iter=50).fit(train, seed=0)


def test_sklearn_files_are_skops_without_pickle(tiny, tmp_path: Path) -> None:
    import skops.io

    train, _ = tiny
    model = registry.get("svm-nystroem").create(n_components=50).fit(train, seed=0)
    path = persist.save_model(model, tmp_path / "svm.skops", "svm-nystroem")
    assert skops.io.get_untrusted_types(file=path) == []
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert {"schema.json", "digitbench.json"} <= set(names)
        arrays = [name for name in names if name.endswith(".npy")]
        assert len(arrays) >= 4 and set(names) == {"schema.json", "digitbench.json", *arrays}
        for name in arrays:  # np.load refuses object arrays (pickles) with allow_pickle=False
            np.load(io.BytesIO(archive.read(name)), allow_pickle=False)
        schema = archive.read("schema.json").decode()
    for part in ("sklearn.kernel_approximation.Nystroem", "sklearn.svm._classes.LinearSVC"):
        assert part in TRUSTED_TYPES and f'"{part.rpartition(".")[2]}"' in schema


def test_sklearn_version_change_warns(logreg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sklearn

    path = persist.save_model(logreg, tmp_path / "l.skops", "logreg")
    monkeypatch.setattr(sklearn, "__version__", "0.0-other")
    with pytest.warns(UserWarning, match="saved with scikit-learn"):
        persist.load_model(path)


BUILT: list[str] = []   # what Sneaky.__setstate__ was called with: it must never be


class Sneaky:
    """A class no digitbench model holds; building one from a file would run its code."""

    def __init__(self) -> None:
        self.payload = "rm -rf"

    def __setstate__(self, state: dict) -> None:
        BUILT.append(state["payload"])


def saved_with(logreg, path: Path, estimator: object) -> Path:
    """``logreg``'s model file with ``estimator`` dumped in place of its fitted estimator."""
    model = copy.copy(logreg)
    model.estimator_ = estimator
    return persist.save_model(model, path, "logreg")


def test_untrusted_types_are_refused_before_anything_is_built(logreg, tmp_path: Path) -> None:
    import skops.io

    path = saved_with(logreg, tmp_path / "sneaky.skops", Sneaky())
    untrusted = skops.io.get_untrusted_types(file=path)
    assert len(untrusted) == 1 and untrusted[0].endswith(".Sneaky")
    with pytest.raises(InputError, match="refused, it holds types") as info:
        persist.load_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and untrusted[0] in message and "\n" not in message
    assert BUILT == []
    # a function is a type skops does not trust either: nothing names os.system in our list
    path = saved_with(logreg, tmp_path / "system.skops", os.system)
    with pytest.raises(InputError, match=r"refused, it holds types .*system"):
        persist.load_model(path)


def test_trusted_types_of_another_model_are_refused(logreg, tiny, tmp_path: Path) -> None:
    """skops trusts every scikit-learn estimator; a model file must hold the one its model builds."""
    from sklearn.preprocessing import StandardScaler

    train, _ = tiny
    path = saved_with(logreg, tmp_path / "scaler.skops", StandardScaler().fit(pixels(train.images)))
    expected = (r"cannot load logreg .*holds a sklearn\.preprocessing.*StandardScaler as estimator_, "
                r"expected a sklearn\.linear_model.*LogisticRegression")
    with pytest.raises(InputError, match=expected):
        persist.load_model(path)


def header(model: str = "logreg", cls: str = "digitbench.models.baselines:LogisticRegressionModel") -> str:
    return json.dumps({"format": "digitbench-model", "format_version": 1, "model": model, "class": cls,
                       "params": {}, "trained_on": {}, "versions": {}})


def test_old_npz_model_files_say_the_format_changed(logreg, tmp_path: Path) -> None:
    """A file as digitbench wrote them before skops: arrays, ``estimator.json``, ``digitbench.json``."""
    path = tmp_path / "old.npz"
    np.savez_compressed(path, **{"estimator/coef_": logreg.estimator_.coef_,
                                 "estimator/intercept_": logreg.estimator_.intercept_})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("estimator.json", json.dumps({"sklearn": "1.9.1", "params": logreg.params,
                                                       "parts": {"estimator": {"attributes": {}}}}))
        archive.writestr("digitbench.json", header())
    with pytest.raises(InputError, match="format of earlier digitbench versions") as info:
        persist.load_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "save the model again" in message and "\n" not in message


def test_bad_model_files_are_input_errors(logreg, tmp_path: Path) -> None:
    import skops.io

    (tmp_path / "text.skops").write_text("not a model")
    data = saved_with(logreg, tmp_path / "whole.skops", logreg.estimator_).read_bytes()
    (tmp_path / "truncated.skops").write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(tmp_path / "plain.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    with zipfile.ZipFile(tmp_path / "other.skops", "w") as archive:
        archive.writestr("digitbench.json", json.dumps({"format": "digitbench-model",
                                                        "format_version": 1, "model": "no-such"}))
    with zipfile.ZipFile(tmp_path / "no-schema.skops", "w") as archive:
        archive.writestr("coef.npy", b"\x93NUMPY")
        archive.writestr("digitbench.json", header())
    skops.io.dump(logreg.estimator_, tmp_path / "bare.skops")   # a skops file, but not our dict
    with zipfile.ZipFile(tmp_path / "bare.skops", "a") as archive:
        archive.writestr("digitbench.json", header())
    with zipfile.ZipFile(tmp_path / "bad-schema.skops", "w") as archive:
        archive.writestr("schema.json", "{not json")
        archive.writestr("digitbench.json", header())
    cases = {"missing.skops": "no such model file", "": "is a folder", "text.skops": "not a digitbench model",
             "truncated.skops": "not a digitbench model", "plain.keras": "not a digitbench model",
             "other.skops": "unknown model 'no-such'",
             "no-schema.skops": "not a skops model file (a zip archive without schema.json)",
             "bare.skops": "a skops file, but not a digitbench scikit-learn model",
             "bad-schema.skops": "not a readable skops model file (JSONDecodeError"}
    for name, expected in cases.items():
        with pytest.raises(InputError, match=re.escape(expected)) as info:
            persist.load_model(tmp_path / name)
        assert str(info.value).startswith(str(tmp_path / name)) and "\n" not in str(info.value)


def test_wrong_suffix_and_unsaveable_models(plugin_path: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"saved as \.keras files"):
        persist.check_target(registry.get("lenet-relu"), tmp_path / "m.skops")
    with pytest.raises(InputError, match=r"saved as \.skops files"):
        persist.check_target(registry.get("svm-rbf"), tmp_path / "m.npz")
    entry = registry.load_model_path("tinyplugin:NearestCentroid")
    assert not persist.can_save(entry.cls)
    with pytest.raises(InputError, match="cannot be saved"):
        persist.file_suffix(entry)


def test_failed_save_leaves_nothing(logreg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = copy.copy(logreg)

    def broken(path: Path) -> None:
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        persist.save_model(model, tmp_path / "out" / "l.skops", "logreg")
    assert not list((tmp_path / "out").iterdir())


def test_files_saved_before_one_import_name_still_name_their_class() -> None:
    """digitbench 0.1 recorded built-in classes by their top-level module (``models.lenet:LeNet``)."""
    from digitbench.models.lenet import LeNet
    from digitbench.models.persist import same_class

    assert same_class("models.lenet:LeNet", LeNet) and same_class("digitbench.models.lenet:LeNet", LeNet)
    assert not same_class("models.baselines:LinearSVMModel", LeNet) and not same_class(None, LeNet)
