"""The pure core never imports the shell's libraries (network, database, discovery)."""

from __future__ import annotations

import ast
from pathlib import Path

import node

CORE = ["certificate", "codelists", "crypto", "directory", "envelope", "outbox"]
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
