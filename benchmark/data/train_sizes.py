"""Learning curves' training sets: the sizes ``--train-sizes`` asks for, and nested stratified subsets.

A final trained at size n sees the first n images of one order of the training part, drawn by the
final's seed. The order is stratified: each class's images are shuffled, each image is placed at its
quantile within its class, and all are sorted by that place. So any prefix holds every class in its
share of the training part (within one image), and the subset of a smaller size lies inside that of
a larger one: the curve measures what more data of the same draw buys, and the seeds measure how much
the draw itself moves it.
"""

from __future__ import annotations

import numpy as np

from digitbench.common.errors import InputError
from digitbench.models.base import Digits

#: ``auto`` starts at this many images a class and doubles up to the whole training part.
AUTO_PER_CLASS = 25
#: Fewer images a class than this is not a training set (stratification and fits need them).
MIN_PER_CLASS = 10


def resolve(spec: tuple[int, ...] | str, labels: np.ndarray, where: str) -> tuple[int, ...]:
    """The subset sizes (ascending, each below the whole training part of ``labels``) that ``spec``
    (``"auto"`` or sizes) asks for; a size equal to the whole part is its ordinary final and left
    out. ``where`` names the setting and the dataset for the one-line error of a size that is larger
    than the training part or leaves fewer than :data:`MIN_PER_CLASS` images of a class."""
    whole, classes = len(labels), max(1, len(np.unique(labels)))
    if spec == "auto":
        sizes, n = [], AUTO_PER_CLASS * classes
        while n < whole:
            sizes.append(n)
            n *= 2
        return tuple(sizes)
    counts = np.bincount(labels)
    for size in spec:
        if size > whole:
            raise InputError(f"{where}: {size:,} is larger than the training part ({whole:,} images)")
        fewest = min(round(size * c / whole) for c in counts[counts > 0])
        if fewest < MIN_PER_CLASS:
            raise InputError(f"{where}: {size:,} images leave {fewest} of the rarest class, fewer than "
                             f"{MIN_PER_CLASS} a class (at least {MIN_PER_CLASS * classes:,} here)")
    return tuple(sorted({s for s in spec if s < whole}))


def stratified_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """The indices of ``labels`` in the seed's stratified order: every prefix is a stratified
    subset, and a shorter prefix lies inside a longer one (see the module's note)."""
    rng = np.random.default_rng(seed)
    place = np.empty(len(labels))
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        place[rng.permutation(members)] = (np.arange(len(members)) + 0.5) / len(members)
    tiebreak = rng.permutation(len(labels))  # classes of equal size: their places tie
    return np.lexsort((tiebreak, place))


def nested_subset(digits: Digits, size: int | None, seed: int) -> Digits:
    """The first ``size`` images of ``digits`` in the seed's stratified order (all of them, in their
    own order, when size is None)."""
    if size is None or size >= len(digits):
        return digits
    keep = np.sort(stratified_order(digits.labels, seed)[:size])
    return Digits(digits.images[keep], digits.labels[keep])
