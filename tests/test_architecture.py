"""The folders tell the data's path: imports run one way along it, and never in a circle.

sources -> warehouse -> metrics -> serving -> report / web -> cli. The walk reads every module's
imports with `ast` (top-level, function-level and type-only alike: a lazy import is still an edge).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "iceledger"

# (importer prefix, imported prefix): edges that run back up the path or across the surfaces.
FORBIDDEN = [
    ("iceledger.metrics", "iceledger.sources"),
    ("iceledger.metrics", "iceledger.serving"),
    ("iceledger.metrics", "iceledger.report"),
    ("iceledger.metrics", "iceledger.web"),
    ("iceledger.sources", "iceledger.metrics"),
    ("iceledger.sources", "iceledger.serving"),
    ("iceledger.serving", "iceledger.report"),
    ("iceledger.serving", "iceledger.web"),
    ("iceledger.report", "iceledger.web"),
    ("iceledger.web", "iceledger.report"),
    ("iceledger.warehouse", "iceledger.metrics"),
    ("iceledger.warehouse", "iceledger.sources"),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                # `from pkg import module` names a module; `from module import name` does not.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            else:
                continue
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            # A package's __init__ importing its own submodules is how packages register them.
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circles():
    cycle = _cycle(_import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_no_import_runs_back_up_the_path_or_across_the_surfaces():
    bad = sorted(
        f"{importer} imports {imported}"
        for importer, edges in _import_graph().items()
        for imported in edges
        for low, high in FORBIDDEN
        if (importer == low or importer.startswith(low + "."))
        and (imported == high or imported.startswith(high + "."))
    )
    assert bad == []


def test_the_walk_sees_the_known_edges():
    """Guards the walker itself: an edge every version of the code has must be found."""
    graph = _import_graph()
    assert "iceledger.warehouse" in graph["iceledger.sources.foia.ingest"]
    assert "iceledger.metrics.registry" in graph["iceledger.metrics.volume"]
