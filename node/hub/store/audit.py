"""The audit trail: the event row every concern writes, and reading the trail back."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from node.hub.records import HubEvent
from node.hub.schema import events
from node.hub.store.base import HubStoreBase

EVENT_COLUMNS = tuple(c.name for c in events.c if c.name != "id")
INSERT_EVENT = insert(events)


class AuditStore(HubStoreBase):
    """Reads the hub's events."""

    async def events(
        self, *, tracking_number: str | None = None, nppo: str | None = None, limit: int = 1000
    ) -> list[HubEvent]:
        """The audit trail, oldest first, for one envelope or one NPPO (or everything)."""
        query = select(events).order_by(events.c.id).limit(limit)
        if tracking_number is not None:
            query = query.where(events.c.tracking_number == tracking_number)
        if nppo is not None:
            query = query.where(events.c.nppo == nppo)
        return await self._read(
            lambda conn: [
                HubEvent(r.at, r.kind, r.tracking_number, r.nppo, json.loads(r.detail))
                for r in conn.execute(query)
            ]
        )


def event_row(
    now: datetime, kind: str, tracking: str | None, nppo: str | None, detail: dict[str, Any]
) -> dict[str, Any]:
    """One event row, the parameters of `INSERT_EVENT`."""
    return {
        "at": now,
        "kind": kind,
        "tracking_number": tracking,
        "nppo": nppo,
        "detail": json.dumps(detail, sort_keys=True),
    }
