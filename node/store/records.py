"""The store's records: what goes in (a new message, a key to remember), what comes out
(a stored message, its summary, an outbox claim, an event, an answer), and the refusals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from node.errors import InputError

Direction = Literal["out", "in"]
ErrorKind = Literal["transient", "permanent"]


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
    failing_since: datetime | None = None  # when the first counted attempt failed


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a message's history."""

    at: datetime
    kind: str
    detail: dict[str, Any]
    client: str | None = None  # the named API client whose call wrote it


def message_from_row(row: Any) -> StoredMessage:
    """A `messages` row as a StoredMessage."""
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
