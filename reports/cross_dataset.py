"""Cross-dataset tests (``run --test-on SPEC``): each final model, trained on one dataset, tested
once on the test part of another. The table puts the accuracy on the model's own test set beside
the accuracy on each other one, with intervals, so the drop is what a reader sees first."""

from __future__ import annotations

from dataclasses import dataclass

from digitbench.benchmark.payloads import tallies
from digitbench.reports.format import code, md_table, natural_key, pct_interval
from digitbench.reports.section import DatasetScope, Section
from digitbench.reports.stats import ACCURACY_RULE, seeds_accuracy_interval

Interval = tuple[float, float, float]  # mean, low, high


@dataclass(frozen=True)
class CrossTest:
    """One contender trained here and tested on ``other``'s test part: its accuracy on each test
    set (the mean over seeds with the wider of the seed and the test-set interval) and the drop."""

    model: str
    tuner: str
    other: str
    seeds: int
    own: Interval
    elsewhere: Interval
    drop: float  # own minus other, a fraction


@dataclass(frozen=True)
class CrossDataset:
    tests: list[CrossTest]
    prepared: dict[str, str]  # other dataset -> how its pictures were prepared


def tested_elsewhere(scope: DatasetScope) -> bool:
    """The ``applies`` of the section: a final was tested on another dataset (``--test-on``)."""
    return scope.has_finals and bool(scope.final["cross_test"].notna().any())


def _cross_dataset(scope: DatasetScope) -> CrossDataset:
    tested = scope.final[scope.final["cross_test"].notna()]
    found, prepared = [], {}
    for (model, tuner), group in sorted(tested.groupby(["model", "tuner"], sort=False),
                                        key=lambda item: natural_key(item[0][0])):
        cells = [tallies(c) for c in group["cross_test"]]
        for other in sorted({spec for c in cells for spec in c}):
            scores = [(c[other].correct, c[other].n_test) for c in cells if other in c]
            for c in cells:
                if other in c and c[other].preparation:
                    prepared[other] = c[other].preparation
            own = list(group["test_accuracy"])
            other_acc = [k / n for k, n in scores]
            drop = sum(own) / len(own) - sum(other_acc) / len(other_acc)
            found.append(CrossTest(model, tuner, other, len(scores),
                                   _interval(own, int(group["n_test"].iloc[0])),
                                   _interval(other_acc, scores[0][1]), drop))
    return CrossDataset(found, prepared)


def _interval(accuracies: list[float], n: int) -> Interval:
    """The mean over seeds with the report's interval over ``n`` test images."""
    found = seeds_accuracy_interval(accuracies, n)
    return found.mean, found.low, found.high


def _shown(interval: Interval) -> str:
    """``97.50% [97.10–97.90]``."""
    return pct_interval(*interval)


def _cross_dataset_lines(found: CrossDataset, scope: DatasetScope) -> list[str]:
    dataset = scope.dataset
    rows = [[t.model, t.tuner, code(t.other), t.seeds, _shown(t.own), _shown(t.elsewhere),
             f"{100 * t.drop:+.2f}"] for t in found.tests]
    headers = ["model", "tuner", "tested on", "seeds", f"on {dataset}'s own test set",
               "on the other test set", "drop, points"]
    return [f"### Trained on {code(dataset)}, tested on other datasets", "",
            *md_table(headers, rows, "lllrrrr"), "",
            *(f"- {code(spec)}: pictures {text}" for spec, text in sorted(found.prepared.items())),
            *([""] if found.prepared else []),
            "Each final model was trained on this dataset (never tuned on the others) and tested once "
            "on the test part of each `--test-on` dataset. Accuracy is the mean over seeds with its "
            f"{ACCURACY_RULE} (each test set's own images). The drop is own minus other, in points.", ""]


CROSS_DATASET = Section("cross-dataset", _cross_dataset, _cross_dataset_lines, applies=tested_elsewhere)
