"""What health checks and log tailers need of any store, node's or hub's (shell helpers).

`probe_writable` tells whether the database takes a write now (read-only, full, locked):
it writes one row in a transaction and rolls it back, so nothing stays. `event_detail`
reads an event's stored JSON detail leniently: a row written by an older version, or
damaged, gives an empty detail rather than stopping the log.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import Executable

from node.store.database import Database


class _ProbeRollback(Exception):
    """Raised inside the probe's transaction so that it rolls back."""


async def probe_writable(db: Database, statement: Executable) -> None:
    """Execute `statement` (an insert of a harmless row) in a write transaction and roll
    it back: raises what the database raises when it cannot be written now."""

    def probe(conn: Connection) -> None:
        conn.execute(statement)
        raise _ProbeRollback

    try:
        await db.write(probe)
    except _ProbeRollback:
        return


def event_detail(text: str) -> dict[str, Any]:
    """An event's detail: its JSON object, or {} for anything else."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
