"""A contender, one (dataset, model, tuner) study and its finals, and the phases it goes through.

A contender is planned (:mod:`.plan`), scheduled (:mod:`.coordinator`) and decided (:mod:`.policy`):
its :class:`Phase` moves only along :data:`TRANSITIONS`, by :meth:`Contender.advance`, and what its
finals refit is set once, by :meth:`Contender.settle` taking the policy's :class:`Choice`::

    CHOOSING --> FINALS --> DONE          a study runs its trials, or tuner none takes its defaults;
       |  \\________________^              then the finals refit the choice, one seed at a time
       '--> FAILED --> DONE               nothing to refit: its finals are recorded failed
    WAITING  --> FINALS | DONE            a defaults refit: run only where tuning changed the defaults

A study's finals refit its choice first, then the extra configurations the policy picked (the
cheapest within one standard error, points of its Pareto front), each a final with its
``refit_trial``. A phase with no final left to start is skipped: the contender goes to DONE at once
(a repeated study, which has no finals; a resumed run whose finals are all done; a defaults refit
not needed).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from digitbench.benchmark.data.datasets import Split
from digitbench.benchmark.execution.jobs import TaskResult
from digitbench.benchmark.execution.tasks import run_final
from digitbench.benchmark.payloads import StudySummary
from digitbench.benchmark.store import unique_slug
from digitbench.benchmark.tuning.study import Study
from digitbench.models.registry import Entry


class Phase(enum.Enum):
    """Where a contender is: what the coordinator may start for it next."""

    CHOOSING = "choosing"  # its study asks for trials (tuner none: its defaults are taken when reached)
    WAITING = "waiting"    # a defaults refit, until the tuned contenders it stands for have chosen
    FINALS = "finals"      # what its finals refit is chosen: they start, one by one
    FAILED = "failed"      # nothing to refit: its finals are recorded failed, with the reason
    DONE = "done"          # nothing left to start


#: The phases each phase may go to; any other move is a bug, and raises :class:`IllegalTransition`.
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.CHOOSING: frozenset({Phase.FINALS, Phase.FAILED, Phase.DONE}),
    Phase.WAITING: frozenset({Phase.FINALS, Phase.DONE}),
    Phase.FINALS: frozenset({Phase.DONE}),
    Phase.FAILED: frozenset({Phase.DONE}),
    Phase.DONE: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A contender asked to move where :data:`TRANSITIONS` does not let it."""


class FinalJob(NamedTuple):
    """One final of a contender: its seed, the size of its training subset (None: all of it), and
    for an extra final the study trial it refits (None: the primary final, the contender's choice)."""

    seed: int
    train_size: int | None = None
    refit_trial: int | None = None


class Extra(NamedTuple):
    """A configuration an extra final refits (:mod:`.policy`): the study's trial, its full
    parameters, and the final rows' ``tuning`` column."""

    trial: int
    params: dict[str, Any]
    tuning: StudySummary


@dataclass(frozen=True)
class Choice:
    """What a contender's finals do, as the policy decided it (:mod:`.policy`)."""

    phase: Phase                   # where the contender goes: FINALS, FAILED or DONE
    params: dict[str, Any] | None  # what its finals refit; None when there is nothing to refit
    tuning: StudySummary           # the final rows' ``tuning`` column
    why: str | None = None         # why there is nothing to refit (phase FAILED)
    note: str | None = None        # a progress line that says what was decided, if any
    extras: tuple[Extra, ...] = ()  # other configurations refit on the extra seeds (phase FINALS)


@dataclass
class Contender:
    split: Split
    share: str                      # the name the executor shares the split under
    entry: Entry
    tuner: str
    pinned: dict[str, Any]          # parameters no tuner may change
    finals: list[FinalJob]          # finals still to start
    study: Study | None = None      # for tuner != "none"
    study_seed: int = 0             # the study's seed; its trial rows carry it in the seed column
    final_task: Callable[..., TaskResult] = run_final  # what its finals run (submit: run_submission)
    defaults_for: tuple[str, ...] = ()  # a defaults refit: the tuners whose choice decides if it runs
    extra_seeds: tuple[int, ...] = ()   # the seeds of its extra finals, if it may have any
    extras_done: frozenset[FinalJob] = frozenset()  # its extra finals already recorded
    phase: Phase = field(init=False)
    params: dict[str, Any] | None = field(default=None, init=False)  # what the finals refit, once chosen
    tuning: StudySummary = field(default_factory=StudySummary, init=False)  # the final rows' ``tuning``
    why: str | None = field(default=None, init=False)  # why there is nothing to refit (FAILED)
    extras: dict[int, Extra] = field(default_factory=dict, init=False)  # refit trial -> its extra

    def __post_init__(self) -> None:
        self.phase = Phase.WAITING if self.defaults_for else Phase.CHOOSING

    @property
    def is_defaults_refit(self) -> bool:
        return bool(self.defaults_for)

    @property
    def chosen(self) -> bool:
        """Whether what its finals refit is decided (or that it has none)."""
        return self.phase not in (Phase.CHOOSING, Phase.WAITING)

    @property
    def may_start_finals(self) -> bool:
        """Whether a final of it may still start (not decided yet, or finals left)."""
        return self.phase in (Phase.CHOOSING, Phase.WAITING, Phase.FINALS)

    @property
    def study_name(self) -> str:
        return study_name(self.split.dataset, self.entry.name, self.tuner, self.study_seed)

    def advance(self, phase: Phase) -> None:
        """Move to ``phase``, if :data:`TRANSITIONS` allows it."""
        if phase not in TRANSITIONS[self.phase]:
            raise IllegalTransition(f"{self.split.dataset} {self.entry.name} {self.tuner}: "
                                    f"{self.phase.value} -> {phase.value}")
        self.phase = phase

    def settle(self, choice: Choice) -> int:
        """Take ``choice``: what the finals refit, its extra finals (on :attr:`extra_seeds`, less
        those recorded) after the primary ones, and the phase it leads to (DONE straight away when
        no final is left to start); returns the change in its finals to start: the extra ones
        added, less the finals it drops (a refit not needed)."""
        before = len(self.finals)
        self.extras = {extra.trial: extra for extra in choice.extras}
        self.finals = [] if choice.phase is Phase.DONE else self.finals + [
            f for f in (FinalJob(seed, None, extra.trial) for extra in choice.extras
                        for seed in self.extra_seeds) if f not in self.extras_done]
        self.advance(choice.phase if self.finals else Phase.DONE)
        self.params, self.tuning, self.why = choice.params, choice.tuning, choice.why
        return len(self.finals) - before

    def params_of(self, final: FinalJob) -> dict[str, Any] | None:
        """What ``final`` refits: the choice, or for an extra final its trial's parameters."""
        return self.params if final.refit_trial is None else self.extras[final.refit_trial].params

    def tuning_of(self, refit_trial: int | None) -> StudySummary:
        """The ``tuning`` column of a final refitting ``refit_trial`` (None: the primary final)."""
        return self.tuning if refit_trial is None else self.extras[refit_trial].tuning

    def next_final(self) -> FinalJob:
        """The next final to start (or to record), taken off the list; DONE after the last."""
        final = self.finals.pop(0)
        if not self.finals:
            self.advance(Phase.DONE)
        return final


def study_name(dataset: str, model: str, tuner: str, seed: int) -> str:
    """The Optuna study (or keras-tuner project) name of one study: ``<dataset>__<model>``, then
    ``__random`` for the random-search baseline and ``__s<k>`` for study seed k > 0."""
    name = f"{unique_slug(dataset)}__{model}"
    return name + ("__random" if tuner == "random" else "") + (f"__s{seed}" if seed else "")
