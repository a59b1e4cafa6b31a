"""A dataset's heading, its leaderboard with the caption, the seed-invariant note and the
leaderboard's details: the sections that read the leaderboard (:func:`reports.leaderboard.leaderboard`,
computed once per dataset by its scope) as it is."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from digitbench.reports.format import code, count
from digitbench.reports.leaderboard import details_table, leaderboard_table
from digitbench.reports.machine import distinct
from digitbench.reports.section import DatasetScope, Section, always, has_finals
from digitbench.reports.stats import ACCURACY_RULE
from digitbench.reports.table import FINAL, as_dict

# -- the heading -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Heading:
    """What a dataset's images were: the finals' (or, where none finished, every row's)."""

    sizes: list[tuple[float, float, float]]  # distinct (n_train, n_val, n_test)
    test_splits: list[str]                   # where the test set came from
    preparations: list[str]                  # how the pictures were prepared
    finished: bool                           # whether a final model finished


def _heading(scope: DatasetScope) -> Heading:
    sized = scope.final if scope.has_finals else scope.rows
    sizes = sized[["n_train", "n_val", "n_test"]].drop_duplicates()
    return Heading(list(sizes.itertuples(index=False, name=None)), distinct(sized["test_split"]),
                   distinct(sized["preparation"]), scope.has_finals)


def _heading_lines(head: Heading, scope: DatasetScope) -> list[str]:
    lines = [f"## Dataset {code(scope.dataset)}", ""]
    for n_train, n_val, n_test in head.sizes:
        if n_val > 0:
            lines.append(f"- Images: {count(n_train)} train, {count(n_val)} validation, "
                         f"{count(n_test)} test.")
        else:  # final models train on the whole training part, validation included
            lines.append(f"- Final models trained on {count(n_train)} images "
                         f"and tested once on {count(n_test)}.")
    lines += [f"- Test set: {split}" for split in head.test_splits]
    lines += [f"- Pictures: {preparation}" for preparation in head.preparations]
    lines.append("")
    if not head.finished:
        lines += ["No model finished on this dataset (see Failed and pruned jobs).", ""]
    return lines


HEADING = Section("dataset", _heading, _heading_lines, applies=always)


# -- the leaderboard -------------------------------------------------------------------------

def _board(scope: DatasetScope) -> pd.DataFrame:
    return scope.board


def _leaderboard_lines(board: pd.DataFrame, scope: DatasetScope) -> list[str]:
    return ["### Leaderboard", ""] + leaderboard_table(board) + ["", (
        f"Test accuracy is the mean over seeds with its {ACCURACY_RULE} (in percent: how far another "
        "test set of the same size, or another seed, could move it; with one seed, the Wilson "
        "interval alone). "
        "Costs are means over seeds: the fit's CPU-seconds, wall-clock milliseconds per image "
        "predicting one image at a time, the same in ONNX Runtime on one thread (median of 1,000 "
        "single-image calls; a note says when its labels differ from the model's own), and the "
        "multiply-adds one prediction costs, or the model's parameter count where those are not "
        "known. Best model in bold. The budgets, seeds and other timings are in the "
        f"[leaderboard details](#{scope.anchor('details')})."), ""]


LEADERBOARD = Section("leaderboard", _board, _leaderboard_lines, anchor="leaderboard",
                      applies=has_finals)


def _details_lines(board: pd.DataFrame, scope: DatasetScope) -> list[str]:
    return ["### Leaderboard details", ""] + details_table(board) + [
        "",
        "The contenders of the leaderboard, in its order. Tuning budget is what each tuned "
        "contender was allowed per study (trials and CPU-seconds) and trials run what it used; "
        "\"defaults\" were not tuned. Times are means over seeds: the fit's wall-clock seconds, "
        "the CPU-seconds of predicting the whole test set, wall-clock milliseconds per image at a "
        "large batch, ONNX Runtime's median (99th percentile) over 1,000 single-image calls; then "
        "the multiply-adds one prediction costs and the parameter count.",
        "",
    ]


DETAILS = Section("details", _board, _details_lines, anchor="details", applies=has_finals)


# -- models whose fit does not depend on the seed --------------------------------------------

@dataclass(frozen=True)
class SeedInvariant:
    """Models that ran one final (seed 0) where the run asked for ``seeds`` of them."""

    models: list[str]
    seeds: int


def _seed_invariant(scope: DatasetScope) -> SeedInvariant:
    """The rows do not record that property; it is read from what ran: the run asked for N >= 2
    seeds (``settings``), the model has final rows (of any status) at seed 0 only, and another
    model finished finals at all N seeds on this dataset, so the run did not stop before the other
    seeds."""
    final, rows = scope.final, scope.rows
    asked = max((as_dict(s).get("seeds", 1) for s in final["settings"]), default=1)
    if asked < 2:
        return SeedInvariant([], asked)
    seeds = {model: set(group["seed"]) for model, group in rows[rows["kind"] == FINAL].groupby("model")}
    finished = {model: set(group["seed"]) for model, group in final.groupby("model")}
    if not any(len({s for s in found if 0 <= s < asked}) == asked for found in finished.values()):
        return SeedInvariant([], asked)
    return SeedInvariant(sorted(model for model in finished if seeds[model] == {0}), asked)


def _seed_invariant_lines(found: SeedInvariant, scope: DatasetScope) -> list[str]:
    if not found.models:
        return []
    names = ", ".join(code(n) for n in found.models)
    return [f"{names}: the fit does not depend on the seed (a deterministic solver), so one final "
            f"(seed 0) stands for all {found.seeds} seeds; its interval is the test-set one.", ""]


SEED_INVARIANT = Section("seed-invariant", _seed_invariant, _seed_invariant_lines, applies=has_finals)
