"""The architecture holds: no import cycles between modules, nor between packages (imports inside
functions count); ``common/`` imports nothing of ours and ``models/`` only ``common/``; and no
private attribute of another library is used (an upgrade of Optuna or keras-tuner must not break
runs)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("benchmark", "models", "reports", "common")  # installed as digitbench.benchmark, ...
FACADE = "digitbench"  # the public API: digitbench/__init__.py re-exports from the others

#: Private names of other libraries we use on purpose, each with its reason.
ALLOWED_PRIVATE = {
    ("benchmark/execution/executors.py", "_exit"),  # os._exit: a worker whose coordinator died
    ("benchmark/execution/signals.py", "_exit"),  # os._exit: a second stop signal means now
    # TensorFlow keeps a gradient registration per traced training step for the life of the
    # process; dropping them after each fit is the documented workaround (models/lenet.py).
    ("models/lenet.py", "_gradient_registry"), ("models/lenet.py", "_registry"),
    # our own models' fitted parts, read by their own save/load
    ("models/baselines.py", "_estimator"), ("models/kernel_approx.py", "_estimator"),
    ("models/kernel_approx.py", "_features"),
}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(("digitbench", *(parts[:-1] if parts[-1] == "__init__" else parts)))] = path
    for path in (ROOT / FACADE).glob("*.py"):
        found[FACADE if path.stem == "__init__" else f"{FACADE}.{path.stem}"] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and known[name].stem != "__init__":  # a package's own __init__ is no dependency
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def package_of(module: str) -> str:
    """The package (folder) a module's file lies in: ``digitbench.benchmark.execution.plan`` ->
    ``digitbench.benchmark.execution``; a package's ``__init__`` belongs to the package itself."""
    path = modules()[module]
    return module if path.stem == "__init__" else module.rpartition(".")[0]


def package_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, targets in graph().items():
        edges.setdefault(package_of(module), set()).update(package_of(t) for t in targets)
    return {package: targets - {package} for package, targets in edges.items()}


def test_no_import_cycles() -> None:
    assert not cycles(graph()), f"import cycles: {cycles(graph())}"


def test_no_two_packages_import_each_other() -> None:
    found = cycles(package_graph())
    assert not found, f"package cycles: {found}"


def test_the_package_check_sees_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]


def test_common_is_the_bottom_layer() -> None:
    upward = {(name, other) for name, targets in graph().items() if name.startswith("digitbench.common")
              for other in targets if not other.startswith("digitbench.common")}
    assert not upward, f"common/ imports from above: {sorted(upward)}"


def test_models_stands_on_common_alone() -> None:
    upward = {(name, other) for name, targets in graph().items() if name.startswith("digitbench.models")
              for other in targets if not other.startswith(("digitbench.models", "digitbench.common"))}
    assert not upward, f"models/ imports from above: {sorted(upward)}"


def test_the_graph_sees_imports_inside_functions() -> None:
    assert "digitbench.benchmark.execution.session" in graph()["digitbench.benchmark.commands.api"]


def test_only_the_commands_reach_the_reports() -> None:
    """Data flows one way, job -> row -> store -> report: nothing below the commands writes a
    report (the run command does, after the coordinator returns)."""
    upward = {(name, other) for name, targets in graph().items()
              if name.startswith("digitbench.benchmark")
              and not name.startswith(("digitbench.benchmark.commands", "digitbench.benchmark.commands.api"))
              for other in targets if other.startswith("digitbench.reports")}
    assert not upward, f"imports of reports/ from below the commands: {sorted(upward)}"


def test_one_way_to_write_a_file_and_to_name_a_final() -> None:
    """``os.replace`` only in the atomic-write helper; the ``final`` text of the trial column only
    where results.csv is written and read (the store) and in the CLI and Python API that read it
    back (``load_results(run_dir, kind="final")``)."""
    for path in modules().values():
        rel, text = path.relative_to(ROOT).as_posix(), path.read_text()
        if rel != "common/atomic.py":
            assert "os.replace(" not in text, rel
        if rel not in ("benchmark/store.py", "benchmark/commands/api.py", "digitbench/__init__.py") \
                and not rel.startswith("benchmark/commands/"):
            assert '"final"' not in text and "'final'" not in text, rel


def test_one_import_name() -> None:
    """Every import of our code goes through ``digitbench.``: the old top-level names would load a
    second copy of a module (or a user's own ``models`` package); and nothing below the facade
    imports the facade, so ``import digitbench`` stays the top of the graph."""
    for path in [*modules().values(), *(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]:
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0
                     and node.module else [])
            for name in names:
                assert name.split(".")[0] not in PACKAGES, f"{rel}: imports {name}; use digitbench.{name}"
                if rel.startswith(PACKAGES):
                    assert name != FACADE, f"{rel}: imports the facade {FACADE}; import the module itself"


def test_no_private_attributes_of_other_libraries() -> None:
    used = set()
    for path in modules().values():
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        assert "keras_tuner.src" not in text and "optuna._" not in text, rel
        for node in ast.walk(ast.parse(text)):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                used.add((rel, node.attr))
    assert used <= ALLOWED_PRIVATE, f"private attributes: {sorted(used - ALLOWED_PRIVATE)}"
