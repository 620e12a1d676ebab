"""The event feed: every message's events after a given event id, in commit order.

Event ids commit in id order on both databases: SQLite has one writer at a time, and
on PostgreSQL the events of a transaction are inserted under a lock held until it
commits (node.store.writes.apply). So whatever a reader sees is a prefix of the ids
that will ever exist (gaps are rolled-back transactions, never late commits), and a
reader that resumes after the last id it saw misses nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from node.store.schema import events, messages


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One event with the message it belongs to, as the feed shows it."""

    id: int
    message: int
    direction: str  # "out" or "in"
    certificate_number: str
    at: datetime
    kind: str
    detail: dict[str, Any]
    client: str | None


def read_feed(conn: Connection, *, after: int, limit: int) -> list[FeedEvent]:
    """Up to `limit` events with an id greater than `after`, oldest first."""
    rows = conn.execute(
        select(
            events.c.id,
            events.c.message,
            messages.c.direction,
            messages.c.certificate_number,
            events.c.at,
            events.c.kind,
            events.c.detail,
            events.c.client,
        )
        .join(messages, messages.c.id == events.c.message)
        .where(events.c.id > after)
        .order_by(events.c.id)
        .limit(limit)
    )
    return [
        FeedEvent(
            row.id,
            row.message,
            row.direction,
            row.certificate_number,
            row.at,
            row.kind,
            json.loads(row.detail),
            row.client,
        )
        for row in rows
    ]
