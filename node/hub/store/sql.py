"""Statement pieces several concerns share: the envelope header's columns and row, a
tracking number's key, parameters for one-round-trip statements, insert-if-absent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from node.hub.records import EnvelopeHeader, EnvelopeNotFoundError, tracking_key
from node.hub.schema import envelopes

MAX_NOTE_CHARS = 1000

HEADER = (
    envelopes.c.tracking_number,
    envelopes.c.sender,
    envelopes.c.recipient,
    envelopes.c.certificate_type,
    envelopes.c.certificate_status,
    envelopes.c.certificate_number,
    envelopes.c.content_sha256,
    envelopes.c.content_size,
    envelopes.c.state,
    envelopes.c.message,
    envelopes.c.created_at,
    envelopes.c.settled_at,
)


def header_of(row: Any) -> EnvelopeHeader:
    """The header of an envelope row selected with at least `HEADER`."""
    return EnvelopeHeader(
        tracking_number=row.tracking_number,
        sender=row.sender,
        recipient=row.recipient,
        certificate_type=row.certificate_type,
        certificate_status=row.certificate_status,
        certificate_number=row.certificate_number,
        content_sha256=row.content_sha256,
        content_size=row.content_size,
        state=row.state,
        message=row.message,
        created_at=row.created_at,
        settled_at=row.settled_at,
    )


def key_of(tracking_number: str) -> str:
    """The stored form of `tracking_number`; raises EnvelopeNotFoundError if it has none."""
    found = tracking_key(tracking_number)
    if found is None:
        raise EnvelopeNotFoundError(not_found(tracking_number))
    return found


def not_found(tracking_number: object) -> str:
    shown = tracking_number if isinstance(tracking_number, str) else "?"
    return f"no envelope {shown[:40]!r} for this caller"


def binds(prefix: str, table: Any, names: Sequence[str]) -> dict[str, Any]:
    """Typed bind parameters for `names` of `table`, named with `prefix` so that several
    tables' rows fit in one statement's parameters."""
    return {n: bindparam(f"{prefix}{n}", type_=table.c[n].type) for n in names}


def prefixed(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    """`values` as the parameters of `binds(prefix, ...)`."""
    return {f"{prefix}{k}": v for k, v in values.items()}


def insert_ignoring(table: Any, column: str, *, postgres: bool) -> Insert:
    """INSERT that does nothing when `column`'s unique value is already there."""
    if postgres:
        return pg_insert(table).on_conflict_do_nothing(index_elements=[column])
    return sqlite_insert(table).on_conflict_do_nothing(index_elements=[column])
