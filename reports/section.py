"""The one contract of every part of ``report.md``, and the scopes the parts read.

A :class:`Section` is one topic of the report (the leaderboard, the paired comparisons, what tuning
bought, ...), declared once, in its topic's module:

* ``name``: unique in the report;
* ``analyse(scope) -> result``: reads the typed results table into a result object (a dataclass, or
  a frame the result is); it writes no file, so any section may read it;
* ``render(result, scope) -> lines``: the result as markdown lines, writing the section's figures
  beside the report; empty where there is nothing to say;
* ``anchor``: the kind of the HTML anchor written before the section where it applies
  (``<a id="KIND-SLUG"></a>``, the target of the summary's links), or None;
* ``applies(scope)``: whether the report has the section (and its anchor) at all.

:mod:`reports.contents` registers the sections in report order: those of each dataset
(:class:`DatasetScope`), then those of the whole run (:class:`RunScope`). A section that reads
another's result (the summary reads the leaderboard's, the comparisons', tunability's, the tuners'
and the importances') asks the scope, ``scope.analysed(OTHER)``: each result is computed once per
scope, whichever section asks first, and both sections read the same object.

Like benchopt's ``BasePlot`` (each plot computes its data; drawing it is apart), a section's
analysis can be tested without markdown, and its markdown from a result built by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd

from digitbench.reports.leaderboard import leaderboard
from digitbench.reports.paired import Contender, Skip, compare_seeds
from digitbench.reports.stats import PairedComparison
from digitbench.reports.table import SUBSET, TRIAL, dataset_slugs, extra_final_rows, final_rows, trial_rows
from digitbench.reports.tuner_stats import Block, dataset_blocks

S = TypeVar("S", bound="Scope")
R = TypeVar("R")


def always(scope: Any) -> bool:
    """The ``applies`` of a section every report has."""
    return True


def has_rows(scope: RunScope) -> bool:
    """The ``applies`` of the run's sections: the results file has rows."""
    return scope.has_rows


def has_finals(scope: DatasetScope) -> bool:
    """The ``applies`` of a dataset's sections past its heading: a final model finished there."""
    return scope.has_finals


def has_trials(scope: DatasetScope) -> bool:
    """The ``applies`` of the tuner sections: a model finished and tuning trials ran."""
    return scope.has_finals and scope.has_trials


@dataclass(frozen=True, eq=False)
class Section(Generic[S, R]):
    """One topic of the report: what it computes, how it reads, where it is linked, when it is
    there (see the module docstring)."""

    name: str
    analyse: Callable[[S], R]
    render: Callable[[R, S], list[str]]
    anchor: str | None = None
    applies: Callable[[S], bool] = always

    def lines(self, scope: S) -> list[str]:
        """The section's markdown in ``scope``, its anchor first; nothing where it does not apply."""
        if not self.applies(scope):
            return []
        body = self.body(scope)
        return [scope.anchor_line(self.anchor), *body] if self.anchor else body

    def body(self, scope: S) -> list[str]:
        """The section's own lines, whether or not it applies: its result rendered."""
        return self.render(scope.analysed(self), scope)


class Scope:
    """What the sections of one part of the report read; keeps each section's result."""

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = Path(run_dir)
        self._results: dict[Section[Any, Any], Any] = {}

    def analysed(self, section: Section[Any, R]) -> R:
        """``section``'s result in this scope, analysed on the first call."""
        if section not in self._results:
            self._results[section] = section.analyse(self)
        return self._results[section]

    def anchor(self, kind: str) -> str:
        """The id of the section of ``kind`` in this scope."""
        return kind

    def anchor_line(self, kind: str) -> str:
        """The HTML anchor written just before that section's heading."""
        return f'<a id="{self.anchor(kind)}"></a>'


class DatasetScope(Scope):
    """One dataset's typed rows, and what several of its sections share, each computed once.

    ``dataset`` defaults to the rows' first dataset spec and ``slug`` (which names its anchors and
    figures) to that spec's slug.
    """

    def __init__(self, rows: pd.DataFrame, run_dir: Path | str, dataset: str | None = None,
                 slug: str | None = None) -> None:
        super().__init__(run_dir)
        self.rows = rows
        self.dataset = str(rows["dataset"].iloc[0]) if dataset is None else dataset
        self.slug = dataset_slugs(pd.Series([self.dataset]))[self.dataset] if slug is None else slug
        self._pairs: dict[tuple[Contender, Contender], list[tuple[str, PairedComparison]] | str] = {}

    def anchor(self, kind: str) -> str:
        return f"{kind}-{self.slug}"

    @cached_property
    def final(self) -> pd.DataFrame:
        """The final ok rows with a test accuracy (:func:`reports.table.final_rows`)."""
        return final_rows(self.rows)

    @property
    def has_finals(self) -> bool:
        return not self.final.empty

    @cached_property
    def extra(self) -> pd.DataFrame:
        """The extra final ok rows (:func:`reports.table.extra_final_rows`): other trials of a
        study than its choice, refit (the cheapest within one standard error, front points)."""
        return extra_final_rows(self.rows)

    @cached_property
    def board(self) -> pd.DataFrame:
        """The leaderboard (:func:`reports.leaderboard.leaderboard`), best first; empty without
        finals."""
        return leaderboard(self.final) if self.has_finals else pd.DataFrame()

    @cached_property
    def trials(self) -> pd.DataFrame:
        """The tuning trials (:func:`reports.table.trial_rows`)."""
        return trial_rows(self.rows)

    @property
    def has_trials(self) -> bool:
        return bool((self.rows["kind"] == TRIAL).any())

    @property
    def has_subsets(self) -> bool:
        """Whether finals were trained on ``--train-sizes`` subsets."""
        return bool((self.rows["kind"] == SUBSET).any())

    @cached_property
    def blocks(self) -> list[Block]:
        """The tuners' blocks (:mod:`reports.tuner_stats`): one per model and study seed."""
        return dataset_blocks(self.dataset, self.trials)

    def paired(self, a: Contender, b: Contender) -> list[tuple[str, PairedComparison]]:
        """:func:`reports.paired.compare_seeds` of ``a`` and ``b`` on the finals, each ordered pair
        read and tested once; raises :class:`~reports.paired.Skip` where they cannot be compared."""
        if (a, b) not in self._pairs:
            try:
                self._pairs[(a, b)] = compare_seeds(self.final, self.run_dir, a, b)
            except Skip as why:
                self._pairs[(a, b)] = str(why)
        found = self._pairs[(a, b)]
        if isinstance(found, str):
            raise Skip(found)
        return found


class RunScope(Scope):
    """The whole typed results table and the scope of each dataset, in order of first appearance."""

    def __init__(self, frame: pd.DataFrame, run_dir: Path | str) -> None:
        super().__init__(run_dir)
        self.frame = frame
        slugs = dataset_slugs(frame["dataset"]) if not frame.empty else {}
        self.datasets = [DatasetScope(frame[frame["dataset"] == dataset], run_dir, dataset, slug)
                         for dataset, slug in slugs.items()]

    @property
    def has_rows(self) -> bool:
        return not self.frame.empty
