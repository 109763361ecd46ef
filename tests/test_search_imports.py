"""The modules of automlops/search import one way: engines import search.base, search.engines registers
them, and space (YAML spec -> Optuna distribution) imports no other search module. Read from the source
(every import, function-local ones too), so the test imports nothing heavy."""

from __future__ import annotations

import ast
from pathlib import Path

import automlops.search

SEARCH = Path(automlops.search.__file__).parent


def imports_within_search() -> dict[str, set[str]]:
    modules = {p.stem for p in SEARCH.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for module in modules:
        found = set()
        for node in ast.walk(ast.parse((SEARCH / f"{module}.py").read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            found |= {
                n.split(".")[2] for n in names if n.startswith("automlops.search.") and n.split(".")[2] in modules
            }
        graph[module] = found - {module}
    return graph


def test_no_import_circle_inside_search() -> None:
    graph = imports_within_search()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import circle: " + " -> ".join([*path[path.index(module) :], module]))
        if module not in done:
            for target in sorted(graph[module]):
                visit(target, [*path, module])
            done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_engines_import_the_base_not_their_registry() -> None:
    graph = imports_within_search()
    assert graph["engines"] >= {"optuna_engine", "autogluon_engine", "base"}
    assert all("engines" not in graph[m] for m in ("optuna_engine", "autogluon_engine", "validation", "leaderboard"))
    assert graph["space"] == set()
