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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, text

from node.store.records import (
    Answer,
    DuplicateError,
    Existing,
    KeyReuseError,
    NewMessage,
    Received,
    Remember,
    ReplayError,
)
from node.store.schema import events
from node.store.write_batch import Batch
from node.store.write_receive import Receive, apply_receives
from node.store.write_settle import (
    Delivered,
    Fail,
    Recheck,
    Relayed,
    Reschedule,
    apply_delivered,
    apply_failed,
    apply_rechecks,
    apply_relayed,
    apply_reschedules,
)
from node.store.write_submit import KEY_TTL, RememberAnswer, Submit, apply_remember, apply_submits

__all__ = [
    "EVENTS_LOCK",
    "KEY_TTL",
    "AddEvent",
    "Answer",
    "Delivered",
    "DuplicateError",
    "Existing",
    "Fail",
    "KeyReuseError",
    "NewMessage",
    "Receive",
    "Received",
    "Recheck",
    "Relayed",
    "Remember",
    "RememberAnswer",
    "ReplayError",
    "Reschedule",
    "Submit",
    "Write",
    "apply",
]

# The PostgreSQL advisory lock that orders event ids by commit (see `apply`); any
# constant of our own, distinct from the migration lock (node.store.database).
EVENTS_LOCK = 0x65_70_68_79_65_76  # "ephyev"


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


def apply(conn: Connection, writes: Sequence[Write]) -> list[object]:
    """Apply `writes` in the transaction `conn` is in; a result (or exception) for each."""
    batch = Batch(results=[None] * len(writes))
    kinds: dict[type, list[int]] = {}
    for position, write in enumerate(writes):
        kinds.setdefault(type(write), []).append(position)

    def of(kind: type) -> list[tuple[int, Any]]:
        return [(i, writes[i]) for i in kinds.get(kind, [])]

    apply_submits(conn, batch, of(Submit))
    apply_remember(conn, batch, of(RememberAnswer))
    apply_receives(conn, batch, of(Receive))
    apply_delivered(conn, batch, of(Delivered))
    apply_reschedules(conn, batch, of(Reschedule))
    apply_relayed(conn, batch, of(Relayed))
    apply_rechecks(conn, of(Recheck))
    apply_failed(conn, batch, of(Fail))
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
