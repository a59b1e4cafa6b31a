"""The keras-tuner driver on a made-up objective: no training, only the oracles' bookkeeping."""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmark.tuning import kerastuner_driver as driver
from benchmark.tuning.space import Choice, Float, Int, dimensions
from benchmark.tuning.trial import TrialFailed, TrialPruned
from models.lenet import import_keras

HERE = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("kt_worker", HERE / "kt_worker.py")
kt_worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kt_worker)
Tiny, accuracy = kt_worker.Tiny, kt_worker.accuracy

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # keras-tuner's currentThread()


@pytest.fixture(autouse=True)
def cleanups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records the driver's ``clear_session()`` and ``gc.collect()`` calls without running them
    (a collection walks TensorFlow's whole heap, about 0.3 s)."""
    keras = import_keras()
    calls: list[str] = []
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append("gc") or 0)
    monkeypatch.setattr(keras.backend, "clear_session", lambda **kwargs: calls.append("clear"))
    return calls


class Recorder:
    """An ``evaluate`` that records its calls; ``fail`` / ``prune`` map trial numbers to outcomes."""

    def __init__(self, fail: set[int] = frozenset(), prune: dict[int, float | None] | None = None) -> None:
        self.calls: list[tuple[int, dict[str, Any]]] = []
        self.fail, self.prune = fail, prune or {}

    def __call__(self, number: int, params: dict[str, Any], report: Any) -> float:
        assert report is None
        self.calls.append((number, params))
        if number in self.fail:
            raise TrialFailed(f"trial {number} failed")
        if number in self.prune:
            raise TrialPruned(self.prune[number])
        return accuracy(params)

    @property
    def numbers(self) -> list[int]:
        return [number for number, _ in self.calls]


def tune(tmp_path: Path, evaluate: Callable[..., float], **kwargs: Any) -> int:
    settings: dict[str, Any] = {
        "search_space": Tiny.search_space, "evaluate": evaluate, "oracle": "random", "max_trials": 5,
        "out_of_budget": lambda: False, "directory": tmp_path / "keras-tuner", "project": "mnist-tiny",
        "seed": 0, "max_epochs": None, **kwargs,
    }
    return driver.tune_kerastuner(**settings)


def assert_valid(params: dict[str, Any], extra: set[str] = frozenset()) -> None:
    dims = dimensions(Tiny)
    assert set(params) == set(dims) | extra
    for name, dim in dims.items():
        value = params[name]
        if isinstance(dim, Choice):
            assert value in dim.options
        else:
            assert isinstance(value, int if isinstance(dim, Int) else float) and dim.low <= value <= dim.high
            assert isinstance(dim, Int | Float)


@pytest.mark.parametrize("oracle, max_trials", [("random", 6), ("bayesian", 11), ("hyperband", 14)])
def test_each_oracle_runs_exactly_max_trials_with_valid_params(
    tmp_path: Path, oracle: str, max_trials: int, cleanups: list[str], capfd: pytest.CaptureFixture
) -> None:
    evaluate = Recorder()
    # Bayesian fits its Gaussian process after 3 x 3 random trials; 11 trials exercise it twice.
    assert tune(tmp_path, evaluate, oracle=oracle, max_trials=max_trials, max_epochs=9) == max_trials
    assert evaluate.numbers == list(range(max_trials))
    for _, params in evaluate.calls:
        assert_valid(params, {"epochs"} if oracle == "hyperband" else set())
        if oracle == "hyperband":
            assert 1 <= params["epochs"] <= 9
    if oracle == "hyperband":  # 9 one-epoch trials, then the best three get 3 epochs
        assert [p["epochs"] for _, p in evaluate.calls] == [1] * 9 + [3] * 3 + [9, 3]
        assert evaluate.calls[9][1] | {"epochs": 1} in [p for _, p in evaluate.calls[:9]]
    assert cleanups == ["clear"] * max_trials, "Keras session cleared after each trial"
    out, err = capfd.readouterr()
    assert out == "" and err == "", "keras-tuner prints nothing"


def test_same_seed_same_suggestions_other_seed_other_ones(tmp_path: Path) -> None:
    runs = [Recorder() for _ in range(3)]
    for i, (run, seed) in enumerate(zip(runs, [0, 0, 1], strict=True)):
        tune(tmp_path, run, project=f"p{i}", seed=seed, max_trials=3)
    assert runs[0].calls == runs[1].calls != runs[2].calls


def test_hyperband_needs_epochs_and_oracles_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="epochs"):
        tune(tmp_path, Recorder(), oracle="hyperband", max_epochs=None)
    with pytest.raises(ValueError, match="unknown keras-tuner oracle"):
        tune(tmp_path, Recorder(), oracle="grid")


@pytest.mark.parametrize("oracle", ["random", "bayesian", "hyperband"])
def test_resume_continues_to_a_larger_max_trials(
    tmp_path: Path, oracle: str, capfd: pytest.CaptureFixture
) -> None:
    first, second, third = Recorder(), Recorder(), Recorder()
    assert tune(tmp_path, first, oracle=oracle, max_trials=4, max_epochs=9) == 4
    assert tune(tmp_path, second, oracle=oracle, max_trials=7, max_epochs=9) == 7
    assert tune(tmp_path, third, oracle=oracle, max_trials=7, max_epochs=9) == 7
    assert (first.numbers, second.numbers, third.numbers) == ([0, 1, 2, 3], [4, 5, 6], [])
    assert capfd.readouterr().out == "", "not even 'Reloading Tuner from ...'"


def test_a_study_refuses_another_oracle_or_seed(tmp_path: Path) -> None:
    tune(tmp_path, Recorder(), max_trials=1)
    for change in ({"oracle": "bayesian"}, {"seed": 1}):
        with pytest.raises(ValueError, match="holds a keras-tuner study"):
            tune(tmp_path, Recorder(), **change)


def test_budget_is_checked_before_each_trial(tmp_path: Path) -> None:
    evaluate, checks = Recorder(), []

    def out_of_budget() -> bool:
        checks.append(len(evaluate.calls))
        return len(evaluate.calls) >= 3

    assert tune(tmp_path, evaluate, max_trials=10, out_of_budget=out_of_budget) == 3
    assert checks == [0, 1, 2, 3]
    assert tune(tmp_path, evaluate, max_trials=10, out_of_budget=lambda: True) == 3
    assert len(evaluate.calls) == 3


def test_failed_trials_do_not_count_nor_end_the_study(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    evaluate = Recorder(fail={1, 2, 3})  # keras-tuner's own default stops after 3 failures in a row
    assert tune(tmp_path, evaluate, oracle="bayesian", max_trials=5) == 5
    assert evaluate.numbers == list(range(8)), "no failed trial is retried"
    assert len({json.dumps(p, sort_keys=True) for _, p in evaluate.calls}) == 8
    assert "Traceback" not in capfd.readouterr().err


def test_pruned_trials_count_as_finished(tmp_path: Path) -> None:
    evaluate = Recorder(prune={0: 0.5, 1: None})
    assert tune(tmp_path, evaluate, max_trials=3) == 3
    assert evaluate.numbers == [0, 1, 2]
    assert tune(tmp_path, evaluate, max_trials=3) == 3, "still finished after a reload"


def test_a_model_that_always_fails_stops_the_study(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    evaluate = Recorder(fail=set(range(100)))
    with caplog.at_level(logging.WARNING):
        assert tune(tmp_path, evaluate, max_trials=20) == 0
    assert len(evaluate.calls) == driver.MAX_CONSECUTIVE_FAILURES
    assert "failed trials in a row" in caplog.text


def test_an_unexpected_error_propagates_and_its_trial_runs_again(tmp_path: Path) -> None:
    first, again = Recorder(), Recorder()

    def broken(number: int, params: dict[str, Any], report: Any) -> float:
        first(number, params, report)
        if number == 2:
            raise KeyError("a bug in evaluate")
        return accuracy(params)

    with pytest.raises(KeyError, match="a bug in evaluate"):
        tune(tmp_path, broken)
    assert tune(tmp_path, again) == 5
    assert again.numbers == [2, 3, 4]
    assert again.calls[0] == first.calls[2], "same number, same values"


def test_sigkill_mid_trial_then_resume(tmp_path: Path) -> None:
    """Kill a study while trial 3 is running; another process finishes it without redoing 0-2."""
    directory, log = tmp_path / "keras-tuner", tmp_path / "evaluations.log"
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1])}
    command = [sys.executable, str(HERE / "kt_worker.py"), str(directory), str(log), "6", "3"]
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while "block 3" not in (log.read_text() if log.exists() else "") and worker.poll() is None:
        assert time.monotonic() < deadline, "the worker never reached trial 3"
        time.sleep(0.05)
    assert worker.poll() is None, worker.stderr.read().decode()
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    lines = [line.split(" ", 2) for line in log.read_text().splitlines()]
    done_before = {int(n) for word, n, *_ in lines if word == "done"}
    started_before = {int(n): params for word, n, params in (x for x in lines if x[0] == "start")}
    assert done_before == {0, 1, 2}

    evaluate = Recorder()
    finished = driver.tune_kerastuner(
        search_space=Tiny.search_space, evaluate=evaluate, oracle="random", max_trials=6,
        out_of_budget=lambda: False, directory=directory, project="tiny", seed=1, max_epochs=None,
    )
    assert finished == 6
    assert not done_before & set(evaluate.numbers), "no completed trial is evaluated again"
    # keras-tuner re-queues the trial that was RUNNING: same number, same values, run first.
    assert evaluate.numbers == [3, 4, 5]
    assert json.dumps(evaluate.calls[0][1], sort_keys=True) == started_before[3]
