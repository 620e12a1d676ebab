"""Reading messages: one, a page of them, their summaries, a certificate's history and
lifecycle."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from node.store.base import StoreBase
from node.store.links import Lifecycle, read_lifecycle
from node.store.records import (
    Direction,
    MessageSummary,
    NotFoundError,
    StoredMessage,
    message_from_row,
)
from node.store.schema import messages

_SUMMARY_COLUMNS = [getattr(messages.c, f) for f in MessageSummary.__dataclass_fields__]


class ReadingStore(StoreBase):
    """The stored messages, as the API and the web pages list them."""

    async def message(self, pk: int) -> StoredMessage:
        query = select(messages).where(messages.c.id == pk)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            raise NotFoundError(f"no message {pk} in the store")
        return message_from_row(row)

    async def messages(
        self, direction: Direction, *, limit: int = 100, offset: int = 0
    ) -> list[StoredMessage]:
        query = (
            select(messages)
            .where(messages.c.direction == direction, messages.c.kind == "certificate")
            .order_by(messages.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [message_from_row(row) for row in await self._rows(query)]

    async def summaries(
        self, direction: Direction, *, limit: int = 100, offset: int = 0
    ) -> list[MessageSummary]:
        """Newest first, like `messages`, without payloads and receipts."""
        query = (
            select(*_SUMMARY_COLUMNS)
            .where(messages.c.direction == direction, messages.c.kind == "certificate")
            .order_by(messages.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows: Sequence[Any] = await self._rows(query)
        return [MessageSummary(*row) for row in rows]

    async def history(self, direction: Direction, certificate_number: str) -> list[StoredMessage]:
        """Every message on one certificate number, oldest first."""
        query = (
            select(messages)
            .where(
                messages.c.direction == direction,
                messages.c.certificate_number == certificate_number,
                messages.c.kind == "certificate",
            )
            .order_by(messages.c.id)
        )
        return [message_from_row(row) for row in await self._rows(query)]

    async def lifecycle(self, pk: int) -> Lifecycle:
        """Where message `pk`'s certificate stands (issued, withdrawn, replaced and by
        what), and what the message itself withdraws or replaces. NotFoundError if none."""
        found = await self._db.read(functools.partial(read_lifecycle, pk=pk))
        if found is None:
            raise NotFoundError(f"no message {pk} in the store")
        return found
