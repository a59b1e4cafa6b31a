"""The rules of a run's finals: what each contender's finals refit, when a model's defaults are refit
beside its tuned parameters, and which finals are recorded from an identical one instead of trained
again. The coordinator asks and schedules; it decides none of this itself.

- **What the finals refit** (:func:`choose`): what a tuned contender's study chose
  (:meth:`~benchmark.tuning.study.Study.best`), once the study is complete; the model's defaults
  with the pinned parameters for tuner "none". A study that finished no trial leaves nothing to
  refit: its finals are recorded failed, with the reason. A repeated study (``--study-seeds``,
  seed > 0) is for the tuning curves only: it has no finals.
- **Extra finals** (:func:`refits`): besides its choice, a study's finals refit the cheapest
  finished trial within one standard error of the best on validation (unless
  ``--no-cheap-finals``; the cost is ``--cost``: fit CPU-s, or predict ms per image) and up to
  ``--front-finals K`` trials of its Pareto front of validation accuracy against that cost, spread
  along it (:mod:`~benchmark.tuning.front`). Each has the roles it was refit for (``final_roles``
  in its ``tuning`` column: ``chosen``, ``one-se-cheapest``, ``front``, the last for every refit
  trial on the front); a configuration the choice (or an earlier trial) already refits is not
  refit again, its roles go to that one. Extra finals are whole-part finals on the final seeds of a
  study of ``digitbench run`` (:attr:`~.contender.Contender.extra_seeds`): none for tuner "none",
  a defaults refit, a repeated study, a ``--train-sizes`` subset or a submission.
- **The defaults refit** (:func:`defaults_refit_for`, :func:`decide_refit`): for every tuned model of
  a run without tuner "none", unless ``--no-refit-defaults``, a contender with tuner "none" waits
  until each tuned contender it stands for has chosen; its finals refit the defaults on the same
  seeds where one of them chose other parameters, and it is dropped where all kept them (their
  finals are the defaults' already).
- **Identical finals** (:class:`Twins`): a final that would train exactly what another final of the
  run trains (:func:`identity`: the same split, model, task, seed, subset and parameters; say two
  tuners that both kept the defaults of a model, or a defaults refit beside a tuner that kept them)
  is not trained again: it waits for that final and records its result as its own row, marked
  ``"final_copied_from": <tuner>`` in its ``tuning`` column. A seed-invariant model has one
  whole-part final (seed 0, :func:`~.plan.final_seeds`), so its tuners' finals meet whenever they
  chose the same parameters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from digitbench.benchmark.config import RunConfig
from digitbench.benchmark.execution.contender import Choice, Contender, Extra, FinalJob, Phase
from digitbench.benchmark.execution.jobs import TaskResult
from digitbench.benchmark.payloads import CHOSEN, FRONT, ONE_SE_CHEAPEST, StudySummary
from digitbench.benchmark.store import Status
from digitbench.benchmark.tuning.front import COST_KEYS, one_se_cheapest, pareto_front, spread


def same_params(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two parameter sets train the same model (as they read back from a row's JSON:
    128 and 128.0 alike, a tuple and a list alike)."""
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def defaults(c: Contender) -> dict[str, Any]:
    """The parameters of ``c``'s model untuned: its defaults, then the pinned ones."""
    return {**c.entry.defaults(), **c.pinned}


def defaults_refit_for(tuners: Sequence[str], refit_defaults: bool) -> tuple[str, ...]:
    """The tuners whose choice decides whether a model's defaults refit runs; () for no defaults
    refit: the run tunes nothing, its tuner "none" refits the defaults already, or
    ``--no-refit-defaults``."""
    tuned = tuple(t for t in tuners if t != "none")
    return tuned if tuned and "none" not in tuners and refit_defaults else ()


def choose(c: Contender, config: RunConfig) -> Choice:
    """What the finals of ``c`` (not a defaults refit) refit, once its study is complete: its
    choice, and the extra configurations of :func:`refits`."""
    if c.study_seed:  # a repeated study, for the tuning curves only: no finals
        return Choice(Phase.DONE, None, {})
    if c.study is None:
        return Choice(Phase.FINALS, defaults(c), StudySummary(tuner="none"))
    tuning = c.study.summary()
    try:
        chosen = c.study.choice()[0]
    except RuntimeError as exc:  # the study finished no trial
        return Choice(Phase.FAILED, None, tuning, why=str(exc),
                      note=f"    {c.entry.name} on {c.split.dataset}: {exc}")
    roles = refits(c, config, chosen)
    extras = tuple(Extra(n, c.study.records[n]["params"], _refit_tuning(c, config, tuning, n, r))
                   for n, r in roles.items() if n != chosen) if c.extra_seeds else ()
    note = (f"    {c.entry.name} on {c.split.dataset} ({c.tuner}): extra finals refit "
            + ", ".join(f"trial {e.trial} ({', '.join(e.tuning.roles)})" for e in extras)) if extras else None
    return Choice(Phase.FINALS, c.study.best(), _refit_tuning(c, config, tuning, chosen, roles[chosen]),
                  note=note, extras=extras)


def refits(c: Contender, config: RunConfig, chosen: int) -> dict[int, tuple[str, ...]]:
    """The trials of ``c``'s study its finals refit, each with its roles: ``chosen`` (the study's
    choice) first, then the cheapest trial within one standard error of the best (unless
    ``--no-cheap-finals``) and ``--front-finals`` points spread along the Pareto front, in trial
    order; a trial whose parameters an earlier one in that order has is merged into it."""
    study, key = c.study, COST_KEYS[config.cost]
    trials = study.costed(config.cost)
    picked = {chosen: [CHOSEN]}
    cheapest = one_se_cheapest(trials, study.best_standard_error(), key) if config.cheap_finals else None
    if cheapest is not None:
        picked.setdefault(cheapest.number, []).append(ONE_SE_CHEAPEST)
    front = pareto_front(trials, key)
    for point in spread(front, config.front_finals):
        picked.setdefault(point.number, [])
    on_front = {p.number for p in front} if config.front_finals else set()
    merged: dict[int, list[str]] = {}
    for number in [chosen, *sorted(n for n in picked if n != chosen)]:
        into = next((m for m in merged if same_params(study.records[m]["params"],
                                                      study.records[number]["params"])), number)
        roles = merged.setdefault(into, [])
        roles += [r for r in [*picked[number], *([FRONT] if number in on_front else [])] if r not in roles]
    return {n: tuple(roles) for n, roles in merged.items()}


def _refit_tuning(c: Contender, config: RunConfig, tuning: StudySummary, trial: int,
                  roles: tuple[str, ...]) -> StudySummary:
    """The ``tuning`` column of a final refitting ``trial`` of ``c``'s study for ``roles``."""
    record = c.study.costed(config.cost)[trial]
    cost = record.get(COST_KEYS[config.cost])
    return tuning.with_(final_roles=roles, refit_val_accuracy=record["val_accuracy"],
                        refit_cost=None if cost is None else round(cost, 6))


def decide_refit(refit: Contender, contenders: Iterable[Contender]) -> Choice | None:
    """Whether the defaults refit ``refit`` runs, once every tuned contender it stands for (among
    ``contenders``) has chosen: with FINALS where one of them chose other parameters than the
    defaults, else DONE (dropped). None while one of them is still choosing."""
    tuned = [t for t in contenders if t.split is refit.split and t.entry is refit.entry
             and t.tuner in refit.defaults_for and t.study_seed == 0]
    if not all(t.chosen for t in tuned):
        return None
    params = defaults(refit)
    changed = [t.tuner for t in tuned if t.params is not None and not same_params(t.params, params)]
    tuning = StudySummary(tuner="none", defaults_refit_for=tuple(changed))
    where = f"    {refit.entry.name} on {refit.split.dataset}"
    if changed:
        return Choice(Phase.FINALS, params, tuning, note=(
            f"{where}: {', '.join(changed)} chose other parameters than the defaults; "
            f"{len(refit.finals)} defaults refit(s) on the same seeds follow") if refit.finals else None)
    return Choice(Phase.DONE, params, tuning,
                  note=f"{where}: tuning kept the defaults, so no defaults refit" if refit.finals else None)


def identity(c: Contender, final: FinalJob, params: dict[str, Any] | None = None) -> tuple:
    """What a final of ``c`` trains (with the parameters it refits, unless ``params``): two finals
    with one identity train the same model, whichever trial they refit."""
    return (c.share, c.entry.name, c.final_task, final.seed, final.train_size,
            json.dumps(c.params_of(final) if params is None else params, sort_keys=True))


class Twins:
    """The finals of a run by what they train: those training, and the results of those trained
    that a final still to start may copy (kept no longer: a saved model's bytes can be large)."""

    def __init__(self, contenders: list[Contender]) -> None:
        self.contenders = contenders
        self.running: set[tuple] = set()
        self.done: dict[tuple, tuple[str, TaskResult]] = {}  # identity -> (tuner, result)

    def copy(self, c: Contender) -> tuple[FinalJob, str, TaskResult] | None:
        """The next final of ``c``, taken off its list, with the tuner and the result of the
        identical final trained before; None when its next final has no such twin."""
        twin = self.done.get(identity(c, c.finals[0])) if c.phase is Phase.FINALS else None
        return None if twin is None else (c.next_final(), *twin)

    def start(self, c: Contender) -> FinalJob | None:
        """The next final of ``c`` to train, taken off its list and marked training; None when it
        has none, or when its identical twin is training (it waits, then copies that one)."""
        if c.phase is not Phase.FINALS or identity(c, c.finals[0]) in self.running:
            return None
        final = c.next_final()
        self.running.add(identity(c, final))
        return final

    def finished(self, c: Contender, final: FinalJob, params: dict[str, Any], tuner: str,
                 result: TaskResult) -> None:
        """A trained final of ``c``: no longer training; its result kept if another contender's
        finals may still train the same (the same split and model, finals not all started)."""
        key = identity(c, final, params)
        self.running.discard(key)
        if result.status == Status.OK and any(
                o is not c and o.share == c.share and o.entry is c.entry and not o.study_seed
                and o.may_start_finals for o in self.contenders):
            self.done[key] = (tuner, result)
