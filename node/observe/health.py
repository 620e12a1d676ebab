"""The readiness verdict (pure): a process is ready when every one of its checks passes.

`/health/ready` answers 200 with the checks when all pass, 503 with them (the failing
ones saying why) otherwise, so a load balancer and an operator read the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness check: its name, whether it passed, and a line saying what it saw."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Readiness:
    """The verdict over a set of checks, as `/health/ready` answers it."""

    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def status(self) -> int:
        return 200 if self.ready else 503

    @property
    def failing(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.ok)

    def to_plain(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in self.checks},
            "failing": [c.name for c in self.failing],
        }


def readiness(checks: Iterable[Check]) -> Readiness:
    """The verdict over `checks` (none at all: ready)."""
    return Readiness(tuple(checks))
