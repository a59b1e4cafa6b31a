"""The shapes of results.csv's JSON columns, each declared once, for the writers and the readers.

The tasks and the recorder build these payloads; the report reads them back with
:func:`tallies`; and :func:`fits` tells whether a parsed cell has its column's shape, which the
store checks whenever it reads a results file (:func:`~.store.check_rows`), so a hand-edited or
ill-made payload is refused with the file, the line and the column, and a writer that makes one
fails the tests.
"""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Tally:
    """How many of one test set's images a final got right: ``cross_test`` holds one per
    ``--test-on`` dataset (with how its images were prepared), ``corrupt_test`` one per corruption
    (with the corruption's seed)."""

    n_test: int
    correct: int
    seed: int | None = None
    preparation: str | None = None

    @property
    def accuracy(self) -> float:
        return self.correct / self.n_test

    def as_json(self) -> dict[str, Any]:
        """The JSON object results.csv holds: the fields that are set."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Tally:
        return cls(**value)


def tallies(cell: Any) -> dict[str, Tally]:
    """A ``cross_test`` or ``corrupt_test`` cell of a typed table: test set -> its count."""
    return {name: Tally.from_json(counts) for name, counts in (cell or {}).items()}


#: The roles of a final, in a final row's ``tuning`` ``final_roles``: the primary final (what the
#: study chose, or the defaults), the cheapest trial within one standard error of the best on
#: validation, and a trial on the study's Pareto front of validation accuracy against cost
#: (:mod:`~.tuning.front`). One configuration may have several.
CHOSEN, ONE_SE_CHEAPEST, FRONT = "chosen", "one-se-cheapest", "front"
#: How a study scores its trials when it does not cross-validate: on the run's validation part.
HOLDOUT_SCORING = "the validation part"


@dataclass(frozen=True)
class StudySummary:
    """The ``tuning`` column: a study's settings, on each of its rows, and on its finals' rows also
    what it used and what it chose. A row of tuner ``none`` holds just the tuner (and, on a defaults
    refit, the tuners whose choice made it run).

    Every field may be missing: rows of older versions lack the later ones (``scored_images``,
    ``final_copied_from``, ``oracle``...), so a run folder of any version still loads; a key that is
    not a field, or a value of another type, is refused (:func:`fits`). Written without its unset
    fields.
    """

    tuner: str | None = None
    # the study's settings, known before it runs (every row of the study)
    trials: int | None = None
    budget_cpu_s: float | None = None
    scoring: str | None = None             # the validation part, or k-fold cross-validation
    tune_images: int | None = None         # images a trial trains on
    val_images: int | None = None          # images of the validation part
    scored_images: int | None = None       # images that score a trial (every fold's, under CV)
    study_seed: int | None = None
    sampler: str | None = None             # Optuna
    pruner: str | None = None              # Optuna
    oracle: str | None = None              # keras-tuner
    first_trial: str | None = None         # "defaults" where trial 0 is the model's defaults
    objectives: tuple[str, ...] | None = None  # Optuna with two objectives: accuracy and a cost
    # what the study used and chose (the final rows)
    trials_run: int | None = None
    pruned: int | None = None
    failed: int | None = None
    cpu_s_used: float | None = None
    stopped_by: str | None = None
    chosen_trial: int | None = None
    chosen_because: str | None = None
    chosen_val_accuracy: float | None = None
    best_val_accuracy: float | None = None
    # how a final came about
    final_copied_from: str | None = None   # the tuner whose identical final this row records
    defaults_refit_for: tuple[str, ...] | None = None  # a defaults refit: the tuners that changed them
    # which trial a final refits and why (finals of a study; missing on rows before extra finals)
    final_roles: tuple[str, ...] | None = None  # CHOSEN, ONE_SE_CHEAPEST, FRONT
    refit_val_accuracy: float | None = None  # the validation accuracy of the trial it refits
    refit_cost: float | None = None        # that trial's cost on the run's --cost

    @property
    def images_scored(self) -> int | None:
        """How many images scored each trial; rows written before ``scored_images`` was recorded
        give the validation part's size. None where neither is known."""
        images = self.scored_images if self.scored_images is not None else self.val_images
        return images if images is not None and images > 0 else None

    @property
    def scored_on(self) -> str | None:
        """What scored the study's trials, in words that name the images: studies of one dataset
        with the same words scored their trials on the same images (the validation part is the
        run's; cross-validation folds are drawn by the study's seed). None where the row does not
        say (rows written before ``scoring``)."""
        if self.scoring is None:
            return None
        images = f"{self.images_scored:,} images" if self.images_scored else "images not recorded"
        if self.scoring == HOLDOUT_SCORING:
            return f"on {self.scoring} ({images})"
        return f"by {self.scoring} ({images}, study seed {self.study_seed})"

    @property
    def from_defaults(self) -> bool:
        """Whether the study's trial 0 was the model's defaults."""
        return self.first_trial == "defaults"

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles of a final (:data:`CHOSEN`...); a row written before extra finals is the
        primary final: ``(CHOSEN,)``."""
        return self.final_roles if self.final_roles is not None else (CHOSEN,)

    @property
    def kept_defaults(self) -> bool:
        """Whether the study refit its first trial, the defaults."""
        return self.chosen_trial == 0 and self.from_defaults

    def with_(self, **changes: Any) -> StudySummary:
        return replace(self, **changes)

    def as_json(self) -> dict[str, Any]:
        """The JSON object results.csv holds: the fields that are set."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
                if v is not None}

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> StudySummary:
        """A parsed ``tuning`` cell (None or {} where empty) of a shape :func:`fits` accepts."""
        value = value or {}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})


def _kinds(hint: Any) -> tuple[type, ...]:
    """The JSON types a field of type ``hint`` holds (an int where a float may be; a list where a
    tuple)."""
    kinds = set(typing.get_args(hint)) - {type(None)}
    return tuple({float: (int, float), tuple[str, ...]: (list,)}.get(k, (k,)) for k in kinds)[0]


#: A :class:`StudySummary` field -> the JSON types its value may have.
_SUMMARY_KINDS = {f.name: _kinds(typing.get_type_hints(StudySummary)[f.name])
                  for f in fields(StudySummary)}


def _summary(value: Any) -> bool:
    return isinstance(value, dict) and all(
        k in _SUMMARY_KINDS and (v is None or (isinstance(v, _SUMMARY_KINDS[k]) and not isinstance(v, bool)))
        and (not isinstance(v, list) or all(isinstance(x, str) for x in v))
        for k, v in value.items())


def study_summary(cell: Any) -> StudySummary:
    """A ``tuning`` cell of a typed table as a :class:`StudySummary` (empty where it was empty)."""
    return StudySummary.from_json(cell if isinstance(cell, dict) else None)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _count(value: Any) -> bool:
    if not isinstance(value, dict) or not {"n_test", "correct"} <= set(value) \
            or not set(value) <= {"n_test", "correct", "seed", "preparation"}:
        return False
    return (_whole(value["n_test"]) and _whole(value["correct"]) and value["correct"] <= value["n_test"]
            and (value.get("seed") is None or isinstance(value["seed"], int))
            and (value.get("preparation") is None or isinstance(value["preparation"], str)))


def _counts(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and _count(v) for k, v in value.items())


def _scores(value: Any) -> bool:
    """One test set's calibration: n, ECE, NLL, Brier and the reliability bins."""
    if not isinstance(value, dict) or set(value) != {"n", "ece", "nll", "brier", "bins"}:
        return False
    bins = value["bins"]
    return (_whole(value["n"]) and all(_number(value[k]) for k in ("ece", "nll", "brier"))
            and isinstance(bins, dict) and set(bins) == {"count", "confidence", "accuracy"}
            and all(isinstance(bins[k], list) and all(map(_number, bins[k])) for k in bins))


def _calibration(value: Any) -> bool:
    return (isinstance(value, dict) and "method" in value
            and (value["method"] is None or isinstance(value["method"], str))
            and all(_scores(v) for k, v in value.items() if k != "method"))


def _history(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, list) and all(map(_number, v))
                                           for v in value.values())


#: The shape of each JSON column that has one beyond "a JSON object" (params, fixed, versions,
#: machine and settings are objects of named values).
SHAPES = {"cross_test": _counts, "corrupt_test": _counts, "calibration": _calibration,
          "history": _history, "tuning": _summary}
#: The shapes in words, for the message that refuses a cell.
DESCRIBED = {"cross_test": "{dataset: {n_test, correct, preparation}}",
             "corrupt_test": "{corruption: {n_test, correct, seed}}",
             "calibration": "{method, test set: {n, ece, nll, brier, bins}}",
             "history": "{metric: [a number an epoch]}",
             "tuning": "{tuner, trials, budget_cpu_s, ..., chosen_trial, ...}: the fields of StudySummary"}


def fits(column: str, value: Any) -> bool:
    """Whether ``value``, a parsed JSON cell of ``column`` (None where empty), has its shape."""
    if value is None:
        return True
    return SHAPES.get(column, lambda v: isinstance(v, dict))(value)
