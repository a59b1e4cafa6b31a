"""The policy of a run's finals on its own, with hand-made contenders and studies: what the finals
refit, when the defaults are refit, which finals are copied from an identical one, and the phases a
contender may (and may not) go through. Nothing is planned, scheduled or trained here."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from digitbench.benchmark.data.datasets import Split
from digitbench.benchmark.execution.contender import (
    TRANSITIONS,
    Choice,
    Contender,
    FinalJob,
    IllegalTransition,
    Phase,
)
from digitbench.benchmark.execution.jobs import TaskResult
from digitbench.benchmark.execution.policy import (
    Twins,
    choose,
    decide_refit,
    defaults_refit_for,
    identity,
    same_params,
)
from digitbench.benchmark.execution.tasks import run_final, run_submission
from digitbench.benchmark.payloads import StudySummary
from digitbench.models import registry
from digitbench.models.base import Digits

NO_DIGITS = Digits(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64))
SPLIT = Split("toy", NO_DIGITS, NO_DIGITS, NO_DIGITS, "none", "made by hand")
OTHER_SPLIT = Split("other", NO_DIGITS, NO_DIGITS, NO_DIGITS, "none", "made by hand")
LOGREG = registry.get("logreg")          # seed-invariant: one whole-part final, seed 0
LINEAR = registry.get("linear-svm")      # not: a final per seed


class HandStudy:
    """A complete study that chose ``best`` (None: it finished no trial)."""

    def __init__(self, tuner: str, best: dict[str, Any] | None) -> None:
        self.tuner, self.chosen = tuner, best

    def summary(self) -> StudySummary:
        return StudySummary(tuner=self.tuner, chosen_trial=0)

    def best(self) -> dict[str, Any]:
        if self.chosen is None:
            raise RuntimeError(f"tuning with {self.tuner} finished no trial, so there is nothing to refit")
        return self.chosen


def contender(tuner: str, entry=LINEAR, *, best: dict[str, Any] | None = None, finals=((0,), (1,)),
              split: Split = SPLIT, **kw: Any) -> Contender:
    c = Contender(split, "split0" if split is SPLIT else "split1", entry, tuner, {},
                  [FinalJob(*f) for f in finals], **kw)
    if tuner != "none":
        c.study = HandStudy(tuner, best)
    return c


def defaults(entry=LINEAR) -> dict[str, Any]:
    return entry.defaults()


def tuned(params: dict[str, Any]) -> dict[str, Any]:
    return {**defaults(), **params}


def chosen(c: Contender) -> Contender:
    """``c`` once the policy chose for it."""
    c.settle(choose(c))
    return c


# -- phases ---------------------------------------------------------------------------------------

def test_a_contender_starts_choosing_and_a_defaults_refit_starts_waiting() -> None:
    assert contender("optuna").phase is Phase.CHOOSING
    assert contender("none").phase is Phase.CHOOSING, "tuner none: its defaults are taken when reached"
    assert contender("none", defaults_for=("optuna",)).phase is Phase.WAITING


def test_the_transition_table_is_the_only_way_between_phases() -> None:
    assert set(TRANSITIONS) == set(Phase) and TRANSITIONS[Phase.DONE] == frozenset()
    for start, end in itertools.product(Phase, Phase):
        c = contender("optuna")
        c.phase = start
        if end in TRANSITIONS[start]:
            c.advance(end)
            assert c.phase is end
        else:
            move = f"toy linear-svm optuna: {start.value} -> {end.value}"
            with pytest.raises(IllegalTransition, match=move):
                c.advance(end)
            assert c.phase is start, "an illegal move leaves the phase as it was"


def test_illegal_moves_raise_a_second_choice_a_final_after_the_last_a_refit_chosen_like_a_study() -> None:
    c = chosen(contender("optuna", best=tuned({"C": 2.0})))
    with pytest.raises(IllegalTransition, match="finals -> finals"):
        c.settle(choose(c))
    c.next_final(), c.next_final()
    assert c.phase is Phase.DONE
    with pytest.raises(IllegalTransition, match="done -> done"):
        c.settle(Choice(Phase.FAILED, None, {}, why="late"))
    assert c.why is None, "an illegal move changes nothing"
    refit = contender("none", defaults_for=("optuna",))
    with pytest.raises(IllegalTransition, match="waiting -> failed"):
        refit.settle(Choice(Phase.FAILED, None, {}))


def test_a_contender_with_no_final_left_goes_straight_to_done() -> None:
    """A resumed run whose finals are all in the store: chosen, nothing to start."""
    c = chosen(contender("optuna", best=tuned({"C": 2.0}), finals=()))
    assert c.phase is Phase.DONE and c.params == tuned({"C": 2.0})
    assert not c.may_start_finals


# -- what the finals refit ------------------------------------------------------------------------

def test_the_finals_refit_the_tuned_parameters_with_the_studys_summary() -> None:
    c = contender("optuna", best=tuned({"C": 2.0}))
    choice = choose(c)
    assert choice == Choice(Phase.FINALS, tuned({"C": 2.0}), StudySummary(tuner="optuna", chosen_trial=0))
    assert c.settle(choice) == [] and c.phase is Phase.FINALS
    assert (c.params, c.tuning) == (tuned({"C": 2.0}), StudySummary(tuner="optuna", chosen_trial=0))
    assert [c.next_final(), c.next_final()] == [(0, None), (1, None)] and c.phase is Phase.DONE


def test_tuner_none_refits_the_defaults_with_the_pinned_parameters() -> None:
    c = contender("none")
    c.pinned = {"C": 0.5}
    assert choose(c) == Choice(Phase.FINALS, {**defaults(), "C": 0.5}, StudySummary(tuner="none"))


def test_a_study_that_finished_no_trial_fails_its_finals_with_the_reason() -> None:
    c = contender("optuna", best=None)
    choice = choose(c)
    reason = "tuning with optuna finished no trial, so there is nothing to refit"
    assert (choice.phase, choice.params, choice.why) == (Phase.FAILED, None, reason)
    assert choice.note == f"    linear-svm on toy: {reason}"
    c.settle(choice)
    assert c.phase is Phase.FAILED and c.tuning == StudySummary(tuner="optuna", chosen_trial=0)
    assert [c.next_final(), c.next_final()] == [(0, None), (1, None)], "each recorded failed"
    assert c.phase is Phase.DONE


def test_a_repeated_study_has_no_finals() -> None:
    c = contender("optuna", best=None, finals=(), study_seed=2)
    assert choose(c) == Choice(Phase.DONE, None, {}), "its choice is not even asked"
    assert chosen(c).phase is Phase.DONE


# -- the defaults refit ---------------------------------------------------------------------------

def test_a_defaults_refit_stands_for_the_tuners_of_a_run_without_tuner_none_when_asked() -> None:
    assert defaults_refit_for(("optuna", "random"), True) == ("optuna", "random")
    assert defaults_refit_for(("optuna", "random"), False) == (), "--no-refit-defaults"
    assert defaults_refit_for(("none", "optuna"), True) == (), "tuner none refits the defaults already"
    assert defaults_refit_for(("none",), True) == (), "nothing tuned"


def test_the_defaults_refit_waits_until_every_tuner_it_stands_for_has_chosen() -> None:
    optuna, random = contender("optuna", best=tuned({"C": 2.0})), contender("random", best=defaults())
    refit = contender("none", defaults_for=("optuna", "random"))
    chosen(optuna)
    assert decide_refit(refit, [optuna, random, refit]) is None
    assert refit.phase is Phase.WAITING and refit.may_start_finals


def test_where_tuning_changed_the_defaults_they_are_refit_on_the_same_seeds() -> None:
    optuna, random = contender("optuna", best=tuned({"C": 2.0})), contender("random", best=defaults())
    refit = contender("none", defaults_for=("optuna", "random"))
    chosen(optuna), chosen(random)
    choice = decide_refit(refit, [optuna, random, refit])
    refit_tuning = StudySummary(tuner="none", defaults_refit_for=("optuna",))
    assert choice == Choice(Phase.FINALS, defaults(), refit_tuning,
                            note="    linear-svm on toy: optuna chose other parameters than the defaults; "
                                 "2 defaults refit(s) on the same seeds follow")
    assert refit.settle(choice) == [] and refit.phase is Phase.FINALS
    assert refit.finals == [(0, None), (1, None)] and refit.params == defaults()


def test_where_tuning_kept_the_defaults_the_refit_is_dropped() -> None:
    """Read back from JSON, 1 and 1.0 are the same parameter; a study with nothing to refit did not
    change the defaults either."""
    optuna = contender("optuna", best={**defaults(), "C": float(defaults()["C"])})
    failed = contender("random", best=None)
    refit = contender("none", defaults_for=("optuna", "random"))
    chosen(optuna), chosen(failed)
    choice = decide_refit(refit, [optuna, failed, refit])
    assert (choice.phase, choice.tuning) == (Phase.DONE, StudySummary(tuner="none", defaults_refit_for=()))
    assert choice.note == "    linear-svm on toy: tuning kept the defaults, so no defaults refit"
    assert refit.settle(choice) == [(0, None), (1, None)], "dropped: the progress counts them out"
    assert refit.phase is Phase.DONE and refit.finals == [] and not refit.may_start_finals


def test_a_refit_with_nothing_left_to_run_is_decided_without_a_word() -> None:
    optuna = chosen(contender("optuna", best=tuned({"C": 2.0})))
    refit = contender("none", defaults_for=("optuna",), finals=())
    choice = decide_refit(refit, [optuna, refit])
    assert choice.note is None and refit.settle(choice) == [] and refit.phase is Phase.DONE


def test_the_refit_hears_only_study_0_of_its_own_model_split_and_tuners() -> None:
    optuna = chosen(contender("optuna", best=defaults()))
    others = [contender("optuna", study_seed=1, finals=()),           # a repeated study, still choosing
              contender("optuna", LOGREG),                            # another model
              contender("optuna", split=OTHER_SPLIT),                 # another dataset
              contender("keras-tuner")]                               # a tuner it does not stand for
    refit = contender("none", defaults_for=("optuna",))
    assert decide_refit(refit, [optuna, *others, refit]).phase is Phase.DONE


def test_same_params_compares_parameters_as_they_read_back_from_a_row() -> None:
    assert same_params({"width": 128, "sizes": (1, 2)}, {"width": 128.0, "sizes": [1, 2]})
    assert not same_params({"C": 1.0}, {"C": 2.0})
    assert not same_params({"C": 1.0}, {"C": 1.0, "tol": 0.1})


# -- identical finals -----------------------------------------------------------------------------

def ok(accuracy: float = 0.9) -> TaskResult:
    return TaskResult("ok", {"test_accuracy": accuracy})


def test_a_seed_invariant_models_identical_final_is_copied_not_trained() -> None:
    """Two tuners of logreg kept its defaults: its one final (seed 0) trains once; the other
    tuner's waits while it trains, then records its result."""
    optuna = chosen(contender("optuna", LOGREG, best=defaults(LOGREG), finals=((0,),)))
    random = chosen(contender("random", LOGREG, best=defaults(LOGREG), finals=((0,),)))
    twins = Twins([optuna, random])
    assert twins.copy(optuna) is None
    assert twins.start(optuna) == (0, None) and optuna.phase is Phase.DONE
    assert (twins.copy(random), twins.start(random)) == (None, None), "its twin trains: it waits"
    assert random.finals == [(0, None)] and random.phase is Phase.FINALS
    result = ok()
    twins.finished(optuna, FinalJob(0), optuna.params, "optuna", result)
    assert twins.copy(random) == ((0, None), "optuna", result)
    assert random.phase is Phase.DONE and random.finals == []


def test_finals_that_train_something_else_are_not_copied() -> None:
    """Another seed, subset, parameter set, model or task is another final."""
    first = chosen(contender("optuna", best=defaults(), finals=((0,),)))
    twins = Twins([first, *(chosen(c) for c in [
        contender("random", best=defaults(), finals=((1,), (0, 250))),
        contender("keras-tuner", best=tuned({"C": 2.0}), finals=((0,),)),
        contender("none", LOGREG, finals=((0,),)),
    ])])
    final = twins.start(first)
    twins.finished(first, final, first.params, "optuna", ok())
    for c in twins.contenders[1:]:
        assert twins.copy(c) is None and twins.start(c) is not None
    submission = chosen(contender("none", best=defaults(), finals=((0,),), final_task=run_submission))
    assert identity(submission, FinalJob(0)) != identity(first, FinalJob(0))
    assert identity(first, FinalJob(0)) == identity(first, FinalJob(0), dict(reversed(defaults().items())))
    assert first.final_task is run_final


def test_a_failed_final_is_not_copied_and_a_result_no_one_can_copy_is_not_kept() -> None:
    optuna = chosen(contender("optuna", best=defaults(), finals=((0,),)))
    random = chosen(contender("random", best=defaults(), finals=((0,),)))
    twins = Twins([optuna, random])
    twins.finished(optuna, twins.start(optuna), optuna.params, "optuna", TaskResult.failed("ValueError: no"))
    assert twins.copy(random) is None and twins.start(random) == (0, None), "it trains itself"
    twins.finished(random, FinalJob(0), random.params, "random", ok())
    assert twins.done == {} and twins.running == set(), \
        "optuna has started all its finals: the result is not kept for it"
