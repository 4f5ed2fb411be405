"""The import graph of ``src/ganforge``, read from the source with ``ast``: no cycles, few lazy imports.

Every import statement counts, at module level or inside a function. ``from pkg import name``
is an import of ``pkg.name`` when that is a module of the project, else of ``pkg``; an import
of ``a.b.c`` is an edge to ``a.b.c`` only (no implicit edges to the parent packages).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: Entry points: they import lazily so that ``ganforge --help`` stays fast.
LAZY_ENTRY_POINTS = {"ganforge.cli", "ganforge.__main__"}

#: Modules that may import project modules inside functions besides the entry points (none).
LAZY_IMPORTS_ALLOWED: set[str] = set()

#: Registry modules (and the packages that hold registries): ganforge.config must import none of them.
REGISTRY_PACKAGES = ("data", "losses", "models", "training", "augment", "evaluation", "extractors", "metrics", "validate")


@dataclass
class ImportGraph:
    """``edges[module]``: the project modules it imports; ``lazy[module]``: those imported inside functions."""

    modules: set[str]
    edges: dict[str, set[str]] = field(default_factory=dict)
    lazy: dict[str, list[str]] = field(default_factory=dict)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The project modules one import statement of ``module`` names."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names} & modules
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        package = ".".join(base + ([node.module] if node.module else []))
    else:
        package = node.module or ""
    targets = {f"{package}.{alias.name}" if f"{package}.{alias.name}" in modules else package for alias in node.names}
    return targets & modules


@lru_cache(maxsize=1)
def import_graph() -> ImportGraph:
    paths = {module_name(p): p for p in (SRC / "ganforge").rglob("*.py")}
    graph = ImportGraph(modules=set(paths))
    for module, path in paths.items():
        is_package = path.name == "__init__.py"
        edges = graph.edges.setdefault(module, set())

        def visit(node: ast.AST, in_function: bool, module: str = module, is_package: bool = is_package,
                  edges: set[str] = edges) -> None:
            for child in ast.iter_child_nodes(node):
                inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    targets = imported_modules(child, module, is_package, graph.modules) - {module}
                    edges |= targets
                    if inside and targets:
                        graph.lazy.setdefault(module, []).append(f"line {child.lineno}: {', '.join(sorted(targets))}")
                visit(child, inside)

        visit(ast.parse(path.read_text(), str(path)), False)
    return graph


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of the directed graph, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(edges):
        if state.get(start):
            continue
        path = [start]
        stack = [iter(sorted(edges.get(start, ())))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges.get(nxt, ()))))
    return None


def test_the_graph_sees_relative_and_lazy_imports():
    graph = import_graph()
    assert "ganforge.config" in graph.edges["ganforge.validate"]
    assert "ganforge.data.base" in graph.edges["ganforge.data.factory"]  # from .base import ...
    assert "ganforge.data.digits" in graph.edges["ganforge.data"]  # from . import digits
    assert "ganforge.validate" in graph.edges["ganforge.cli"] and "ganforge.cli" in graph.lazy
    assert "ganforge" not in graph.edges["ganforge.training.trainer"]  # no implicit parent-package edges
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph().edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_only_entry_points_import_lazily():
    lazy = import_graph().lazy
    count = sum(len(v) for v in lazy.values())
    others = sum(len(v) for m, v in lazy.items() if m not in LAZY_ENTRY_POINTS)
    print(f"function-level project imports: {count} ({others} outside {', '.join(sorted(LAZY_ENTRY_POINTS))})")
    unexpected = {m: v for m, v in lazy.items() if m not in LAZY_ENTRY_POINTS | LAZY_IMPORTS_ALLOWED}
    assert not unexpected, f"function-level imports of ganforge modules (move them to module level): {unexpected}"
    stale = sorted(LAZY_IMPORTS_ALLOWED - set(lazy))
    assert not stale, f"no longer import lazily, remove them from LAZY_IMPORTS_ALLOWED: {stale}"


def test_config_imports_no_registry():
    registries = tuple(f"ganforge.{name}" for name in REGISTRY_PACKAGES)
    imported = import_graph().edges["ganforge.config"]
    assert not {m for m in imported if m.startswith(registries)}, imported
    assert imported <= {"ganforge.errors", "ganforge.registry"}
    assert import_graph().edges["ganforge.registry"] <= {"ganforge.errors"}  # a leaf: config may use did_you_mean



def test_metrics_are_pure_and_core_is_the_lowest_layer():
    """metrics/ holds pure functions (no evaluation, training or models); core imports only errors."""
    graph = import_graph()
    forbidden = ("ganforge.evaluation", "ganforge.training", "ganforge.models")
    for module, imported in graph.edges.items():
        if module.startswith("ganforge.metrics"):
            assert not {m for m in imported if m.startswith(forbidden)}, (module, imported)
    assert graph.edges["ganforge.core"] <= {"ganforge.errors"}
    assert not (SRC / "ganforge" / "evaluation.py").exists() and (SRC / "ganforge" / "evaluation" / "__init__.py").is_file()
    assert not {m for m in graph.edges if m.startswith("ganforge.evaluation.")} - {
        f"ganforge.evaluation.{n}"
        for n in ("sources", "features", "registry", "adapters", "api", "translation", "superres", "text", "video", "tabular", "statistics")
    }
