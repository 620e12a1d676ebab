"""The IPPC contract stays pure: the architecture test's forbidden imports, checked on node/ippc."""

from __future__ import annotations

from pathlib import Path

import node.ippc
from tests.unit.test_architecture import FORBIDDEN, _imports


def test_soap_core_is_free_of_io_libraries() -> None:
    files = list(Path(node.ippc.__file__).parent.rglob("*.py"))
    assert files
    offenders = {f.name: sorted(_imports(f) & (FORBIDDEN | {"zeep"})) for f in files}
    assert {f: bad for f, bad in offenders.items() if bad} == {}
