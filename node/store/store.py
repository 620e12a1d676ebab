"""The node's store: SQLAlchemy async over SQLite (WAL) by default, PostgreSQL in production.

Everything that must not be lost or doubled happens in one transaction: a submitted
message and its outbox row; a received message and the receipt that answers it. The
outbox is claimed with leases (UPDATE ... RETURNING, with SKIP LOCKED on PostgreSQL),
so a worker that dies mid-delivery leaves nothing stuck: its lease runs out and the
message goes again, and the receiver answers a repeated id with the original receipt.

Writes are group-committed (node/store/writes.py): callers queue them, one writer task
applies everything queued in one transaction, and each caller's await returns only once
that transaction has committed. Durability per caller is unchanged; the cost of a
commit is shared.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Row, Select, inspect, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from node.errors import InputError
from node.store import writes
from node.store.database import Database, StoreError
from node.store.feed import FeedEvent, read_feed
from node.store.links import Lifecycle, Link, Supersedes, read_lifecycle
from node.store.schema import events, idempotency, messages, outbox
from node.store.writes import (
    Answer,
    DuplicateError,
    Existing,
    KeyReuseError,
    NewMessage,
    Received,
    Remember,
    ReplayError,
)

__all__ = [
    "Answer",
    "DuplicateError",
    "Event",
    "Existing",
    "FeedEvent",
    "KeyReuseError",
    "Lifecycle",
    "Link",
    "MessageSummary",
    "NewMessage",
    "NotFoundError",
    "OutboxItem",
    "Received",
    "Remember",
    "ReplayError",
    "Store",
    "StoreError",
    "StoredMessage",
    "Supersedes",
    "queued",
]

Direction = Literal["out", "in"]
ErrorKind = Literal["transient", "permanent"]


class NotFoundError(InputError):
    """No such message in the store."""


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
    kind: str = "certificate"  # or "response" (node/envelope/response.py)
    answers: int | None = None  # a response: the certificate message it answers


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """A message's header and delivery state, without its payload and receipt: what a
    listing shows, at a fraction of the cost of reading whole certificates."""

    id: int
    direction: Direction
    message_id: str
    sender: str
    recipient: str
    certificate_number: str
    certificate_type: str
    certificate_status: str
    state: str
    route: str | None
    outcome: str | None
    created_at: datetime
    settled_at: datetime | None


_SUMMARY_COLUMNS = [getattr(messages.c, f) for f in MessageSummary.__dataclass_fields__]


def queued(pk: int, new: NewMessage, now: datetime) -> StoredMessage:
    """What `Store.submit` stored, without reading it back."""
    return StoredMessage(
        id=pk,
        direction="out",
        message_id=new.message_id,
        sender=new.sender,
        recipient=new.recipient,
        certificate_number=new.certificate_number,
        certificate_type=new.certificate_type,
        certificate_status=new.certificate_status,
        content_digest=new.content_digest,
        payload=new.payload,
        state="queued",
        route=None,
        outcome=None,
        receipt=None,
        created_at=now,
        settled_at=None,
        kind=new.kind,
        answers=new.answers,
    )


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An outbound message a worker has claimed, with its delivery history so far."""

    message: StoredMessage
    destination: str
    attempts: int
    claimed_until: datetime
    hub_tracking: str | None = None  # the hub has it: track, do not send again


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a message's history."""

    at: datetime
    kind: str
    detail: dict[str, Any]
    client: str | None = None  # the named API client whose call wrote it


_MIGRATIONS = Path(__file__).with_name("migrations")


class Store:
    """The node's database. Open with `Store.open(url)`, then `await store.migrate()`."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._queued: list[tuple[writes.Write, asyncio.Future[object]]] = []
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, url: str) -> Store:
        """A store on `url` (sqlite:///path.db or postgresql+asyncpg://...)."""
        return cls(Database.open(url))

    @property
    def dialect(self) -> str:
        return self._db.dialect

    @property
    def name(self) -> str:
        """The SQLite file, or the URL without its password: what messages name."""
        return self._db.name

    @property
    def empty_file(self) -> bool:
        """A SQLite file that is missing or has 0 bytes (never a PostgreSQL database)."""
        return self._db.empty_file

    async def check(self) -> None:
        """Before migrating: StoreDamagedError if the SQLite file is damaged."""
        await self._db.check()

    async def holds_messages(self) -> bool:
        """Whether any message is stored; False before the first migration too."""

        def any_message(conn: Connection) -> bool:
            if not inspect(conn).has_table(messages.name):
                return False
            return conn.execute(select(messages.c.id).limit(1)).first() is not None

        try:
            return await self._db.read(any_message)
        except SQLAlchemyError as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise StoreError(f"{self.name}: cannot read the store: {first}") from e

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        try:
            await self._db.migrate(_MIGRATIONS)
        except SQLAlchemyError as e:
            raise StoreError(f"cannot migrate the store: {e}") from e

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.shield(self._writer)
        await self._db.close()

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
        return None if row is None else _message(row)

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
        return None if row is None else _message(row)

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
                outbox.c.message, outbox.c.destination, outbox.c.attempts, outbox.c.hub_tracking
            )
        )

        def claim_rows(conn: Connection) -> list[OutboxItem]:
            claimed = conn.execute(claim).all()
            if not claimed:
                return []
            rows = conn.execute(
                select(messages).where(messages.c.id.in_([row.message for row in claimed]))
            )
            by_id = {row.id: _message(row) for row in rows}
            return sorted(
                (
                    OutboxItem(
                        by_id[row.message],
                        row.destination,
                        row.attempts,
                        now + lease,
                        row.hub_tracking,
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

    async def receive(
        self,
        new: NewMessage,
        *,
        now: datetime,
        make_receipt: Callable[[], tuple[str, bytes]],
        supersedes: Supersedes | None = None,
        responded: dict[str, Any] | None = None,
    ) -> Received:
        """Store an inbound message once; a repeat gets the original receipt back.

        `make_receipt` returns (outcome, signed receipt bytes); it runs only for a new
        message. The same id from the same sender with other content is a ReplayError.
        `supersedes`: what the message withdraws or replaces, linked in the same
        transaction (node.store.links). `responded`: for a response (`new.kind`), the
        detail of the `responded` event written on the certificate it answers
        (`new.answers`), in the same transaction.
        """
        received = await self._write(writes.Receive(new, now, make_receipt, supersedes, responded))
        assert isinstance(received, Received)
        return received

    async def message(self, pk: int) -> StoredMessage:
        query = select(messages).where(messages.c.id == pk)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            raise NotFoundError(f"no message {pk} in the store")
        return _message(row)

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
        return [_message(row) for row in await self._rows(query)]

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
        return [_message(row) for row in await self._rows(query)]

    async def lifecycle(self, pk: int) -> Lifecycle:
        """Where message `pk`'s certificate stands (issued, withdrawn, replaced and by
        what), and what the message itself withdraws or replaces. NotFoundError if none."""
        found = await self._db.read(functools.partial(read_lifecycle, pk=pk))
        if found is None:
            raise NotFoundError(f"no message {pk} in the store")
        return found

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

    async def pending_count(self) -> int:
        return len(await self._rows(select(outbox.c.message)))

    async def _rows(self, query: Select[Any]) -> Sequence[Row[Any]]:
        def rows(conn: Connection) -> Sequence[Row[Any]]:
            return conn.execute(query).all()

        return await self._db.read(rows)

    async def _write(self, write: writes.Write) -> object:
        """Queue `write` for the next group commit; its result once that has committed."""
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._queued.append((write, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_queued())
        # Shielded: a caller that gives up (a closed HTTP request) does not cancel the
        # transaction that carries other callers' writes too.
        result = await asyncio.shield(done)
        if isinstance(result, BaseException):
            raise result
        return result

    async def _write_queued(self) -> None:
        """Commit everything queued, batch after batch, until the queue is empty."""
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                results = await self._db.write(
                    functools.partial(writes.apply, writes=[write for write, _ in batch])
                )
            except Exception as e:
                if len(batch) == 1:
                    _settle(batch[0][1], e)
                    continue
                # One bad write must not fail the others queued with it: each alone.
                await self._write_one_by_one(batch)
                continue
            for (_, done), result in zip(batch, results, strict=True):
                _settle(done, result)

    async def _write_one_by_one(
        self, batch: list[tuple[writes.Write, asyncio.Future[object]]]
    ) -> None:
        for write, done in batch:
            # A second try covers a concurrent writer (another process on PostgreSQL)
            # that stored the same inbound message first: the retry finds it.
            for attempt in (1, 2):
                try:
                    (result,) = await self._db.write(
                        functools.partial(writes.apply, writes=[write])
                    )
                except IntegrityError as e:
                    # A kept key or a received message another process wrote first.
                    retried = isinstance(write, writes.Receive | writes.RememberAnswer) or (
                        isinstance(write, writes.Submit) and write.remember is not None
                    )
                    if attempt == 2 or not retried:
                        _settle(done, e)
                        break
                    continue
                except Exception as e:
                    _settle(done, e)
                    break
                _settle(done, result)
                break


def _settle(done: asyncio.Future[object], result: object) -> None:
    if not done.done():
        done.set_result(result)


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
        kind=row.kind,
        answers=row.answers,
    )
