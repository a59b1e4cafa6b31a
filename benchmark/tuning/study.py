"""One tuning study: a (dataset, model, tuner) triple, its budget, its trials and the parameters the
finals refit.

The coordinator drives it: :meth:`Study.ask` gives the next trial to run (or None: the study has its
trials, the budget is spent, or the tuner has nothing to start until a running trial ends),
:meth:`Study.report` passes an epoch on to the tuner's pruner, :meth:`Study.record` takes a finished
trial's row. The study is complete once it asks nothing more and nothing of it is running. Trials
train on the training part (or a stratified subsample) and are scored on the validation part or by
k-fold cross-validation (:mod:`benchmark.tuning.folds`); the test set is never touched.
"""

from __future__ import annotations

from typing import Any

from digitbench.benchmark.config import RunConfig
from digitbench.benchmark.data.datasets import Split
from digitbench.benchmark.payloads import HOLDOUT_SCORING, StudySummary
from digitbench.benchmark.settings import OBJECTIVE_COSTS
from digitbench.benchmark.store import Status
from digitbench.benchmark.tuning.driver import StudySpec, TunerDriver, driver_class
from digitbench.benchmark.tuning.folds import fold_sizes
from digitbench.benchmark.tuning.front import COST_KEYS, PREDICT, as_number, standard_error
from digitbench.benchmark.tuning.space import Choice, Int, PinnedSpace, Space, dimensions
from digitbench.benchmark.tuning.trial import Outcome, Value
from digitbench.models.registry import Entry

#: This many failed trials in a row end a study early (a model that cannot train with any values).
MAX_FAILURES_IN_A_ROW = 10


class Study:
    """One study. Its ``seed`` seeds the tuner's sampler, the tuning subsample and folds, and every
    trial's training; ``--study-seeds N`` repeats a study with seeds 0..N-1 (the finals refit what
    study 0 chose)."""

    def __init__(self, config: RunConfig, split: Split, entry: Entry, tuner: str, pinned: dict[str, Any],
                 records: dict[int, dict[str, Any]], name: str, seed: int = 0) -> None:
        self.config, self.split, self.entry, self.tuner = config, split, entry, tuner
        self.pinned, self.name, self.seed = pinned, name, seed
        self.records = records  # trial number -> its row's record (see record_of)
        max_epochs = self._max_epochs()
        self.cv = config.cv if max_epochs is None else 1
        tune_images, val_images, self.scored_images = fold_sizes(split, self.cv, config.tune_subsample,
                                                                 seed)
        self.spec = StudySpec(
            tuner=tuner, name=name, search_space=self._search_space, seed=seed,
            max_trials=config.trials, max_epochs=max_epochs, first_trial=self._defaults_in_space(),
            storage=config.storage_url, sampler=config.sampler, pruner=config.pruner,
            oracle=config.oracle, folder=config.run_dir / "keras-tuner", objectives=config.objectives)
        self.driver_class = driver_class(tuner)
        #: Whether trial 0 is the model's defaults, which the finals keep unless clearly beaten.
        self.starts_from_defaults = self.driver_class.starts_from_defaults(self.spec)
        self.settings = StudySummary(
            tuner=tuner, trials=config.trials, budget_cpu_s=config.budget,
            scoring=(f"{self.cv}-fold cross-validation on the training part"
                     if self.cv > 1 else HOLDOUT_SCORING),
            tune_images=tune_images, val_images=val_images, scored_images=self.scored_images,
            study_seed=seed, **self.driver_class.describe(self.spec),
            first_trial="defaults" if self.starts_from_defaults else None)
        self.driver: TunerDriver | None = None
        self.waiting = False  # the tuner had nothing to start until a running trial ends

    def _max_epochs(self) -> int | None:
        """The most epochs a trial trains (pinned, or the top of the declared range); None for a
        model that does not train in epochs."""
        if not self.entry.cls.trains_in_epochs:
            return None
        if "epochs" in self.pinned:
            return int(self.pinned["epochs"])
        epochs = dimensions(self.entry.cls).get("epochs")
        return epochs.high if isinstance(epochs, Int) else int(self.entry.defaults()["epochs"])

    # -- what the coordinator calls -----------------------------------------------------------

    def open(self) -> None:
        """Open (or continue) the tuner's own study, and settle trials a killed run left running."""
        self.driver = self.driver_class.open(self.spec)
        self.driver.settle(self._recorded)

    def ask(self) -> tuple[int, dict[str, Any]] | None:
        """The next trial (number, full parameters), or None when none should start now."""
        if self.driver is None or self._stopped(len(self.driver.running())):
            return None
        asked = self.driver.ask()
        self.waiting = asked is None
        if asked is None:
            return None
        number, params = asked
        return number, {**self.entry.defaults(), **params, **self.pinned}

    @property
    def complete(self) -> bool:
        running = len(self.driver.running()) if self.driver is not None else 0
        return self.driver is not None and not running and (self._stopped(0) or self.waiting)

    def report(self, number: int, epoch: int, value: float) -> bool:
        return self.driver.report(number, epoch, value)

    def record(self, number: int, row: dict[str, Any]) -> None:
        """A trial's row is in the store: remember it and tell the tuner."""
        self.records[number] = record_of(row)
        self.driver.tell(number, row["status"], self._value(self.records[number]))
        self.waiting = False

    def abandon(self) -> None:
        """A stop signal: running trials are failed in the tuner (no row; they do not count)."""
        if self.driver is not None:
            for number in self.driver.running():
                self.driver.tell(number, Status.ERROR, None)

    # -- budget and choice --------------------------------------------------------------------

    @property
    def finished(self) -> int:
        """Trials with a row that completed or were pruned (failed ones do not count)."""
        return sum(r["status"] in (Status.OK, Status.PRUNED) for r in self.records.values())

    def _stopped(self, running: int) -> bool:
        return (self.finished + running >= self.config.trials or self.out_of_budget(running)
                or self._failures_in_a_row() >= MAX_FAILURES_IN_A_ROW)

    def _stopped_by(self) -> str:
        """Why the study asked no more: its budget, its trials, failures in a row, or a tuner with
        nothing left to propose."""
        if self.out_of_budget():
            return "budget"
        if self.finished >= self.config.trials:
            return "trials"
        if self._failures_in_a_row() >= MAX_FAILURES_IN_A_ROW:
            return f"{MAX_FAILURES_IN_A_ROW} failures in a row"
        return "tuner"

    def _failures_in_a_row(self) -> int:
        count = 0
        for number in sorted(self.records, reverse=True):
            if self.records[number]["status"] != Status.ERROR:
                break
            count += 1
        return count

    @property
    def cpu_used(self) -> float:
        return sum(r["cpu_s"] for r in self.records.values())

    def out_of_budget(self, running: int = 0) -> bool:
        """Whether the CPU budget is spent, counting ``running`` trials at the mean CPU of a finished
        trial: trials running side by side stop where one after the other would."""
        budget = self.config.budget
        if budget is None:
            return False
        expected = running * self.cpu_used / len(self.records) if self.records else 0.0
        return self.cpu_used + expected >= budget

    def best(self) -> dict[str, Any]:
        """The full parameters of the trial the finals refit (see :meth:`choice`)."""
        return self.records[self.choice()[0]]["params"]

    def choice(self) -> tuple[int, str]:
        """The trial to refit, and why.

        The best trial has the highest validation accuracy (the earlier on a tie). When trial 0 is
        the model's defaults (Optuna), they are kept unless the best trial beats them by more than
        one standard error of the validation estimate, sqrt(p(1-p)/n) over the n scored images:
        smaller gains are noise, and refitting them loses as often as it wins on the test set.
        """
        ok = {n: r for n, r in self.records.items()
              if r["status"] == Status.OK and r["val_accuracy"] is not None}
        if not ok:
            raise RuntimeError(f"tuning with {self.tuner} finished no trial, so there is nothing to refit")
        best = min(ok, key=lambda n: (-ok[n]["val_accuracy"], n))
        if best == 0 or not self.starts_from_defaults or 0 not in ok:
            return best, f"best trial {best}"
        gain = ok[best]["val_accuracy"] - ok[0]["val_accuracy"]
        se = standard_error(ok[0]["val_accuracy"], self.scored_images)
        if gain > se:
            return best, (f"best trial {best}: beats the defaults by {100 * gain:.2f} points, "
                          f"more than one standard error ({100 * se:.2f})")
        return 0, (f"defaults (trial 0) kept: the best trial, {best}, beats them by only "
                   f"{100 * gain:.2f} points, within one standard error ({100 * se:.2f})")

    def costed(self, cost: str) -> dict[int, dict[str, Any]]:
        """The trials' records, each with its cost on ``cost`` (``--cost``: fit or predict) under
        :data:`~.front.COST_KEYS`' key: its fit CPU-s, or the ms of predict CPU an image it scored."""
        return {n: {**r, COST_KEYS[PREDICT]: self.trial_cost(r, PREDICT)} if cost == PREDICT else r
                for n, r in self.records.items()}

    def trial_cost(self, record: dict[str, Any], cost: str) -> float | None:
        """A trial's cost on ``cost`` (fit or predict): its fit CPU-s, or the ms of predict CPU an
        image it scored (every fold's, under cross-validation); None where not measured."""
        if cost != PREDICT:
            return record.get("fit_cpu_s")
        predict = record.get("predict_cpu_s")
        return None if predict is None else 1000 * predict / self.scored_images

    def best_standard_error(self) -> float | None:
        """One standard error of the best finished trial's validation accuracy, sqrt(p(1-p)/n)
        over the n scored images; None without a finished trial."""
        scored = [r["val_accuracy"] for r in self.records.values()
                  if r["status"] == Status.OK and r["val_accuracy"] is not None]
        return standard_error(max(scored), self.scored_images) if scored else None

    def summary(self) -> StudySummary:
        """Settings plus what was used: the ``tuning`` column of the final rows."""
        statuses = [r["status"] for r in self.records.values()]
        used = self.settings.with_(
            trials_run=len(statuses), pruned=statuses.count(Status.PRUNED),
            failed=statuses.count(Status.ERROR), cpu_s_used=round(self.cpu_used, 2),
            stopped_by=self._stopped_by())
        try:
            number, why = self.choice()
        except RuntimeError:
            return used
        scored = [r["val_accuracy"] for r in self.records.values()
                  if r["status"] == Status.OK and r["val_accuracy"] is not None]
        return used.with_(chosen_trial=number, chosen_because=why,
                          chosen_val_accuracy=self.records[number]["val_accuracy"],
                          best_val_accuracy=max(scored))

    # -- helpers ------------------------------------------------------------------------------

    def _search_space(self, space: Space) -> dict[str, Any]:
        return self.entry.cls.search_space(PinnedSpace(space, self.pinned))

    def _defaults_in_space(self) -> dict[str, Any]:
        """The model's defaults for the tuned dimensions that lie inside their declared range."""
        defaults, chosen = self.entry.defaults(), {}
        for name, dim in dimensions(self.entry.cls).items():
            value = defaults.get(name)
            if name in self.pinned or value is None:
                continue
            inside = value in dim.options if isinstance(dim, Choice) else dim.low <= value <= dim.high
            if inside:
                chosen[name] = value
        return chosen

    def _recorded(self, number: int) -> Outcome | None:
        record = self.records.get(number)
        return None if record is None else (record["status"], self._value(record))

    def _value(self, record: dict[str, Any]) -> Value:
        """What the tuner is told a trial scored: its validation accuracy; with two objectives
        (``--objectives``), it and the trial's cost (None where either is missing)."""
        accuracy = record["val_accuracy"]
        if len(self.config.objectives) == 1 or accuracy is None:
            return accuracy
        cost = self.trial_cost(record, OBJECTIVE_COSTS[self.config.objectives[1]])
        return None if cost is None else (accuracy, cost)


def record_of(row: dict[str, Any]) -> dict[str, Any]:
    """What a study keeps of a trial row: status, validation accuracy, CPU spent (fit and predict,
    and each), parameters."""
    fit, predict = as_number(row.get("fit_cpu_s")), as_number(row.get("predict_cpu_s"))
    return {"status": row["status"], "val_accuracy": as_number(row.get("val_accuracy")),
            "cpu_s": (fit or 0) + (predict or 0), "fit_cpu_s": fit, "predict_cpu_s": predict,
            "params": row["params"]}

