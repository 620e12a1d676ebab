"""The outbox's writes, group-committed: a delivery settled, a retry scheduled, a
message handed to the hub or checked on there, a permanent failure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, case, or_, select, update

from node.store.schema import messages, outbox
from node.store.write_batch import Batch


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


def apply_delivered(conn: Connection, batch: Batch, ops: list[tuple[int, Delivered]]) -> None:
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


def apply_reschedules(conn: Connection, batch: Batch, ops: list[tuple[int, Reschedule]]) -> None:
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
            # Kept from the first counted failure on; a hold (no attempt) sets nothing.
            failing_since=case(
                (
                    and_(outbox.c.failing_since.is_(None), bindparam("b_count") > 0),
                    bindparam("b_now"),
                ),
                else_=outbox.c.failing_since,
            ),
            next_attempt_at=bindparam("b_next"),
            claimed_until=None,
            last_error=bindparam("b_error"),
            last_error_kind="transient",
        ),
        [
            {
                "pk": op.message,
                "b_count": int(op.count_attempt),
                "b_now": op.now,
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


def apply_relayed(conn: Connection, batch: Batch, ops: list[tuple[int, Relayed]]) -> None:
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


def apply_rechecks(conn: Connection, ops: list[tuple[int, Recheck]]) -> None:
    if not ops:
        return
    conn.execute(
        update(outbox)
        .where(outbox.c.message == bindparam("pk"))
        .values(next_attempt_at=bindparam("b_next"), claimed_until=None),
        [{"pk": op.message, "b_next": op.next_check_at} for _, op in ops],
    )


def apply_failed(conn: Connection, batch: Batch, ops: list[tuple[int, Fail]]) -> None:
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
