"""Learning curves' training sets: the sizes ``--train-sizes`` resolves to and the nested stratified
subsets each final seed draws."""

from __future__ import annotations

import numpy as np
import pytest

from digitbench.benchmark.config import build_config
from digitbench.benchmark.data.train_sizes import nested_subset, resolve, stratified_order
from digitbench.common.errors import InputError
from digitbench.models.base import Digits

#: An unbalanced training part: class k has 100 + 20 k images (1,900 in all).
LABELS = np.repeat(np.arange(10), 100 + 20 * np.arange(10))


def test_auto_doubles_from_25_a_class_below_the_whole_part() -> None:
    assert resolve("auto", LABELS, "--train-sizes") == (250, 500, 1000)
    assert resolve("auto", np.arange(4000) % 10, "--train-sizes") == (250, 500, 1000, 2000)


def test_given_sizes_are_sorted_and_the_whole_part_is_the_ordinary_final() -> None:
    assert resolve((1900, 800, 400), LABELS, "--train-sizes") == (400, 800)


@pytest.mark.parametrize(("sizes", "message"), [
    ((500, 1901), "--train-sizes on x: 1,901 is larger than the training part (1,900 images)"),
    ((120,), "120 images leave 6 of the rarest class, fewer than 10 a class (at least 100 here)"),
])
def test_a_size_the_training_part_cannot_take_is_one_line(sizes, message) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(sizes, LABELS, "--train-sizes on x")


def test_the_flag_takes_auto_sizes_or_a_toml_list_and_refuses_the_rest() -> None:
    assert build_config({"train_sizes": "auto"}).train_sizes == "auto"
    assert build_config({"train_sizes": "2000, 500,1_000"}).train_sizes == (500, 1000, 2000)
    assert build_config({"train_sizes": [500, 250]}).train_sizes == (250, 500)
    for bad in ("0", "-5", "500,abc", "1.5", [True], [2.5], "", []):
        with pytest.raises(InputError, match="--train-sizes: expected auto"):
            build_config({"train_sizes": bad})


def test_subsets_are_nested_stratified_and_drawn_by_the_seed() -> None:
    digits = Digits(np.arange(len(LABELS))[:, None, None].repeat(2, 1), LABELS)
    small, large = nested_subset(digits, 250, seed=3), nested_subset(digits, 1000, seed=3)
    ids = {s: set(d.images[:, 0, 0]) for s, d in (("small", small), ("large", large))}
    assert len(small) == 250 and len(large) == 1000 and ids["small"] <= ids["large"], "nested"
    share = np.bincount(LABELS) / len(LABELS)
    for subset in (small, large):
        assert np.all(np.abs(np.bincount(subset.labels, minlength=10) - share * len(subset)) <= 1), \
            "every class in its share of the training part, within one image"
        assert np.array_equal(subset.images[:, 0, 0], np.sort(subset.images[:, 0, 0])), "kept in order"
    again, other = nested_subset(digits, 250, seed=3), nested_subset(digits, 250, seed=4)
    assert np.array_equal(again.images, small.images), "the same seed, the same subset"
    assert set(other.images[:, 0, 0]) != ids["small"], "another seed, another draw"
    assert nested_subset(digits, None, seed=3) is digits and nested_subset(digits, 5000, 0) is digits


def test_every_prefix_of_the_order_is_stratified() -> None:
    order = stratified_order(LABELS, seed=0)
    assert sorted(order) == list(range(len(LABELS)))
    share = np.bincount(LABELS) / len(LABELS)
    for n in (10, 37, 100, 999):
        assert np.all(np.abs(np.bincount(LABELS[order[:n]], minlength=10) - share * n) <= 1)
