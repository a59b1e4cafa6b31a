"""One study on its own, between the coordinator and its tuner: what it asks, when it stops asking
(trials, CPU budget, failures in a row), when it is complete, what a stop tells the tuner, what it
records of its settings, and which trial the finals refit. A fake driver stands in for the tuner
where the tool adds nothing; Optuna itself where its store is what is checked. Nothing is trained."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import optuna
import pytest

from digitbench.benchmark.config import build_config
from digitbench.benchmark.data.datasets import Split, load_split
from digitbench.benchmark.tuning import study as study_module
from digitbench.benchmark.tuning.driver import StudySpec, TunerDriver
from digitbench.benchmark.tuning.study import MAX_FAILURES_IN_A_ROW, Study
from digitbench.benchmark.tuning.trial import Recorded
from digitbench.models import registry


class FakeDriver(TunerDriver):
    """Asks trials numbered on from those already recorded, with ``shrink`` 0.5 (the search space is
    not run), until told to ``hold`` (nothing to start until a running trial ends, as Hyperband
    between brackets)."""

    from_defaults: ClassVar[bool] = True
    opened: ClassVar[list[FakeDriver]] = []

    def __init__(self, spec: StudySpec) -> None:
        self.spec, self.next, self.hold = spec, 0, False
        self.asked: list[int] = []
        self.told: list[tuple[int, str, float | None]] = []

    @classmethod
    def describe(cls, spec: StudySpec) -> dict[str, Any]:
        return {"sampler": f"{spec.tuner} tool", "oracle": f"seed {spec.seed}"}

    @classmethod
    def starts_from_defaults(cls, spec: StudySpec) -> bool:
        return cls.from_defaults

    @classmethod
    def open(cls, spec: StudySpec) -> FakeDriver:
        driver = cls(spec)
        cls.opened.append(driver)
        return driver

    def settle(self, recorded: Recorded) -> None:
        while recorded(self.next) is not None:  # its store holds the trials of earlier runs
            self.next += 1

    def ask(self) -> tuple[int, dict[str, Any]] | None:
        if self.hold:
            return None
        self.next += 1
        self.asked.append(self.next - 1)
        return self.next - 1, {"shrink": 0.5}

    def report(self, number: int, epoch: int, value: float) -> bool:
        return False

    def tell(self, number: int, status: str, value: float | None) -> None:
        self.told.append((number, status, value))

    def running(self) -> list[int]:
        return [n for n in self.asked if n not in {t[0] for t in self.told}]

    def finished(self) -> int:
        return sum(status != "error" for _, status, _ in self.told)


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory, tiny_idx: Path) -> Split:
    """600 training images (540 training, 60 validation) and 200 test images."""
    return load_split(f"idx:{tiny_idx}", cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeDriver]:
    """Every study opened in the test is a FakeDriver (which starts from the defaults)."""
    monkeypatch.setattr(study_module, "driver_class", lambda tuner: FakeDriver)
    monkeypatch.setattr(FakeDriver, "opened", [])
    monkeypatch.setattr(FakeDriver, "from_defaults", True)
    return FakeDriver


@pytest.fixture()
def models(plugin_path: Path) -> None:
    registry.load_model_path("tinyplugin:NearestCentroid")
    registry.load_model_path("tinyplugin:EpochModel")


def make_study(tmp_path: Path, split: Split, *, model: str = "nearest-centroid", tuner: str = "fake",
               pinned: dict[str, Any] | None = None, records: dict[int, dict[str, Any]] | None = None,
               seed: int = 0, **settings: Any) -> Study:
    config = build_config({"datasets": split.dataset, "models": model, "out": tmp_path / "run",
                           "storage": f"sqlite:///{tmp_path / 'optuna.db'}", **settings})
    return Study(config, split, registry.get(model), tuner, pinned or {}, records or {},
                 f"study-of-{model}", seed)


def row(status: str = "ok", val: float | None = 0.8, cpu: float = 1.0) -> dict[str, Any]:
    """A trial's row as the store gives it back: text cells but params (parsed), CPU split between fit
    and predict."""
    return {"status": status, "val_accuracy": "" if val is None else str(val),
            "fit_cpu_s": str(cpu * 0.75), "predict_cpu_s": str(cpu * 0.25), "params": {"shrink": 0.5}}


def recorded(*rows: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {n: study_module.record_of(r) for n, r in enumerate(rows)}


def asked(study: Study) -> list[int]:
    """The numbers of the trials the study asks until it asks nothing more (at most 60)."""
    numbers = []
    while len(numbers) < 60 and (trial := study.ask()) is not None:
        numbers.append(trial[0])
    return numbers


# -- what it asks ---------------------------------------------------------------------------------

def test_ask_gives_the_full_parameters_defaults_tuned_and_pinned(tmp_path: Path, split: Split,
                                                                  models: None) -> None:
    """With Optuna: trial 0 is the model's defaults, later trials tuned values; every trial has every
    parameter of the model, and the pinned ones are never handed to the tuner."""
    study = make_study(tmp_path, split, model="epoch-model", tuner="optuna",
                       pinned={"epochs": 3, "seconds_per_epoch": 0.0})
    study.open()
    defaults = registry.get("epoch-model").defaults()
    number, first = study.ask()
    assert (number, first) == (0, {**defaults, "epochs": 3, "seconds_per_epoch": 0.0})
    number, second = study.ask()
    assert number == 1 and set(second) == set(defaults)
    assert second["epochs"] == 3 and second["seconds_per_epoch"] == 0.0 and 0 <= second["quality"] <= 1
    [trial] = [t for t in study.driver.study.trials if t.number == 1]
    assert set(trial.params) == {"quality"}, "the pinned epochs are no dimension of the tuner's"


def test_the_driver_is_given_the_defaults_inside_the_space_and_the_most_epochs(
        tmp_path: Path, split: Split, models: None, fake: type[FakeDriver]) -> None:
    free = make_study(tmp_path, split, model="epoch-model", seed=4, trials=7)
    assert (free.spec.first_trial, free.spec.max_epochs) == ({"quality": 0.5, "epochs": 6}, 6)
    assert (free.spec.seed, free.spec.max_trials, free.spec.name) == (4, 7, "study-of-epoch-model")
    pinned = make_study(tmp_path, split, model="epoch-model", pinned={"epochs": 3})
    assert (pinned.spec.first_trial, pinned.spec.max_epochs) == ({"quality": 0.5}, 3)
    assert make_study(tmp_path, split).spec.max_epochs is None, "a model that trains in one go"


# -- when it stops asking ---------------------------------------------------------------------------

def test_finished_and_running_trials_count_toward_the_trials_and_failed_ones_do_not(
        tmp_path: Path, split: Split, models: None, fake: type[FakeDriver]) -> None:
    study = make_study(tmp_path, split, trials=4, records=recorded(row("ok"), row("pruned")))
    assert study.ask() is None and not study.complete, "not opened yet"
    study.open()
    assert asked(study) == [2, 3], "2 finished (ok, pruned) before + 2 running = 4"
    study.record(2, row("error", None))
    assert asked(study) == [4], "a failed trial is replaced"
    study.record(3, row("ok"))
    study.record(4, row("pruned", 0.3))
    assert study.ask() is None and study.finished == 4 and study.complete


def test_the_cpu_budget_counts_running_trials_at_the_mean_cpu_of_the_recorded_ones(
        tmp_path: Path, split: Split, models: None, fake: type[FakeDriver]) -> None:
    """6 CPU-s spent in two trials, 10 allowed: one after the other, a third trial (9) and a fourth
    (12) would start; side by side, so do they, and no fifth."""
    study = make_study(tmp_path, split, trials=20, budget=10,
                       records=recorded(row(cpu=3.0), row(cpu=3.0)))
    study.open()
    assert asked(study) == [2, 3]
    assert not study.out_of_budget() and study.out_of_budget(running=2)
    study.record(2, row(cpu=3.0))
    assert study.ask() is None and not study.complete, "9 spent + one running at 3: over"
    study.record(3, row(cpu=3.0))
    assert study.ask() is None and study.complete and study.out_of_budget()
    assert study.summary().stopped_by == "budget"


@pytest.mark.parametrize("failures", [MAX_FAILURES_IN_A_ROW - 1, MAX_FAILURES_IN_A_ROW])
def test_failures_in_a_row_end_a_study(tmp_path: Path, split: Split, models: None,
                                       fake: type[FakeDriver], failures: int) -> None:
    """Ten failed trials in a row end a study; an earlier success does not save it, and fewer than
    ten let it go on. A success after failures starts the count again."""
    rows = [row("ok"), *[row("error", None)] * failures]
    study = make_study(tmp_path, split, trials=50, records=recorded(*rows))
    study.open()
    ended = failures == MAX_FAILURES_IN_A_ROW
    assert (study.ask() is None) == ended and study.complete == ended
    if ended:
        assert study.summary().stopped_by == "10 failures in a row"
    if not ended:
        study.record(len(rows), row("error", None))
        assert study.ask() is None and study.complete, "the tenth failure in a row"
        again = make_study(tmp_path, split, trials=50, records=recorded(*rows, row("error", None), row("ok")))
        again.open()
        assert again.ask() is not None, "a success starts the count again"


def test_a_study_is_complete_only_when_nothing_of_it_runs(tmp_path: Path, split: Split, models: None,
                                                          fake: type[FakeDriver]) -> None:
    """Complete: the study asks nothing more (its trials, or the tuner holds) and no trial runs."""
    study = make_study(tmp_path, split, trials=2)
    study.open()
    assert asked(study) == [0, 1] and not study.complete
    study.record(0, row())
    assert not study.complete, "trial 1 still runs"
    study.record(1, row())
    assert study.complete

    held = make_study(tmp_path, split, trials=5)
    held.open()
    assert held.ask()[0] == 0
    held.driver.hold = True
    assert held.ask() is None and not held.complete, "the tuner waits for trial 0"
    held.record(0, row())
    assert not held.complete, "trial 0 ended: the tuner may have something to start now"
    assert held.ask() is None and held.complete, "it has not, and nothing runs"


def test_abandon_tells_the_tuner_the_running_trials_failed(tmp_path: Path, split: Split,
                                                           models: None) -> None:
    """With Optuna: a stop leaves no trial RUNNING in its store, and the abandoned trials do not
    count toward the trials of a resumed run."""
    make_study(tmp_path, split, tuner="optuna").abandon()  # not opened: nothing to tell
    study = make_study(tmp_path, split, tuner="optuna", trials=3)
    study.open()
    assert asked(study) == [0, 1, 2]
    study.record(0, row())
    study.abandon()
    assert study.driver.running() == []
    states = {t.number: t.state.name for t in study.driver.study.trials}
    assert states == {0: "COMPLETE", 1: "FAIL", 2: "FAIL"}
    resumed = make_study(tmp_path, split, tuner="optuna", trials=3, records={0: study.records[0]})
    resumed.open()
    assert asked(resumed) == [3, 4]


# -- what it records ---------------------------------------------------------------------------------

@pytest.mark.parametrize("from_defaults", [True, False])
def test_settings_carry_the_drivers_description_and_the_first_trial_only_from_defaults(
        tmp_path: Path, split: Split, models: None, fake: type[FakeDriver], from_defaults: bool) -> None:
    fake.from_defaults = from_defaults
    study = make_study(tmp_path, split, trials=7, budget=12.5, seed=2)
    assert study.starts_from_defaults is from_defaults
    assert study.settings.as_json() == {
        "tuner": "fake", "trials": 7, "budget_cpu_s": 12.5,
        "scoring": "5-fold cross-validation on the training part", "tune_images": 480, "val_images": 120,
        "scored_images": 600, "study_seed": 2, "sampler": "fake tool", "oracle": "seed 2",
        **({"first_trial": "defaults"} if from_defaults else {})}
    epochs = make_study(tmp_path, split, model="epoch-model", tune_subsample=300)
    assert (epochs.settings.scoring, epochs.settings.tune_images, epochs.settings.val_images) \
        == ("the validation part", 300, 60), "a model with epochs is scored on the validation part"


def test_the_summary_adds_what_was_used_and_the_choice(tmp_path: Path, split: Split, models: None,
                                                       fake: type[FakeDriver]) -> None:
    records = recorded(row("ok", 0.9, cpu=1.0), row("pruned", 0.5, cpu=0.5), row("error", None, cpu=0.25),
                       row("ok", 0.95, cpu=2.0))
    study = make_study(tmp_path, split, trials=3, records=records)  # 3 finished: ok and pruned
    assert study.summary().as_json() == {
        **study.settings.as_json(), "trials_run": 4, "pruned": 1, "failed": 1, "cpu_s_used": 3.75,
        "stopped_by": "trials", "chosen_trial": 3,
        "chosen_because": "best trial 3: beats the defaults by 5.00 points, more than one standard "
                          "error (1.22)",  # sqrt(0.9 * 0.1 / 600): all 600 images are scored
        "chosen_val_accuracy": 0.95, "best_val_accuracy": 0.95}
    assert study.best() == {"shrink": 0.5}
    nothing = make_study(tmp_path, split, records=recorded(row("error", None), row("pruned", 0.4)))
    assert nothing.summary().chosen_trial is None and nothing.summary().trials_run == 2
    with pytest.raises(RuntimeError, match="tuning with fake finished no trial, so there is nothing"):
        nothing.best()


def _study_with(tmp_path: Path, split: Split, scores: dict[int, float], scored: int) -> Study:
    """A study holding only ok trials with these validation accuracies, scored on ``scored``
    images (the n of the standard error)."""
    study = make_study(tmp_path, split, records={
        n: {"status": "ok", "val_accuracy": v, "cpu_s": 1.0, "params": {"n": n}} for n, v in scores.items()})
    study.scored_images = scored
    return study


def test_defaults_are_kept_unless_beaten_by_more_than_one_standard_error(
        tmp_path: Path, split: Split, models: None, fake: type[FakeDriver]) -> None:
    # p = 0.9775 over 400 images: se = sqrt(0.9775 * 0.0225 / 400) = 0.007416 (0.74 points)
    number, why = _study_with(tmp_path, split, {0: 0.9775, 1: 0.97, 2: 0.98}, 400).choice()
    assert number == 0 and "within one standard error (0.74)" in why and "only 0.25 points" in why
    number, why = _study_with(tmp_path, split, {0: 0.9775, 1: 0.99}, 400).choice()
    assert number == 1 and "by 1.25 points, more than one standard error (0.74)" in why
    # with 4,000 scored images one standard error is 0.23 points: the same 0.25-point gain counts
    number, _ = _study_with(tmp_path, split, {0: 0.9775, 2: 0.98}, 4000).choice()
    assert number == 2
    # a tuner whose first trial is not the defaults (keras-tuner's Hyperband): plain best, the
    # earlier trial on a tie
    fake.from_defaults = False
    assert _study_with(tmp_path, split, {0: 0.9, 1: 0.95, 2: 0.95}, 400).choice()[0] == 1


def test_the_optuna_driver_starts_from_the_defaults_and_says_its_sampler(
        tmp_path: Path, split: Split, models: None) -> None:
    """What Optuna studies record: tuner random is Optuna's random sampler whatever --sampler says."""
    tpe = make_study(tmp_path, split, tuner="optuna", pruner="hyperband")
    random = make_study(tmp_path, split, tuner="random", sampler="tpe")
    assert (tpe.settings.sampler, tpe.settings.pruner, tpe.settings.first_trial) == \
        ("tpe", "hyperband", "defaults")
    assert (random.settings.sampler, random.settings.first_trial) == ("random", "defaults")
    random.open()
    assert isinstance(random.driver.study.sampler, optuna.samplers.RandomSampler)
