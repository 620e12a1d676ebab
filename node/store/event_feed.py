"""Messages' histories and the event feed."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select

from node.store import writes
from node.store.base import StoreBase
from node.store.feed import FeedEvent, read_feed
from node.store.records import Event
from node.store.schema import events


class EventsStore(StoreBase):
    """A message's events, the feed of everyone's, and an event added."""

    async def events(self, pk: int) -> list[Event]:
        query = select(events).where(events.c.message == pk).order_by(events.c.id)
        return [
            Event(r.at, r.kind, json.loads(r.detail), r.client) for r in await self._rows(query)
        ]

    async def feed(self, *, after: int, limit: int) -> list[FeedEvent]:
        """Every message's events with an id greater than `after`, oldest first
        (node.store.feed: ids commit in order, so none is ever skipped)."""
        found: list[FeedEvent] = await self._db.read(
            functools.partial(read_feed, after=after, limit=limit)
        )
        return found

    async def add_event(self, pk: int, *, now: datetime, kind: str, detail: dict[str, Any]) -> None:
        await self._write(writes.AddEvent(pk, now, kind, detail))
