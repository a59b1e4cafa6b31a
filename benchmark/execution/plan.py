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
``--no-refit-defaults`` leaves it out. Those rules are :mod:`.policy`'s; a contender's phases,
:mod:`.contender`'s.

Besides its choice, a study's finals refit other configurations of it: the cheapest within one
standard error of the best and points of its Pareto front (:mod:`.policy`), known once the study
is complete; their finals are planned then, on the whole-part seeds, less those already recorded.

With ``--train-sizes`` every final seed also has finals on nested stratified subsets of the training
part (:mod:`benchmark.data.train_sizes`), with the same parameters: the learning curves. They follow
the whole-part finals, smallest size first. A model whose fit ignores the seed has one whole-part
final, but a subset final per seed, since the seed draws the subset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from digitbench.benchmark.config import RunConfig
from digitbench.benchmark.data import train_sizes
from digitbench.benchmark.data.datasets import Split
from digitbench.benchmark.execution.contender import Contender, FinalJob
from digitbench.benchmark.execution.contender import study_name as study_name  # re-exported
from digitbench.benchmark.execution.jobs import Job, Kind, TaskResult
from digitbench.benchmark.execution.policy import defaults_refit_for
from digitbench.benchmark.execution.tasks import run_final
from digitbench.benchmark.settings import SETTINGS
from digitbench.benchmark.store import JobKey
from digitbench.common.errors import InputError, message_line
from digitbench.models.registry import Entry


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


def plan(config: RunConfig, splits: list[Split], entries: list[Entry], done: set[JobKey],
         final_task: Callable[..., TaskResult] = run_final) -> list[Contender]:
    """Every contender, in the order they run, with the final seeds not yet done; ``final_task``
    is what their finals run (``submit``: :func:`~.tasks.run_submission`)."""
    contenders = []
    refit_for = defaults_refit_for(config.tuners, config.refit_defaults)
    for index, split in enumerate(splits):
        for entry in entries:
            def contender(tuner: str, study_seed: int = 0, defaults_for: tuple[str, ...] = (),
                          split: Split = split, entry: Entry = entry, index: int = index) -> Contender:
                finals = [] if study_seed else [f for f in final_jobs(entry, config, split)
                                                if (split.dataset, entry.name, tuner, None, *f) not in done]
                extra = tuner != "none" and not study_seed and final_task is run_final
                return Contender(split, f"split{index}", entry, tuner, pinned(entry, config), finals,
                                 study_seed=study_seed, final_task=final_task, defaults_for=defaults_for,
                                 extra_seeds=tuple(final_seeds(entry, config)) if extra else (),
                                 extras_done=frozenset(FinalJob(*key[4:]) for key in done if extra
                                                       and key[:4] == (split.dataset, entry.name, tuner, None)
                                                       and key[6] is not None))

            for tuner in config.tuners:
                contenders.append(contender(tuner))
                if tuner != "none":
                    contenders += [contender(tuner, k) for k in range(1, config.study_seeds)]
            if refit_for:
                contenders.append(contender("none", defaults_for=refit_for))
    return contenders


def describe(contenders: list[Contender], trials: int) -> str:
    """The plan's line about what it has to do: ``trials`` tuning trials at most, and its finals."""
    refits = sum(len(c.finals) for c in contenders if c.is_defaults_refit)
    finals = sum(len(c.finals) for c in contenders) - refits
    subsets = sum(f.train_size is not None for c in contenders if not c.is_defaults_refit
                  for f in c.finals)
    return (f"to do: at most {trials} tuning trials, {finals} finals"
            + (f" ({subsets} of them on training subsets)" if subsets else "")
            + (f" and {refits} defaults refits (run only where tuning changes the defaults)"
               if refits else "")
            + ("; each study's extra finals (the cheapest within one standard error, front points) "
               "are counted once it has chosen" if any(c.extra_seeds for c in contenders) else ""))


def make_job(config: RunConfig, c: Contender, params: dict[str, Any], final: FinalJob | None = None,
             trial: int | None = None, *, test_on: tuple[str, ...] = (), corruptions: tuple[str, ...] = (),
             run_id: str | None = None) -> Job:
    """Trial ``trial`` of ``c``'s study, or its final ``final``, training ``params`` with the run's
    settings; a final is also tested on the ``test_on`` datasets and the ``corruptions`` (their
    shared names), and a model file it saves records ``run_id``."""
    is_final, epochs = final is not None, c.entry.cls.trains_in_epochs
    train_size = final.train_size if final is not None else None
    return Job(dataset=c.split.dataset, model=c.entry.name, tuner=c.tuner,
               kind=Kind.FINAL if is_final else Kind.TRIAL, trial=trial,
               seed=final.seed if final is not None else c.study_seed, train_size=train_size,
               refit_trial=final.refit_trial if final is not None else None,
               params=params, epochs=params.get("epochs") if epochs else None,
               **{s.name: getattr(config, s.name) for s in SETTINGS if s.job},  # as they are
               cv=c.study.cv if c.study is not None else 1,  # what depends on the job, below
               save_model=config.save_models and is_final,
               onnx=config.onnx and is_final and train_size is None,  # subsets: not exported
               target=config.target if is_final and epochs else None,
               stop_at_target=config.stop_at_target and is_final and bool(epochs),
               test_on=test_on if is_final else (), corruptions=corruptions if is_final else (),
               extras={"run_id": run_id})


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
