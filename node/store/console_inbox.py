"""The officer console's inbox: received certificates with where each stands, filtered.

Where a received certificate stands is read from its events, newest first: `withdrawn`
or `replaced` (the exporter superseded it: node.store.links) before the importer's
answer (`responded`, whose detail holds the decision), else it is unanswered. The
commodity, which the message row does not hold, is indexed once per message in
`console_received`: the console reads it from payloads it has not indexed yet
(`console_unindexed`), off the event loop, and writes it back (`console_index`).

A filter on where certificates stand is applied to rows already narrowed by the SQL
filters, reading at most SCAN_MAX of them: an inbox filter is for people, and a page
that says "more" is better than a query that reads a million rows.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, insert, select

from node.store.base import StoreBase
from node.store.console import ConsoleInputError
from node.store.records import MessageSummary
from node.store.schema import console_received, events, messages

INBOX_STATES = ("unanswered", "accepted", "rejected", "correction-requested", "withdrawn",
                "replaced")  # fmt: skip
SCAN_MAX = 20_000
_WITHDRAWAL = "40"  # a withdrawal is shown on the certificate it withdraws, not listed
_TEXT_MAX = 256
_ESCAPE = "\\"
_STANDING_EVENTS = ("withdrawn", "replaced", "responded")
_SUMMARY = [getattr(messages.c, f) for f in MessageSummary.__dataclass_fields__]


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """A received certificate as the inbox lists it."""

    message: MessageSummary
    commodity: str | None
    state: str  # one of INBOX_STATES


class ConsoleInboxStore(StoreBase):
    """Received certificates for the console's inbox, search and report."""

    async def console_inbox(
        self,
        *,
        sender: str | None = None,
        number_contains: str | None = None,
        commodity_contains: str | None = None,
        states: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[InboxEntry]:
        """Received certificates (withdrawals aside), newest first. `sender`: the
        exporting country; the contains-filters: case-insensitive substrings, % and _
        literal; `since` (inclusive) and `until` (exclusive): when received; `states`:
        where they stand (INBOX_STATES)."""
        wanted = None if states is None else set(_states(states))
        limit, offset = _bounded("limit", limit, 1), _bounded("offset", offset, 0)
        where = _where(sender, number_contains, commodity_contains, since, until)
        query = (
            select(*_SUMMARY, console_received.c.commodity, _latest_kind(), _latest_detail())
            .select_from(messages.outerjoin(console_received,
                                            console_received.c.message == messages.c.id))
            .where(*where)
            .order_by(messages.c.id.desc())
            .limit(SCAN_MAX if wanted is not None else limit + offset)
        )  # fmt: skip
        rows = await self._rows(query)
        found = [_entry(row) for row in rows]
        if wanted is not None:
            found = [e for e in found if e.state in wanted]
        return found[offset : offset + limit]

    async def console_inbox_counts(self) -> dict[str, int]:
        """How many received certificates stand where (every state, zeros included)."""
        query = (
            select(messages.c.id, _latest_kind(), _latest_detail())
            .where(*_where(None, None, None, None, None))
            .order_by(messages.c.id.desc())
            .limit(SCAN_MAX)
        )
        counts = dict.fromkeys(INBOX_STATES, 0)
        for row in await self._rows(query):
            counts[_state(row.kind, row.detail)] += 1
        return counts

    async def console_unindexed(self, *, limit: int = 200) -> list[tuple[int, bytes]]:
        """Received certificates whose commodity is not indexed yet, with their payloads."""
        query = (
            select(messages.c.id, messages.c.payload)
            .select_from(messages.outerjoin(console_received,
                                            console_received.c.message == messages.c.id))
            .where(messages.c.direction == "in", messages.c.kind == "certificate",
                   console_received.c.message.is_(None))
            .order_by(messages.c.id.desc())
            .limit(_bounded("limit", limit, 1))
        )  # fmt: skip
        return [(row.id, bytes(row.payload)) for row in await self._rows(query)]

    async def console_index(self, found: Sequence[tuple[int, str | None]]) -> None:
        """Keep each message's commodity (None: it names none); a message indexed
        meanwhile by another process is left as that one wrote it."""
        if not found:
            return
        rows = [{"message": pk, "commodity": None if c is None else c[:_TEXT_MAX]}
                for pk, c in found]  # fmt: skip

        def index(conn: Connection) -> None:
            taken = set(conn.execute(
                select(console_received.c.message).where(
                    console_received.c.message.in_([r["message"] for r in rows]))
            ).scalars())  # fmt: skip
            fresh = [r for r in rows if r["message"] not in taken]
            if fresh:
                conn.execute(insert(console_received), fresh)

        await self._db.write(index)


def _where(
    sender: str | None,
    number: str | None,
    commodity: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [
        messages.c.direction == "in",
        messages.c.kind == "certificate",
        messages.c.certificate_status != _WITHDRAWAL,
    ]
    if sender is not None:
        if len(sender) != 2 or not sender.isascii() or not sender.isupper():
            raise ConsoleInputError("sender: two capital letters (ISO 3166-1 alpha-2)")
        where.append(messages.c.sender == sender)
    if number is not None:
        where.append(messages.c.certificate_number.ilike(_contains("number", number),
                                                         escape=_ESCAPE))  # fmt: skip
    if commodity is not None:
        where.append(console_received.c.commodity.ilike(_contains("commodity", commodity),
                                                        escape=_ESCAPE))  # fmt: skip
    if since is not None:
        where.append(messages.c.created_at >= since)
    if until is not None:
        where.append(messages.c.created_at < until)
    return where


def _latest(column: Any) -> Any:
    """The newest standing event's `column` for the message of the row."""
    return (
        select(column)
        .where(events.c.message == messages.c.id, events.c.kind.in_(_STANDING_EVENTS))
        .order_by(events.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _latest_kind() -> Any:
    return _latest(events.c.kind).label("kind")


def _latest_detail() -> Any:
    return _latest(events.c.detail).label("detail")


def _entry(row: Any) -> InboxEntry:
    summary = MessageSummary(*(getattr(row, c.name) for c in _SUMMARY))
    return InboxEntry(summary, row.commodity, _state(row.kind, row.detail))


def _state(kind: str | None, detail: str | None) -> str:
    if kind in ("withdrawn", "replaced"):
        return kind
    if kind == "responded":
        try:
            decision = json.loads(detail or "{}").get("decision")
        except (ValueError, AttributeError):
            decision = None
        if decision in INBOX_STATES:
            return str(decision)
    return "unanswered"


def _states(states: Collection[str]) -> list[str]:
    if isinstance(states, str):
        raise ConsoleInputError("states: a collection of states, not one string")
    unknown = [s for s in states if s not in INBOX_STATES]
    if unknown:
        raise ConsoleInputError(f"states: {unknown[0]!r:.40} is not one of {INBOX_STATES}")
    return list(states)


def _contains(name: str, text: str) -> str:
    if len(text) > _TEXT_MAX or "\x00" in text:
        raise ConsoleInputError(f"{name}: at most {_TEXT_MAX} characters, no NUL")
    escaped = text.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%")
    return "%" + escaped.replace("_", _ESCAPE + "_") + "%"


def _bounded(name: str, value: int, least: int) -> int:
    if type(value) is not int or not least <= value <= SCAN_MAX * 10:
        raise ConsoleInputError(f"{name}: a whole number from {least} to {SCAN_MAX * 10}")
    return value
