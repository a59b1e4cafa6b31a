"""Paired comparison statistics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from digitbench.reports.stats import paired_comparison

Z_975 = 1.959963985  # standard normal 97.5% quantile


def _pairs(both: int, only_a: int, only_b: int, neither: int) -> tuple[np.ndarray, ...]:
    """Labels and two models' predictions with the given agreement counts (in that order)."""
    n = both + only_a + only_b + neither
    y_true = np.arange(n) % 10
    wrong = (y_true + 1) % 10
    a_right = np.array([True] * (both + only_a) + [False] * (only_b + neither))
    b_right = np.array([True] * both + [False] * only_a + [True] * only_b + [False] * neither)
    return y_true, np.where(a_right, y_true, wrong), np.where(b_right, y_true, wrong)


def test_wald_interval_and_mcnemar_by_hand() -> None:
    # n = 20 images: 12 both right, b = 5 only A right, c = 1 only B right, 2 both wrong.
    r = paired_comparison(*_pairs(12, 5, 1, 2))
    assert (r.b, r.c, r.n) == (5, 1, 20)
    assert r.difference == pytest.approx(0.20)           # (5 - 1) / 20; acc 17/20 - 13/20
    # Wald: se = sqrt(b + c - (b - c)^2 / n) / n = sqrt(6 - 16/20) / 20 = sqrt(5.2) / 20
    #          = 2.2803509 / 20 = 0.11401754; half-width = 1.959964 * 0.11401754 = 0.2234703
    se = math.sqrt(6 - 16 / 20) / 20
    assert se == pytest.approx(0.11401754, abs=1e-8)
    assert r.low == pytest.approx(0.20 - Z_975 * se, abs=1e-9)
    assert r.low == pytest.approx(-0.0234703, abs=1e-7)
    assert r.high == pytest.approx(0.4234703, abs=1e-7)
    # McNemar exact: 2 * P(X <= 1 | Bin(6, 1/2)) = 2 * (1 + 6) / 64 = 0.21875
    assert r.p_value == pytest.approx(2 * 7 / 64)
    assert r.p_value == pytest.approx(0.21875)
    assert r.confidence == 0.95


def test_swapping_the_models_flips_the_sign() -> None:
    y_true, a, b = _pairs(12, 5, 1, 2)
    r = paired_comparison(y_true, b, a)
    assert (r.b, r.c) == (1, 5)
    assert r.difference == pytest.approx(-0.20)
    assert (r.low, r.high) == pytest.approx((-0.4234703, 0.0234703), abs=1e-7)
    assert r.p_value == pytest.approx(0.21875)


def test_significant_case_by_hand() -> None:
    # b = 10, c = 2, n = 100: p = 2 * P(X <= 2 | Bin(12, 1/2)) = 2 * (1 + 12 + 66) / 4096
    r = paired_comparison(*_pairs(80, 10, 2, 8))
    assert r.p_value == pytest.approx(158 / 4096)          # 0.0385742
    assert r.difference == pytest.approx(0.08)
    # se = sqrt(12 - 64/100) / 100 = sqrt(11.36) / 100 = 0.0337046
    assert r.high - r.difference == pytest.approx(Z_975 * math.sqrt(11.36) / 100, abs=1e-9)


def test_no_discordant_images() -> None:
    r = paired_comparison(*_pairs(15, 0, 0, 5))
    assert (r.b, r.c, r.n) == (0, 0, 20)
    assert r.p_value == 1.0
    assert r.difference == r.low == r.high == 0.0


def test_interval_stays_within_minus_one_to_one() -> None:
    r = paired_comparison(*_pairs(0, 3, 0, 0))       # A right on all 3, B on none
    assert r.difference == 1.0 and r.high == 1.0 and r.low == pytest.approx(1.0)
    assert r.p_value == pytest.approx(2 / 8)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="equal lengths"):
        paired_comparison(np.array([1, 2]), np.array([1, 2]), np.array([1]))
    with pytest.raises(ValueError, match="at least one"):
        paired_comparison(np.array([]), np.array([]), np.array([]))
