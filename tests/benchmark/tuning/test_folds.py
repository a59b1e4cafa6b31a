"""What a trial is scored on, checked before any work: ``--cv`` and ``--tune-subsample`` are refused
exactly where the folds or the subsample could not be drawn, and accepted where they can."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digitbench.benchmark.config import build_config
from digitbench.benchmark.data.datasets import Split, load_split
from digitbench.benchmark.execution.session import check_scoring as check_run
from digitbench.benchmark.tuning.folds import check_scoring, scoring_folds
from digitbench.common.errors import InputError
from digitbench.models import registry


@pytest.fixture()
def split(tmp_path: Path, tiny_idx: Path) -> Split:
    return load_split(f"idx:{tiny_idx}", cache_dir=tmp_path / "cache")


def rarest(labels: np.ndarray) -> int:
    counts = np.bincount(labels)
    return int(counts[counts > 0].min())


def test_as_many_folds_as_the_rarest_class_has_images_and_no_more(split: Split) -> None:
    """Up to the rarest class's count every fold scores every class; one fold more and some fold
    would score without that class (scikit-learn only warns): refused, naming the flag."""
    whole = np.concatenate([split.train.labels, split.val.labels])
    most, classes = rarest(whole), set(np.unique(whole))
    check_scoring(split, most, None)
    assert all(set(np.unique(scored.labels)) == classes for _, scored in scoring_folds(split, most, None))
    with pytest.raises(InputError, match=rf"^--cv {most + 1}: idx:.* has {most} training images of class "):
        check_scoring(split, most + 1, None)
    with pytest.warns(UserWarning, match="least populated class"):
        folds = scoring_folds(split, most + 1, None)
    assert any(set(np.unique(scored.labels)) != classes for _, scored in folds)


@pytest.mark.parametrize("k", [1, 5])
def test_a_subsample_the_check_accepts_can_be_drawn_for_every_study_seed(split: Split, k: int) -> None:
    """The smallest --tune-subsample the check accepts gives every class to every fold (k of each),
    or to the trial's training images (hold-out); one image fewer is refused, naming the flag."""
    labels = split.train.labels if k == 1 else np.concatenate([split.train.labels, split.val.labels])
    smallest = next(size for size in range(1, len(labels)) if _accepted(split, k, size))
    classes = set(np.unique(labels))
    for seed in range(3):
        for train, scored in scoring_folds(split, k, smallest, seed):
            assert set(np.unique(train.labels)) == classes
            assert k == 1 or set(np.unique(scored.labels)) == classes
    with pytest.raises(InputError, match=rf"^--tune-subsample {smallest - 1}: {smallest - 1} of the "):
        check_scoring(split, k, smallest - 1)


def test_a_subsample_must_leave_out_one_image_of_each_class(split: Split) -> None:
    n = len(split.train)
    with pytest.raises(InputError, match=rf"^--tune-subsample {n - 5}: leaves out 5 of the "):
        check_scoring(split, 1, n - 5)
    with pytest.raises(ValueError):
        scoring_folds(split, 1, n - 5)
    check_scoring(split, 1, n)  # all of them: no subsample


def test_the_run_checks_the_folds_each_tuned_model_is_scored_by(split: Split, tmp_path: Path,
                                                                plugin_path: Path) -> None:
    """Models that train in epochs are scored on the validation part (--cv does not apply), the
    others by --cv folds; a run that tunes nothing scores nothing."""
    registry.load_model_path("tinyplugin:NearestCentroid")
    registry.load_model_path("tinyplugin:EpochModel")
    too_many = rarest(np.concatenate([split.train.labels, split.val.labels])) + 1

    def config(tuner: str):
        return build_config({"tuners": tuner, "cv": too_many, "out": tmp_path / "run"})

    check_run(config("optuna"), [split], [registry.get("epoch-model")])
    check_run(config("none"), [split], [registry.get("nearest-centroid")])
    with pytest.raises(InputError, match=f"^--cv {too_many}: "):
        check_run(config("optuna"), [split], [registry.get("epoch-model"), registry.get("nearest-centroid")])


def _accepted(split: Split, k: int, size: int) -> bool:
    try:
        check_scoring(split, k, size)
    except InputError:
        return False
    return True
