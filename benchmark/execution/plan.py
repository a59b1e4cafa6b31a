"""The plan: a run's settings expanded to its contenders and their jobs.

A contender is one (dataset, model, tuner) study. Its jobs are its tuning trials (none with tuner
"none"; how many, the study decides within the budget) and one final per seed, which refits the
chosen parameters on the whole training part and is evaluated once on the test set. With
``--study-seeds N`` each tuned (dataset, model, tuner) has N contenders, studies seeded 0..N-1, for
the tuning curves' bands; only study 0's contender has finals. A job is done exactly
when its row is in the results store: the plan leaves those out, so a resumed run does the rest.

What tuning bought is measured on the test set: for every tuned model (without tuner "none" in the
run) the plan adds a *defaults refit*, a contender with tuner "none" whose finals refit the defaults
on the same seeds, once the model's tuned contenders have chosen, and only if one of them chose other
parameters than the defaults (where all kept them, the tuned finals are the defaults' already).
``--no-refit-defaults`` leaves it out.

With ``--train-sizes`` every final seed also has finals on nested stratified subsets of the training
part (:mod:`benchmark.data.train_sizes`), with the same parameters: the learning curves. They follow
the whole-part finals, smallest size first. A model whose fit ignores the seed has one whole-part
final, but a subset final per seed, since the seed draws the subset.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from digitbench.benchmark.config import RunConfig
from digitbench.benchmark.data import train_sizes
from digitbench.benchmark.data.datasets import Split
from digitbench.benchmark.execution.jobs import TaskResult
from digitbench.benchmark.execution.tasks import run_final
from digitbench.benchmark.store import JobKey, unique_slug
from digitbench.benchmark.tuning.study import Study
from digitbench.common.errors import InputError, message_line
from digitbench.models.registry import Entry


class FinalJob(NamedTuple):
    """One final of a contender: its seed, and the size of its training subset (None: all of it)."""

    seed: int
    train_size: int | None = None


@dataclass
class Contender:
    split: Split
    share: str                      # the name the executor shares the split under
    entry: Entry
    tuner: str
    pinned: dict[str, Any]          # parameters no tuner may change
    finals: list[FinalJob]          # finals still to run
    study: Study | None = None      # for tuner != "none"
    finals_started: bool = False
    params: dict[str, Any] | None = None  # what the finals refit, once known
    tuning: dict[str, Any] = field(default_factory=dict)  # the final rows' ``tuning`` column
    why: str | None = None          # why there is nothing to refit, when params is None
    study_seed: int = 0             # the study's seed; its trial rows carry it in the seed column
    final_task: Callable[..., TaskResult] = run_final  # what its finals run (submit: run_submission)
    defaults_for: tuple[str, ...] = ()  # a defaults refit: the tuners whose choice decides if it runs

    @property
    def is_defaults_refit(self) -> bool:
        return bool(self.defaults_for)

    @property
    def study_name(self) -> str:
        return study_name(self.split.dataset, self.entry.name, self.tuner, self.study_seed)


def study_name(dataset: str, model: str, tuner: str, seed: int) -> str:
    """The Optuna study (or keras-tuner project) name of one study: ``<dataset>__<model>``, then
    ``__random`` for the random-search baseline and ``__s<k>`` for study seed k > 0."""
    name = f"{unique_slug(dataset)}__{model}"
    return name + ("__random" if tuner == "random" else "") + (f"__s{seed}" if seed else "")


def final_seeds(entry: Entry, config: RunConfig) -> range:
    """The seeds of a model's whole-part finals: 0..N-1, or only 0 for a model whose fit ignores
    the seed."""
    return range(1 if getattr(entry.cls, "seed_invariant", False) else config.seeds)


def final_jobs(entry: Entry, config: RunConfig, split: Split) -> list[FinalJob]:
    """A model's finals on ``split``: the whole-part ones, then the ``--train-sizes`` subsets (each
    size on every seed, smallest first)."""
    whole = [FinalJob(seed) for seed in final_seeds(entry, config)]
    return whole + [FinalJob(seed, size) for size in subset_sizes(config, split)
                    for seed in range(config.seeds)]


def subset_sizes(config: RunConfig, split: Split) -> tuple[int, ...]:
    """The ``--train-sizes`` subset sizes on ``split`` (its training part, the validation part
    included unless finals are timed to a target); checked: a size it cannot take is an InputError."""
    if config.train_sizes is None:
        return ()
    labels = split.train.labels if config.target is not None else \
        np.concatenate([split.train.labels, split.val.labels])
    return train_sizes.resolve(config.train_sizes, labels, f"--train-sizes on {split.dataset}")


def pinned(entry: Entry, config: RunConfig) -> dict[str, Any]:
    """Parameters no tuner may change: the variant's fixed ones, then the user's overrides."""
    defaults = entry.defaults()
    chosen = {k: v for k, v in (config.params or {}).items() if k in defaults}
    if config.epochs is not None and entry.cls.trains_in_epochs:
        chosen["epochs"] = config.epochs
    return {**chosen, **entry.fixed}


def plan(config: RunConfig, splits: list[Split], entries: list[Entry],
         done: set[JobKey]) -> list[Contender]:
    """Every contender, in the order they run, with the final seeds not yet done."""
    contenders = []
    for index, split in enumerate(splits):
        for entry in entries:
            def todo(tuner: str, split: Split = split, entry: Entry = entry) -> list[FinalJob]:
                return [f for f in final_jobs(entry, config, split)
                        if (split.dataset, entry.name, tuner, None, *f) not in done]

            for tuner in config.tuners:
                contenders.append(Contender(split, f"split{index}", entry, tuner, pinned(entry, config),
                                            todo(tuner)))
                if tuner != "none":
                    contenders += [Contender(split, f"split{index}", entry, tuner, pinned(entry, config),
                                             [], study_seed=k) for k in range(1, config.study_seeds)]
            tuned = tuple(t for t in config.tuners if t != "none")
            if tuned and "none" not in config.tuners and config.refit_defaults:
                contenders.append(Contender(split, f"split{index}", entry, "none", pinned(entry, config),
                                            todo("none"), defaults_for=tuned))
    return contenders


def same_params(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two parameter sets train the same model (as they read back from a row's JSON:
    128 and 128.0 alike, a tuple and a list alike)."""
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def check_params(config: RunConfig, entries: list[Entry]) -> None:
    """``--params`` (and ``--epochs``) against what the selected models declare, before any work:
    every name must belong to a selected model, every value must have the type of the model's
    declared dimension (a whole number, a number, one of the options), and each model's own
    :meth:`~models.base.DigitModel.check_params` must accept the parameter set it would train with.
    A value no model can take ends the run with one line naming the flag, the model, the parameter
    and the value."""
    from digitbench.benchmark.tuning.space import Choice, Float, Int, dimensions

    params = config.params or {}
    unused = set(params) - {k for e in entries for k in e.defaults()}
    if unused:
        raise InputError(f"--params: no selected model has parameter(s) {', '.join(sorted(unused))}")
    fixed = {k for k in params if all(k in e.fixed for e in entries if k in e.defaults())}
    if fixed:
        raise InputError(f"--params: {', '.join(sorted(fixed))} fixed by the variant(s) "
                         f"{', '.join(e.name for e in entries if fixed & set(e.fixed))}; choose the "
                         "variant with --models instead")
    for entry in entries:
        chosen = pinned(entry, config)
        declared = dimensions(entry.cls)
        for name, value in chosen.items():
            dim = declared.get(name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if name in entry.fixed or dim is None:  # a variant keeps its own; the model checks the rest
                continue
            if isinstance(dim, Int):
                fits, wanted = isinstance(value, int) and not isinstance(value, bool), "a whole number"
            elif isinstance(dim, Float):
                fits, wanted = number, "a number"
            else:
                assert isinstance(dim, Choice)
                fits, wanted = value in dim.options, "one of " + ", ".join(map(repr, dim.options))
            if not fits:
                raise InputError(f"--params: {name} of {entry.name}: expected {wanted}, got {value!r}")
        try:
            entry.cls.check_params({**entry.defaults(), **chosen})
        except (TypeError, ValueError) as exc:
            raise InputError(f"--params: {entry.name}: {message_line(exc)}") from None
