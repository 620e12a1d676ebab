"""Received messages, group-committed: stored once, a repeat answered with the original
receipt, a replay refused, and what a certificate withdraws or replaces linked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from node.store import links
from node.store.links import Supersedes
from node.store.records import NewMessage, Received, ReplayError
from node.store.schema import messages
from node.store.write_batch import Batch, insert_messages, message_row


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
    # How it came: "direct", or "hub" (pulled); None where the caller does not say.
    route: str | None = None


def apply_receives(conn: Connection, batch: Batch, ops: list[tuple[int, Receive]]) -> None:
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
    repeats: list[tuple[int, tuple[str, str], datetime]] = []
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
                repeats.append((position, key, op.now))
            continue
        outcome, receipt = op.make_receipt()
        known[key] = (None, op.new.content_digest, receipt)
        fresh.append((position, op, outcome, receipt))
    if fresh:
        new_rows = []
        for _, op, outcome, receipt in fresh:
            row = message_row(op.new, "in", "received", op.now)
            row["route"] = op.route
            replaces = op.supersedes if op.supersedes and op.supersedes.kind == "replaces" else None
            row.update(
                outcome=outcome,
                receipt=receipt,
                replaces_number=None if replaces is None else replaces.certificate_number,
            )
            new_rows.append(row)
        pks = insert_messages(conn, new_rows)
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
    for position, key, at in repeats:
        original, _, receipt = known[key]
        assert original is not None  # every fresh row was inserted above
        batch.results[position] = Received(original, receipt, duplicate=True)
        # Dropped, answered with the first receipt; said, so that logs and metrics count
        # what partners (or the two routes) sent twice.
        batch.event(original, at, "duplicate", {"from": key[0]})
