"""The ask/tell keras-tuner driver on made-up accuracies: no training, only the oracles' bookkeeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from digitbench.benchmark.tuning.kerastuner_driver import (
    LEFT_RUNNING,
    PRUNED_MARK,
    PRUNED_OK,
    KerasTunerDriver,
)
from digitbench.benchmark.tuning.space import Space
from digitbench.benchmark.tuning.trial import Outcome

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # keras-tuner's currentThread()

ORACLES = ("random", "bayesian", "hyperband")
MAX_EPOCHS = 3
DIMS = ("x", "k", "c")


def space(s: Space) -> dict[str, Any]:
    return {"x": s.float("x", 0.0, 1.0), "k": s.int("k", 1, 8), "c": s.choice("c", ["a", "b"])}


def accuracy(params: dict[str, Any]) -> float:
    return round(0.5 + 0.4 * params["x"] - 0.01 * params["k"] + (0.05 if params["c"] == "a" else 0.0), 6)


def open_driver(folder: Path, oracle: str = "random", *, seed: int = 7,
                search_space: Callable[[Space], dict[str, Any]] = space,
                recorded: Callable[[int], Outcome | None] = lambda number: None) -> KerasTunerDriver:
    """A driver on ``folder/study``, settled as the coordinator does right after opening."""
    driver = KerasTunerDriver(search_space=search_space, oracle=oracle, directory=folder, project="study",
                              seed=seed, max_epochs=MAX_EPOCHS if oracle == "hyperband" else None)
    driver.settle(recorded)
    return driver


def ask(driver: KerasTunerDriver) -> tuple[int, dict[str, Any]]:
    asked = driver.ask()
    assert asked is not None, "the oracle had nothing to start"
    return asked


def run(driver: KerasTunerDriver, count: int) -> dict[int, dict[str, Any]]:
    """Ask and tell ``count`` trials one after the other; their params by number."""
    asked = {}
    for _ in range(count):
        number, params = ask(driver)
        asked[number] = params
        driver.tell(number, "ok", accuracy(params))
    return asked


def stored(driver: KerasTunerDriver, number: int) -> Any:
    return driver.oracle.get_trial(f"{number:04d}")


@pytest.mark.parametrize("oracle", ORACLES)
def test_six_trials_finish_with_numbers_0_to_5(tmp_path: Path, oracle: str) -> None:
    driver = open_driver(tmp_path, oracle)
    asked = run(driver, 6)
    assert sorted(asked) == list(range(6))
    assert driver.finished() == 6 and driver.running() == []
    for number, params in asked.items():
        assert set(params) == set(DIMS) | ({"epochs"} if oracle == "hyperband" else set())
        assert 0.0 <= params["x"] <= 1.0 and 1 <= params["k"] <= 8 and params["c"] in ("a", "b")
        assert stored(driver, number).score == pytest.approx(accuracy(params))
    if oracle == "hyperband":
        assert all(1 <= params["epochs"] <= MAX_EPOCHS for params in asked.values())


@pytest.mark.parametrize("oracle", ["random", "bayesian"])
def test_two_trials_run_at_once(tmp_path: Path, oracle: str) -> None:
    driver = open_driver(tmp_path, oracle)
    (a, pa), (b, pb) = ask(driver), ask(driver)
    assert a != b and pa != pb and driver.running() == sorted([a, b])
    assert driver.report(a, 1, 0.6) is False and driver.report(b, 1, 0.7) is False
    driver.tell(b, "ok", 0.7)
    assert driver.running() == [a] and driver.finished() == 1
    driver.tell(a, "ok", 0.6)
    assert driver.running() == [] and driver.finished() == 2


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a GP fit on 3 points
def test_bayesian_model_with_trials_running(tmp_path: Path) -> None:
    """Past its random start (3 points for one dimension) the Gaussian process suggests, while
    another trial is running too."""
    driver = open_driver(tmp_path, "bayesian", search_space=lambda s: {"x": s.float("x", 0.0, 1.0)})
    for _ in range(3):
        number, params = ask(driver)
        driver.tell(number, "ok", 1.0 - (params["x"] - 0.3) ** 2)
    (a, pa), (b, pb) = ask(driver), ask(driver)
    assert (a, b) == (3, 4) and pa != pb
    driver.tell(a, "ok", 0.5)
    driver.tell(b, "ok", 0.5)
    assert driver.finished() == 5


@pytest.mark.parametrize("oracle", ORACLES)
def test_a_second_driver_continues_the_study(tmp_path: Path, oracle: str) -> None:
    first = run(open_driver(tmp_path, oracle), 4)
    driver = open_driver(tmp_path, oracle)
    assert driver.finished() == 4
    for number, params in first.items():
        values = stored(driver, number).hyperparameters.values
        assert {d: values[d] for d in DIMS} == {d: params[d] for d in DIMS}
    later = run(driver, 2)
    assert sorted(later) == [4, 5] and driver.finished() == 6


@pytest.mark.parametrize("oracle", ORACLES)
def test_settle_ends_trials_left_running(tmp_path: Path, oracle: str) -> None:
    killed = open_driver(tmp_path, oracle)
    (a, _), (b, _), (c, _) = ask(killed), ask(killed), ask(killed)
    killed.report(a, 1, 0.95)
    del killed  # the coordinator was killed with three trials running

    outcomes = {a: ("ok", 0.9), b: ("pruned", 0.4)}
    driver = open_driver(tmp_path, oracle, recorded=outcomes.get)
    assert driver.running() == [] and driver.finished() == 2
    assert stored(driver, a).status == "COMPLETED" and stored(driver, a).score == pytest.approx(0.9)
    assert stored(driver, b).message == PRUNED_OK and stored(driver, b).score == pytest.approx(0.4)
    assert stored(driver, c).status == "FAILED" and stored(driver, c).message == LEFT_RUNNING
    assert driver.oracle.get_state()["retry_queue"] == [] and driver.oracle.ongoing_trials == {}
    assert ask(driver)[0] == 3  # a new trial, not one of the settled ones
    assert open_driver(tmp_path, oracle).finished() == 2  # settled for good


def test_settle_keeps_a_trial_ended_before_a_kill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed between end_trial's own save (the trial still ongoing) and the driver's save."""
    killed = open_driver(tmp_path)
    number, _ = ask(killed)
    real_save, saves = killed.oracle.save, []

    def first_save_only() -> None:
        saves.append(1)
        if len(saves) == 1:
            real_save()

    monkeypatch.setattr(killed.oracle, "save", first_save_only)
    killed.tell(number, "ok", 0.8)
    assert len(saves) == 2  # end_trial's own save, then the driver's (skipped here)

    driver = open_driver(tmp_path, recorded=lambda n: pytest.fail(f"asked about trial {n}"))
    assert driver.finished() == 1 and stored(driver, number).score == pytest.approx(0.8)
    assert driver.oracle.get_state()["retry_queue"] == [] and ask(driver)[0] == 1


def test_error_does_not_count_pruned_does(tmp_path: Path) -> None:
    driver = open_driver(tmp_path)
    numbers = [ask(driver)[0] for _ in range(4)]
    outcomes = [("ok", 0.9), ("error", None), ("pruned", 0.5), ("pruned", None)]
    for number, (status, value) in zip(numbers, outcomes, strict=True):
        driver.tell(number, status, value)
    assert driver.finished() == 3
    ok, error, pruned, pruned_none = (stored(driver, n) for n in numbers)
    assert error.status == "FAILED" and PRUNED_MARK not in (error.message or "")
    assert pruned.status == "COMPLETED" and pruned.score == pytest.approx(0.5)
    assert pruned_none.status == "FAILED" and pruned_none.message == PRUNED_MARK
    assert open_driver(tmp_path).finished() == 3


def test_score_is_the_told_value_not_the_best_epoch(tmp_path: Path) -> None:
    driver = open_driver(tmp_path)
    number, _ = ask(driver)
    assert driver.report(number, 1, 0.9) is False and driver.report(number, 2, 0.7) is False
    driver.tell(number, "ok", 0.75)
    trial = stored(driver, number)
    assert trial.score == pytest.approx(0.75)
    assert [(o.step, o.value) for o in trial.metrics.get_history("val_accuracy")] == [(1, [0.9]), (2, [0.7]),
                                                                                      (3, [0.75])]


def test_bad_calls_are_refused(tmp_path: Path) -> None:
    driver = open_driver(tmp_path)
    number, _ = ask(driver)
    with pytest.raises(ValueError, match="bad outcome"):
        driver.tell(number, "ok", None)
    with pytest.raises(ValueError, match="bad outcome"):
        driver.tell(number, "done", 0.5)
    driver.tell(number, "ok", 0.5)
    with pytest.raises(ValueError, match="not running"):
        driver.tell(number, "ok", 0.5)
    with pytest.raises(ValueError, match="not running"):
        driver.report(number, 1, 0.5)
    assert driver.finished() == 1


def test_hyperband_promotes_the_best_with_more_epochs(tmp_path: Path) -> None:
    """max_epochs 3, factor 3: three 1-epoch trials, the best of them again for 3 epochs, then a
    bracket of 3-epoch trials."""
    driver = open_driver(tmp_path, "hyperband")
    asked = run(driver, 6)
    assert [asked[n]["epochs"] for n in range(6)] == [1, 1, 1, 3, 3, 3]
    best = max(range(3), key=lambda n: accuracy(asked[n]))
    assert {d: asked[3][d] for d in DIMS} == {d: asked[best][d] for d in DIMS}


def test_hyperband_starts_the_next_bracket_rather_than_wait(tmp_path: Path) -> None:
    """keras-tuner's Hyperband (unlimited iterations) never waits while fresh values remain."""
    driver = open_driver(tmp_path, "hyperband")
    started = [ask(driver) for _ in range(5)]
    assert [params["epochs"] for _, params in started] == [1, 1, 1, 3, 3]
    assert driver.running() == list(range(5))


def test_hyperband_returns_none_while_it_must_wait(tmp_path: Path) -> None:
    """With three possible values, a 4th trial has to wait for the 1-epoch round to end."""
    driver = open_driver(tmp_path, "hyperband", search_space=lambda s: {"c": s.choice("c", ["a", "b", "c"])})
    first = dict(ask(driver) for _ in range(3))
    start = time.monotonic()
    assert driver.ask() is None
    assert time.monotonic() - start < 5
    values = {"a": 0.6, "b": 0.9, "c": 0.7}
    for number, params in first.items():
        assert driver.ask() is None  # still waiting for the round's running trials
        driver.tell(number, "ok", values[params["c"]])
    number, params = ask(driver)
    assert number == 3 and params == {"c": "b", "epochs": MAX_EPOCHS}


def test_a_folder_started_otherwise_is_refused(tmp_path: Path) -> None:
    run(open_driver(tmp_path, "random"), 1)
    with pytest.raises(ValueError, match="holds a keras-tuner study"):
        open_driver(tmp_path, "bayesian")
    with pytest.raises(ValueError, match="holds a keras-tuner study"):
        open_driver(tmp_path, "random", seed=8)
    with pytest.raises(ValueError, match="needs max_epochs"):
        KerasTunerDriver(search_space=space, oracle="hyperband", directory=tmp_path, project="other", seed=1,
                         max_epochs=None)
    with pytest.raises(ValueError, match="unknown keras-tuner oracle"):
        KerasTunerDriver(search_space=space, oracle="grid", directory=tmp_path, project="other", seed=1,
                         max_epochs=None)
    assert open_driver(tmp_path, "random").finished() == 1


@pytest.mark.parametrize("oracle", ORACLES)
def test_the_same_seed_gives_the_same_first_params(tmp_path: Path, oracle: str) -> None:
    first = [ask(open_driver(tmp_path / name, oracle, seed=seed))[1] for name, seed in
             [("one", 0), ("two", 0), ("three", 1)]]
    assert first[0] == first[1]
    assert first[0] != first[2]


@pytest.mark.parametrize("oracle", ["random", "bayesian"])
def test_the_first_trial_is_the_given_defaults(tmp_path: Path, oracle: str) -> None:
    driver = KerasTunerDriver(search_space=space, oracle=oracle, directory=tmp_path, project="study",
                              seed=7, max_epochs=None, first_trial={"x": 0.25, "c": "b"})
    driver.settle(lambda number: None)
    number, params = ask(driver)
    assert number == 0 and params == {"x": 0.25, "k": 1, "c": "b"}, "k: the space's own default"
    driver.tell(number, "ok", 0.5)
    assert ask(driver)[1] != params, "later trials are the oracle's"
