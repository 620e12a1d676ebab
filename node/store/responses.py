"""The importing country's responses: submitted, and what they answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from node.store import writes
from node.store.base import StoreBase
from node.store.records import Answer, NewMessage, Remember, StoredMessage, message_from_row
from node.store.schema import messages


class ResponsesStore(StoreBase):
    """Responses sent, and the certificates they answer."""

    async def submit_response(
        self,
        new: NewMessage,
        *,
        now: datetime,
        responded: dict[str, Any],
        remember: Remember | None = None,
        client: str | None = None,
    ) -> int | Answer:
        """Store an outbound response (`new.kind` "response", `new.answers` the received
        certificate it answers) and queue it, with a `responded` event on that
        certificate, in one transaction; a key in `remember` seen before: its Answer."""
        result = await self._write(
            writes.Submit(new, now, remember=remember, client=client, responded=responded)
        )
        assert isinstance(result, int | Answer)
        return result

    async def response_to(self, pk: int) -> StoredMessage | None:
        """The newest response answering message `pk` that has not failed, if any."""
        query = (
            select(messages)
            .where(
                messages.c.answers == pk,
                messages.c.kind == "response",
                messages.c.state != "failed",
            )
            .order_by(messages.c.id.desc())
            .limit(1)
        )
        row = await self._db.read(lambda conn: conn.execute(query).first())
        return None if row is None else message_from_row(row)

    async def sent_certificate(self, *, message_id: str, recipient: str) -> StoredMessage | None:
        """The certificate this node sent to `recipient` under `message_id`, if any: what
        a response from that country may answer."""
        query = select(messages).where(
            messages.c.direction == "out",
            messages.c.kind == "certificate",
            messages.c.recipient == recipient,
            messages.c.message_id == message_id,
        )
        row = await self._db.read(lambda conn: conn.execute(query).first())
        return None if row is None else message_from_row(row)

    async def sent_certificate_numbered(
        self, *, certificate_number: str, recipient: str
    ) -> StoredMessage | None:
        """The newest certificate this node sent to `recipient` under
        `certificate_number`: what an SPSAcknowledgement answers (it names no message)."""
        query = (
            select(messages)
            .where(
                messages.c.direction == "out",
                messages.c.kind == "certificate",
                messages.c.recipient == recipient,
                messages.c.certificate_number == certificate_number,
            )
            .order_by(messages.c.id.desc())
            .limit(1)
        )
        row = await self._db.read(lambda conn: conn.execute(query).first())
        return None if row is None else message_from_row(row)
