"""Outbound messages and the outbox: submit, claim, reschedule, hand to the hub, settle."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, or_, select, update

from node.store import writes
from node.store.base import StoreBase
from node.store.records import NewMessage, OutboxItem, message_from_row
from node.store.schema import messages, outbox


class SendingStore(StoreBase):
    """Outbound messages queued, claimed by the worker, retried and settled."""

    async def submit(
        self, new: NewMessage, *, now: datetime, lifecycle: dict[str, Any] | None = None
    ) -> int:
        """Store an outbound message and queue it, atomically; returns its store id.

        `lifecycle` (what the message withdraws or replaces) goes into its history in
        the same transaction.
        """
        pk = await self._write(writes.Submit(new, now, lifecycle))
        assert isinstance(pk, int)
        return pk

    async def claim_due(self, *, now: datetime, lease: timedelta, limit: int) -> list[OutboxItem]:
        """Claim up to `limit` due outbound messages for `lease`; other workers skip them."""
        due = (
            select(outbox.c.message)
            .where(
                outbox.c.next_attempt_at <= now,
                or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
            )
            .order_by(outbox.c.next_attempt_at, outbox.c.message)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        claim = (
            update(outbox)
            .where(outbox.c.message.in_(due.scalar_subquery()))
            .values(claimed_until=now + lease)
            .returning(
                outbox.c.message,
                outbox.c.destination,
                outbox.c.attempts,
                outbox.c.hub_tracking,
                outbox.c.failing_since,
            )
        )

        def claim_rows(conn: Connection) -> list[OutboxItem]:
            claimed = conn.execute(claim).all()
            if not claimed:
                return []
            rows = conn.execute(
                select(messages).where(messages.c.id.in_([row.message for row in claimed]))
            )
            by_id = {row.id: message_from_row(row) for row in rows}
            return sorted(
                (
                    OutboxItem(
                        by_id[row.message],
                        row.destination,
                        row.attempts,
                        now + lease,
                        row.hub_tracking,
                        row.failing_since,
                    )
                    for row in claimed
                ),
                key=lambda item: item.message.id,
            )

        claimed: list[OutboxItem] = await self._db.write(claim_rows)
        return claimed

    async def release_claims(self) -> int:
        """Release every outbox claim; returns how many there were.

        Only for a node starting up: a node's store has one worker process, so any claim
        found then was left by a process that died mid-delivery. Waiting for its lease
        would hold those messages back for minutes for nothing; the receiver dedups a
        delivery that did get through. (Several hub processes sharing one database must
        not do this: their claims are live.)
        """
        release = (
            update(outbox).where(outbox.c.claimed_until.is_not(None)).values(claimed_until=None)
        )
        released: int = await self._db.write(lambda conn: conn.execute(release).rowcount)
        return released

    async def reschedule(
        self,
        message: int,
        *,
        now: datetime,
        next_attempt_at: datetime,
        error: str,
        forget_hub_tracking: bool = False,
        count_attempt: bool = True,
    ) -> None:
        """A transient failure: count the attempt, release the claim, try again later.

        `forget_hub_tracking`: the hub does not know the message (any more), so it is
        handed over again instead of tracked. `count_attempt` False: the message was held
        back without an attempt (a suspended partner), which counts toward no fallback.
        """
        await self._write(
            writes.Reschedule(
                message, now, next_attempt_at, error, forget_hub_tracking, count_attempt
            )
        )

    async def relayed(
        self, message: int, *, now: datetime, tracking: str, next_check_at: datetime, reason: str
    ) -> None:
        """The hub accepted the message under `tracking`; check on it from `next_check_at`."""
        await self._write(writes.Relayed(message, now, tracking, next_check_at, reason))

    async def recheck(self, message: int, *, next_check_at: datetime) -> None:
        """Still pending at the hub: look again at `next_check_at`."""
        await self._write(writes.Recheck(message, next_check_at))

    async def fail(self, message: int, *, now: datetime, error: str) -> None:
        """A permanent failure: stop trying and say why."""
        await self._write(writes.Fail(message, now, error))

    async def delivered(
        self, message: int, *, now: datetime, route: str, outcome: str, receipt: bytes | None
    ) -> int:
        """The partner's verified receipt arrived: settle the message.

        The partner is evidently up, so the other messages waiting for it in backoff
        become due now instead of at their backed-off times; returns how many woke.
        """
        woken = await self._write(writes.Delivered(message, now, route, outcome, receipt))
        assert isinstance(woken, int)
        return woken

    async def pending_count(self) -> int:
        return len(await self._rows(select(outbox.c.message)))
