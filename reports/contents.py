"""The report's table of contents: every section, registered once, in the order ``report.md`` has
them. :func:`reports.markdown.write_report` walks :data:`RUN_SECTIONS`; :data:`DATASETS` walks
:data:`DATASET_SECTIONS` for each dataset. Each section's name, anchor and ``applies`` are declared
beside it, in its topic's module (:class:`reports.section.Section`):

==================  ==============  ===========================================================
section             anchor          applies
==================  ==============  ===========================================================
dataset             --              always (says so where no model finished)
leaderboard         leaderboard     a final model finished (so do all the sections below)
seed-invariant      --              (says something where a model ran one final of several)
time-to-target      --              a final was timed to ``--target``
cross-dataset       --              a final was tested on ``--test-on`` datasets
robustness          robustness      a final was tested under ``--corruptions``
comparisons         comparisons     always
pareto              --              always
budgets             budgets         two or more configurations finished (says nothing otherwise)
tuning              --              always
tunability          tunability      always (empty where nothing was tuned)
cpu-saved           cpu-saved       always (empty where no final says its roles: nothing tuned,
                                    or finals written before extra finals)
tuning-curves       --              always
hypervolume         --              always (no lines without a two-objective study)
tuners              tuners          tuning trials ran
importance          importance      tuning trials ran
scaling             scaling         finals ran on ``--train-sizes`` subsets
training-curves     --              always
confusion           --              always
gallery             --              always
details             details         always
==================  ==============  ===========================================================

Then the run's: ``no-results`` (only where the results file has no rows), ``summary``,
``datasets``, ``tuners-across`` (two or more datasets with tuning trials), ``failed-and-pruned``,
``warnings``, ``run``, ``machine``.
"""

from __future__ import annotations

from typing import Any

from digitbench.reports.best_model import CONFUSION, GALLERY
from digitbench.reports.budget_table import BUDGETS
from digitbench.reports.budgets import TUNING
from digitbench.reports.comparisons import COMPARISONS
from digitbench.reports.cpu_saved import CPU_SAVED
from digitbench.reports.cross_dataset import CROSS_DATASET
from digitbench.reports.data_scaling import SCALING
from digitbench.reports.figures import PARETO, TRAINING_CURVES, TUNING_CURVES
from digitbench.reports.hypervolume import HYPERVOLUME
from digitbench.reports.importance import IMPORTANCE
from digitbench.reports.overview import DETAILS, HEADING, LEADERBOARD, SEED_INVARIANT
from digitbench.reports.robustness import ROBUSTNESS
from digitbench.reports.run_sections import FAILED_AND_PRUNED, MACHINE, NO_RESULTS, RUN, WARNINGS
from digitbench.reports.section import DatasetScope, RunScope, Section, has_rows
from digitbench.reports.summary import SUMMARY
from digitbench.reports.time_to_target import TIME_TO_TARGET
from digitbench.reports.tunability import TUNABILITY
from digitbench.reports.tuner_comparison import TUNERS, TUNERS_ACROSS

#: One dataset's part of the report, in order.
DATASET_SECTIONS: tuple[Section[DatasetScope, Any], ...] = (
    HEADING, LEADERBOARD, SEED_INVARIANT, TIME_TO_TARGET, CROSS_DATASET, ROBUSTNESS, COMPARISONS,
    PARETO, BUDGETS, TUNING, TUNABILITY, CPU_SAVED, TUNING_CURVES, HYPERVOLUME, TUNERS, IMPORTANCE,
    SCALING, TRAINING_CURVES, CONFUSION, GALLERY, DETAILS,
)


def _datasets(run: RunScope) -> list[DatasetScope]:
    return run.datasets


def _datasets_lines(datasets: list[DatasetScope], run: RunScope) -> list[str]:
    return [line for scope in datasets for section in DATASET_SECTIONS for line in section.lines(scope)]


#: Each dataset's part, in order of first appearance in the results.
DATASETS = Section("datasets", _datasets, _datasets_lines, applies=has_rows)

#: The whole report after its title and generation line, in order.
RUN_SECTIONS: tuple[Section[RunScope, Any], ...] = (
    NO_RESULTS, SUMMARY, DATASETS, TUNERS_ACROSS, FAILED_AND_PRUNED, WARNINGS, RUN, MACHINE,
)
