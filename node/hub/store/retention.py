"""Retention: envelopes nobody settled in time fail, and their content is deleted."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, update

from node.hub.records import EXPIRED_MESSAGE, PENDING
from node.hub.schema import envelopes
from node.hub.store.audit import INSERT_EVENT, event_row
from node.hub.store.base import HubStoreBase, aware


class RetentionStore(HubStoreBase):
    """Expires envelopes pending for too long."""

    async def expire(self, now: datetime, max_age: timedelta) -> list[str]:
        """Fail the envelopes pending for longer than `max_age` and delete their content."""
        aware(now)
        if max_age <= timedelta(0):
            raise ValueError("max_age must be positive")

        def work(conn: Connection) -> list[str]:
            rows = conn.execute(
                update(envelopes)
                .where(envelopes.c.state == PENDING, envelopes.c.created_at < now - max_age)
                .values(
                    state="FailedDelivery",
                    message=EXPIRED_MESSAGE,
                    content=None,
                    dedup_key=None,
                    settled_at=now,
                    push_claimed_until=None,
                )
                .returning(envelopes.c.tracking_number, envelopes.c.sender)
            ).all()
            if rows:
                conn.execute(
                    INSERT_EVENT,
                    [event_row(now, "expired", r.tracking_number, r.sender, {}) for r in rows],
                )
            return sorted(r.tracking_number for r in rows)

        return await self._write(work)
