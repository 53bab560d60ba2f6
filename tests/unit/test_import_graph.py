"""The shape of the code: no import cycles, serving stays light, modules stay small.

The graph is read from the source with `ast`, so every import counts: module-level, inside a function
and under `if TYPE_CHECKING:`. A cycle hidden by a function-level import still couples two modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"retrain": ROOT / "src" / "retrain", "serving": ROOT / "serving"}
MAX_MODULE_LINES = 350
SERVING_MUST_NOT_IMPORT = ("airflow", "great_expectations", "evidently", "retrain.local")


def _modules() -> dict[str, Path]:
    """Every module of the packages, by dotted name (a package by its `__init__`)."""
    modules: dict[str, Path] = {}
    for package, base in PACKAGES.items():
        for path in sorted(base.rglob("*.py")):
            parts = [package, *path.relative_to(base).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imported_names(module: str, path: Path) -> Iterator[str]:
    """Dotted names `module` imports anywhere in its file, relative imports resolved."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _with_parents(name: str) -> Iterator[str]:
    """`a.b.c` and the packages importing it runs first: `a.b`, `a`."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        yield ".".join(parts[:end])


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a submodule import also runs its packages)."""
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for module, path in MODULES.items():
        for name in _imported_names(module, path):
            graph[module].update(m for m in _with_parents(name) if m in MODULES and m != module)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle inside a component, as `a -> b -> ... -> a`, for the failure message."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return component


def test_the_graph_sees_every_kind_of_import() -> None:
    """Function-level, TYPE_CHECKING and relative imports are edges (a guard for the parser itself)."""
    graph = import_graph()
    assert "retrain.cli" in graph["retrain.cli.app"], "a submodule import also runs its package"
    assert len(MODULES) > 40
    assert sum(len(edges) for edges in graph.values()) > 100


def test_no_module_imports_one_that_imports_it_back() -> None:
    """No import cycles, runtime or type-only."""
    graph = import_graph()
    cycles = [
        " -> ".join(a_cycle(graph, c)) + (f"  (all tied: {', '.join(c)})" if len(c) > 2 else "")
        for c in strongly_connected(graph)
    ]
    assert not cycles, "import cycles:\n  " + "\n  ".join(cycles)


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The finder reports a planted cycle and its path (so a green run means something)."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert a_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m == "serving" or m.startswith("serving.")))
def test_serving_imports_no_airflow_gx_evidently_or_local_stack(module: str) -> None:
    """The deployed service stays light: no orchestrator, validator, drift library or dev tooling."""
    heavy = sorted(
        name
        for name in _imported_names(module, MODULES[module])
        if any(name == banned or name.startswith(f"{banned}.") for banned in SERVING_MUST_NOT_IMPORT)
    )
    assert not heavy, f"{module} imports {heavy}"


def test_no_module_is_over_the_size_limit() -> None:
    """Every module of src/ and serving/ fits in MAX_MODULE_LINES lines."""
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    too_long = {m: n for m, n in sorted(sizes.items()) if n > MAX_MODULE_LINES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"
