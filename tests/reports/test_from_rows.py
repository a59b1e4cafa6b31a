"""What the report reads from the rows rather than from the live registry: which models are variants
of one class (recorded, or inferred for old rows) and which ran one final for all seeds; and that
no model or family name is written into reports/."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from test_report import _row

from digitbench.benchmark.results import load_table
from digitbench.benchmark.store import ResultsStore
from digitbench.models import registry
from digitbench.reports.comparisons import Variants, variant_pairs
from digitbench.reports.markdown import write_report
from digitbench.reports.table import final_rows

REPORTS = Path(__file__).resolve().parents[2] / "reports"


def _paired(text: str) -> str:
    return text.split("### Paired comparisons", 1)[1].split("\n### ", 1)[0]


def test_plug_in_variants_are_compared_on_the_same_images(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    plan = [("tiny-a", "plug.mod:Tiny", {"width": 8}, 2), ("tiny-b", "plug.mod:Tiny", {"width": 16}, 7),
            ("other", "plug.mod:Other", {}, 4)]
    for model, cls, fixed, errors in plan:
        store.append(_row(store, "mnist-5k", model, "plug-in", 0, errors, 1.0, model_class=cls,
                          fixed=json.dumps(fixed)))
    paired = _paired(write_report(tmp_path).read_text(encoding="utf-8"))
    # tiny-a misses images 0-1, tiny-b 0-6: b = 5, c = 0, n = 100, p = 2 / 2^5
    assert ("- Variants tiny-a vs tiny-b (width 8 vs 16, tuner none), seed 0: tiny-a − tiny-b = "
            "+5.00 points") in paired
    assert "other" not in paired.split("- Best of each family")[0]
    assert "- Best of each family: not compared, every model here is of family `plug-in`." in paired


def test_old_rows_infer_variants_from_family_and_parameter_names(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    params = {"old-a": [{"depth": 2, "lr": 0.1}] * 2,
              "old-b": [{"depth": 3, "lr": 0.1}, {"depth": 3, "lr": 0.2}],  # lr varies: not fixed
              "old-c": [{"C": 1.0}] * 2}                                     # other parameters
    for model, per_seed in params.items():
        for seed, p in enumerate(per_seed):
            store.append(_row(store, "mnist-5k", model, "x", seed, 0, 1.0, params=json.dumps(p)))
    store.append(_row(store, "mnist-5k", "old-d", "y", 0, 0, 1.0,  # same names, other family
                      params=json.dumps({"depth": 4, "lr": 0.1})))
    rows = load_table(tmp_path)
    assert variant_pairs(rows, final_rows(rows)) == [Variants("old-a", "old-b", "depth 2 vs 3")]


def test_one_final_for_all_seeds_is_read_from_what_ran(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    settings = json.dumps({"seeds": 3})
    store.append(_row(store, "mnist-5k", "solver", "x", 0, 1, 1.0, settings=settings))
    for seed in (0, 1):
        store.append(_row(store, "mnist-5k", "net", "y", seed, 1, 1.0, settings=settings))
    note = "`solver`: the fit does not depend on the seed"
    assert note not in write_report(tmp_path).read_text(encoding="utf-8")  # stopped before seed 2?
    store.append(_row(store, "mnist-5k", "net", "y", 2, 1, 1.0, settings=settings))
    text = write_report(tmp_path).read_text(encoding="utf-8")
    assert f"{note} (a deterministic solver), so one final (seed 0) stands for all 3 seeds" in text
    assert "`net`: the fit" not in text


def test_the_seeds_asked_are_not_counted_one_by_one(tmp_path: Path) -> None:
    """Rows of a run that asked for more seeds than it could ever train (written before --seeds had
    a bound): the report reads the seeds that ran, it does not enumerate those asked (it hung)."""
    store = ResultsStore(tmp_path)
    settings = json.dumps({"seeds": 100_000_000_000})
    store.append(_row(store, "mnist-5k", "solver", "x", 0, 1, 1.0, settings=settings))
    store.append(_row(store, "mnist-5k", "net", "y", 0, 1, 1.0, settings=settings))
    text = write_report(tmp_path).read_text(encoding="utf-8")
    assert "the fit does not depend on the seed" not in text, "no model finished every seed asked"


def test_reports_names_no_model_and_no_family() -> None:
    registry.names()  # loads the built-ins
    models = set(registry.names())
    families = {registry.get(name).family for name in models}
    found = []
    for path in sorted(REPORTS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                named = {m for m in models if m in text}
                named |= {f for f in families if text.strip() == f or f"`{f}`" in text}
                found += [(path.name, node.lineno, name) for name in sorted(named)]
    assert not found, found
