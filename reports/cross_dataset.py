"""Cross-dataset tests (``run --test-on SPEC``): each final model, trained on one dataset, tested
once on the test part of another. The table puts the accuracy on the model's own test set beside
the accuracy on each other one, with intervals, so the drop is what a reader sees first."""

from __future__ import annotations

import pandas as pd

from digitbench.reports.format import code, md_table, natural_key, pct
from digitbench.reports.stats import accuracy_interval, mean_interval
from digitbench.reports.table import as_dict


def cross_dataset_section(final: pd.DataFrame, dataset: str) -> list[str]:
    """The section of one training dataset (its final rows, typed), or nothing when no final was
    tested elsewhere."""
    tested = final[final["cross_test"].notna()]
    if tested.empty:
        return []
    rows, prepared = [], {}
    for (model, tuner), group in sorted(tested.groupby(["model", "tuner"], sort=False),
                                        key=lambda item: natural_key(item[0][0])):
        cells = [as_dict(c) for c in group["cross_test"]]
        for other in sorted({spec for c in cells for spec in c}):
            scores = [(c[other]["correct"], c[other]["n_test"]) for c in cells if other in c]
            for c in cells:
                if other in c and c[other].get("preparation"):
                    prepared[other] = c[other]["preparation"]
            own = list(group["test_accuracy"])
            other_acc = [k / n for k, n in scores]
            drop = sum(own) / len(own) - sum(other_acc) / len(other_acc)
            rows.append([model, tuner, code(other), len(scores),
                         _shown(own, int(group["n_test"].iloc[0])),
                         _shown(other_acc, scores[0][1]), f"{100 * drop:+.2f}"])
    headers = ["model", "tuner", "tested on", "seeds", f"on {dataset}'s own test set",
               "on the other test set", "drop, points"]
    return [f"### Trained on {code(dataset)}, tested on other datasets", "",
            *md_table(headers, rows, "lllrrrr"), "",
            *(f"- {code(spec)}: pictures {text}" for spec, text in sorted(prepared.items())),
            *([""] if prepared else []),
            "Each final model was trained on this dataset (never tuned on the others) and tested once "
            "on the test part of each `--test-on` dataset. Accuracy is the mean over seeds with the "
            "95% Student-t interval; with one seed, or seeds that agree more closely than the test "
            "set's size allows, the 95% Wilson interval over its test images. The drop is own minus "
            "other, in points.", ""]


def _shown(accuracies: list[float], n: int) -> str:
    """``97.50% (97.10–97.90)``: the mean over seeds with the wider of the seed interval and the
    test-set interval over ``n`` images."""
    mean = mean_interval(accuracies)
    low, high = accuracy_interval(round(mean.mean * n), n)
    if mean.half_width is not None and mean.half_width > (high - low) / 2:
        low, high = mean.low, mean.high
    return f"{pct(mean.mean)} ({100 * low:.2f}–{100 * high:.2f})"
