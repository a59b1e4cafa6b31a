"""The front of a study's trials on hand-made trials: the Pareto front, the cheapest trial within
one standard error of the best, and K points spread along a front."""

from __future__ import annotations

import math

from digitbench.benchmark.tuning.front import (
    Point,
    finished,
    one_se_cheapest,
    pareto_front,
    spread,
    standard_error,
)

COST = "fit_cpu_s"


def trials(*rows: tuple, status: dict[int, str] | None = None) -> dict[int, dict]:
    """Trial records numbered from 0, each (validation accuracy, fit CPU-s); ``status`` overrides
    some trials' status (pruned, error)."""
    return {n: {"status": (status or {}).get(n, "ok"), "val_accuracy": acc, COST: cost}
            for n, (acc, cost) in enumerate(rows)}


def numbers(points: list[Point] | None) -> list[int]:
    return [p.number for p in points or []]


def test_the_front_is_the_undominated_trials_cheapest_first() -> None:
    found = trials((0.90, 10.0), (0.95, 20.0), (0.85, 2.0), (0.93, 30.0), (0.96, 40.0), (0.80, 3.0))
    front = pareto_front(found, COST)
    assert numbers(front) == [2, 0, 1, 4], "3 costs more than 1 for less; 5 more than 2 for less"
    assert [p.cost for p in front] == sorted(p.cost for p in front)
    assert all(a.accuracy < b.accuracy for a, b in zip(front, front[1:], strict=False))


def test_ties_go_to_the_earlier_trial_and_an_equal_accuracy_at_a_higher_cost_is_dominated() -> None:
    found = trials((0.90, 10.0), (0.90, 10.0), (0.90, 12.0), (0.92, 10.0), (0.92, 10.0))
    assert numbers(pareto_front(found, COST)) == [3], "3 beats 0 and 1 on accuracy at the same cost"
    same = trials((0.90, 10.0), (0.90, 10.0))
    assert numbers(pareto_front(same, COST)) == [0]
    assert numbers([one_se_cheapest(same, 0.01, COST)]) == [0]


def test_pruned_failed_and_unscored_trials_are_left_out() -> None:
    found = trials((0.90, 10.0), (0.99, 1.0), (None, 1.0), (0.95, 5.0), (0.97, None),
                   status={1: "pruned", 2: "error"})
    assert numbers(finished(found, COST)) == [0, 3]
    assert numbers(pareto_front(found, COST)) == [3]
    assert numbers([one_se_cheapest(found, 0.1, COST)]) == [3]
    assert pareto_front({}, COST) == [] and one_se_cheapest({}, 0.01, COST) is None
    assert one_se_cheapest(trials((0.9, 1.0), status={0: "pruned"}), 0.01, COST) is None


def test_the_one_se_cheapest_is_the_cheapest_within_one_standard_error_of_the_best() -> None:
    se = standard_error(0.95, 400)
    assert math.isclose(se, math.sqrt(0.95 * 0.05 / 400))
    found = trials((0.950, 10.0), (0.945, 4.0), (0.950 - 2 * se, 1.0), (0.940, 5.0))
    assert numbers([one_se_cheapest(found, se, COST)]) == [1], "2 is cheaper but two SEs below"
    assert numbers([one_se_cheapest(found, 0.0, COST)]) == [0], "no slack: the best itself"
    assert numbers([one_se_cheapest(found, 1.0, COST)]) == [2], "any slack: the cheapest"
    assert one_se_cheapest(found, se, COST).number in numbers(pareto_front(found, COST))


def test_the_defaults_may_be_the_cheapest() -> None:
    """Trial 0 (the defaults) is within one SE and costs least: it is the one refit."""
    found = trials((0.948, 3.0), (0.950, 9.0), (0.949, 3.0))
    assert numbers([one_se_cheapest(found, 0.01, COST)]) == [2], "as cheap and more accurate"
    found = trials((0.949, 3.0), (0.950, 9.0), (0.949, 3.0))
    assert numbers([one_se_cheapest(found, 0.01, COST)]) == [0], "a tie: the earlier, the defaults"


def test_spread_takes_the_ends_then_points_evenly_along_a_log_cost() -> None:
    front = [Point(n, 0.90 + n / 100, cost) for n, cost in enumerate([1.0, 2.0, 4.0, 10.0, 100.0])]
    assert spread(front, 0) == []
    assert numbers(spread(front, 1)) == [4], "one point: the most accurate"
    assert numbers(spread(front, 2)) == [0, 4], "its cheapest and its most accurate"
    assert numbers(spread(front, 3)) == [0, 3, 4], "10 CPU-s is the middle of 1 to 100 on a log scale"
    assert numbers(spread(front, 4)) == [0, 2, 3, 4]
    assert numbers(spread(front, 5)) == numbers(spread(front, 9)) == [0, 1, 2, 3, 4], "K beyond the front"
    free = [Point(n, 0.9 + n / 100, cost) for n, cost in enumerate([0.0, 1.0, 5.0, 10.0])]
    assert numbers(spread(free, 3)) == [0, 2, 3], "a cost of 0: even on a linear scale"
    assert spread([], 3) == []
