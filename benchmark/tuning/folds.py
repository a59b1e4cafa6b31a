"""What a tuning trial trains and is scored on; the test set is never part of it.

Models that train in epochs are scored on the validation part, which their pruners read epoch by
epoch. Models that train in one go are scored by k stratified folds of the whole training part
(training plus validation), so that every training image is scored and close settings can be told
apart. ``--tune-subsample`` makes trials train on a stratified subsample (finals use everything).
"""

from __future__ import annotations

import numpy as np

from digitbench.benchmark.data.datasets import Split
from digitbench.common.errors import InputError
from digitbench.models.base import Digits


def subsample(digits: Digits, size: int | None, seed: int = 0) -> Digits:
    """A stratified subsample of ``size`` images (all of them when size is None or larger)."""
    if size is None or size >= len(digits):
        return digits
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(digits)), train_size=size, stratify=digits.labels,
                               random_state=seed)
    keep = np.sort(keep)
    return Digits(digits.images[keep], digits.labels[keep])


def scoring_folds(split: Split, k: int, size: int | None, seed: int = 0) -> list[tuple[Digits, Digits]]:
    """(train, validation) pairs a trial is scored on: the validation part when ``k`` is 1, else k
    stratified folds of the whole training part (of its ``size``-image subsample)."""
    if k <= 1:
        return [(subsample(split.train, size, seed), split.val)]
    whole = subsample(_whole(split), size, seed)
    return [(Digits(whole.images[a], whole.labels[a]), Digits(whole.images[b], whole.labels[b]))
            for a, b in _kfold(whole.labels, k, seed)]


def fold_sizes(split: Split, k: int, size: int | None, seed: int = 0) -> tuple[int, int, int]:
    """(images the first fold trains on, images it scores, images all folds score together), as
    :func:`scoring_folds` gives them, from the labels alone."""
    if k <= 1:
        return min(size or len(split.train), len(split.train)), len(split.val), len(split.val)
    labels = np.concatenate([split.train.labels, split.val.labels])
    labels = subsample(Digits(labels, labels), size, seed).labels
    train, scored = next(iter(_kfold(labels, k, seed)))
    return len(train), len(scored), len(labels)


def check_scoring(split: Split, k: int, size: int | None) -> None:
    """An InputError naming ``--cv`` or ``--tune-subsample`` when trials on ``split`` could not be
    scored as :func:`scoring_folds` would: k folds need k images of every class in what the trials
    draw from (the whole training part, or its ``size``-image subsample), the hold-out (k = 1) one;
    a stratified subsample holds at least its share of each class, rounded down."""
    labels = split.train.labels if k <= 1 else _whole(split).labels
    counts = np.bincount(labels)
    present, need = counts[counts > 0], max(k, 1)
    if k > 1 and present.min() < k:
        rarest = int(np.flatnonzero(counts == present.min())[0])
        raise InputError(f"--cv {k}: {split.dataset} has {present.min():,} training images of class "
                         f"{rarest}, its rarest, fewer than the {k:,} folds need (each fold scores every "
                         f"class); use --cv {present.min():,} or fewer")
    if size is None or size >= len(labels):
        return
    fewest = min(size * int(c) // len(labels) for c in present)
    if fewest < need:
        who = f"the {k} folds of --cv {k} need" if k > 1 else "a trial needs"
        raise InputError(f"--tune-subsample {size}: {size:,} of the {len(labels):,} training images "
                         f"of {split.dataset} may hold as few as {fewest} of a class, fewer than {who} "
                         f"({need} of every class)")
    if len(labels) - size < len(present):
        raise InputError(f"--tune-subsample {size}: leaves out {len(labels) - size} of the "
                         f"{len(labels):,} training images of {split.dataset}, fewer than its "
                         f"{len(present)} classes (a stratified subsample leaves out some of each); "
                         "leave --tune-subsample out to tune on all of them")


def _whole(split: Split) -> Digits:
    return Digits(np.concatenate([split.train.images, split.val.images]),
                  np.concatenate([split.train.labels, split.val.labels]))


def _kfold(labels: np.ndarray, k: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels)
