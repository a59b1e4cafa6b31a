"""The registry: built-ins, variants with fixed parameters, and both ways of plugging in."""

from __future__ import annotations

from pathlib import Path

import pytest

from digitbench.common.errors import InputError
from digitbench.models import registry

BUILTINS = ["logreg", "linear-svm", "svm-rbf", "svm-nystroem", "lenet-relu", "lenet-tanh",
            "lenet-speedrun"]


def test_the_builtins_are_registered() -> None:
    assert registry.builtin_names() == BUILTINS
    assert {registry.get(n).family for n in BUILTINS} == {"baseline", "cnn"}


def test_variants_share_a_class_and_differ_in_fixed_parameters() -> None:
    relu, tanh = registry.get("lenet-relu"), registry.get("lenet-tanh")
    assert relu.cls is tanh.cls
    assert relu.defaults()["activation"] == "relu" and tanh.defaults()["activation"] == "tanh"
    with pytest.raises(ValueError, match="fixed"):
        relu.create(activation="tanh")


def test_a_variant_may_declare_defaults_of_its_own_which_tuners_may_change(plugin_path: Path) -> None:
    registry.load_model_path("tinyplugin:NearestCentroid")
    cls = registry.get("nearest-centroid").cls
    entry = registry.register("centroid-shrunk", cls, "a test", defaults={"shrink": 0.5})
    assert entry.defaults() == {"shrink": 0.5} and cls.defaults == {"shrink": 0.0}
    assert entry.create().params["shrink"] == 0.5, "a model made without values starts from them"
    assert entry.create(shrink=0.25).params["shrink"] == 0.25, "unlike a fixed one, it can be changed"
    with pytest.raises(TypeError, match="both fixed and a default"):
        registry.register("centroid-both", cls, defaults={"shrink": 0.5}, shrink=0.1)
    with pytest.raises(TypeError, match="no parameter"):
        registry.register("centroid-odd", cls, defaults={"width": 3})
    with pytest.raises(TypeError, match="refuses the variant's parameters: shrink"):
        registry.register("centroid-text", cls, defaults={"shrink": "a lot"})
    with pytest.raises(ValueError, match="already registered"):
        registry.register("centroid-shrunk", cls, "a test", defaults={"shrink": 0.6})


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(InputError, match="unknown model 'lenet-sigmoid'.*lenet-relu"):
        registry.get("lenet-sigmoid")


def test_register_refuses_what_is_not_a_model() -> None:
    with pytest.raises(TypeError, match="DigitModel"):
        registry.register("not-a-model", dict)


def test_model_path_registers_an_outside_class(plugin_path: Path) -> None:
    entry = registry.load_model_path("tinyplugin:NearestCentroid")
    assert entry.name == "nearest-centroid" and registry.get("nearest-centroid") is entry
    assert entry.source == "--model-path tinyplugin:NearestCentroid"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tinyplugin", "expected package.module:Class or path/to/file.py:Class"),
        ("no_such_module_xyz:Model", "cannot import no_such_module_xyz"),
        ("tinyplugin:Missing", "has no Missing"),
        ("tinyplugin:np", "not a subclass"),
    ],
)
def test_bad_model_paths_are_input_errors(plugin_path: Path, spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        registry.load_model_path(spec)


def test_entry_point_plugins_are_registered_under_their_name(entry_point_site) -> None:
    entry_point_site("centroid-ep", "tinyplugin:NearestCentroid")
    entry = registry.get("centroid-ep")
    assert entry.cls.__name__ == "NearestCentroid"
    assert entry.source == "entry point tinyplugin:NearestCentroid"
    assert "centroid-ep" in registry.names()
