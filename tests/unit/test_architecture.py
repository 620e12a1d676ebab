"""The shape of the code, as docs/adr/0010-module-layout.md records it.

The pure core never imports the shell's libraries (network, database, discovery); no
import circle among the project's modules, nor among its packages; the IPPC contract
depends on neither side of it; commands and benchmarks sit on top, imported by nothing
below them. Every import statement counts, a function-level one too: it is a dependency
all the same, only a later one.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import node
from node.cli.main import COMMANDS

ROOT = Path(node.__file__).parent.parent
PROJECT = ("node", "registry")
CORE = ["certificate", "codelists", "crypto", "directory", "envelope", "outbox", "ippc"]
FORBIDDEN = {
    "aiohttp",
    "sqlalchemy",
    "zeroconf",
    "apscheduler",
    "asyncpg",
    "aiosqlite",
    "socket",
    "requests",
    "urllib",
    "http",
    "subprocess",
}
# What the IPPC contract may use of the project: the error base and the hostile-XML guard.
CONTRACT = "node.ippc"
CONTRACT_MAY_IMPORT = {"node.errors", "node.hostile_xml"}

Graph = Mapping[str, set[str]]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node_ in ast.walk(tree):
        if isinstance(node_, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node_.names)
        elif isinstance(node_, ast.ImportFrom) and node_.module and node_.level == 0:
            names.add(node_.module.split(".")[0])
    return names


def test_core_is_free_of_io_libraries() -> None:
    root = Path(node.__file__).parent
    files = [f for package in CORE for f in (root / package).rglob("*.py")]
    assert files
    offenders = {str(f.relative_to(root)): sorted(_imports(f) & FORBIDDEN) for f in files}
    assert {f: bad for f, bad in offenders.items() if bad} == {}


def _modules() -> dict[str, Path]:
    """Every module of the project by dotted name; a package by its own name."""
    found: dict[str, Path] = {}
    for top in PROJECT:
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _module_graph() -> dict[str, set[str]]:
    """Which project modules each project module imports, wherever the import stands."""
    modules = _modules()

    def known(name: str) -> str | None:
        # `import a.b.c` and `from a.b import name` depend on the nearest real module.
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for statement in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(statement, ast.Import):
                targets = [alias.name for alias in statement.names]
            elif isinstance(statement, ast.ImportFrom):
                base = statement.module or ""
                if statement.level:
                    anchor = package.split(".")[: len(package.split(".")) - statement.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                # `from pkg import mod` names a module; `from mod import name` does not.
                targets = [f"{base}.{alias.name}" for alias in statement.names] or [base]
            for target in targets:
                if (hit := known(target)) is not None and hit != name:
                    graph[name].add(hit)
    # The command tree imports each command's module by its name, when that command runs
    # (node.cli.main.COMMANDS): those are its imports all the same.
    graph["node.cli.main"].update(module for _, module in COMMANDS)
    return graph


def _unit(module: str) -> str:
    """The package a module belongs to: `node.<first level>`, or the registry as a whole."""
    parts = module.split(".")
    return parts[0] if parts[0] == "registry" else ".".join(parts[:2])


def _package_graph(modules: Graph) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for source, targets in modules.items():
        graph[_unit(source)].update(_unit(t) for t in targets if _unit(t) != _unit(source))
    return graph


def _circles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterable[str]]] = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            vertex, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, ())))))
                    break
                if successor in on_stack:
                    low[vertex] = min(low[vertex], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[vertex])
                if low[vertex] == index[vertex]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == vertex:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _importers(graph: Graph, prefix: str) -> dict[str, set[str]]:
    """Who imports a module at or under `prefix`, and what of it."""
    inside = (prefix, prefix + ".")
    return {
        source: hits
        for source, targets in graph.items()
        if (hits := {t for t in targets if t == prefix or t.startswith(inside[1])})
        and not (source == prefix or source.startswith(inside[1]))
    }


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _module_graph()


def test_the_graph_sees_imports_of_every_kind() -> None:
    """The checks below can fail: a circle planted in a graph is found."""
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(planted) == [["a", "b", "c"]]
    modules = _module_graph()
    # A function-level import, `from package import module`, and the command tree's
    # modules named in COMMANDS are all seen.
    assert "node.service" in modules["node.cli.node"]
    assert "node.cli.backup" in modules["node.cli.node"]
    assert "node.cli.bench" in modules["node.cli.main"]


def test_no_import_circle_among_modules(graph: dict[str, set[str]]) -> None:
    assert _circles(graph) == []


def test_no_import_circle_among_packages(graph: dict[str, set[str]]) -> None:
    assert _circles(_package_graph(graph)) == []


def test_the_ippc_contract_depends_on_neither_side(graph: dict[str, set[str]]) -> None:
    used = {t for s, ts in graph.items() if _unit(s) == CONTRACT for t in ts}
    assert {t for t in used if _unit(t) != CONTRACT} <= CONTRACT_MAY_IMPORT
    # Both sides use it: the hub serves it, the node's hub client calls it.
    users = {_unit(s) for s in _importers(graph, CONTRACT)}
    assert {"node.hub", "node.transport"} <= users


def test_the_command_tree_is_imported_by_no_command(graph: dict[str, set[str]]) -> None:
    assert _importers(graph, "node.cli.main") == {}
    assert _importers(graph, "node.cli") == {}
    assert set(_importers(graph, "registry.cli")) <= {"node.cli.main"}


def test_benchmarks_are_used_only_by_their_command(graph: dict[str, set[str]]) -> None:
    users = set(_importers(graph, "node.bench"))
    assert users <= {"node.cli.bench"}
    assert "node.cli.bench" in users
