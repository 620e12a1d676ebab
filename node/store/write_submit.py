"""Submitted messages, group-committed: queued in the outbox, judged against the kept
Idempotency-Keys and the certificates already sent (duplicates), and the answers kept
for keys that created no message."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, tuple_

from node.store.records import (
    Answer,
    DuplicateError,
    Existing,
    KeyReuseError,
    NewMessage,
    Remember,
)
from node.store.schema import idempotency, messages, outbox
from node.store.write_batch import Batch, insert_messages, message_row

# How long an Idempotency-Key is remembered: a national system retries within minutes;
# a day covers a retry after an outage too. Older keys are purged as new ones are written.
KEY_TTL = timedelta(hours=24)


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


def apply_submits(conn: Connection, batch: Batch, ops: list[tuple[int, Submit]]) -> None:
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
        rows = [message_row(op.new, "out", "queued", op.now) for _, op, _ in fresh]
        for pk, (_, _, pending) in zip(insert_messages(conn, rows), fresh, strict=True):
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


def _queue_fresh(conn: Connection, batch: Batch, fresh: list[tuple[int, Submit, _Pending]]) -> None:
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
            replaced = op.lifecycle.get("replaces")
            if isinstance(replaced, int):
                # The sent original says so too, as a received one does (node.store.links).
                detail = {
                    "by": pending.id,
                    "certificate_number": op.new.certificate_number,
                    "message_id": op.new.message_id,
                    "at": op.now.isoformat(),
                    "reason": op.lifecycle.get("reason"),
                }
                batch.event(replaced, op.now, "replaced", detail, op.client)
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


def apply_remember(conn: Connection, batch: Batch, ops: list[tuple[int, RememberAnswer]]) -> None:
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
