"""The node's store: SQLAlchemy async over SQLite (WAL) by default, PostgreSQL in production.

Everything that must not be lost or doubled happens in one transaction: a submitted
message and its outbox row; a received message and the receipt that answers it. The
outbox is claimed with leases (UPDATE ... RETURNING, with SKIP LOCKED on PostgreSQL),
so a worker that dies mid-delivery leaves nothing stuck: its lease runs out and the
message goes again, and the receiver answers a repeated id with the original receipt.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from node.errors import EphytoError, InputError
from node.store.schema import events, messages, outbox

Direction = Literal["out", "in"]
ErrorKind = Literal["transient", "permanent"]


class StoreError(EphytoError):
    """The database failed or is not what the node expects (check the database URL)."""


class ReplayError(InputError):
    """A message id that was already received, now with different content."""


class NotFoundError(InputError):
    """No such message in the store."""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to store: what the envelope header says, and the certificate bytes."""

    message_id: str
    sender: str
    recipient: str
    certificate_number: str
    certificate_type: str
    certificate_status: str
    content_digest: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as stored, with its delivery state."""

    id: int
    direction: Direction
    message_id: str
    sender: str
    recipient: str
    certificate_number: str
    certificate_type: str
    certificate_status: str
    content_digest: str
    payload: bytes
    state: str
    route: str | None
    outcome: str | None
    receipt: bytes | None
    created_at: datetime
    settled_at: datetime | None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An outbound message a worker has claimed, with its delivery history so far."""

    message: StoredMessage
    destination: str
    attempts: int
    claimed_until: datetime


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a message's history."""

    at: datetime
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Received:
    """The answer to an inbound message: its receipt, and whether it was a repeat."""

    message: int
    receipt: bytes
    duplicate: bool


_MIGRATIONS = Path(__file__).with_name("migrations")


class Store:
    """The node's database. Open with `Store.open(url)`, then `await store.migrate()`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # SQLite has one writer at a time; a second connection that tries to write waits
        # in SQLite's busy handler, which sleeps in steps of up to 100 ms. Queueing the
        # writers here instead costs nothing and keeps the exchange fast under load.
        self._sqlite_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @classmethod
    def open(cls, url: str) -> Store:
        """A store on `url` (sqlite+aiosqlite:///path.db or postgresql+asyncpg://...)."""
        try:
            engine = create_async_engine(url)
        except (SQLAlchemyError, ImportError, ValueError) as e:
            raise StoreError(f"cannot open database {_redacted(url)}: {e}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        async with self._engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self._engine.dispose()

    async def submit(self, new: NewMessage, *, now: datetime) -> int:
        """Store an outbound message and queue it, atomically; returns its store id."""
        async with self._begin() as conn:
            pk = await self._insert_message(conn, "out", new, state="queued", now=now)
            await conn.execute(
                insert(outbox).values(
                    message=pk, destination=new.recipient, attempts=0, next_attempt_at=now
                )
            )
            await _event(conn, pk, now, "submitted", {"to": new.recipient})
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
            .returning(outbox.c.message, outbox.c.destination, outbox.c.attempts)
        )
        async with self._begin() as conn:
            claimed = (await conn.execute(claim)).all()
            if not claimed:
                return []
            rows = await conn.execute(
                select(messages).where(messages.c.id.in_([row.message for row in claimed]))
            )
            by_id = {row.id: _message(row) for row in rows}
        return sorted(
            (
                OutboxItem(by_id[row.message], row.destination, row.attempts, now + lease)
                for row in claimed
            ),
            key=lambda item: item.message.id,
        )

    async def release_claims(self) -> int:
        """Release every outbox claim; returns how many there were.

        Only for a node starting up: a node's store has one worker process, so any claim
        found then was left by a process that died mid-delivery. Waiting for its lease
        would hold those messages back for minutes for nothing; the receiver dedups a
        delivery that did get through. (Several hub processes sharing one database must
        not do this: their claims are live.)
        """
        async with self._begin() as conn:
            result = await conn.execute(
                update(outbox).where(outbox.c.claimed_until.is_not(None)).values(claimed_until=None)
            )
        return int(result.rowcount)

    async def reschedule(
        self, message: int, *, now: datetime, next_attempt_at: datetime, error: str
    ) -> None:
        """A transient failure: count the attempt, release the claim, try again later."""
        async with self._begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.message == message)
                .values(
                    attempts=outbox.c.attempts + 1,
                    next_attempt_at=next_attempt_at,
                    claimed_until=None,
                    last_error=error,
                    last_error_kind="transient",
                )
            )
            await _event(
                conn, message, now, "retry", {"error": error, "next": next_attempt_at.isoformat()}
            )

    async def fail(self, message: int, *, now: datetime, error: str) -> None:
        """A permanent failure: stop trying and say why."""
        async with self._begin() as conn:
            await conn.execute(outbox.delete().where(outbox.c.message == message))
            await conn.execute(
                update(messages)
                .where(messages.c.id == message)
                .values(state="failed", settled_at=now)
            )
            await _event(conn, message, now, "failed", {"error": error})

    async def delivered(
        self, message: int, *, now: datetime, route: str, outcome: str, receipt: bytes
    ) -> int:
        """The partner's verified receipt arrived: settle the message.

        The partner is evidently up, so the other messages waiting for it in backoff
        become due now instead of at their backed-off times; returns how many woke.
        """
        async with self._begin() as conn:
            destination = (
                await conn.execute(select(outbox.c.destination).where(outbox.c.message == message))
            ).scalar_one_or_none()
            await conn.execute(outbox.delete().where(outbox.c.message == message))
            woken = 0
            if destination is not None:
                woken = (
                    await conn.execute(
                        update(outbox)
                        .where(
                            outbox.c.destination == destination,
                            outbox.c.next_attempt_at > now,
                            or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
                        )
                        .values(next_attempt_at=now)
                    )
                ).rowcount
            await conn.execute(
                update(messages)
                .where(messages.c.id == message)
                .values(
                    state="delivered", route=route, outcome=outcome, receipt=receipt, settled_at=now
                )
            )
            await _event(conn, message, now, "delivered", {"route": route, "outcome": outcome})
        return woken

    async def receive(
        self, new: NewMessage, *, now: datetime, make_receipt: Callable[[], tuple[str, bytes]]
    ) -> Received:
        """Store an inbound message once; a repeat gets the original receipt back.

        `make_receipt` returns (outcome, signed receipt bytes); it runs only for a new
        message. The same id from the same sender with other content is a ReplayError.
        """
        async with self._begin() as conn:
            existing = await self._inbound(conn, new)
            if existing is not None:
                return existing
            outcome, receipt = make_receipt()
            try:
                async with conn.begin_nested():
                    pk = await self._insert_message(
                        conn,
                        "in",
                        new,
                        state="received",
                        now=now,
                        outcome=outcome,
                        receipt=receipt,
                    )
            except IntegrityError:
                # Another delivery of the same message won the race: answer as it did.
                raced = await self._inbound(conn, new)
                if raced is None:
                    raise
                return raced
            await _event(conn, pk, now, "received", {"from": new.sender, "outcome": outcome})
        return Received(pk, receipt, duplicate=False)

    async def message(self, pk: int) -> StoredMessage:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(messages).where(messages.c.id == pk))).first()
        if row is None:
            raise NotFoundError(f"no message {pk} in the store")
        return _message(row)

    async def messages(
        self, direction: Direction, *, limit: int = 100, offset: int = 0
    ) -> list[StoredMessage]:
        query = (
            select(messages)
            .where(messages.c.direction == direction)
            .order_by(messages.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self._engine.connect() as conn:
            return [_message(row) for row in await conn.execute(query)]

    async def history(self, direction: Direction, certificate_number: str) -> list[StoredMessage]:
        """Every message on one certificate number, oldest first."""
        query = (
            select(messages)
            .where(
                messages.c.direction == direction,
                messages.c.certificate_number == certificate_number,
            )
            .order_by(messages.c.id)
        )
        async with self._engine.connect() as conn:
            return [_message(row) for row in await conn.execute(query)]

    async def events(self, pk: int) -> list[Event]:
        query = select(events).where(events.c.message == pk).order_by(events.c.id)
        async with self._engine.connect() as conn:
            return [Event(r.at, r.kind, json.loads(r.detail)) for r in await conn.execute(query)]

    async def add_event(self, pk: int, *, now: datetime, kind: str, detail: dict[str, Any]) -> None:
        async with self._begin() as conn:
            await _event(conn, pk, now, kind, detail)

    async def pending_count(self) -> int:
        async with self._engine.connect() as conn:
            rows: Sequence[Any] = (await conn.execute(select(outbox.c.message))).all()
        return len(rows)

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (one at a time on SQLite, see __init__)."""
        if self._sqlite_writer is None:
            async with self._engine.begin() as conn:
                yield conn
            return
        async with self._sqlite_writer, self._engine.begin() as conn:
            yield conn

    async def _insert_message(
        self,
        conn: AsyncConnection,
        direction: Direction,
        new: NewMessage,
        *,
        state: str,
        now: datetime,
        outcome: str | None = None,
        receipt: bytes | None = None,
    ) -> int:
        result = await conn.execute(
            insert(messages)
            .values(
                direction=direction,
                message_id=new.message_id,
                sender=new.sender,
                recipient=new.recipient,
                certificate_number=new.certificate_number,
                certificate_type=new.certificate_type,
                certificate_status=new.certificate_status,
                content_digest=new.content_digest,
                payload=new.payload,
                state=state,
                outcome=outcome,
                receipt=receipt,
                created_at=now,
            )
            .returning(messages.c.id)
        )
        return int(result.scalar_one())

    async def _inbound(self, conn: AsyncConnection, new: NewMessage) -> Received | None:
        row = (
            await conn.execute(
                select(messages.c.id, messages.c.content_digest, messages.c.receipt).where(
                    messages.c.direction == "in",
                    messages.c.sender == new.sender,
                    messages.c.message_id == new.message_id,
                )
            )
        ).first()
        if row is None:
            return None
        if row.content_digest != new.content_digest:
            raise ReplayError(
                f"message {new.message_id} from {new.sender} was already received "
                "with different content"
            )
        return Received(row.id, row.receipt or b"", duplicate=True)


def _message(row: Any) -> StoredMessage:
    return StoredMessage(
        id=row.id,
        direction=row.direction,
        message_id=row.message_id,
        sender=row.sender,
        recipient=row.recipient,
        certificate_number=row.certificate_number,
        certificate_type=row.certificate_type,
        certificate_status=row.certificate_status,
        content_digest=row.content_digest,
        payload=row.payload,
        state=row.state,
        route=row.route,
        outcome=row.outcome,
        receipt=row.receipt,
        created_at=row.created_at,
        settled_at=row.settled_at,
    )


async def _event(
    conn: AsyncConnection, pk: int, now: datetime, kind: str, detail: dict[str, Any]
) -> None:
    await conn.execute(
        insert(events).values(
            message=pk, at=now, kind=kind, detail=json.dumps(detail, sort_keys=True)
        )
    )


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (the API) run beside the outbox writer; synchronous=FULL makes a
    # committed transaction survive power loss, which "nothing lost" needs.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _redacted(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
