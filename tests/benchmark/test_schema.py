"""The results row has one schema (benchmark/store.py: SCHEMA, Status, RowKind): every column a
task or the recorder writes is declared there, so a misspelt column name fails here, before any
training, and the file's checks take each column's type from the same declaration."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from digitbench.benchmark.store import (
    COLUMNS,
    FINAL,
    JSON_COLUMNS,
    NUMERIC,
    SCHEMA,
    STATUSES,
    TYPES,
    ResultsStore,
    RowKind,
    Status,
    check_rows,
)
from digitbench.common.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
WRITERS = ("benchmark/execution/tasks.py", "benchmark/execution/recorder.py")


def written_columns(path: Path) -> set[str]:
    """The column names a writer spells: keys of ``row[...]``/``fields[...]``, keywords of
    ``fields.update(...)``, and keys of dict literals given to ``TaskResult(...)`` or named ``row``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(
                node.slice.value, str):
            target = node.value
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if name in ("row", "fields"):
                found.add(node.slice.value)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "update" and getattr(node.func.value, "attr", "") == "fields"):
            found |= {k.arg for k in node.keywords if k.arg}
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "TaskResult":
            for arg in node.args:
                if isinstance(arg, ast.Dict):
                    found |= {k.value for k in arg.keys if isinstance(k, ast.Constant)}
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "row" for t in node.targets) \
                and isinstance(node.value, ast.Dict):
            found |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    return found


@pytest.mark.parametrize("writer", WRITERS)
def test_every_column_a_writer_spells_is_declared(writer: str) -> None:
    spelled = written_columns(ROOT / writer)
    assert spelled, f"{writer}: the scan found no column (has the code changed shape?)"
    assert spelled <= set(COLUMNS), f"{writer}: undeclared columns {sorted(spelled - set(COLUMNS))}"


def test_the_scan_sees_a_misspelt_column(tmp_path: Path) -> None:
    code = tmp_path / "writer.py"
    code.write_text("def f(result, row):\n    result.fields.update(fit_cpu_secs=1)\n"
                    "    row['tset_accuracy'] = 1\n")
    assert written_columns(code) - set(COLUMNS) == {"fit_cpu_secs", "tset_accuracy"}


def test_one_declaration_gives_the_names_the_types_and_the_spellings() -> None:
    assert len(set(COLUMNS)) == len(SCHEMA), "each column once"
    assert all(c.doc for c in SCHEMA), "each documented"
    assert set(NUMERIC) == {c.name for c in SCHEMA if c.type == "number"}
    assert set(JSON_COLUMNS) == {c.name for c in SCHEMA if c.type == "json"}
    assert STATUSES == ("ok", "pruned", "error") and Status.OK == "ok" and FINAL == RowKind.FINAL == "final"
    assert TYPES["status"] == "status" and TYPES["trial"] == "trial"


def test_a_row_written_with_the_enums_reads_back_as_their_text(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.append({"dataset": "d", "model": "m", "family": "f", "tuner": "none", "trial": FINAL, "seed": 0,
                  "status": Status.PRUNED})
    text = store.path.read_text()
    assert text.splitlines()[1].split(",")[COLUMNS.index("status")] == "pruned"
    check_rows(store.path, text)  # the file's own check accepts it


def test_a_cell_of_the_wrong_type_names_its_line_and_column(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.append({"dataset": "d", "model": "m", "family": "f", "tuner": "none", "trial": 0, "seed": 0,
                  "status": Status.OK})
    text = store.path.read_text().replace(",ok,", ",okay,")
    with pytest.raises(InputError, match="line 2, column status: 'okay' is not one of ok, pruned, error"):
        check_rows(store.path, text)
