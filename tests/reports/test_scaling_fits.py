"""Learning-curve fits against curves made from known laws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from digitbench.reports.scaling_fits import (
    CostLaw,
    Crossover,
    PowerLaw,
    check_monotone,
    crossover,
    extrapolate,
    fit_cost,
    fit_power_law,
)

SIZES = 250 * 2 ** np.arange(9)  # 250 .. 64,000, doubling
SEEDS = 3
A, B, C = 2.0, 0.5, 0.02  # err(n) = 2 n^-0.5 + 0.02: 14.6% at 250 images, 2.8% at 64,000


def _curve(a: float = A, b: float = B, c: float = C, noise: float = 0.0,
           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One point per (size, seed) of ``a n^-b + c``, with Gaussian noise of sd ``noise``."""
    n = np.repeat(SIZES, SEEDS)
    rng = np.random.default_rng(seed)
    return n, a * n.astype(float) ** -b + c + rng.normal(0.0, noise, n.size)


def test_noisy_power_law_intervals_cover_the_truth() -> None:
    n, err = _curve(noise=0.002)
    fit = fit_power_law(n, err)
    assert isinstance(fit, PowerLaw)
    assert (fit.points, fit.sizes) == (27, 9)
    assert fit.b_interval[0] < B < fit.b_interval[1]
    assert fit.c_interval[0] < C < fit.c_interval[1]
    assert fit.b_interval[1] - fit.b_interval[0] < 0.2  # informative, not just wide
    truth = A * 3000 ** -B + C
    assert fit.predict(3000) == pytest.approx(truth, abs=0.002)


def test_exact_power_law_is_recovered() -> None:
    fit = fit_power_law(*_curve())
    assert fit is not None
    assert fit.b == pytest.approx(B, abs=1e-3)
    assert fit.c == pytest.approx(C, abs=1e-3)
    assert fit.a == pytest.approx(A, rel=1e-2)  # a is for n in images, not in the fit's scale
    assert fit.predict(SIZES) == pytest.approx(A * SIZES ** -B + C, abs=1e-6)


def test_predict_gives_a_float_for_a_scalar_and_an_array_otherwise() -> None:
    fit = PowerLaw(2.0, 0.5, 0.01, (0.4, 0.6), (0.0, 0.02), 27, 9)
    assert isinstance(fit.predict(400), float)
    assert fit.predict(400) == pytest.approx(2.0 / 20 + 0.01)
    assert fit.predict([100, 400]) == pytest.approx([0.21, 0.11])


def test_exact_flat_curve_is_a_level_without_decline() -> None:
    n = np.repeat(SIZES, SEEDS)
    fit = fit_power_law(n, np.full(n.size, 0.05))
    assert fit is not None
    assert fit.c == pytest.approx(0.05, abs=1e-6)
    assert fit.predict(5000) == pytest.approx(0.05, abs=1e-6)
    assert all(math.isnan(v) for v in fit.b_interval)


def test_noisy_flat_curve_does_not_raise_and_keeps_the_level() -> None:
    for seed in range(5):
        n, err = _curve(a=0.0, c=0.05, noise=1e-4, seed=seed)
        fit = fit_power_law(n, err)
        assert fit is not None
        assert fit.c == pytest.approx(0.05, abs=0.005)
        assert fit.predict(5000) == pytest.approx(0.05, abs=5e-4)
        low, high = fit.b_interval
        assert (math.isnan(low) and math.isnan(high)) or high - low > 1.0  # b is not determined


def test_fewer_than_three_sizes_give_no_power_law() -> None:
    assert fit_power_law([250, 250, 500, 500], [0.10, 0.11, 0.08, 0.07]) is None
    assert fit_power_law([], []) is None


def test_three_points_fit_without_intervals() -> None:
    n = np.array([250.0, 1000.0, 4000.0])
    fit = fit_power_law(n, A * n ** -B + C)  # three parameters through three points: no spread left
    assert fit is not None and fit.points == 3
    assert all(math.isnan(v) for v in (*fit.b_interval, *fit.c_interval))


def test_non_monotone_curve_is_fitted_and_the_rise_flagged() -> None:
    n, err = _curve(noise=0.0005)
    err = err + np.where(n == 4000, 0.02, 0.0)  # 4,000 images clearly worse than 2,000
    assert fit_power_law(n, err) is not None
    mono = check_monotone(n, err, n_test=10_000)
    assert not mono.monotone
    assert mono.rises == ((2000, 4000),)


def test_noisy_decreasing_curve_is_not_flagged() -> None:
    n, err = _curve(noise=0.001, seed=3)
    err = err + np.where(n == 64000, 0.0005, 0.0)  # a small rise at the end, well within chance
    mono = check_monotone(n, err, n_test=10_000)
    assert mono.monotone and mono.rises == ()


def test_rise_threshold_is_two_binomial_standard_errors() -> None:
    # one seed, 10,000 test images: se = sqrt(0.02*0.98/1e4 + e2(1-e2)/1e4)
    # e2 = 0.0245: se = 0.002086, 2 se = 0.00417 < rise 0.0045 -> flagged
    # e2 = 0.0235: se = 0.002063, 2 se = 0.00413 > rise 0.0035 -> not flagged
    assert check_monotone([500, 1000], [0.02, 0.0245], n_test=10_000).rises == ((500, 1000),)
    assert check_monotone([500, 1000], [0.02, 0.0235], n_test=10_000).monotone


def test_zero_error_curve_is_monotone_and_one_new_error_is_chance() -> None:
    assert check_monotone([250, 500, 1000], [0.0, 0.0, 0.0], n_test=10_000).monotone
    assert check_monotone([250, 500, 1000], [0.0, 0.0, 1e-4], n_test=10_000).monotone
    with pytest.raises(ValueError):
        check_monotone([250, 500], [0.1, 0.2], n_test=0)


@pytest.mark.parametrize("exponent, other", [(2.0, 1.0), (1.0, 2.0)])
def test_cost_exponent_interval_covers_it_and_excludes_the_other(exponent: float, other: float) -> None:
    n = np.repeat(SIZES, SEEDS).astype(float)
    rng = np.random.default_rng(1)
    values = 3e-6 * n ** exponent * np.exp(rng.normal(0.0, 0.05, n.size))
    fit = fit_cost(n, values)
    assert isinstance(fit, CostLaw) and fit.points == 27
    low, high = fit.e_interval
    assert low < exponent < high
    assert not low < other < high
    assert fit.k == pytest.approx(3e-6, rel=0.2)
    assert fit.predict(10_000) == pytest.approx(3e-6 * 10_000 ** exponent, rel=0.05)


def test_cost_drops_non_positive_and_missing_values() -> None:
    n = [250, 500, 1000, 2000, 4000, 8000]
    fit = fit_cost(n, [0.0, -1.0, 1e-3 * 1000, float("nan"), 1e-3 * 4000, 1e-3 * 8000])
    assert fit is not None and fit.points == 3
    assert fit.e == pytest.approx(1.0)
    assert fit.k == pytest.approx(1e-3)
    assert fit_cost([250, 500], [0.0, 2.0]) is None  # one size left


def test_cost_with_two_points_has_no_interval() -> None:
    fit = fit_cost([100, 1000], [1.0, 100.0])
    assert fit is not None
    assert fit.e == pytest.approx(2.0)
    assert all(math.isnan(v) for v in fit.e_interval)


def test_extrapolating_an_exact_power_law_is_right() -> None:
    ex = extrapolate(*_curve())
    assert ex is not None
    assert (ex.fitted_up_to, ex.target) == (16_000, 64_000)
    assert ex.measured == pytest.approx(1 - (A * 64_000 ** -B + C))
    assert ex.error_points == pytest.approx(0.0, abs=1e-3)


def test_curve_that_flattens_promised_too_much() -> None:
    n, err = _curve()
    plateau = A * 16_000 ** -B + C
    err = np.where(n > 16_000, plateau, err)  # no gain beyond a quarter of the largest
    ex = extrapolate(n, err)
    assert ex is not None
    # the small-size curve still falls by 2 (16000^-0.5 - 64000^-0.5) = 0.79 points
    assert ex.error_points == pytest.approx(100 * A * (16_000 ** -B - 64_000 ** -B), abs=0.02)
    assert ex.error_points > 0.5


def test_curve_that_keeps_falling_below_its_floor_promised_too_little() -> None:
    n, err = _curve()
    err = np.where(n == 64_000, err - 0.01, err)  # a lower floor at the largest size
    ex = extrapolate(n, err)
    assert ex is not None
    assert ex.error_points == pytest.approx(-1.0, abs=0.01)


def test_extrapolation_needs_three_sizes_up_to_a_quarter() -> None:
    n = np.array([2000, 4000, 8000, 16_000])  # only 2,000 and 4,000 are <= 16,000 / 4
    assert extrapolate(n, A * n.astype(float) ** -B + C) is None
    assert extrapolate([], []) is None


def test_crossover_between_two_sizes() -> None:
    sizes = [250, 500, 1000, 2000]
    x = crossover(sizes, [0.80, 0.85, 0.91, 0.95], [0.85, 0.88, 0.90, 0.92])
    assert x == Crossover(below=500, at=1000, largest=2000)
    assert x.describe() == "between 500 and 1,000 images"


def test_crossover_is_the_first_crossing_and_a_tie_is_not_above() -> None:
    sizes = [250, 500, 1000, 2000, 4000]
    x = crossover(sizes, [0.80, 0.88, 0.91, 0.90, 0.95], [0.85, 0.88, 0.90, 0.92, 0.93])
    assert (x.below, x.at) == (500, 1000)  # A falls back at 2,000; the first crossing stands


def test_crossover_when_a_is_always_above() -> None:
    x = crossover([250, 500, 1000], [0.90, 0.92, 0.95], [0.85, 0.88, 0.90])
    assert (x.below, x.at) == (None, 250)
    assert x.describe() == "already at 250 images (the smallest)"


def test_crossover_when_a_is_never_above() -> None:
    x = crossover([250, 1000, 54_000], [0.80, 0.85, 0.90], [0.85, 0.88, 0.90])
    assert x == Crossover(below=54_000, at=None, largest=54_000)  # a tie at 54,000 is not above
    assert x.describe() == "not within the sizes measured (up to 54,000)"
