"""The coordinator's scheduling, with a fake executor and a fake study: what runs when, what is told
to the tuner and when, and what a stop abandons. No model is trained here."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from digitbench.benchmark.config import build_config
from digitbench.benchmark.data.datasets import load_split
from digitbench.benchmark.execution.coordinator import Coordinator
from digitbench.benchmark.execution.executors import Executor
from digitbench.benchmark.execution.jobs import EpochReport, Job, Kind, TaskResult
from digitbench.benchmark.execution.plan import plan
from digitbench.benchmark.payloads import StudySummary
from digitbench.benchmark.tuning.study import Study, record_of
from digitbench.models import registry


class FakeExecutor(Executor):
    """Runs nothing: each submitted job's result is ``outcome(job)``; a trial first sends one epoch
    report (its answer is kept), so that pruning reaches the study through the listener."""

    slots = 1

    def __init__(self, outcome: Any) -> None:
        self.outcome, self.events, self.answers, self.shared, self.jobs = outcome, [], [], {}, []
        self.pending: list[tuple[Future, Job, Any]] = []

    def share(self, name: str, value: Any) -> None:
        self.shared[name] = value

    def submit(self, fn: Any, job: Job, *args: Any, listener: Any) -> Future:
        future: Future = Future()
        self.pending.append((future, job, listener))
        self.events.append(("submit", job.label))
        self.jobs.append(job)
        return future

    def wait(self, futures: Any, timeout: float) -> set[Future]:
        future, job, listener = self.pending.pop(0)
        if not job.is_final:
            self.answers.append(listener(EpochReport(1, 3, {"val_accuracy": 0.5})))
        future.set_result(self.outcome(job))
        return {future}

    def shutdown(self) -> None:
        pass

    def describe(self) -> str:
        return "a fake"


class FakeStudy:
    """Asks ``trials`` trials one at a time, prunes trial 1, chooses the params of its best trial."""

    cv, finished, cpu_used, settings, scored_images = 1, 0, 0.0, StudySummary(tuner="fake"), 100
    costed, best_standard_error = Study.costed, Study.best_standard_error  # the real study's

    def __init__(self, trials: int, events: list) -> None:
        self.trials, self.events, self.asked, self.told, self.running = trials, events, 0, {}, set()

    def open(self) -> None:
        self.events.append(("open",))

    def ask(self) -> tuple[int, dict[str, Any]] | None:
        if self.asked == self.trials or self.running:
            return None
        self.asked += 1
        self.running.add(self.asked - 1)
        return self.asked - 1, {"shrink": 0.1 * (self.asked - 1)}

    @property
    def complete(self) -> bool:
        return self.asked == self.trials and not self.running

    def report(self, number: int, epoch: int, value: float) -> bool:
        return number == 1

    def record(self, number: int, row: dict[str, Any]) -> None:
        self.events.append(("tell", number, row["status"]))
        self.running.discard(number)
        self.told[number] = row

    def abandon(self) -> None:
        self.events.append(("abandon", sorted(self.running)))

    def summary(self) -> StudySummary:
        return StudySummary(tuner="fake", chosen_trial=2)

    @property
    def records(self) -> dict[int, dict[str, Any]]:
        return {n: record_of(row) for n, row in self.told.items()}

    def choice(self) -> tuple[int, str]:
        """Trial 2, or the last trial told ok."""
        if not any(r["status"] == "ok" for r in self.told.values()):
            raise RuntimeError("tuning with fake finished no trial, so there is nothing to refit")
        return (2 if 2 in self.told else max(self.told)), "fake"

    def best(self) -> dict[str, Any]:
        self.choice()
        return {"shrink": 0.2}


class FakeRecorder:
    run_id = "fake-run"

    def __init__(self, events: list) -> None:
        self.events, self.rows = events, []

    def record(self, split: Any, entry: Any, job: Job, result: TaskResult, tuning: StudySummary) -> dict:
        row = {"trial": job.trial, "seed": job.seed, "refit_trial": job.refit_trial, "params": job.params,
               "tuning": tuning.as_json(),
               **result.row_fields()}
        self.events.append(("row", job.label))
        self.rows.append(row)
        return row


@pytest.fixture()
def setting(tmp_path: Path, tiny_idx: Path, plugin_path: Path):
    registry.load_model_path("tinyplugin:NearestCentroid")
    config = build_config({"datasets": f"idx:{tiny_idx}", "models": "nearest-centroid", "seeds": 2,
                           "tuners": "optuna", "out": tmp_path / "run", "cache_dir": tmp_path / "cache",
                           "cheap_finals": False, "front_finals": 0})  # extra finals: their own test
    split = load_split(config.datasets[0], cache_dir=config.cache_dir)
    return config, split


def coordinate(setting, outcome, trials: int = 3, study: type = None):
    """Run the plan of ``setting`` (a tuned contender, then its defaults refit) with a fake study."""
    config, split = setting
    events: list = []
    contenders = plan(config, [split], [registry.get("nearest-centroid")], set())
    assert [c.tuner for c in contenders] == ["optuna", "none"] and contenders[1].is_defaults_refit
    contenders[0].study = (study or FakeStudy)(trials, events)
    executor, recorder = FakeExecutor(outcome), FakeRecorder(events)
    executor.events = events  # one timeline: submitted, row written, told
    code = Coordinator(config, contenders, executor, recorder, {}).run()
    return code, events, executor, recorder


def ok(job: Job) -> TaskResult:
    return TaskResult("ok", {"val_accuracy": 0.9, "test_accuracy": 0.8, "fit_cpu_s": 1.0,
                             "fit_wall_s": 1.0})


def test_trials_run_then_the_finals_refit_the_choice_and_each_trial_is_told_after_its_row(setting) -> None:
    code, events, executor, recorder = coordinate(setting, ok)
    assert code == 0
    submitted = [e[1].split(" ", 3)[-1] for e in events if e[0] == "submit"]
    assert submitted[:5] == ["trial 0", "trial 1", "trial 2", "final seed 0", "final seed 1"]
    for number in range(3):  # the row first, then the tuner hears of it
        label = [e[1] for e in events if e[0] == "row"][number]
        assert events.index(("row", label)) < events.index(("tell", number, "ok"))
    assert events[0] == ("open",) and executor.answers == [False, True, False], "trial 1 pruned"
    finals = [r for r in recorder.rows if r["trial"] is None][:2]
    assert [r["params"] for r in finals] == [{"shrink": 0.2}] * 2, "the study's choice, per seed"
    assert all(r["tuning"] == {"tuner": "fake", "chosen_trial": 2, "final_roles": ["chosen"],
                               "refit_val_accuracy": 0.9, "refit_cost": 1.0} for r in finals)
    assert [r["tuning"] for r in recorder.rows if r["trial"] is not None] == [{"tuner": "fake"}] * 3
    assert set(executor.shared) == {"split0"}


def test_a_study_with_nothing_to_refit_fails_its_finals_with_the_reason(setting) -> None:
    code, events, executor, recorder = coordinate(setting, lambda job: TaskResult.failed("ValueError: no"))
    assert code == 1
    assert not any("final" in e[1] for e in events if e[0] == "submit"), "no final is run"
    finals = [r for r in recorder.rows if r["trial"] is None]
    assert [r["error"] for r in finals] == ["RuntimeError: tuning with fake finished no trial, so there "
                                            "is nothing to refit"] * 2, "and no defaults refit"


def test_a_lost_task_is_a_failed_row_not_the_end_of_the_run(setting) -> None:
    config, split = setting

    class Losing(FakeExecutor):
        def wait(self, futures: Any, timeout: float) -> set[Future]:
            future, job, listener = self.pending.pop(0)
            if job.is_final and job.seed == 0:
                future.set_exception(RuntimeError("its worker process died"))
            else:
                future.set_result(ok(job))
            return {future}

    events: list = []
    contender, refit = plan(config, [split], [registry.get("nearest-centroid")], set())
    contender.study = FakeStudy(1, events)
    recorder = FakeRecorder(events)
    assert Coordinator(config, [contender, refit], Losing(ok), recorder, {}).run() == 1
    assert [r["status"] for r in recorder.rows] == ["ok", "error", "ok", "error", "ok"]
    assert recorder.rows[1]["error"] == "RuntimeError: its worker process died"


def test_a_stop_abandons_the_running_trials_and_propagates(setting) -> None:
    class Stopping(FakeExecutor):
        def wait(self, futures: Any, timeout: float) -> set[Future]:
            raise KeyboardInterrupt

    config, split = setting
    events: list = []
    contenders = plan(config, [split], [registry.get("nearest-centroid")], set())
    contenders[0].study = FakeStudy(3, events)
    with pytest.raises(KeyboardInterrupt):
        Coordinator(config, contenders, Stopping(ok), FakeRecorder(events), {}).run()
    assert events[-1] == ("abandon", [0]) and not any(e[0] == "row" for e in events)


def test_a_tuner_that_cannot_be_told_on_the_way_out_does_not_hide_what_stopped_the_run(setting) -> None:
    """Its store may be on the disk that just filled up; the next run settles its trials anyway."""
    class Full(FakeExecutor):
        def wait(self, futures: Any, timeout: float) -> set[Future]:
            raise OSError(28, "No space left on device", "results.csv")

    class Unreachable(FakeStudy):
        def abandon(self) -> None:
            raise RuntimeError("database or disk is full")

    config, split = setting
    contenders = plan(config, [split], [registry.get("nearest-centroid")], set())
    contenders[0].study = Unreachable(3, [])
    with pytest.raises(OSError, match="No space left on device"):
        Coordinator(config, contenders, Full(ok), FakeRecorder([]), {}).run()


def test_jobs_are_typed_and_carry_what_the_model_declares(setting, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="a final job with trial number 3"):
        Job(dataset="d", model="m", tuner="none", kind=Kind.FINAL, trial=3, seed=0, params={})
    config, split = setting
    registry.load_model_path("tinyplugin:EpochModel")
    config = type(config)(**{**config.__dict__, "models": ("epoch-model", "nearest-centroid"),
                             "target": 0.3, "tuners": ("none",)})
    contenders = plan(config, [split], [registry.get(m) for m in config.models], set())
    executor = FakeExecutor(ok)
    assert Coordinator(config, contenders, executor, FakeRecorder([]), {}).run() == 0
    by_model = {job.model: job for job in executor.jobs}
    assert (by_model["epoch-model"].epochs, by_model["epoch-model"].target) == (6, 0.3)
    assert (by_model["nearest-centroid"].epochs, by_model["nearest-centroid"].target) == (None, None), \
        "a model that trains in one go has no epochs and is not timed to a target"


def test_where_tuning_changed_the_defaults_the_finals_refit_them_on_the_same_seeds(setting) -> None:
    code, events, executor, recorder = coordinate(setting, ok)
    assert code == 0
    finals = [(j.tuner, j.seed, j.params) for j in executor.jobs if j.is_final]
    assert finals == [("optuna", 0, {"shrink": 0.2}), ("optuna", 1, {"shrink": 0.2}),
                      ("none", 0, {"shrink": 0.0}), ("none", 1, {"shrink": 0.0})]
    refits = [r for r in recorder.rows if r["trial"] is None and r["params"] == {"shrink": 0.0}]
    assert [r["tuning"] for r in refits] == [{"tuner": "none", "defaults_refit_for": ["optuna"]}] * 2


def test_where_tuning_kept_the_defaults_there_is_no_refit_and_the_progress_says_so(setting, capsys) -> None:
    class KeepsDefaults(FakeStudy):
        def best(self) -> dict[str, Any]:
            return {"shrink": 0.0}

    code, events, executor, recorder = coordinate(setting, ok, study=KeepsDefaults)
    assert code == 0
    assert [(j.tuner, j.seed) for j in executor.jobs if j.is_final] == [("optuna", 0), ("optuna", 1)]
    err = capsys.readouterr().err
    assert "to do: at most 20 tuning trials, 2 finals and 2 defaults refits" in err
    assert "nearest-centroid on idx:" in err and "tuning kept the defaults, so no defaults refit" in err
    assert "[5/5]" in err, "of 20 trials, 2 finals and 2 refits counted, 3 trials and 2 finals ran"


def last_progress(err: str) -> tuple[int, int]:
    """The jobs done and the total of the last progress line of a run's stderr."""
    line = [ln for ln in err.splitlines() if ln.startswith("[")][-1]
    done, total = line[1:].split("]", 1)[0].split("/")
    return int(done), int(total)


@pytest.mark.parametrize("asked", [2, 5], ids=["fewer trials than counted", "more trials than counted"])
def test_the_last_progress_line_counts_the_jobs_that_ran(setting, capsys, asked: int) -> None:
    """A study stopped early (its CPU budget) runs fewer trials than the progress counted; one whose
    failed trials were asked again (they do not count toward --trials) runs more: either way the
    total is settled when the study ends, so the last line reads N/N."""
    config, split = setting
    config = type(config)(**{**config.__dict__, "trials": 3})
    capsys.readouterr()
    code, events, executor, recorder = coordinate((config, split), ok, trials=asked)
    assert code == 0
    err = capsys.readouterr().err
    assert "to do: at most 3 tuning trials, 2 finals and 2 defaults refits" in err
    assert last_progress(err) == (len(recorder.rows), len(recorder.rows))
    assert len([r for r in recorder.rows if r["trial"] is not None]) == asked


def test_the_plan_adds_a_defaults_refit_only_for_tuned_runs_without_tuner_none(setting) -> None:
    config, split = setting
    entry = registry.get("nearest-centroid")
    replace = type(config)
    both = replace(**{**config.__dict__, "tuners": ("none", "optuna")})
    assert [c.tuner for c in plan(both, [split], [entry], set())] == ["none", "optuna"]
    off = replace(**{**config.__dict__, "refit_defaults": False})
    assert [c.tuner for c in plan(off, [split], [entry], set())] == ["optuna"]
    tuners = replace(**{**config.__dict__, "tuners": ("optuna", "random"), "study_seeds": 2})
    contenders = plan(tuners, [split], [entry], {(split.dataset, entry.name, "none", None, 0, None, None)})
    assert [(c.tuner, c.study_seed) for c in contenders] == [("optuna", 0), ("optuna", 1), ("random", 0),
                                                             ("random", 1), ("none", 0)]
    refit = contenders[-1]
    assert refit.defaults_for == ("optuna", "random") and [f.seed for f in refit.finals] == [1], \
        "a refit done before is not planned again"


def test_a_final_identical_to_another_tuners_is_recorded_from_it_not_retrained(setting, capsys) -> None:
    class KeepsDefaults(FakeStudy):
        def best(self) -> dict[str, Any]:
            return {"shrink": 0.0}

    class ChangesDefaults(FakeStudy):
        pass

    config, split = setting
    config = type(config)(**{**config.__dict__, "tuners": ("optuna", "random", "keras-tuner")})
    events: list = []
    contenders = plan(config, [split], [registry.get("nearest-centroid")], set())
    assert [c.tuner for c in contenders] == ["optuna", "random", "keras-tuner", "none"]
    contenders[0].study, contenders[1].study = KeepsDefaults(2, events), KeepsDefaults(2, events)
    contenders[2].study = ChangesDefaults(2, events)
    executor, recorder = FakeExecutor(ok), FakeRecorder(events)
    assert Coordinator(config, contenders, executor, recorder, {}).run() == 0
    trained = [(j.tuner, j.seed, j.params) for j in executor.jobs if j.is_final]
    assert trained == [("optuna", 0, {"shrink": 0.0}), ("optuna", 1, {"shrink": 0.0}),
                       ("keras-tuner", 0, {"shrink": 0.2}), ("keras-tuner", 1, {"shrink": 0.2})], \
        "random's finals and the defaults refit train what optuna's did: copied, not run"
    finals = [r for r in recorder.rows if r["trial"] is None]
    copied = [r["tuning"].get("final_copied_from") for r in finals]
    assert copied == [None, None, "optuna", "optuna", None, None, "optuna", "optuna"]
    assert [r["tuning"]["defaults_refit_for"] for r in finals[-2:]] == [["keras-tuner"]] * 2
    assert all(r["status"] == "ok" and r["test_accuracy"] == 0.8 for r in finals)
    assert "the same final as optuna's, recorded again, not retrained" in capsys.readouterr().err


def test_a_final_waits_for_its_identical_twin_while_that_one_trains(setting) -> None:
    class TwoSlots(FakeExecutor):
        slots = 2

    config, split = setting
    config = type(config)(**{**config.__dict__, "tuners": ("none",), "seeds": 1})
    entry = registry.get("nearest-centroid")
    first, = plan(config, [split], [entry], set())
    twin, = plan(config, [split], [entry], set())
    twin.tuner = "optuna"
    executor, recorder = TwoSlots(ok), FakeRecorder([])
    assert Coordinator(config, [first, twin], executor, recorder, {}).run() == 0
    assert [j.tuner for j in executor.jobs] == ["none"], "the twin waited, then copied"
    assert [r["tuning"].get("final_copied_from") for r in recorder.rows] == [None, "none"]


def test_extra_finals_follow_the_choice_and_a_twin_of_theirs_is_copied(setting, capsys) -> None:
    """Trial 2 is chosen (96% on validation, 5 fit CPU-s); trial 0, the defaults, is within one
    standard error (2 points on 100 images) at 3 CPU-s: its finals follow the chosen ones, with
    their roles, and the defaults refit (the same parameters) copies them instead of training."""
    config, split = setting
    config = type(config)(**{**config.__dict__, "cheap_finals": True, "front_finals": 3})
    scored = {0: (0.95, 3.0), 1: (0.99, 0.5), 2: (0.96, 5.0)}

    def outcome(job: Job) -> TaskResult:
        if job.is_final:
            return ok(job)
        accuracy, cpu = scored[job.trial]
        return TaskResult("pruned" if job.trial == 1 else "ok", {"val_accuracy": accuracy, "fit_cpu_s": cpu})

    capsys.readouterr()
    code, events, executor, recorder = coordinate((config, split), outcome)
    assert code == 0
    finals = [j.label.split(" ", 3)[-1] for j in executor.jobs if j.is_final]
    assert finals == ["final seed 0", "final seed 1", "final seed 0 refitting trial 0",
                      "final seed 1 refitting trial 0"], "the defaults refit's finals are not trained"
    rows = [r for r in recorder.rows if r["trial"] is None]
    assert [(r["tuning"].get("tuner"), r["refit_trial"]) for r in rows] == [
        ("fake", None), ("fake", None), ("fake", 0), ("fake", 0), ("none", None), ("none", None)]
    assert rows[0]["tuning"]["final_roles"] == ["chosen", "front"] and rows[0]["params"] == {"shrink": 0.2}
    extra = rows[2]["tuning"]
    assert (extra["final_roles"], extra["refit_val_accuracy"], extra["refit_cost"]) == (
        ["one-se-cheapest", "front"], 0.95, 3.0)
    assert rows[2]["params"] == {"shrink": 0.0}
    assert [r["tuning"].get("final_copied_from") for r in rows[4:]] == ["optuna", "optuna"]
    err = capsys.readouterr().err
    assert "extra finals refit trial 0 (one-se-cheapest, front)" in err
    done, total = last_progress(err)
    assert done == total == 3 + 2 + 2 + 2, "3 trials, 2 finals, 2 extra finals, 2 refits recorded"
