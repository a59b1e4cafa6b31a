"""The report's sections: one contract, registered once in report order, each analysed once; the
summary reads the results of the sections it links to."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from test_fixture_report import FIXTURE

from digitbench.benchmark.results import load_table
from digitbench.reports import fanova, section
from digitbench.reports.comparisons import COMPARISONS
from digitbench.reports.contents import DATASET_SECTIONS, RUN_SECTIONS
from digitbench.reports.importance import IMPORTANCE
from digitbench.reports.markdown import write_report
from digitbench.reports.section import DatasetScope, RunScope, Section
from digitbench.reports.summary import SUMMARY
from digitbench.reports.tunability import TUNABILITY
from digitbench.reports.tuner_comparison import TUNERS


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "run")
    return tmp_path / "run"


def test_every_section_is_registered_once_with_a_unique_name_and_anchor() -> None:
    sections = [*DATASET_SECTIONS, *RUN_SECTIONS]
    names = [s.name for s in sections]
    assert len(set(names)) == len(names) and all(isinstance(s, Section) for s in sections)
    anchors = [s.anchor for s in sections if s.anchor]
    assert len(set(anchors)) == len(anchors)
    assert names[0] == "dataset" and names[-1] == "machine"


def test_anchors_come_in_the_registered_order() -> None:
    text = (FIXTURE / "report.md").read_text(encoding="utf-8")
    found = [line.split('"')[1].removesuffix("-idx-tiny") for line in text.splitlines()
             if line.startswith("<a id=")]
    assert found == [s.anchor for s in DATASET_SECTIONS if s.anchor]


def test_the_summary_reads_the_sections_results(run: Path) -> None:
    scope = RunScope(load_table(run), run)
    [summary] = scope.analysed(SUMMARY)
    dataset = scope.datasets[0]
    assert summary.scope is dataset
    assert summary.tuners is dataset.analysed(TUNERS)
    assert summary.importances is dataset.analysed(IMPORTANCE)
    assert all(a is b for a, b in zip(summary.tunability, dataset.analysed(TUNABILITY), strict=True))
    [variants] = dataset.analysed(COMPARISONS).variants
    [gap] = summary.variants
    assert gap.compared is variants.by_tuner[gap.tuner]
    assert summary.best is not None and summary.best["model"] == dataset.board.iloc[0]["model"]


def test_each_analysis_runs_once_per_report(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The leaderboard, the tuners' blocks, each fANOVA study and each paired comparison of two
    contenders are computed once, though the summary and several sections read them."""
    calls: Counter = Counter()

    def counted(name: str, function):
        def wrapper(*args, **kwargs):
            key = (name, *(a for a in args[2:] if isinstance(a, tuple))) if name == "pairs" else name
            calls[key] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(section, "leaderboard", counted("leaderboard", section.leaderboard))
    monkeypatch.setattr(section, "dataset_blocks", counted("blocks", section.dataset_blocks))
    monkeypatch.setattr(section, "compare_seeds", counted("pairs", section.compare_seeds))
    monkeypatch.setattr(fanova, "_study_result", counted("fanova", fanova._study_result))
    write_report(run)
    assert calls["leaderboard"] == 1 and calls["blocks"] == 1
    assert calls["fanova"] == 6  # three models, two tuners, one study each
    pairs = {key: n for key, n in calls.items() if key[0] == "pairs"}
    assert len(pairs) >= 3 and set(pairs.values()) == {1}


def test_a_section_that_does_not_apply_writes_nothing(tmp_path: Path) -> None:
    rows = pd.DataFrame({"dataset": ["mnist-5k"], "kind": ["trial"]})
    scope = DatasetScope(rows, tmp_path)
    seen = []
    probe = Section("probe", lambda s: seen.append(s) or 41, lambda result, s: [f"{result + 1}"],
                    anchor="probe", applies=lambda s: s.dataset == "mnist-5k")
    assert (scope.slug, probe.lines(scope)) == ("mnist-5k", ['<a id="probe-mnist-5k"></a>', "42"])
    assert probe.lines(scope) and seen == [scope]  # analysed once, rendered twice
    skipped = Section("skipped", lambda s: 1 / 0, lambda result, s: ["never"], applies=lambda s: False)
    assert skipped.lines(scope) == []
