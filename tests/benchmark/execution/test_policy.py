"""The policy of a run's finals on its own, with hand-made contenders and studies: what the finals
refit, when the defaults are refit, which finals are copied from an identical one, and the phases a
contender may (and may not) go through. Nothing is planned, scheduled or trained here."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from digitbench.benchmark.config import build_config
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
from digitbench.benchmark.payloads import CHOSEN, FRONT, ONE_SE_CHEAPEST, StudySummary
from digitbench.benchmark.tuning.study import Study
from digitbench.models import registry
from digitbench.models.base import Digits

NO_DIGITS = Digits(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64))
SPLIT = Split("toy", NO_DIGITS, NO_DIGITS, NO_DIGITS, "none", "made by hand")
OTHER_SPLIT = Split("other", NO_DIGITS, NO_DIGITS, NO_DIGITS, "none", "made by hand")
LOGREG = registry.get("logreg")          # seed-invariant: one whole-part final, seed 0
LINEAR = registry.get("linear-svm")      # not: a final per seed


def trial(accuracy: float | None, fit_cpu_s: float, params: dict[str, Any], status: str = "ok",
          predict_cpu_s: float = 0.1) -> dict[str, Any]:
    """A trial's record, as :func:`~benchmark.tuning.study.record_of` keeps it."""
    return {"status": status, "val_accuracy": accuracy, "cpu_s": fit_cpu_s + predict_cpu_s,
            "fit_cpu_s": fit_cpu_s, "predict_cpu_s": predict_cpu_s, "params": params}


class HandStudy:
    """A complete study of the trials ``records`` (by default one, trial 0, training ``best``;
    none where ``best`` is None) that chose ``chosen_trial``, scored on ``scored_images`` images;
    its costs and standard error are the real study's (:class:`~benchmark.tuning.study.Study`)."""

    costed = Study.costed
    trial_cost = Study.trial_cost
    best_standard_error = Study.best_standard_error

    def __init__(self, tuner: str, best: dict[str, Any] | None, records: dict[int, dict] | None = None,
                 chosen_trial: int = 0, scored_images: int = 400) -> None:
        self.tuner, self.chosen_trial, self.scored_images = tuner, chosen_trial, scored_images
        self.records = records if records is not None else {} if best is None else {0: trial(0.9, 1.0, best)}

    def summary(self) -> StudySummary:
        return StudySummary(tuner=self.tuner, chosen_trial=0)

    def choice(self) -> tuple[int, str]:
        if not any(r["status"] == "ok" for r in self.records.values()):
            raise RuntimeError(f"tuning with {self.tuner} finished no trial, so there is nothing to refit")
        return self.chosen_trial, "chosen by hand"

    def best(self) -> dict[str, Any]:
        return self.records[self.choice()[0]]["params"]


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


CONFIG = build_config({})  # the defaults: the one-SE cheapest refit, 3 front finals, cost fit


def chosen(c: Contender) -> Contender:
    """``c`` once the policy chose for it."""
    c.settle(choose(c, CONFIG))
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
        c.settle(choose(c, CONFIG))
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
    choice = choose(c, CONFIG)
    summary = StudySummary(tuner="optuna", chosen_trial=0, final_roles=(CHOSEN, ONE_SE_CHEAPEST, FRONT),
                           refit_val_accuracy=0.9, refit_cost=1.0)
    assert choice == Choice(Phase.FINALS, tuned({"C": 2.0}), summary), "one trial: it is every role"
    assert c.settle(choice) == 0 and c.phase is Phase.FINALS
    assert (c.params, c.tuning) == (tuned({"C": 2.0}), summary)
    assert [c.next_final(), c.next_final()] == [(0, None, None), (1, None, None)] and c.phase is Phase.DONE


def test_tuner_none_refits_the_defaults_with_the_pinned_parameters() -> None:
    c = contender("none")
    c.pinned = {"C": 0.5}
    assert choose(c, CONFIG) == Choice(Phase.FINALS, {**defaults(), "C": 0.5}, StudySummary(tuner="none"))


def test_a_study_that_finished_no_trial_fails_its_finals_with_the_reason() -> None:
    c = contender("optuna", best=None)
    choice = choose(c, CONFIG)
    reason = "tuning with optuna finished no trial, so there is nothing to refit"
    assert (choice.phase, choice.params, choice.why) == (Phase.FAILED, None, reason)
    assert choice.note == f"    linear-svm on toy: {reason}"
    c.settle(choice)
    assert c.phase is Phase.FAILED and c.tuning == StudySummary(tuner="optuna", chosen_trial=0)
    assert [c.next_final(), c.next_final()] == [(0, None, None), (1, None, None)], "each recorded failed"
    assert c.phase is Phase.DONE


def test_a_repeated_study_has_no_finals() -> None:
    c = contender("optuna", best=None, finals=(), study_seed=2)
    assert choose(c, CONFIG) == Choice(Phase.DONE, None, {}), "its choice is not even asked"
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
    assert refit.settle(choice) == 0 and refit.phase is Phase.FINALS
    assert refit.finals == [(0, None, None), (1, None, None)] and refit.params == defaults()


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
    assert refit.settle(choice) == -2, "both dropped: the progress counts them out"
    assert refit.phase is Phase.DONE and refit.finals == [] and not refit.may_start_finals


def test_a_refit_with_nothing_left_to_run_is_decided_without_a_word() -> None:
    optuna = chosen(contender("optuna", best=tuned({"C": 2.0})))
    refit = contender("none", defaults_for=("optuna",), finals=())
    choice = decide_refit(refit, [optuna, refit])
    assert choice.note is None and refit.settle(choice) == 0 and refit.phase is Phase.DONE


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
    assert twins.start(optuna) == (0, None, None) and optuna.phase is Phase.DONE
    assert (twins.copy(random), twins.start(random)) == (None, None), "its twin trains: it waits"
    assert random.finals == [(0, None, None)] and random.phase is Phase.FINALS
    result = ok()
    twins.finished(optuna, FinalJob(0), optuna.params, "optuna", result)
    assert twins.copy(random) == ((0, None, None), "optuna", result)
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
    assert twins.copy(random) is None and twins.start(random) == (0, None, None), "it trains itself"
    twins.finished(random, FinalJob(0), random.params, "random", ok())
    assert twins.done == {} and twins.running == set(), \
        "optuna has started all its finals: the result is not kept for it"


# -- extra finals: the cheapest within one standard error, the front ------------------------------

def studied(records: dict[int, dict], chosen_trial: int, **kw: Any) -> Contender:
    """An optuna contender of linear-svm on seeds 0 and 1 whose study ran ``records``."""
    c = contender("optuna", extra_seeds=(0, 1), **kw)
    c.study = HandStudy("optuna", None, records, chosen_trial)
    return c


#: A study scored on 400 images (one standard error at 95%: 1.09 points): trial 0 the defaults,
#: trial 3 as good as trial 1 at a third of its cost, trial 4 the same parameters as trial 1.
TRIALS = {0: trial(0.940, 6.0, defaults()), 1: trial(0.960, 9.0, tuned({"C": 2.0})),
          2: trial(0.900, 1.0, tuned({"C": 0.01})), 3: trial(0.955, 3.0, tuned({"C": 0.5})),
          4: trial(0.960, 9.0, tuned({"C": 2.0})), 5: trial(0.990, 0.5, tuned({"C": 9.0}), "pruned"),
          6: trial(None, 0.1, tuned({"C": 8.0}), "error")}


def test_the_finals_also_refit_the_one_se_cheapest_and_front_points_with_their_roles() -> None:
    c = studied(TRIALS, chosen_trial=1)
    choice = choose(c, CONFIG)
    assert choice.tuning.final_roles == (CHOSEN, FRONT) and choice.tuning.refit_val_accuracy == 0.96
    assert choice.tuning.refit_cost == 9.0 and choice.params == tuned({"C": 2.0})
    extras = {e.trial: e for e in choice.extras}
    assert set(extras) == {2, 3}, "pruned 5, failed 6, dominated 0 and 4 (a copy of 1) left out"
    assert extras[3].tuning.final_roles == (ONE_SE_CHEAPEST, FRONT)
    assert extras[2].tuning.final_roles == (FRONT,), "the front's cheapest"
    assert extras[3].params == tuned({"C": 0.5}) and extras[3].tuning.refit_cost == 3.0
    assert choice.note == ("    linear-svm on toy (optuna): extra finals refit trial 2 (front), "
                           "trial 3 (one-se-cheapest, front)")
    assert c.settle(choice) == 4, "two configurations on two seeds more"
    assert c.finals == [(0, None, None), (1, None, None), (0, None, 2), (1, None, 2), (0, None, 3),
                        (1, None, 3)]
    assert c.params_of(FinalJob(1, None, 3)) == tuned({"C": 0.5}) and c.params_of(FinalJob(1)) == c.params
    assert c.tuning_of(3) == extras[3].tuning and c.tuning_of(None) == choice.tuning


def test_the_defaults_kept_the_cheapest_within_one_se_and_the_switches() -> None:
    """Trial 0 (the defaults) chosen and cheapest within one SE: no extra final for it; with
    --no-cheap-finals and --front-finals 0 nothing extra; --cost predict reads ms per image."""
    records = {0: trial(0.950, 2.0, defaults()), 1: trial(0.955, 9.0, tuned({"C": 2.0}))}
    choice = choose(studied(records, chosen_trial=0), CONFIG)
    assert choice.tuning.final_roles == (CHOSEN, ONE_SE_CHEAPEST, FRONT)
    assert [(e.trial, e.tuning.final_roles) for e in choice.extras] == [(1, (FRONT,))]
    off = build_config({"cheap_finals": False, "front_finals": 0})
    choice = choose(studied(TRIALS, chosen_trial=1), off)
    assert choice.extras == () and choice.tuning.final_roles == (CHOSEN,)
    cheap_only = build_config({"front_finals": 0})
    assert [e.trial for e in choose(studied(TRIALS, chosen_trial=1), cheap_only).extras] == [3]
    by_predict = build_config({"cost": "predict", "front_finals": 0})
    records = {0: trial(0.95, 1.0, defaults(), predict_cpu_s=0.8),
               1: trial(0.95, 9.0, tuned({"C": 2.0}), predict_cpu_s=0.2)}
    choice = choose(studied(records, chosen_trial=0), by_predict)
    assert [e.trial for e in choice.extras] == [1], "the cheaper to predict, though dearer to fit"
    assert choice.extras[0].tuning.refit_cost == 1000 * 0.2 / 400, "ms per scored image"


def test_no_extra_finals_without_extra_seeds_and_recorded_ones_are_not_planned_again() -> None:
    """A contender with no extra seeds (tuner none, a defaults refit, a submission, a repeated
    study) refits its choice only; a resumed one does not refit what is recorded."""
    c = contender("optuna")
    c.study = HandStudy("optuna", None, TRIALS, 1)
    assert choose(c, CONFIG).extras == ()
    resumed = studied(TRIALS, chosen_trial=1, finals=(), extras_done=frozenset(
        {FinalJob(0, None, 2), FinalJob(1, None, 2), FinalJob(0, None, 3)}))
    assert resumed.settle(choose(resumed, CONFIG)) == 1 and resumed.finals == [(1, None, 3)]


def test_an_extra_final_meets_its_identical_twin_of_another_tuner() -> None:
    """Optuna's cheapest within one SE is the defaults, which the defaults refit trains too."""
    records = {0: trial(0.950, 2.0, defaults()), 1: trial(0.965, 9.0, tuned({"C": 2.0}))}
    optuna = chosen(studied(records, chosen_trial=1))
    refit = chosen(contender("none", finals=((0,), (1,))))
    assert optuna.finals[2:] == [(0, None, 0), (1, None, 0)]
    assert identity(optuna, FinalJob(0, None, 0)) == identity(refit, FinalJob(0))
    assert identity(optuna, FinalJob(0)) != identity(refit, FinalJob(0)), "its choice is not the defaults"
