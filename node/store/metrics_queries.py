"""Read-only queries for logs, metrics and health (node.observe), and the store's
writability probe: the events after a cursor with their messages, the outbox's depth and
oldest entry, and whether a write can start now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from node.store.base import StoreBase
from node.store.observing import event_detail, probe_writable
from node.store.schema import events, messages, outbox, webhooks

# The row the writability probe inserts and rolls back; no API client has this name
# (client names are checked as identifiers, node/identity/api_clients.py).
_PROBE_CLIENT = " health probe "


@dataclass(frozen=True, slots=True)
class TailedEvent:
    """One event with the message it belongs to."""

    id: int
    at: datetime
    kind: str
    detail: dict[str, Any]
    direction: str
    message_kind: str
    certificate_number: str
    message_id: str
    sender: str
    recipient: str
    route: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxSummary:
    """How many messages wait in the outbox, and when the oldest of them was created."""

    depth: int
    oldest_created_at: datetime | None


class MetricsQueries(StoreBase):
    """What the observer reads, and its probe; nothing here changes what is stored."""

    async def last_event_id(self) -> int:
        """The newest event's id (0 when there is none)."""
        rows = await self._rows(select(func.max(events.c.id)))
        return int(rows[0][0] or 0)

    async def events_after(self, after: int, *, limit: int) -> list[TailedEvent]:
        """Up to `limit` events with an id greater than `after`, oldest first."""
        query = (
            select(
                events.c.id, events.c.at, events.c.kind, events.c.detail, messages.c.direction,
                messages.c.kind.label("message_kind"), messages.c.certificate_number,
                messages.c.message_id, messages.c.sender, messages.c.recipient,
                messages.c.route, messages.c.created_at,
            )
            .join(messages, messages.c.id == events.c.message)
            .where(events.c.id > after)
            .order_by(events.c.id)
            .limit(limit)
        )  # fmt: skip
        return [
            TailedEvent(
                id=r.id, at=r.at, kind=r.kind, detail=event_detail(r.detail), direction=r.direction,
                message_kind=r.message_kind, certificate_number=r.certificate_number,
                message_id=r.message_id, sender=r.sender, recipient=r.recipient, route=r.route,
                created_at=r.created_at,
            )
            for r in await self._rows(query)
        ]  # fmt: skip

    async def outbox_summary(self) -> OutboxSummary:
        """The outbox's depth and its oldest message's creation time."""

        def summary(conn: Connection) -> OutboxSummary:
            row = conn.execute(
                select(func.count(), func.min(messages.c.created_at)).select_from(
                    outbox.join(messages, messages.c.id == outbox.c.message)
                )
            ).one()
            return OutboxSummary(int(row[0] or 0), row[1])

        found: OutboxSummary = await self._db.read(summary)
        return found

    async def probe_writable(self) -> None:
        """Start a write transaction, write one row, roll it back: raises what the
        database raises when it cannot be written now (read-only, full, locked)."""
        await probe_writable(
            self._db, insert(webhooks).values(client=_PROBE_CLIENT, cursor=0, attempts=0)
        )
