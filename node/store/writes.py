"""The store's writes, applied many at a time in one transaction (group commit).

Every write the node makes (a submitted message, a received one, a delivery settled, a
retry scheduled, an event) is a value here, and `apply` writes a whole list of them with
a handful of multi-row statements: one INSERT for all new messages, one UPDATE for all
settled ones, one INSERT for all their events. Under load the cost per transaction is
then shared by every message in it. That matters most on SQLite through aiosqlite, where
each statement is a round trip to the driver's thread and back through a busy event
loop: ten statements per message, one message per transaction, held the exchange to
tens of certificates a second (docs/adr/0006-group-commit.md). The functions here are
synchronous: `node.store.database` runs them on SQLite's thread or through asyncpg.

An operation that must be refused (a replay) is refused alone: its result is the
exception, and it writes nothing, while the rest of the batch commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)

from node.errors import InputError
from node.store import links
from node.store.links import Supersedes
from node.store.schema import events, idempotency, messages, outbox

# How long an Idempotency-Key is remembered: a national system retries within minutes;
# a day covers a retry after an outage too. Older keys are purged as new ones are written.
KEY_TTL = timedelta(hours=24)
# The PostgreSQL advisory lock that orders event ids by commit (see `apply`); any
# constant of our own, distinct from the migration lock (node.store.database).
EVENTS_LOCK = 0x65_70_68_79_65_76  # "ephyev"


class ReplayError(InputError):
    """A message id that was already received, now with different content."""


class KeyReuseError(InputError):
    """An Idempotency-Key already used for another request (method, path or body)."""


class DuplicateError(InputError):
    """The certificate number and status were already submitted with other content."""

    def __init__(self, message: str, existing: int) -> None:
        super().__init__(message)
        self.existing = existing


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
    # A response (node/envelope/response.py) and the store id of the certificate it
    # answers; a certificate answers nothing.
    kind: str = "certificate"
    answers: int | None = None


@dataclass(frozen=True, slots=True)
class Received:
    """The answer to an inbound message: its receipt, and whether it was a repeat."""

    message: int
    receipt: bytes
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Remember:
    """An Idempotency-Key to keep with the answer to the request that carried it."""

    client: str
    key: str
    fingerprint: str
    status: int
    answer: Callable[[int], tuple[str, str | None]]  # store id -> (JSON body, Location)


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer kept for an Idempotency-Key: give it again, do nothing else."""

    status: int
    body: str
    location: str | None
    message: int


@dataclass(frozen=True, slots=True)
class Existing:
    """The same certificate number, status and content is already stored: no new message."""

    message: int


@dataclass(frozen=True, slots=True)
class Submit:
    """Store an outbound message and queue it; the result is its store id.

    With `remember`, a key seen before gives its Answer (or a KeyReuseError) instead;
    with `once`, a certificate number and status already sent (and not failed) gives
    Existing for the same content and a DuplicateError for other content.
    """

    new: NewMessage
    now: datetime
    lifecycle: dict[str, Any] | None = None
    remember: Remember | None = None
    once: bool = False
    client: str | None = None  # the named API client that submitted it, for its events
    # A response's `responded` event, written on the certificate it answers.
    responded: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RememberAnswer:
    """Keep an answer for a key that created no message (a duplicate's 200); the result
    is the Answer kept, the one given first if the key is already there."""

    remember: Remember
    message: int
    now: datetime


@dataclass(frozen=True, slots=True)
class Receive:
    """Store an inbound message once; the result is a Received (or a ReplayError).

    `supersedes`: the message withdraws or replaces an earlier certificate of its sender,
    which is then linked to it in the same transaction (`node.store.links`).
    """

    new: NewMessage
    now: datetime
    make_receipt: Callable[[], tuple[str, bytes]]
    supersedes: Supersedes | None = None
    # A response's `responded` event, written on the certificate it answers.
    responded: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Delivered:
    """Settle a delivered message; the result is how many queued messages woke."""

    message: int
    now: datetime
    route: str
    outcome: str
    receipt: bytes | None  # None through a hub, which hands back no signed receipt


@dataclass(frozen=True, slots=True)
class Reschedule:
    """Count a failed attempt and release the claim until `next_attempt_at`."""

    message: int
    now: datetime
    next_attempt_at: datetime
    error: str
    forget_hub_tracking: bool = False  # the hub lost it: hand it over again
    count_attempt: bool = True  # False: held back, nothing was attempted


@dataclass(frozen=True, slots=True)
class Relayed:
    """The hub took the message: track it under `tracking` from `next_check_at` on."""

    message: int
    now: datetime
    tracking: str
    next_check_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Recheck:
    """Still pending at the hub: release the claim until `next_check_at`, quietly (no
    attempt counted, no event: a partner that pulls daily would flood the history)."""

    message: int
    next_check_at: datetime


@dataclass(frozen=True, slots=True)
class Fail:
    """Stop trying a message, and say why."""

    message: int
    now: datetime
    error: str


@dataclass(frozen=True, slots=True)
class AddEvent:
    """Append one entry to a message's history."""

    message: int
    now: datetime
    kind: str
    detail: dict[str, Any]


Write = (
    Submit | RememberAnswer | Receive | Delivered | Reschedule | Relayed | Recheck | Fail | AddEvent
)


@dataclass(slots=True)
class _Batch:
    """Results by position in the batch, and the events to append at the end."""

    results: list[object]
    events: list[dict[str, Any]] = field(default_factory=list)

    def event(
        self,
        message: int,
        at: datetime,
        kind: str,
        detail: dict[str, Any],
        client: str | None = None,
    ) -> None:
        self.events.append(
            {
                "message": message,
                "at": at,
                "kind": kind,
                "detail": json.dumps(detail, sort_keys=True),
                "client": client,
            }
        )


def apply(conn: Connection, writes: Sequence[Write]) -> list[object]:
    """Apply `writes` in the transaction `conn` is in; a result (or exception) for each."""
    batch = _Batch(results=[None] * len(writes))
    kinds: dict[type, list[int]] = {}
    for position, write in enumerate(writes):
        kinds.setdefault(type(write), []).append(position)

    def of(kind: type) -> list[tuple[int, Any]]:
        return [(i, writes[i]) for i in kinds.get(kind, [])]

    _submit(conn, batch, of(Submit))
    _remember_answers(conn, batch, of(RememberAnswer))
    _receive(conn, batch, of(Receive))
    _delivered(conn, batch, of(Delivered))
    _reschedule(conn, batch, of(Reschedule))
    _relayed(conn, batch, of(Relayed))
    _recheck(conn, of(Recheck))
    _fail(conn, batch, of(Fail))
    for _, write in of(AddEvent):
        batch.event(write.message, write.now, write.kind, write.detail)
    if batch.events:
        if conn.dialect.name == "postgresql":
            # The event feed (node.store.feed) reads events in id order and must never
            # skip one. A sequence hands ids out in the order transactions ask, not the
            # order they commit: id 11 could be read before id 10 commits, and a reader
            # past 11 would never see 10. Events are inserted last in the transaction,
            # under this lock held until commit, so ids commit in order.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENTS_LOCK})
        conn.execute(insert(events), batch.events)
    return batch.results


def _message_row(new: NewMessage, direction: str, state: str, now: datetime) -> dict[str, Any]:
    return {
        "direction": direction,
        "message_id": new.message_id,
        "sender": new.sender,
        "recipient": new.recipient,
        "certificate_number": new.certificate_number,
        "certificate_type": new.certificate_type,
        "certificate_status": new.certificate_status,
        "content_digest": new.content_digest,
        "payload": new.payload,
        "state": state,
        "outcome": None,
        "receipt": None,
        "created_at": now,
        "kind": new.kind,
        "answers": new.answers,
    }


def _insert_messages(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows in one statement; their ids in the same order."""
    result = conn.execute(
        insert(messages).returning(messages.c.id, sort_by_parameter_order=True), rows
    )
    return [int(pk) for pk in result.scalars()]


def _submit(conn: Connection, batch: _Batch, ops: list[tuple[int, Submit]]) -> None:
    if not ops:
        return
    keys, sent = _known(conn, [op for _, op in ops])
    # What each op turns out to be is decided in order, against the store and against
    # the ops before it in this batch (whose ids are known only once they are inserted).
    fresh: list[tuple[int, Submit, _Pending]] = []
    later: list[tuple[int, Callable[[], object]]] = []
    for position, op in ops:
        remember = op.remember
        if remember is not None:
            seen = keys.get((remember.client, remember.key))
            if seen is not None:
                if seen[0] != remember.fingerprint:
                    batch.results[position] = KeyReuseError(
                        f"the Idempotency-Key {remember.key!r} was used for another request"
                        " (another method, path or body); use a new key for a new request"
                    )
                else:
                    later.append((position, seen[1]))
                continue
        number = (op.new.certificate_number, op.new.certificate_status)
        if op.once and number in sent:
            digest, pending = sent[number]
            later.append((position, _duplicate(op.new, digest, pending)))
            continue
        pending = _Pending()
        fresh.append((position, op, pending))
        if remember is not None:
            keys[(remember.client, remember.key)] = (
                remember.fingerprint,
                _remembered(remember, pending),
            )
        sent[number] = (op.new.content_digest, pending)
    if fresh:
        rows = [_message_row(op.new, "out", "queued", op.now) for _, op, _ in fresh]
        for pk, (_, _, pending) in zip(_insert_messages(conn, rows), fresh, strict=True):
            pending.pk = pk
        _queue_fresh(conn, batch, fresh)
    for position, result in later:
        batch.results[position] = result()


class _Pending:
    """A message's store id, known once the batch's messages are inserted."""

    __slots__ = ("pk",)

    def __init__(self, pk: int | None = None) -> None:
        self.pk = pk

    @property
    def id(self) -> int:
        assert self.pk is not None  # read only after the insert
        return self.pk


def _known(
    conn: Connection, ops: list[Submit]
) -> tuple[
    dict[tuple[str, str], tuple[str, Callable[[], object]]],
    dict[tuple[str, str], tuple[str, _Pending]],
]:
    """The kept keys and the sent certificates that `ops` may repeat."""
    keys: dict[tuple[str, str], tuple[str, Callable[[], object]]] = {}
    wanted = {(op.remember.client, op.remember.key) for op in ops if op.remember is not None}
    if wanted:
        oldest = min(op.now for op in ops) - KEY_TTL
        conn.execute(delete(idempotency).where(idempotency.c.created_at < oldest))
        rows = conn.execute(
            select(idempotency).where(
                tuple_(idempotency.c.client, idempotency.c.key).in_(sorted(wanted))
            )
        )
        for row in rows:
            answer = Answer(row.status, row.body, row.location, row.message)
            keys[(row.client, row.key)] = (row.fingerprint, _given(answer))
    sent: dict[tuple[str, str], tuple[str, _Pending]] = {}
    numbers = {op.new.certificate_number for op in ops if op.once}
    if numbers:
        rows = conn.execute(
            select(
                messages.c.id,
                messages.c.certificate_number,
                messages.c.certificate_status,
                messages.c.content_digest,
            )
            .where(
                messages.c.direction == "out",
                messages.c.kind == "certificate",
                messages.c.certificate_number.in_(sorted(numbers)),
                messages.c.state != "failed",  # a certificate that failed may go again
            )
            .order_by(messages.c.id)
        )
        for row in rows:
            number = (row.certificate_number, row.certificate_status)
            sent.setdefault(number, (row.content_digest, _Pending(row.id)))
    return keys, sent


def _given(result: object) -> Callable[[], object]:
    return lambda: result


def _duplicate(new: NewMessage, digest: str, pending: _Pending) -> Callable[[], object]:
    def result() -> object:
        if digest == new.content_digest:
            return Existing(pending.id)
        return DuplicateError(
            f"certificate {new.certificate_number} with status {new.certificate_status} was"
            f" already submitted as message {pending.id}, with other content: withdraw or"
            " replace it instead",
            pending.id,
        )

    return result


def _remembered(remember: Remember, pending: _Pending) -> Callable[[], object]:
    def result() -> object:
        body, location = remember.answer(pending.id)
        return Answer(remember.status, body, location, pending.id)

    return result


def _queue_fresh(
    conn: Connection, batch: _Batch, fresh: list[tuple[int, Submit, _Pending]]
) -> None:
    """The outbox rows, kept keys and events of the messages just inserted."""
    conn.execute(
        insert(outbox),
        [
            {
                "message": pending.id,
                "destination": op.new.recipient,
                "attempts": 0,
                "next_attempt_at": op.now,
                "claimed_until": None,
            }
            for _, op, pending in fresh
        ],
    )
    kept = [
        _key_row(op.remember, pending.id, op.now)
        for _, op, pending in fresh
        if op.remember is not None
    ]
    if kept:
        conn.execute(insert(idempotency), kept)
    for position, op, pending in fresh:
        batch.results[position] = pending.id
        batch.event(pending.id, op.now, "submitted", {"to": op.new.recipient}, op.client)
        if op.lifecycle:
            batch.event(pending.id, op.now, "lifecycle", op.lifecycle, op.client)
        if op.responded is not None and op.new.answers is not None:
            detail = op.responded | {"response": pending.id}
            batch.event(op.new.answers, op.now, "responded", detail, op.client)


def _key_row(remember: Remember, pk: int, now: datetime) -> dict[str, Any]:
    body, location = remember.answer(pk)
    return {
        "client": remember.client,
        "key": remember.key,
        "fingerprint": remember.fingerprint,
        "status": remember.status,
        "body": body,
        "location": location,
        "message": pk,
        "created_at": now,
    }


def _remember_answers(
    conn: Connection, batch: _Batch, ops: list[tuple[int, RememberAnswer]]
) -> None:
    for position, op in ops:
        r = op.remember
        found = conn.execute(
            select(idempotency).where(
                and_(idempotency.c.client == r.client, idempotency.c.key == r.key)
            )
        ).first()
        if found is not None:
            batch.results[position] = (
                Answer(found.status, found.body, found.location, found.message)
                if found.fingerprint == r.fingerprint
                else KeyReuseError(f"the Idempotency-Key {r.key!r} was used for another request")
            )
            continue
        conn.execute(insert(idempotency), [_key_row(r, op.message, op.now)])
        body, location = r.answer(op.message)
        batch.results[position] = Answer(r.status, body, location, op.message)


def _receive(conn: Connection, batch: _Batch, ops: list[tuple[int, Receive]]) -> None:
    """Insert the messages not seen before; repeats (also within the batch) get the
    original receipt, and the same id with other content is refused."""
    if not ops:
        return
    rows = conn.execute(
        select(
            messages.c.id,
            messages.c.sender,
            messages.c.message_id,
            messages.c.content_digest,
            messages.c.receipt,
        ).where(
            messages.c.direction == "in",
            messages.c.message_id.in_({op.new.message_id for _, op in ops}),
        )
    )
    known: dict[tuple[str, str], tuple[int | None, str, bytes]] = {
        (row.sender, row.message_id): (row.id, row.content_digest, row.receipt or b"")
        for row in rows
    }
    fresh: list[tuple[int, Receive, str, bytes]] = []
    repeats: list[tuple[int, tuple[str, str]]] = []
    for position, op in ops:
        key = (op.new.sender, op.new.message_id)
        seen = known.get(key)
        if seen is not None:
            if seen[1] != op.new.content_digest:
                batch.results[position] = ReplayError(
                    f"message {op.new.message_id} from {op.new.sender} was already received "
                    "with different content"
                )
            else:
                repeats.append((position, key))
            continue
        outcome, receipt = op.make_receipt()
        known[key] = (None, op.new.content_digest, receipt)
        fresh.append((position, op, outcome, receipt))
    if fresh:
        new_rows = []
        for _, op, outcome, receipt in fresh:
            row = _message_row(op.new, "in", "received", op.now)
            row.update(outcome=outcome, receipt=receipt)
            new_rows.append(row)
        pks = _insert_messages(conn, new_rows)
        for pk, (position, op, outcome, receipt) in zip(pks, fresh, strict=True):
            known[(op.new.sender, op.new.message_id)] = (pk, op.new.content_digest, receipt)
            batch.results[position] = Received(pk, receipt, duplicate=False)
            batch.event(pk, op.now, "received", {"from": op.new.sender, "outcome": outcome})
            if op.responded is not None and op.new.answers is not None:
                detail = op.responded | {"from": op.new.sender, "response": pk}
                batch.event(op.new.answers, op.now, "responded", detail)
        certificates = [
            (pk, item)
            for pk, item in zip(pks, fresh, strict=True)
            if item[1].new.kind == "certificate"
        ]
        for event in links.link_received(
            conn,
            [
                links.Arrived(
                    pk,
                    op.new.sender,
                    op.new.certificate_number,
                    op.new.certificate_status,
                    op.new.message_id,
                    op.now,
                    op.supersedes,
                )
                for pk, (_, op, _, _) in certificates
            ],
        ):
            batch.event(event.message, event.at, event.kind, event.detail)
    for position, key in repeats:
        original, _, receipt = known[key]
        assert original is not None  # every fresh row was inserted above
        batch.results[position] = Received(original, receipt, duplicate=True)


def _delivered(conn: Connection, batch: _Batch, ops: list[tuple[int, Delivered]]) -> None:
    """Settle the delivered messages; each destination's backed-off queue wakes up,
    because its partner is evidently up."""
    if not ops:
        return
    ids = [op.message for _, op in ops]
    found = conn.execute(
        select(outbox.c.message, outbox.c.destination).where(outbox.c.message.in_(ids))
    )
    destinations: dict[int, str] = {row.message: row.destination for row in found}
    conn.execute(outbox.delete().where(outbox.c.message.in_(ids)))
    conn.execute(
        update(messages)
        .where(messages.c.id == bindparam("pk"))
        .values(
            state="delivered",
            route=bindparam("b_route"),
            outcome=bindparam("b_outcome"),
            receipt=bindparam("b_receipt"),
            settled_at=bindparam("b_at"),
        ),
        [
            {
                "pk": op.message,
                "b_route": op.route,
                "b_outcome": op.outcome,
                "b_receipt": op.receipt,
                "b_at": op.now,
            }
            for _, op in ops
        ],
    )
    latest: dict[str, datetime] = {}
    for _, op in ops:
        destination = destinations.get(op.message)
        if destination is not None:
            latest[destination] = max(op.now, latest.get(destination, op.now))
    woken: dict[str, int] = {}
    for destination, now in latest.items():
        woken[destination] = (
            conn.execute(
                update(outbox)
                .where(
                    outbox.c.destination == destination,
                    outbox.c.next_attempt_at > now,
                    or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
                )
                .values(next_attempt_at=now)
            )
        ).rowcount
    for position, op in ops:
        destination = destinations.get(op.message)
        batch.results[position] = 0 if destination is None else woken[destination]
        batch.event(op.message, op.now, "delivered", {"route": op.route, "outcome": op.outcome})


def _reschedule(conn: Connection, batch: _Batch, ops: list[tuple[int, Reschedule]]) -> None:
    if not ops:
        return
    forget = [op.message for _, op in ops if op.forget_hub_tracking]
    if forget:
        conn.execute(update(outbox).where(outbox.c.message.in_(forget)).values(hub_tracking=None))
    conn.execute(
        update(outbox)
        .where(outbox.c.message == bindparam("pk"))
        .values(
            attempts=outbox.c.attempts + bindparam("b_count"),
            next_attempt_at=bindparam("b_next"),
            claimed_until=None,
            last_error=bindparam("b_error"),
            last_error_kind="transient",
        ),
        [
            {
                "pk": op.message,
                "b_count": int(op.count_attempt),
                "b_next": op.next_attempt_at,
                "b_error": op.error,
            }
            for _, op in ops
        ],
    )
    for _, op in ops:
        batch.event(
            op.message, op.now, "retry", {"error": op.error, "next": op.next_attempt_at.isoformat()}
        )


def _relayed(conn: Connection, batch: _Batch, ops: list[tuple[int, Relayed]]) -> None:
    if not ops:
        return
    conn.execute(
        update(outbox)
        .where(outbox.c.message == bindparam("pk"))
        .values(
            hub_tracking=bindparam("b_tracking"),
            next_attempt_at=bindparam("b_next"),
            claimed_until=None,
        ),
        [
            {"pk": op.message, "b_tracking": op.tracking, "b_next": op.next_check_at}
            for _, op in ops
        ],
    )
    conn.execute(
        update(messages)
        .where(messages.c.id == bindparam("pk"))
        .values(state="relayed", route="hub"),
        [{"pk": op.message} for _, op in ops],
    )
    for _, op in ops:
        batch.event(op.message, op.now, "relayed", {"hub": op.tracking, "why": op.reason})


def _recheck(conn: Connection, ops: list[tuple[int, Recheck]]) -> None:
    if not ops:
        return
    conn.execute(
        update(outbox)
        .where(outbox.c.message == bindparam("pk"))
        .values(next_attempt_at=bindparam("b_next"), claimed_until=None),
        [{"pk": op.message, "b_next": op.next_check_at} for _, op in ops],
    )


def _fail(conn: Connection, batch: _Batch, ops: list[tuple[int, Fail]]) -> None:
    if not ops:
        return
    conn.execute(outbox.delete().where(outbox.c.message.in_([op.message for _, op in ops])))
    conn.execute(
        update(messages)
        .where(messages.c.id == bindparam("pk"))
        .values(state="failed", settled_at=bindparam("b_at")),
        [{"pk": op.message, "b_at": op.now} for _, op in ops],
    )
    for _, op in ops:
        batch.event(op.message, op.now, "failed", {"error": op.error})
