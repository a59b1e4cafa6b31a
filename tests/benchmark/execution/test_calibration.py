"""Calibration scores against values computed by hand, and Platt scaling giving the SVMs probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from digitbench.benchmark.execution.calibration import calibration_scores
from digitbench.models import registry
from digitbench.models.base import Digits, probabilities


def test_ece_nll_and_brier_by_hand() -> None:
    # Two images at confidence 0.9 (one right, one wrong), two at 0.6 (both right), 2 classes.
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    scores = calibration_scores(p, y)
    # bins: 0.9 falls in (13/15, 14/15], 0.6 in (8/15, 9/15]; |0.5 - 0.9| * 2/4 + |1.0 - 0.6| * 2/4
    assert scores["ece"] == pytest.approx(0.4)
    assert scores["nll"] == pytest.approx(-(math.log(0.9) + math.log(0.1) + 2 * math.log(0.6)) / 4, abs=1e-6)
    # Brier: (0.1^2 + 0.1^2), (0.9^2 + 0.9^2), (0.4^2 + 0.4^2) twice, over 4 images
    assert scores["brier"] == pytest.approx((0.02 + 1.62 + 0.32 + 0.32) / 4, abs=1e-6)
    assert scores["bins"]["count"][13] == 2 and scores["bins"]["count"][8] == 2 and sum(
        scores["bins"]["count"]) == 4
    assert scores["bins"]["accuracy"][13] == 0.5 and scores["bins"]["confidence"][8] == pytest.approx(0.6)
    assert scores["bins"]["accuracy"][0] is None, "an empty bin has no accuracy"


def test_a_perfect_confident_model_scores_zero_and_a_confident_mistake_is_bounded() -> None:
    y = np.arange(10)
    perfect = calibration_scores(np.eye(10), y)
    assert (perfect["ece"], perfect["nll"], perfect["brier"]) == (0.0, 0.0, 0.0)
    wrong = calibration_scores(np.roll(np.eye(10), 1, axis=1), y)
    assert wrong["ece"] == 1.0 and wrong["brier"] == 2.0 and wrong["nll"] == pytest.approx(-math.log(1e-12))
    with pytest.raises(ValueError):
        calibration_scores(np.eye(10)[:3], y)


@pytest.mark.parametrize("name", ["linear-svm", "svm-rbf"])
def test_an_svm_has_probabilities_only_once_platt_scaled_on_held_out_images(name: str) -> None:
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8), np.arange(300) % 10
    images[np.arange(300), labels, :] = 255  # a row of ink per class: learnable
    model = registry.get(name).create().fit(Digits(images[:200], labels[:200]), seed=0)
    assert not hasattr(model, "predict_proba"), "before calibration: a one-hot vote, no probabilities"
    assert np.array_equal(probabilities(model, images[:3]), np.eye(10)[model.predict(images[:3])])
    model.calibrate(Digits(images[200:], labels[200:]))
    p = model.predict_proba(images)
    assert p.shape == (300, 10) and np.allclose(p.sum(axis=1), 1.0) and (p.max(axis=1) < 1.0).all()
    assert np.mean(p.argmax(axis=1) == model.predict(images)) > 0.9
