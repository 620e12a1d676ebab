"""Submitting once: Idempotency-Keys and their kept answers, and duplicate certificates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from node.store import writes
from node.store.base import StoreBase
from node.store.records import Answer, Existing, NewMessage, Remember
from node.store.schema import idempotency


class OnceStore(StoreBase):
    """`submit_once` and the answers kept for Idempotency-Keys."""

    async def submit_once(
        self,
        new: NewMessage,
        *,
        now: datetime,
        lifecycle: dict[str, Any] | None = None,
        remember: Remember | None = None,
        client: str | None = None,
    ) -> int | Answer | Existing:
        """`submit`, unless it repeats what is stored, judged in the same transaction.

        A key in `remember` seen before: its Answer (KeyReuseError for another request);
        else the same certificate number and status already sent and not failed:
        Existing for the same content, DuplicateError (naming it) for other content.
        A new message's key is kept with it, in its transaction. `client`: the named
        API client submitting it, recorded on its events.
        """
        result = await self._write(
            writes.Submit(new, now, lifecycle, remember=remember, once=True, client=client)
        )
        assert isinstance(result, int | Answer | Existing)
        return result

    async def kept_answer(
        self, client: str, key: str, *, now: datetime
    ) -> tuple[str, Answer] | None:
        """The fingerprint and Answer kept for `key` from `client` within KEY_TTL, if any."""
        query = select(idempotency).where(
            idempotency.c.client == client,
            idempotency.c.key == key,
            idempotency.c.created_at >= now - writes.KEY_TTL,
        )
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            return None
        return row.fingerprint, Answer(row.status, row.body, row.location, row.message)

    async def remember(self, remember: Remember, *, message: int, now: datetime) -> Answer:
        """Keep the answer for a key that created no message; the Answer kept first if
        the key is already there (KeyReuseError when for another request)."""
        answer = await self._write(writes.RememberAnswer(remember, message, now))
        assert isinstance(answer, Answer)
        return answer
