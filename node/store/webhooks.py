"""Each API client's webhook: the feed cursor delivered up to, and its backoff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from node.store.base import StoreBase
from node.store.schema import webhooks


@dataclass(frozen=True, slots=True)
class WebhookState:
    """Where a client's webhook stands: every event with an id up to `cursor` was
    delivered; `attempts` failed since, the next not before `next_attempt_at`."""

    cursor: int = 0
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None


class WebhooksStore(StoreBase):
    """The webhooks' cursors and backoff, one row per client that has had a delivery."""

    async def webhook_state(self, client: str) -> WebhookState:
        """Client `client`'s webhook state; from the feed's start before any delivery."""
        query = select(webhooks).where(webhooks.c.client == client)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            return WebhookState()
        return WebhookState(row.cursor, row.attempts, row.next_attempt_at, row.last_error)

    async def webhook_delivered(self, client: str, *, cursor: int) -> None:
        """Events up to `cursor` were taken by the receiver: resume after them."""
        await self._set(client, {"cursor": cursor, "attempts": 0, "next_attempt_at": None,
                                 "last_error": None})  # fmt: skip

    async def webhook_failed(
        self, client: str, *, attempts: int, next_attempt_at: datetime, error: str
    ) -> None:
        """A delivery failed: try again from the same cursor at `next_attempt_at`."""
        await self._set(client, {"attempts": attempts, "next_attempt_at": next_attempt_at,
                                 "last_error": error})  # fmt: skip

    async def _set(self, client: str, values: dict[str, Any]) -> None:
        # One process (the node's scheduler, one run at a time) writes these rows, so
        # update-else-insert in one transaction needs no dialect's upsert.
        def upsert(conn: Connection) -> None:
            changed = conn.execute(
                update(webhooks).where(webhooks.c.client == client).values(**values)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(webhooks).values(
                        {"cursor": 0, "attempts": 0, **values, "client": client}
                    )
                )

        await self._db.write(upsert)
