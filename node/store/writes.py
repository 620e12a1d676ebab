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
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, or_, select, update

from node.errors import InputError
from node.store.schema import events, messages, outbox


class ReplayError(InputError):
    """A message id that was already received, now with different content."""


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
class Received:
    """The answer to an inbound message: its receipt, and whether it was a repeat."""

    message: int
    receipt: bytes
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Submit:
    """Store an outbound message and queue it; the result is its store id."""

    new: NewMessage
    now: datetime
    lifecycle: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Receive:
    """Store an inbound message once; the result is a Received (or a ReplayError)."""

    new: NewMessage
    now: datetime
    make_receipt: Callable[[], tuple[str, bytes]]


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


Write = Submit | Receive | Delivered | Reschedule | Relayed | Recheck | Fail | AddEvent


@dataclass(slots=True)
class _Batch:
    """Results by position in the batch, and the events to append at the end."""

    results: list[object]
    events: list[dict[str, Any]] = field(default_factory=list)

    def event(self, message: int, at: datetime, kind: str, detail: dict[str, Any]) -> None:
        self.events.append(
            {
                "message": message,
                "at": at,
                "kind": kind,
                "detail": json.dumps(detail, sort_keys=True),
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
    _receive(conn, batch, of(Receive))
    _delivered(conn, batch, of(Delivered))
    _reschedule(conn, batch, of(Reschedule))
    _relayed(conn, batch, of(Relayed))
    _recheck(conn, of(Recheck))
    _fail(conn, batch, of(Fail))
    for _, write in of(AddEvent):
        batch.event(write.message, write.now, write.kind, write.detail)
    if batch.events:
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
    pks = _insert_messages(conn, [_message_row(op.new, "out", "queued", op.now) for _, op in ops])
    conn.execute(
        insert(outbox),
        [
            {
                "message": pk,
                "destination": op.new.recipient,
                "attempts": 0,
                "next_attempt_at": op.now,
                "claimed_until": None,
            }
            for pk, (_, op) in zip(pks, ops, strict=True)
        ],
    )
    for pk, (position, op) in zip(pks, ops, strict=True):
        batch.results[position] = pk
        batch.event(pk, op.now, "submitted", {"to": op.new.recipient})
        if op.lifecycle:
            batch.event(pk, op.now, "lifecycle", op.lifecycle)


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
