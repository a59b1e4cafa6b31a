"""Learning curves over the training-set size: the math behind the report's scaling section.

The finals of one model were trained on nested subsets of sizes ``n`` (250, 500, ... images) over
a few seeds, each tested on the same full test set. This module fits and checks those curves:

* :func:`fit_power_law`: test error against ``n`` as ``a * n**(-b) + c`` (exponent and floor with
  95% intervals);
* :func:`fit_cost`: a cost (fit CPU-s, bytes, ...) against ``n`` as ``k * n**e`` on log-log axes;
* :func:`check_monotone`: sizes where the mean error rose by more than chance;
* :func:`extrapolate`: how well a curve fitted on the small sizes predicts the largest;
* :func:`crossover`: the size from which one model's accuracy is above another's.

Pure math only: no plotting, no files. Every input is a 1-d array-like with one point per
(size, seed); sizes may repeat.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

CONFIDENCE = 0.95
#: Upper bound of the power-law exponent: learning curves seen in practice have b well below 1;
#: 3 leaves room while keeping ``n**(-b)`` from underflowing over the sizes measured.
MAX_EXPONENT = 3.0
#: The starting floor is this fraction of the smallest mean error ("a bit below" it).
FLOOR_START = 0.9
#: Standard errors of the difference a rise of the mean error must exceed to be flagged.
RISE_SES = 2.0
#: A fitted power term that changes the error by no more than this over the sizes fitted is taken
#: as a constant (a flat curve): numerical noise, far below one test image in a million.
FLAT_SPAN = 1e-9

NAN_INTERVAL = (math.nan, math.nan)


def _pairs(sizes: Sequence[float], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``sizes`` and ``values`` as float arrays, pairs with a non-finite member dropped."""
    n = np.asarray(sizes, dtype=float).ravel()
    y = np.asarray(values, dtype=float).ravel()
    if n.shape != y.shape:
        raise ValueError(f"sizes and values differ in length: {n.size} and {y.size}")
    keep = np.isfinite(n) & np.isfinite(y)
    return n[keep], y[keep]


def _by_size(n: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct sizes ascending, the mean value at each and how many points (seeds) it has."""
    distinct, index, counts = np.unique(n, return_inverse=True, return_counts=True)
    means = np.bincount(index, weights=y) / counts
    return distinct, means, counts


def _t(points: int, parameters: int) -> float:
    """The two-sided 95% Student-t quantile with ``points - parameters`` degrees of freedom (nan
    without any: an exact fit through as many points as parameters says nothing of its spread)."""
    dof = points - parameters
    return float(stats.t.ppf(0.5 + CONFIDENCE / 2.0, dof)) if dof > 0 else math.nan


def _interval(value: float, se: float, t: float) -> tuple[float, float]:
    """``value -+ t * se``, or (nan, nan) when the standard error or quantile is undefined."""
    if not (math.isfinite(se) and math.isfinite(t)) or se < 0:
        return NAN_INTERVAL
    return value - t * se, value + t * se


@dataclass(frozen=True)
class PowerLaw:
    """err(n) = a * n**(-b) + c fitted to test error (a fraction in [0, 1]) against training size.

    ``a`` is for ``n`` in images; ``b`` is how fast the error falls and ``c`` the floor it falls
    towards. The intervals are 95% Student-t intervals from the fit's covariance, (nan, nan) where
    the covariance is undefined (a flat curve, or no more points than parameters).
    """

    a: float
    b: float
    c: float
    b_interval: tuple[float, float]
    c_interval: tuple[float, float]
    points: int
    sizes: int

    def predict(self, n: float | Sequence[float] | np.ndarray) -> np.ndarray | float:
        """The fitted error at ``n`` images: a float for a scalar, an array otherwise."""
        x = np.asarray(n, dtype=float)
        err = self.a * x ** (-self.b) + self.c
        return float(err) if err.ndim == 0 else err


def _power(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * x ** (-b) + c


def fit_power_law(sizes: Sequence[float], errors: Sequence[float]) -> PowerLaw | None:
    """Least-squares fit of ``errors = a * sizes**(-b) + c`` (``scipy.optimize.curve_fit``).

    One point per (size, seed), all weighted alike; the seeds are replicates, so the covariance is
    scaled by the residual spread (``absolute_sigma=False``). Bounds: ``a >= 0``,
    ``0 <= b <= MAX_EXPONENT``, ``0 <= c <= 1``. The fit runs on ``x = n / min(n)`` so that the
    parameters are of like magnitude, and ``a`` is converted back to images afterwards
    (``a = A * min(n)**b``); ``b`` and ``c`` do not depend on that scale. Start: ``c`` a bit below
    the smallest mean error, ``b = 0.5``, ``A`` the rest of the mean error at the smallest size.

    A flat curve leaves ``b`` undetermined: when the fitted power term changes the error by no more
    than :data:`FLAT_SPAN` over the sizes fitted (``b`` or ``a`` at 0), it is a constant and is
    folded into ``c``, reported as ``a = b = 0`` (no decline) with ``c`` the level and intervals
    (nan, nan). Otherwise a nearly flat, noisy curve gets a wide or (nan, nan) interval of ``b``.

    Returns None with fewer than 3 distinct sizes (three parameters need them), a size that is not
    positive, or when the optimiser does not converge; never raises on a flat or non-monotone curve.
    """
    n, err = _pairs(sizes, errors)
    distinct, means, _ = _by_size(n, err)
    if distinct.size < 3 or distinct[0] <= 0:
        return None
    scale = float(distinct[0])
    x = n / scale
    c0 = min(max(FLOOR_START * float(means.min()), 0.0), 1.0)
    p0 = [max(float(means[0]) - c0, 1e-6), 0.5, c0]
    bounds = ([0.0, 0.0, 0.0], [np.inf, MAX_EXPONENT, 1.0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            popt, pcov = optimize.curve_fit(_power, x, err, p0=p0, bounds=bounds, absolute_sigma=False)
    except (RuntimeError, ValueError):
        return None
    big_a, b, c = (float(v) for v in popt)
    if big_a * (1.0 - float(x.max()) ** (-b)) <= FLAT_SPAN:
        # the power term is a constant over the sizes fitted: no decline, and b is not identified
        return PowerLaw(0.0, 0.0, min(big_a + c, 1.0), NAN_INTERVAL, NAN_INTERVAL, int(n.size),
                        int(distinct.size))
    t = _t(n.size, 3)
    var = np.diag(pcov) if np.all(np.isfinite(pcov)) else np.full(3, math.nan)
    # a variance of 0 is curve_fit's pseudo-inverse dropping a direction it could not determine
    se_b, se_c = (math.sqrt(v) if v > 0 else math.nan for v in var[1:])
    return PowerLaw(big_a * scale**b, b, c, _interval(b, se_b, t), _interval(c, se_c, t),
                    int(n.size), int(distinct.size))


@dataclass(frozen=True)
class CostLaw:
    """y(n) = k * n**e fitted on log-log axes (fit CPU-s, predict CPU-s per image, model bytes...).

    ``e_interval`` is the 95% Student-t interval of the exponent from the regression's standard
    error, (nan, nan) where that is undefined (no more points than the two parameters).
    """

    k: float
    e: float
    e_interval: tuple[float, float]
    points: int

    def predict(self, n: float | Sequence[float] | np.ndarray) -> np.ndarray | float:
        """The fitted cost at ``n`` images: a float for a scalar, an array otherwise."""
        y = self.k * np.asarray(n, dtype=float) ** self.e
        return float(y) if y.ndim == 0 else y


def fit_cost(sizes: Sequence[float], values: Sequence[float]) -> CostLaw | None:
    """Least squares of ``log(values)`` on ``log(sizes)`` (``scipy.stats.linregress``): the slope is
    the exponent ``e``, ``exp(intercept)`` the factor ``k``. A multiplicative law is fitted on the
    log scale so that the large sizes do not outweigh the small ones.

    Points with a value (or size) that is not positive and finite are dropped, having no logarithm;
    None when fewer than 2 distinct sizes are left.
    """
    n, y = _pairs(sizes, values)
    keep = (n > 0) & (y > 0)
    n, y = n[keep], y[keep]
    if np.unique(n).size < 2:
        return None
    fit = stats.linregress(np.log(n), np.log(y))
    se = float(fit.stderr) if n.size > 2 else math.nan
    e = float(fit.slope)
    return CostLaw(math.exp(float(fit.intercept)), e, _interval(e, se, _t(n.size, 2)), int(n.size))


@dataclass(frozen=True)
class Monotonicity:
    """Whether the mean error never rose beyond chance from one measured size to the next."""

    monotone: bool
    rises: tuple[tuple[int, int], ...]  # (smaller size, larger size) pairs where the error rose


def _binomial_variance(error: float, predictions: int) -> float:
    """Variance of an error rate measured on ``predictions`` test predictions. The rate is kept
    half a prediction away from 0 and 1, so that a curve with no errors (or all wrong) at a size
    still has some spread and a single new error is not a rise "beyond chance"."""
    half = 0.5 / predictions
    e = min(max(error, half), 1.0 - half)
    return e * (1.0 - e) / predictions


def check_monotone(sizes: Sequence[float], errors: Sequence[float], n_test: int) -> Monotonicity:
    """Flags each pair of consecutive measured sizes (ascending) where the mean error over seeds
    rose by more than :data:`RISE_SES` standard errors of the difference.

    The standard error is binomial: each mean is over ``n_test * seeds`` test predictions, so
    ``se = sqrt(e1 (1 - e1) / (n_test k1) + e2 (1 - e2) / (n_test k2))`` (see
    :func:`_binomial_variance` for its floor). It counts only the test set's sampling, not seed to
    seed spread, so it is a screen for curves worth a look; the curve is reported, not smoothed.
    """
    if n_test < 1:
        raise ValueError(f"n_test must be at least 1, got {n_test}")
    n, err = _pairs(sizes, errors)
    distinct, means, counts = _by_size(n, err)
    rises = []
    for i in range(distinct.size - 1):
        e1, e2 = float(means[i]), float(means[i + 1])
        se = math.sqrt(_binomial_variance(e1, n_test * int(counts[i]))
                       + _binomial_variance(e2, n_test * int(counts[i + 1])))
        if e2 - e1 > RISE_SES * se:
            rises.append((int(distinct[i]), int(distinct[i + 1])))
    return Monotonicity(not rises, tuple(rises))


@dataclass(frozen=True)
class Extrapolation:
    """A power law fitted on the sizes up to a quarter of the largest, against the largest."""

    fitted_up_to: int  # the largest size used in the fit (<= largest / 4)
    target: int  # the largest size
    predicted: float  # predicted accuracy at target (fraction)
    measured: float  # mean measured accuracy at target (fraction)

    @property
    def error_points(self) -> float:
        """``100 * (predicted - measured)`` in percentage points: positive = the curve promised too
        much (the model did worse at the largest size than its small-size curve said)."""
        return 100.0 * (self.predicted - self.measured)


def extrapolate(sizes: Sequence[float], errors: Sequence[float]) -> Extrapolation | None:
    """Fits :func:`fit_power_law` on the points whose size is at most a quarter of the largest and
    compares its prediction at the largest size with the mean measured there (as accuracies,
    ``1 - error``): would the small runs have told what the full one gives?

    None when fewer than 3 distinct sizes are that small or the fit fails.
    """
    n, err = _pairs(sizes, errors)
    if n.size == 0:
        return None
    target = float(n.max())
    small = n <= target / 4.0
    fit = fit_power_law(n[small], err[small])
    if fit is None:
        return None
    predicted = 1.0 - float(fit.predict(target))
    measured = 1.0 - float(err[n == target].mean())
    return Extrapolation(int(n[small].max()), int(target), predicted, measured)


@dataclass(frozen=True)
class Crossover:
    """Where model A's mean accuracy first gets above model B's, over the sizes measured.

    ``at`` is the smallest measured size at which A is above B (None: never), ``below`` the
    measured size just before it, where A was not above (None: A was above already at the
    smallest; the largest size when A was never above). It is the first crossing upward: if A
    falls back below B at a larger size, ``at`` still names the first crossing.
    """

    below: int | None
    at: int | None
    largest: int

    def describe(self) -> str:
        """The crossover in words, for the report: "between 500 and 1,000 images"."""
        if self.at is None:
            return f"not within the sizes measured (up to {self.largest:,})"
        if self.below is None:
            return f"already at {self.at:,} images (the smallest)"
        return f"between {self.below:,} and {self.at:,} images"


def crossover(sizes: Sequence[float], acc_a: Sequence[float], acc_b: Sequence[float]) -> Crossover:
    """The first measured size (ascending) at which ``acc_a > acc_b``; a tie is not above.

    ``sizes`` are the distinct measured sizes (one entry each; sorted here if they are not), with
    the mean accuracy of A and of B at each.
    """
    n = np.asarray(sizes, dtype=float).ravel()
    a = np.asarray(acc_a, dtype=float).ravel()
    b = np.asarray(acc_b, dtype=float).ravel()
    if not n.size == a.size == b.size:
        raise ValueError(f"sizes, acc_a and acc_b differ in length: {n.size}, {a.size}, {b.size}")
    if n.size == 0:
        raise ValueError("crossover needs at least one size")
    if np.unique(n).size != n.size:
        raise ValueError("crossover needs each size once (the mean accuracy at each)")
    order = np.argsort(n)
    n, a, b = n[order], a[order], b[order]
    largest = int(n[-1])
    above = np.flatnonzero(a > b)
    if above.size == 0:
        return Crossover(largest, None, largest)
    first = int(above[0])
    return Crossover(int(n[first - 1]) if first > 0 else None, int(n[first]), largest)
