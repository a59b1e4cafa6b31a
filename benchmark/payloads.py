"""The shapes of results.csv's JSON columns, each declared once, for the writers and the readers.

The tasks and the recorder build these payloads; the report reads them back with
:func:`tallies`; and :func:`fits` tells whether a parsed cell has its column's shape, which the
store checks whenever it reads a results file (:func:`~.store.check_rows`), so a hand-edited or
ill-made payload is refused with the file, the line and the column, and a writer that makes one
fails the tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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


#: The shape of each JSON column that has one beyond "a JSON object" (params, fixed, tuning,
#: versions, machine and settings are objects of named values).
SHAPES = {"cross_test": _counts, "corrupt_test": _counts, "calibration": _calibration,
          "history": _history}
#: The shapes in words, for the message that refuses a cell.
DESCRIBED = {"cross_test": "{dataset: {n_test, correct, preparation}}",
             "corrupt_test": "{corruption: {n_test, correct, seed}}",
             "calibration": "{method, test set: {n, ece, nll, brier, bins}}",
             "history": "{metric: [a number an epoch]}"}


def fits(column: str, value: Any) -> bool:
    """Whether ``value``, a parsed JSON cell of ``column`` (None where empty), has its shape."""
    if value is None:
        return True
    return SHAPES.get(column, lambda v: isinstance(v, dict))(value)
