"""Which finished trials of a study are worth refitting besides the one it chose: the Pareto front
on (validation accuracy up, cost down), the cheapest trial within one standard error of the best
(Breiman et al. 1984's one-standard-error rule, with cost standing for complexity), and K points
spread along a front.

Pure functions over a study's trials, ``number -> record``: a record is a mapping with ``status``,
``val_accuracy`` and the cost under the key the caller names (a trial row of results.csv is one;
so is what :func:`~benchmark.tuning.study.record_of` keeps). Only finished trials count: status
``ok`` with a validation accuracy and a cost; pruned trials (scored before they finished) and failed
ones are left out. Ties go to the earlier trial, as :meth:`~benchmark.tuning.study.Study.choice`
breaks them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from digitbench.benchmark.payloads import CHOSEN as CHOSEN  # re-exported: the roles of a final
from digitbench.benchmark.payloads import FRONT as FRONT
from digitbench.benchmark.payloads import ONE_SE_CHEAPEST as ONE_SE_CHEAPEST
from digitbench.benchmark.settings import COSTS
from digitbench.benchmark.store import Status

#: What a trial costs, per ``--cost``: the record key that holds it.
FIT, PREDICT = COSTS
COST_KEYS = {FIT: "fit_cpu_s", PREDICT: "predict_ms"}
#: How each cost reads in the report.
COST_LABELS = {FIT: "fit CPU-s", PREDICT: "predict ms per image"}


class Point(NamedTuple):
    """A finished trial: its number, validation accuracy and cost."""

    number: int
    accuracy: float
    cost: float


def finished(trials: Mapping[int, Mapping[str, Any]], cost: str) -> list[Point]:
    """The finished trials of ``trials`` (number -> record), their cost read from key ``cost``, in
    trial order; pruned and failed trials, and trials without an accuracy or a cost, left out."""
    points = []
    for number in sorted(trials):
        record = trials[number]
        accuracy, value = as_number(record.get("val_accuracy")), as_number(record.get(cost))
        if record.get("status") == Status.OK and accuracy is not None and value is not None:
            points.append(Point(int(number), accuracy, value))
    return points


def pareto_front(trials: Mapping[int, Mapping[str, Any]], cost: str) -> list[Point]:
    """The finished trials no other beats on both counts (at least as accurate and at most as
    costly, better on one), cheapest first (so each is more accurate than the one before). Of two
    trials with the same accuracy and cost, the earlier is on the front."""
    front: list[Point] = []
    for point in sorted(finished(trials, cost), key=lambda p: (p.cost, -p.accuracy, p.number)):
        if not front or point.accuracy > front[-1].accuracy:
            front.append(point)
    return front


def standard_error(accuracy: float, images: int) -> float:
    """One standard error of an accuracy measured on ``images`` images: sqrt(p(1-p)/n)."""
    return math.sqrt(accuracy * (1 - accuracy) / images)


def one_se_cheapest(trials: Mapping[int, Mapping[str, Any]], se: float, cost: str) -> Point | None:
    """The cheapest finished trial whose accuracy is within ``se`` of the best one's (at least
    best - se); of equally cheap ones the more accurate, then the earlier. None without a finished
    trial. It lies on :func:`pareto_front`: a cheaper trial is more than ``se`` below the best."""
    points = finished(trials, cost)
    if not points:
        return None
    floor = max(p.accuracy for p in points) - se
    return min((p for p in points if p.accuracy >= floor), key=lambda p: (p.cost, -p.accuracy, p.number))


def spread(front: list[Point], k: int) -> list[Point]:
    """Up to ``k`` points of ``front`` (cheapest first, as :func:`pareto_front` gives it) spread
    along it, cheapest first: k = 1 its most accurate; k >= 2 its cheapest and its most accurate,
    and k - 2 between, each the point nearest to costs evenly spaced on a log scale between the two
    (a linear one where a cost is 0), nearest not yet taken. Log, because the costs of a study's
    trials span orders of magnitude (a few epochs against many; a small kernel machine against a
    large one), and the report draws them on a log axis: even steps there look even. The whole
    front where it has at most ``k`` points; none for k = 0."""
    if k <= 0 or not front:
        return []
    if k >= len(front):
        return list(front)
    if k == 1:
        return [front[-1]]
    costs = np.array([p.cost for p in front], dtype=float)
    scale = np.log if costs[0] > 0 else (lambda x: x)
    positions = scale(costs)
    taken = {0, len(front) - 1}
    for target in np.linspace(positions[0], positions[-1], k)[1:-1]:
        free = [i for i in range(len(front)) if i not in taken]
        taken.add(min(free, key=lambda i: (abs(positions[i] - target), i)))
    return [front[i] for i in sorted(taken)]


def as_number(value: Any) -> float | None:
    """A cell or record value as a float; None where it is empty, NaN or not a number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number
