"""The modules of automlops import one way: no circle anywhere in the package (import-linter's layers
hold the arrows between top-level modules; this holds them inside packages too). Plugins import their
family's base module, and the registry module imports the plugins: search/engines.py, deploy/targets.py.
Read from the source (every import, function-local ones too), so the test imports nothing heavy."""

from __future__ import annotations

import ast
from pathlib import Path

import automlops

ROOT = Path(automlops.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the automlops modules it imports (`from a.b import c` counts a.b, and a.b.c when c is a module)."""
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            found |= {name for name in names if name in files}
        graph[module] = found - {module}
    return graph


def circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the modules along it, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for target in sorted(graph[module]):
            found = visit(target, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return None


def test_no_import_circle_in_the_package() -> None:
    found = circle(import_graph())
    assert found is None, "import circle: " + " -> ".join(found or [])


def test_the_circle_finder_finds_one() -> None:
    assert circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert circle({"a": {"b"}, "b": set()}) is None


def test_plugins_import_their_base_not_their_registry() -> None:
    graph = import_graph()
    engines, targets = "automlops.search.engines", "automlops.deploy.targets"
    assert graph[engines] >= {"automlops.search.optuna_engine", "automlops.search.autogluon_engine"}
    assert graph[targets] >= {
        "automlops.deploy.docker",
        "automlops.deploy.mlflow_target",
        "automlops.deploy.registry_target",
    }
    for plugin in graph[engines] | graph[targets]:
        assert engines not in graph[plugin] and targets not in graph[plugin], plugin
    assert not {m for m in graph["automlops.search.space"] if m.startswith("automlops.search.")}
