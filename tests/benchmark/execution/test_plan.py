"""The plan on its own: which contenders a run has and which finals each still owes, the parameters
no tuner may change, the studies' names, and ``--params`` refused before any work. Nothing is
trained here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from digitbench.benchmark.config import RunConfig, build_config
from digitbench.benchmark.data.datasets import Split, load_split
from digitbench.benchmark.execution.plan import check_params, final_seeds, pinned, plan, study_name
from digitbench.benchmark.execution.tasks import run_submission
from digitbench.benchmark.store import unique_slug
from digitbench.common.errors import InputError
from digitbench.models import registry


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory, tiny_idx: Path) -> Split:
    return load_split(f"idx:{tiny_idx}", cache_dir=tmp_path_factory.mktemp("cache"))


def config_of(split: Split, **settings: Any) -> RunConfig:
    return build_config({"datasets": split.dataset, **settings})


def test_the_plan_leaves_out_the_finals_already_done(split: Split) -> None:
    """Only final keys ``(dataset, model, tuner, None, seed, None, None)`` count; a trial row with the
    same seed does not stand for a final, nor an extra final (refitting another trial) for the primary
    one, and another model's or tuner's finals are its own. The recorded extra finals are kept for
    when the study has chosen, with the seeds extra finals run on (a tuned contender's only)."""
    config = config_of(split, models="linear-svm,logreg", tuners="none,optuna", seeds=3)
    done = {(split.dataset, "linear-svm", "none", None, 1, None, None),
            (split.dataset, "linear-svm", "optuna", None, 0, None, None),
            (split.dataset, "linear-svm", "optuna", None, 1, None, 4),  # an extra final of seed 1
            (split.dataset, "linear-svm", "optuna", 0, 2, None, None),  # trial 0 of study seed 2: not a final
            ("another-dataset", "linear-svm", "none", None, 0, None, None)}
    entries = [registry.get("linear-svm")]
    contenders = plan(config, [split], entries, done)
    assert [(c.entry.name, c.tuner, seeds(c)) for c in contenders] == [
        ("linear-svm", "none", [0, 2]), ("linear-svm", "optuna", [1, 2])]
    assert all(c.share == "split0" and c.study is None and c.params is None for c in contenders)
    assert [(c.extra_seeds, c.extras_done) for c in contenders] == [
        ((), frozenset()), ((0, 1, 2), frozenset({(1, None, 4)}))]
    everything = {(split.dataset, "linear-svm", t, None, s, None, None)
                  for t in ("none", "optuna") for s in range(3)}
    assert [seeds(c) for c in plan(config, [split], entries, everything)] == [[], []], \
        "a finished run still has its contenders (their studies may resume), with no final to run"


def test_a_seed_invariant_model_gets_one_final_seed(split: Split) -> None:
    config = config_of(split, models="svm-rbf,linear-svm", seeds=3)
    assert final_seeds(registry.get("svm-rbf"), config) == range(1)
    assert final_seeds(registry.get("linear-svm"), config) == range(3)
    contenders = plan(config, [split], [registry.get("svm-rbf"), registry.get("linear-svm")], set())
    assert {c.entry.name: seeds(c) for c in contenders} == {"svm-rbf": [0], "linear-svm": [0, 1, 2]}


def test_train_sizes_add_subset_finals_per_seed_after_the_whole_part_ones(split: Split) -> None:
    """The tiny split trains on 600 digits (its official test part apart): auto gives 250 and 500; a
    seed-invariant model has one whole-part final but a subset final per seed (the seed draws it)."""
    config = config_of(split, models="svm-rbf,linear-svm", seeds=2, train_sizes="auto")
    entries = [registry.get("svm-rbf"), registry.get("linear-svm")]
    done = {(split.dataset, "linear-svm", "none", None, 1, 250, None)}
    rbf, linear = plan(config, [split], entries, done)
    assert [f[:2] for f in rbf.finals] == [(0, None), (0, 250), (1, 250), (0, 500), (1, 500)]
    assert [f[:2] for f in linear.finals] == [(0, None), (1, None), (0, 250), (0, 500), (1, 500)], \
        "done ones left out"
    with pytest.raises(InputError, match="--train-sizes on idx:.*: 700 is larger than the training part"):
        plan(config_of(split, models="svm-rbf", train_sizes="200,700"), [split], entries[:1], set())


def test_study_seeds_make_one_contender_per_study_with_finals_only_on_study_0(split: Split) -> None:
    """``--study-seeds 3``: three contenders per tuned (dataset, model, tuner), seeded 0..2 and
    named apart; tuner none has no study, so it stays one contender."""
    config = config_of(split, models="linear-svm", tuners="none,optuna,random", seeds=2, study_seeds=3)
    contenders = plan(config, [split], [registry.get("linear-svm")], set())
    assert [(c.tuner, c.study_seed, seeds(c)) for c in contenders] == [
        ("none", 0, [0, 1]),
        ("optuna", 0, [0, 1]), ("optuna", 1, []), ("optuna", 2, []),
        ("random", 0, [0, 1]), ("random", 1, []), ("random", 2, [])]
    tuned = [c.study_name for c in contenders if c.tuner != "none"]
    assert len(set(tuned)) == 6, "each study has its own name"


def test_what_the_finals_run_is_part_of_the_plan(split: Split) -> None:
    """``submit`` plans finals that write a submission; every contender, defaults refit included,
    carries it from the start (nothing is patched on afterwards)."""
    from digitbench.benchmark.execution.tasks import run_final, run_submission

    config = config_of(split, models="linear-svm", tuners="optuna", study_seeds=2)
    entries = [registry.get("linear-svm")]
    assert {c.final_task for c in plan(config, [split], entries, set())} == {run_final}
    contenders = plan(config, [split], entries, set(), final_task=run_submission)
    assert [(c.tuner, c.study_seed, c.is_defaults_refit) for c in contenders] == [
        ("optuna", 0, False), ("optuna", 1, False), ("none", 0, True)]
    assert {c.final_task for c in contenders} == {run_submission}


def test_a_variants_fixed_parameters_win_over_params_and_epochs_reach_only_epoch_models(
        split: Split) -> None:
    config = config_of(split, models="lenet-relu,linear-svm", epochs=3,
                       params={"activation": "tanh", "dropout": 0.1, "C": 0.5})
    assert pinned(registry.get("lenet-relu"), config) == {"activation": "relu", "dropout": 0.1,
                                                          "epochs": 3}
    assert pinned(registry.get("linear-svm"), config) == {"C": 0.5}, \
        "no epochs for a model that trains in one go, and only the parameters it has"
    [contender] = plan(config_of(split, models="lenet-tanh", epochs=2), [split],
                       [registry.get("lenet-tanh")], set())
    assert contender.pinned == {"activation": "tanh", "epochs": 2}


def test_study_names_say_the_dataset_the_model_the_random_baseline_and_the_study_seed(
        split: Split) -> None:
    assert study_name("mnist-5k", "logreg", "optuna", 0) == "mnist-5k__logreg"
    assert study_name("mnist-5k", "logreg", "keras-tuner", 0) == "mnist-5k__logreg"
    assert study_name("mnist-5k", "logreg", "random", 0) == "mnist-5k__logreg__random"
    assert study_name("mnist-5k", "logreg", "optuna", 2) == "mnist-5k__logreg__s2"
    assert study_name("mnist-5k", "logreg", "random", 1) == "mnist-5k__logreg__random__s1"
    slug = unique_slug(split.dataset)
    assert slug.startswith(f"idx-{Path(split.dataset).name}-") and len(slug.rsplit("-", 1)[1]) == 8, \
        "a folder's dataset is named by its folder and a hash of its whole path"
    assert study_name(split.dataset, "svm-rbf", "optuna", 0) == f"{slug}__svm-rbf"


def refused(split: Split, models: str, params: dict[str, Any]) -> str:
    config = config_of(split, models=models, params=params)
    with pytest.raises(InputError) as caught:
        check_params(config, [registry.get(m) for m in config.models])
    return str(caught.value)


def test_params_that_some_selected_model_takes_are_accepted(split: Split) -> None:
    """Each name needs one selected model that has it; the others do not see it."""
    config = config_of(split, models="lenet-relu,svm-rbf", epochs=2,
                       params={"C": 2.0, "gamma": 0.01, "dropout": 0.2, "kernel_size": 3})
    check_params(config, [registry.get("lenet-relu"), registry.get("svm-rbf")])


def test_params_no_selected_model_has_are_refused(split: Split) -> None:
    message = refused(split, "logreg,linear-svm", {"C": 1.0, "colour": 1, "dropout": 0.2})
    assert message == "--params: no selected model has parameter(s) colour, dropout"


@pytest.mark.parametrize(("models", "params", "message"), [
    ("logreg", {"C": "abc"}, "--params: C of logreg: expected a number, got 'abc'"),
    ("logreg", {"C": True}, "--params: C of logreg: expected a number, got True"),
    ("lenet-relu", {"epochs": 2.5}, "--params: epochs of lenet-relu: expected a whole number, got 2.5"),
    ("lenet-tanh", {"kernel_size": 4}, "--params: kernel_size of lenet-tanh: expected one of 3, 5, got 4"),
], ids=["text-for-float", "bool-for-float", "fraction-for-int", "outside-choice"])
def test_a_value_of_the_wrong_type_for_its_declared_dimension_is_refused(
        split: Split, models: str, params: dict[str, Any], message: str) -> None:
    assert refused(split, models, params) == message


@pytest.mark.parametrize(("models", "params", "expected"), [
    ("lenet-relu", {"epochs": -3}, "--params: lenet-relu: epochs must be at least 1, got -3"),
    ("lenet-tanh", {"dropout": 1.0}, "--params: lenet-tanh: dropout must be at least 0.0 and at most 0.99"),
    ("svm-rbf", {"C": -1}, "--params: svm-rbf: The 'C' parameter of SVC must be a float in the range "
                           "(0.0, inf"),  # scikit-learn's own words, which end "Got -1 instead."
], ids=["lenet-epochs", "lenet-dropout", "svm-C"])
def test_a_value_the_models_own_check_refuses_is_refused_naming_model_parameter_and_value(
        split: Split, models: str, params: dict[str, Any], expected: str) -> None:
    message = refused(split, models, params)
    assert message.startswith(expected) and "\n" not in message
    [value] = params.values()
    assert str(value) in message, "the value refused"


def seeds(c) -> list[int]:
    """The seeds of a contender's finals still to run."""
    return [f.seed for f in c.finals]


def test_extra_finals_only_for_a_study_0_of_a_run(split: Split) -> None:
    """A study of `digitbench run` may refit extra configurations on its whole-part seeds; tuner
    none, the defaults refit, a repeated study and a submission refit their one choice."""
    config = config_of(split, models="linear-svm", tuners="optuna", seeds=2, study_seeds=2)
    entries = [registry.get("linear-svm")]
    assert [(c.tuner, c.study_seed, c.extra_seeds) for c in plan(config, [split], entries, set())] == [
        ("optuna", 0, (0, 1)), ("optuna", 1, ()), ("none", 0, ())]
    submission = plan(config, [split], entries, set(), final_task=run_submission)
    assert all(c.extra_seeds == () for c in submission)
