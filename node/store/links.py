"""Withdrawals and replacements linked to the certificates they supersede, when received.

A withdrawal (status 40, the same number) or a replacement (its own number, an ADRPN
note naming the old one) is a message of its own. The original (same sender, the
number superseded, not itself a withdrawal) gets an event `withdrawn` or `replaced`
naming the new record, written in the transaction that stores whichever of the two
arrives second, so a withdrawal or a replacement that overtakes its original by another
route is linked when the original arrives. Both sides are found by (sender, certificate
number), which the messages table indexes, a replacement by the number it replaces
(`replaces_number`, indexed too); no table of links is needed. A link already recorded is
not recorded again, whatever message id repeats it.

The new record carries its own statement as an event (`withdraws` / `replaces`: the
number, the reason, when), which is what the original's event is built from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, select

from node.store.schema import events, messages

WITHDRAWAL_STATUS = "40"
_ON_ORIGINAL = {"withdraws": "withdrawn", "replaces": "replaced"}


@dataclass(frozen=True, slots=True)
class Supersedes:
    """What a received withdrawal or replacement says of the certificate it supersedes."""

    kind: Literal["withdraws", "replaces"]
    certificate_number: str  # the sender's number of the certificate superseded
    reason: str | None
    at: datetime | None  # when the sender says it did so, if it says


@dataclass(frozen=True, slots=True)
class Arrived:
    """A message just inserted by the receive path."""

    pk: int
    sender: str
    certificate_number: str
    certificate_status: str
    message_id: str
    now: datetime
    supersedes: Supersedes | None


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """An event the receive path appends with the messages it stored."""

    message: int
    at: datetime
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Link:
    """The other end of a link: a message id (None: not arrived yet) and its number."""

    id: int | None
    certificate_number: str
    at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Where a stored certificate stands, and what the record itself supersedes."""

    status: Literal["issued", "withdrawn", "replaced"]
    by: Link | None
    withdraws: Link | None
    replaces: Link | None


def link_received(conn: Connection, arrived: Sequence[Arrived]) -> list[LinkEvent]:
    """The events that link `arrived` (already inserted) with what they supersede or
    what superseded them before they came."""
    out = [
        LinkEvent(a.pk, a.now, a.supersedes.kind, _statement(a.supersedes))
        for a in arrived
        if a.supersedes is not None
    ]
    numbers = {a.certificate_number for a in arrived} | {
        a.supersedes.certificate_number for a in arrived if a.supersedes is not None
    }
    senders = {a.sender for a in arrived}
    rows = conn.execute(
        select(
            messages.c.id,
            messages.c.sender,
            messages.c.certificate_number,
            messages.c.certificate_status,
            messages.c.message_id,
            messages.c.outcome,
            messages.c.created_at,
        )
        .where(
            messages.c.direction == "in",
            messages.c.kind == "certificate",  # a response supersedes nothing
            messages.c.certificate_number.in_(numbers),
        )
        .order_by(messages.c.id)
    ).all()
    by_key: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        if row.sender in senders:
            by_key.setdefault((row.sender, row.certificate_number), []).append(row)
    statements = _statements(
        conn,
        [
            row.id
            for a in arrived
            if a.certificate_status != WITHDRAWAL_STATUS
            for row in by_key.get((a.sender, a.certificate_number), [])
            if _withdrawal(row)
        ],
    )
    planned: list[LinkEvent] = []
    for a in arrived:
        if a.supersedes is not None:
            s = a.supersedes
            for row in by_key.get((a.sender, s.certificate_number), []):
                if row.certificate_status != WITHDRAWAL_STATUS and row.id != a.pk:
                    planned.append(
                        _on_original(
                            row.id,
                            a.now,
                            s.kind,
                            a.pk,
                            a.certificate_number,
                            a.message_id,
                            s.at or a.now,
                            s.reason,
                        )
                    )
        if a.certificate_status == WITHDRAWAL_STATUS:
            continue
        # An original that a withdrawal overtook: linked now, from what that one said.
        for row in by_key.get((a.sender, a.certificate_number), []):
            if _withdrawal(row) and row.id != a.pk:
                said = statements.get(row.id, {})
                at = _datetime(said.get("at")) or row.created_at
                planned.append(
                    _on_original(
                        a.pk,
                        a.now,
                        "withdraws",
                        row.id,
                        row.certificate_number,
                        row.message_id,
                        at,
                        said.get("reason"),
                    )
                )
    planned.extend(_overtaken_by_replacements(conn, arrived))
    out.extend(_not_yet_recorded(conn, planned))
    return out


def _overtaken_by_replacements(conn: Connection, arrived: Sequence[Arrived]) -> list[LinkEvent]:
    """Links for originals in `arrived` whose replacement came before them (stored with
    `replaces_number`); a replacement in this very batch is linked by its own arrival."""
    originals = [a for a in arrived if a.certificate_status != WITHDRAWAL_STATUS]
    if not originals:
        return []
    batch = {a.pk for a in arrived}
    rows = conn.execute(
        select(
            messages.c.id,
            messages.c.sender,
            messages.c.certificate_number,
            messages.c.message_id,
            messages.c.created_at,
            messages.c.replaces_number,
        )
        .where(
            messages.c.direction == "in",
            messages.c.kind == "certificate",
            messages.c.sender.in_({a.sender for a in originals}),
            messages.c.replaces_number.in_({a.certificate_number for a in originals}),
        )
        .order_by(messages.c.id)
    ).all()
    earlier = [row for row in rows if row.id not in batch]
    statements = _statements(conn, [row.id for row in earlier], kind="replaces")
    planned = []
    for a in originals:
        for row in earlier:
            if (row.sender, row.replaces_number) != (a.sender, a.certificate_number):
                continue
            said = statements.get(row.id, {})
            planned.append(
                _on_original(
                    a.pk,
                    a.now,
                    "replaces",
                    row.id,
                    row.certificate_number,
                    row.message_id,
                    _datetime(said.get("at")) or row.created_at,
                    said.get("reason"),
                )
            )
    return planned


def read_lifecycle(conn: Connection, pk: int) -> Lifecycle | None:
    """The lifecycle of message `pk`, or None if there is no such message."""
    message = conn.execute(select(messages).where(messages.c.id == pk)).first()
    if message is None:
        return None
    own = conn.execute(
        select(events.c.kind, events.c.detail)
        .where(
            events.c.message == pk,
            events.c.kind.in_(["withdrawn", "replaced", "withdraws", "replaces", "lifecycle"]),
        )
        .order_by(events.c.id)
    ).all()
    said = [(row.kind, json.loads(row.detail)) for row in own]
    withdraws = replaces = None
    if message.certificate_status == WITHDRAWAL_STATUS:
        withdraws = Link(
            _original(conn, message.direction, message.sender, message.certificate_number),
            message.certificate_number,
        )
    for kind, detail in said:
        if kind == "replaces" and message.direction == "in":
            number = str(detail["certificate_number"])
            replaces = Link(_original(conn, "in", message.sender, number), number)
        elif kind == "lifecycle" and isinstance(detail.get("replaces"), int):
            # A sent replacement names the sent original by its id (node.api.app).
            old = conn.execute(
                select(messages.c.certificate_number).where(messages.c.id == detail["replaces"])
            ).first()
            if old is not None:
                replaces = Link(detail["replaces"], old.certificate_number)
    if message.certificate_status == WITHDRAWAL_STATUS:
        by = Link(message.id, message.certificate_number, message.created_at)
        return Lifecycle("withdrawn", by, withdraws, replaces)
    if message.direction == "out":
        withdrawal = _sent_withdrawal(conn, message.certificate_number)
        if withdrawal is not None:
            return Lifecycle("withdrawn", withdrawal, withdraws, replaces)
        replacement = _sent_replacement(conn, said)
        if replacement is not None:
            return Lifecycle("replaced", replacement, withdraws, replaces)
        return Lifecycle("issued", None, withdraws, replaces)
    for status, kind in (("withdrawn", "withdrawn"), ("replaced", "replaced")):
        for event_kind, detail in said:
            if event_kind == kind:
                by = Link(
                    detail["by"],
                    detail["certificate_number"],
                    _datetime(detail.get("at")),
                    detail.get("reason"),
                )
                return Lifecycle(status, by, withdraws, replaces)  # type: ignore[arg-type]
    return Lifecycle("issued", None, withdraws, replaces)


def _withdrawal(row: Any) -> bool:
    # A withdrawal this node rejected withdraws nothing.
    return bool(row.certificate_status == WITHDRAWAL_STATUS and row.outcome != "rejected")


def _statement(s: Supersedes) -> dict[str, Any]:
    return {
        "certificate_number": s.certificate_number,
        "reason": s.reason,
        "at": None if s.at is None else s.at.isoformat(),
    }


def _on_original(
    original: int,
    now: datetime,
    kind: str,
    by: int,
    number: str,
    message_id: str,
    at: datetime,
    reason: str | None,
) -> LinkEvent:
    detail = {
        "by": by,
        "certificate_number": number,
        "message_id": message_id,
        "at": at.isoformat(),
        "reason": reason,
    }
    return LinkEvent(original, now, _ON_ORIGINAL[kind], detail)


def _statements(
    conn: Connection, ids: Iterable[int], *, kind: str = "withdraws"
) -> dict[int, dict[str, Any]]:
    """What each of the messages `ids` said of what it supersedes (its `kind` event)."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = conn.execute(
        select(events.c.message, events.c.detail).where(
            events.c.message.in_(wanted), events.c.kind == kind
        )
    )
    return {row.message: json.loads(row.detail) for row in rows}


def _not_yet_recorded(conn: Connection, planned: list[LinkEvent]) -> list[LinkEvent]:
    """`planned` without the links recorded before or planned twice in this batch."""
    if not planned:
        return []
    rows = conn.execute(
        select(events.c.message, events.c.kind, events.c.detail).where(
            events.c.message.in_({p.message for p in planned}),
            events.c.kind.in_(list(_ON_ORIGINAL.values())),
        )
    )
    seen = {
        (row.message, row.kind, json.loads(row.detail).get("certificate_number")) for row in rows
    }
    fresh = []
    for p in planned:
        key = (p.message, p.kind, p.detail["certificate_number"])
        if key not in seen:
            seen.add(key)
            fresh.append(p)
    return fresh


def _original(conn: Connection, direction: str, sender: str, number: str) -> int | None:
    row = conn.execute(
        select(messages.c.id)
        .where(
            messages.c.direction == direction,
            messages.c.kind == "certificate",
            messages.c.sender == sender,
            messages.c.certificate_number == number,
            messages.c.certificate_status != WITHDRAWAL_STATUS,
        )
        .order_by(messages.c.id)
        .limit(1)
    ).first()
    return None if row is None else int(row.id)


def _sent_withdrawal(conn: Connection, number: str) -> Link | None:
    row = conn.execute(
        select(messages.c.id, messages.c.created_at)
        .where(
            messages.c.direction == "out",
            messages.c.kind == "certificate",
            messages.c.certificate_number == number,
            messages.c.certificate_status == WITHDRAWAL_STATUS,
            messages.c.state != "failed",
        )
        .order_by(messages.c.id)
        .limit(1)
    ).first()
    return None if row is None else Link(int(row.id), number, row.created_at)


def _sent_replacement(conn: Connection, said: list[tuple[str, Any]]) -> Link | None:
    """The replacement a sent certificate's `replaced` events name, unless it failed for
    good (then it replaced nothing, as a failed withdrawal withdraws nothing)."""
    for kind, detail in reversed(said):
        if kind != "replaced" or not isinstance(detail.get("by"), int):
            continue
        row = conn.execute(select(messages.c.state).where(messages.c.id == detail["by"])).first()
        if row is not None and row.state != "failed":
            return Link(
                detail["by"],
                detail["certificate_number"],
                _datetime(detail.get("at")),
                detail.get("reason"),
            )
    return None


def _datetime(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
