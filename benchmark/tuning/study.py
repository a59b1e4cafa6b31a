"""One tuning study: a (dataset, model, tuner) triple, its trial function, budget and best parameters.

Trials train on the training part (or a stated stratified subsample of it) and are scored on the
validation part, or, for models that train in one go, by k-fold cross-validation over the whole
training part; the test set is never touched. Every trial is a row of results.csv, and a trial
number already there is never trained again, which makes a killed study resumable.
"""

from __future__ import annotations

import gc
import json
import math
import traceback
import warnings
from typing import Any

import numpy as np

from benchmark.data.datasets import Split
from benchmark.execution.context import History, RunContext, create, one_line, one_line_each
from benchmark.execution.timing import measure
from benchmark.store import unique_slug
from benchmark.tuning.space import Choice, Int, PinnedSpace, Space, dimensions
from benchmark.tuning.trial import TrialFailed, TrialPruned
from models.base import Digits, ReportCallback
from models.errors import InputError
from models.registry import Entry


def subsample(digits: Digits, size: int | None, seed: int = 0) -> Digits:
    """A stratified subsample of ``size`` images (all of them when size is None or larger)."""
    if size is None or size >= len(digits):
        return digits
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(digits)), train_size=size, stratify=digits.labels,
                               random_state=seed)
    keep = np.sort(keep)
    return Digits(digits.images[keep], digits.labels[keep])


class Study:
    TRIAL_SEED = 0  # every trial trains with this seed; finals use seeds 0..N-1

    def __init__(self, ctx: RunContext, split: Split, entry: Entry, tuner: str) -> None:
        self.ctx, self.split, self.entry, self.tuner = ctx, split, entry, tuner
        config = ctx.config
        self.pinned = ctx.pinned(entry)
        self.max_epochs = self._max_epochs()
        self.folds = self._folds(config.cv if self.max_epochs is None else 1)
        self.oracle = config.oracle
        if tuner == "keras-tuner" and self.oracle == "hyperband" and self.max_epochs is None:
            self.oracle = "bayesian"  # Hyperband allocates epochs; this model has none
        self.settings = {
            "tuner": tuner, "trials": config.trials, "budget_cpu_s": config.budget,
            "scoring": (f"{len(self.folds)}-fold cross-validation on the training part"
                        if len(self.folds) > 1 else "the validation part"),
            "tune_images": len(self.folds[0][0]), "val_images": len(self.folds[0][1]),
            "trial_seed": self.TRIAL_SEED,
            **({"sampler": config.sampler, "pruner": config.pruner, "first_trial": "defaults"}
               if tuner == "optuna" else {}),
            **({"oracle": self.oracle} if tuner == "keras-tuner" else {}),
        }
        self.previous: dict[int, dict[str, Any]] = self._recorded_trials()

    @property
    def name(self) -> str:
        return f"{unique_slug(self.split.dataset)}__{self.entry.name}"

    def _folds(self, k: int) -> list[tuple[Digits, Digits]]:
        """(train, validation) pairs a trial is scored on: the validation part (iterative models,
        which prune on it epoch by epoch), or k stratified folds of the whole training part
        (models that train in one go: every training image is scored, so choosing between close
        settings is far less noisy)."""
        if k <= 1:
            return [(subsample(self.split.train, self.ctx.config.tune_subsample), self.split.val)]
        from sklearn.model_selection import StratifiedKFold

        whole = subsample(Digits(np.concatenate([self.split.train.images, self.split.val.images]),
                                 np.concatenate([self.split.train.labels, self.split.val.labels])),
                          self.ctx.config.tune_subsample)
        folds = StratifiedKFold(k, shuffle=True, random_state=self.TRIAL_SEED)
        return [(Digits(whole.images[a], whole.labels[a]), Digits(whole.images[b], whole.labels[b]))
                for a, b in folds.split(whole.images, whole.labels)]

    def _max_epochs(self) -> int | None:
        if "epochs" in self.pinned:
            return int(self.pinned["epochs"])
        epochs = dimensions(self.entry.cls).get("epochs")
        return epochs.high if isinstance(epochs, Int) else None

    def _recorded_trials(self) -> dict[int, dict[str, Any]]:
        """Trial rows of this study already in results.csv (the last row of each number)."""
        if not self.ctx.store.exists():
            return {}
        frame = self.ctx.store.load()
        mine = frame[(frame["dataset"] == self.split.dataset) & (frame["model"] == self.entry.name)
                     & (frame["tuner"] == self.tuner) & (frame["trial"] != "final")]
        return {int(r["trial"]): _record(r) for r in mine.to_dict("records")}

    # -- what the drivers call ----------------------------------------------------------------

    def defaults_in_space(self) -> dict[str, Any]:
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

    def search_space(self, space: Space) -> dict[str, Any]:
        return self.entry.cls.search_space(PinnedSpace(space, self.pinned))

    @property
    def cpu_used(self) -> float:
        return sum(t["cpu_s"] for t in self.previous.values())

    def out_of_budget(self, running: int = 0) -> bool:
        """Whether the budget is spent, counting ``running`` trials of other workers at the mean
        CPU of a finished trial: workers together stop where one process would."""
        budget = self.ctx.config.budget
        if budget is None:
            return False
        expected = running * self.cpu_used / len(self.previous) if self.previous else 0.0
        return self.cpu_used + expected >= budget

    def recorded(self, number: int) -> tuple[str, float | None] | None:
        trial = self.previous.get(number)
        return None if trial is None else (trial["status"], trial["val_accuracy"])

    def evaluate(self, number: int, params: dict[str, Any], report: ReportCallback | None) -> float:
        """Train trial ``number`` on the tuning part, score it on validation, append its row."""
        if number in self.previous:
            return _replay(self.previous[number])
        full = {**self.entry.defaults(), **params, **self.pinned}
        row = self.ctx.row(self.split, self.entry, tuner=self.tuner, trial=str(number),
                           seed=self.TRIAL_SEED, params=full, tuning=self.settings)
        row.update(n_train=len(self.folds[0][0]), n_val=len(self.folds[0][1]),
                   n_test=len(self.split.test))
        progress = self.ctx.progress
        progress.job_started(f"{self.split.dataset} {self.entry.name} {self.tuner} trial {number}",
                             full.get("epochs") if isinstance(full.get("epochs"), int) else None)

        history = History()

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            history.add(metrics)
            progress.epoch(epoch, full.get("epochs"), metrics)
            if report is not None:
                report(epoch, metrics)

        fit_cpu = fit_wall = predict_cpu = 0.0
        correct = scored = 0
        model = None
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:  # recorded in the row, not printed
                warnings.simplefilter("always")
                for train, val in self.folds:
                    model = create(self.entry, full)
                    try:
                        with measure() as fit_time:
                            model.fit(train, val, seed=self.TRIAL_SEED, report=on_epoch)
                    finally:  # counted even when a pruning report ends the fit
                        fit_cpu, fit_wall = fit_cpu + fit_time.cpu_s, fit_wall + fit_time.wall_s
                    with measure() as predict_time:
                        predicted = np.asarray(model.predict(val.images))
                    predict_cpu += predict_time.cpu_s
                    correct, scored = correct + int(np.sum(predicted == val.labels)), scored + len(val)
            row.update(status="ok", val_accuracy=correct / scored)
        except TrialPruned as pruned:
            row.update(status="pruned", val_accuracy=pruned.value)
        except Exception as exc:  # a failing trial is a row, not the end of the study
            row.update(status="error", error=one_line(exc))
            with open(self.ctx.store.run_dir / "errors.log", "a", encoding="utf-8") as log:
                log.write(f"--- {self.name} {self.tuner} trial {number}\n{traceback.format_exc()}")
        finally:
            del model
            gc.collect()
        row.update(fit_cpu_s=round(fit_cpu, 3), fit_wall_s=round(fit_wall, 3),
                   predict_cpu_s=round(predict_cpu, 4), history=history.json(),
                   warnings=one_line_each(caught))
        self.previous[number] = _record(row)  # first: a stop signal may come as the append ends
        self.ctx.append(row)
        progress.job_finished(_trial_summary(self.entry.name, self.tuner, number, row, self.cpu_used))
        return _replay(self.previous[number])

    # -- running and summing up ---------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Tune to the asked number of trials (or the budget); returns the best full parameters."""
        config = self.ctx.config
        if self.tuner == "optuna":
            from benchmark.tuning.optuna_driver import tune_optuna

            tune_optuna(search_space=self.search_space, evaluate=self.evaluate,
                        recorded=self.recorded, study_name=self.name, storage=config.storage_url,
                        sampler=config.sampler, pruner=config.pruner, max_trials=config.trials,
                        out_of_budget=self.out_of_budget, seed=self.TRIAL_SEED,
                        max_epochs=self.max_epochs, first_trial=self.defaults_in_space())
        else:
            from benchmark.tuning.kerastuner_driver import tune_kerastuner

            tune_kerastuner(search_space=self.search_space, evaluate=self.evaluate,
                            oracle=self.oracle, max_trials=config.trials,
                            out_of_budget=self.out_of_budget,
                            directory=self.ctx.store.run_dir / "keras-tuner",
                            project=f"{self.name}__{self.oracle}",
                            seed=self.TRIAL_SEED, max_epochs=self.max_epochs)
        return self.best()[1]

    def run_shared(self, storage: Any) -> bool:
        """This worker's share of an Optuna study that other workers tune too (see
        ``tune_optuna.tune_shared``); True when the study is complete. Budget and choice read every
        worker's trials from results.csv, which must therefore be one file all workers share."""
        from benchmark.tuning.optuna_driver import tune_shared

        config = self.ctx.config

        def out_of_budget(running: int) -> bool:
            if config.budget is None:
                return False
            self.refresh()  # every worker's trials count
            return self.out_of_budget(running)

        finished = tune_shared(search_space=self.search_space, evaluate=self.evaluate,
                               recorded=self.recorded, study_name=self.name, storage=storage,
                               sampler=config.sampler, pruner=config.pruner, max_trials=config.trials,
                               out_of_budget=out_of_budget, max_epochs=self.max_epochs,
                               first_trial=self.defaults_in_space())
        self.refresh()
        missing = sorted((finished or set()) - set(self.previous))
        if missing:
            raise InputError(
                f"{self.ctx.store.path} lacks trial(s) {', '.join(map(str, missing[:5]))} of study "
                f"{self.name}, which the storage holds: every worker must use one shared --out "
                "folder, and a storage belongs to one run folder (--overwrite, or another database)")
        return finished is not None

    def refresh(self) -> None:
        """Re-read the trials of this study from results.csv (other workers append to it too)."""
        self.previous = self._recorded_trials()

    def best(self) -> tuple[int, dict[str, Any]]:
        """(trial number, full parameters) of the trial the finals refit: see :meth:`choice`."""
        number, _ = self.choice()
        return number, self.previous[number]["params"]

    def choice(self) -> tuple[int, str]:
        """The trial to refit, and why.

        The best trial has the highest validation accuracy (the earlier on a tie). When trial 0 is
        the model's defaults (Optuna), they are kept unless the best trial beats them by more than
        one standard error of the validation estimate, sqrt(p(1-p)/n) over the n scored images:
        smaller gains are noise, and refitting them loses as often as it wins on the test set.
        """
        ok = {n: t for n, t in self.previous.items()
              if t["status"] == "ok" and t["val_accuracy"] is not None}
        if not ok:
            raise RuntimeError(f"{self.name}: tuning with {self.tuner} finished no trial")
        best = min(ok, key=lambda n: (-ok[n]["val_accuracy"], n))
        if best == 0 or self.settings.get("first_trial") != "defaults" or 0 not in ok:
            return best, f"best trial {best}"
        gain, p = ok[best]["val_accuracy"] - ok[0]["val_accuracy"], ok[0]["val_accuracy"]
        se = math.sqrt(p * (1 - p) / self.scored_images)
        if gain > se:
            return best, (f"best trial {best}: beats the defaults by {100 * gain:.2f} points, "
                          f"more than one standard error ({100 * se:.2f})")
        return 0, (f"defaults (trial 0) kept: the best trial, {best}, beats them by only "
                   f"{100 * gain:.2f} points, within one standard error ({100 * se:.2f})")

    @property
    def scored_images(self) -> int:
        return sum(len(val) for _, val in self.folds)

    def summary(self) -> dict[str, Any]:
        """Settings plus what was used: the ``tuning`` column of the final rows."""
        statuses = [t["status"] for t in self.previous.values()]
        used = {
            "trials_run": len(statuses), "pruned": statuses.count("pruned"),
            "failed": statuses.count("error"), "cpu_s_used": round(self.cpu_used, 2),
            "stopped_by": "budget" if self.out_of_budget() else "trials",
        }
        try:
            number, why = self.choice()
            used.update(chosen_trial=number, chosen_because=why,
                        chosen_val_accuracy=self.previous[number]["val_accuracy"],
                        best_val_accuracy=max(t["val_accuracy"] for t in self.previous.values()
                                              if t["status"] == "ok" and t["val_accuracy"] is not None))
        except RuntimeError:
            pass
        return {**self.settings, **used}


def _record(row: dict[str, Any]) -> dict[str, Any]:
    """What a study keeps of a trial row: status, validation accuracy, CPU spent, parameters."""
    params = row["params"]
    return {"status": row["status"], "val_accuracy": _number(row.get("val_accuracy")),
            "cpu_s": (_number(row.get("fit_cpu_s")) or 0) + (_number(row.get("predict_cpu_s")) or 0),
            "params": json.loads(params) if isinstance(params, str) else params}


def _replay(trial: dict[str, Any]) -> float:
    """A recorded trial's outcome, as ``evaluate`` reports it to a driver."""
    if trial["status"] == "pruned":
        raise TrialPruned(trial["val_accuracy"])
    if trial["status"] != "ok" or trial["val_accuracy"] is None:
        raise TrialFailed(f"trial failed: {trial['status']}")
    return float(trial["val_accuracy"])


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(number) else number


def _trial_summary(model: str, tuner: str, number: int, row: dict[str, Any], used: float) -> str:
    status, value = row["status"], row.get("val_accuracy")
    shown = f"val {100 * value:.2f}%" if value is not None else row.get("error") or status
    return f"{model} {tuner} trial {number}: {status}, {shown} ({used:.0f} CPU-s used)"
