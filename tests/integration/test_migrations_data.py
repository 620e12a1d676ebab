"""Migrations that move data, run on stores holding some (SQLite and PostgreSQL): 0007
gives a stored replacement the number it replaces, from its `replaces` event, so its
original arriving after the upgrade is linked; 0008 dates the failures of messages
already failing from their first `retry` event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

import node.store.migrations
from node.store.database import Database
from node.store.store import NewMessage, Store
from tests.databases import database_url

MIGRATIONS = Path(node.store.migrations.__file__).parent
AT = datetime(2026, 12, 7, 9, tzinfo=UTC)


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async for found in database_url(request.param, tmp_path, "replaces"):
        yield found


def _upgrade(revision: str) -> object:
    def upgrade(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    return upgrade


def _replacement_as_0006_stored_it(connection: Connection) -> None:
    """A received replacement KE-2 of KE-1, its statement in a `replaces` event, and an
    unrelated message with a damaged event (which the migration must step over)."""
    # No explicit ids: PostgreSQL's sequence must hand out the next ones afterwards.
    pks = []
    for number in ("KE-2", "KE-3"):
        pks.append(
            connection.execute(
                text(
                    "INSERT INTO messages (direction, message_id, sender, recipient,"
                    " certificate_number, certificate_type, certificate_status, content_digest,"
                    " payload, state, created_at, kind) VALUES ('in', :mid, 'KE', 'NL', :n,"
                    " '851', '70', 'sha256:0', :p, 'received', :at, 'certificate')"
                    " RETURNING id"
                ),
                {"mid": f"m-{number}", "n": number, "p": b"<x/>", "at": AT},
            ).scalar_one()
        )
    said = {"certificate_number": "KE-1", "reason": "Change in consignee", "at": None}
    for message, detail in ((pks[0], json.dumps(said)), (pks[1], "{not json")):
        connection.execute(
            text("INSERT INTO events (message, at, kind, detail) VALUES (:m, :at, 'replaces', :d)"),
            {"m": message, "at": AT, "d": detail},
        )


@pytest.mark.asyncio
async def test_0007_fills_in_what_stored_replacements_replace(url: str) -> None:
    db = Database.open(url)
    try:
        await db.write(_upgrade("0006"))  # type: ignore[arg-type]
        await db.write(_replacement_as_0006_stored_it)
        await db.write(_upgrade("head"))  # type: ignore[arg-type]
        rows = await db.read(
            lambda c: c.execute(
                text("SELECT certificate_number, replaces_number FROM messages ORDER BY id")
            ).all()
        )
    finally:
        await db.close()
    assert [tuple(r) for r in rows] == [("KE-2", "KE-1"), ("KE-3", None)]

    store = Store.open(url)
    try:
        original = await store.receive(
            NewMessage("m-3", "KE", "NL", "KE-1", "851", "70", "sha256:1", b"<y/>"),
            now=AT,
            make_receipt=lambda: ("accepted", b"r"),
            supersedes=None,
        )
        lifecycle = await store.lifecycle(original.message)
    finally:
        await store.close()
    assert lifecycle.status == "replaced"
    assert lifecycle.by is not None and lifecycle.by.certificate_number == "KE-2"
    assert lifecycle.by.reason == "Change in consignee"


@pytest.mark.asyncio
async def test_0008_dates_the_failures_of_messages_already_failing(url: str) -> None:
    """A message that failed before the upgrade counts its failing time from its first
    `retry` event; one not tried yet has no failing time."""

    def outbox_as_0007_left_it(connection: Connection) -> None:
        for number, attempts in (("NL-1", 2), ("NL-2", 0)):
            pk = connection.execute(
                text(
                    "INSERT INTO messages (direction, message_id, sender, recipient,"
                    " certificate_number, certificate_type, certificate_status, content_digest,"
                    " payload, state, created_at, kind) VALUES ('out', :n, 'NL', 'KE', :n,"
                    " '851', '70', 'sha256:0', :p, 'queued', :at, 'certificate') RETURNING id"
                ),
                {"n": number, "p": b"<x/>", "at": AT},
            ).scalar_one()
            connection.execute(
                text(
                    "INSERT INTO outbox (message, destination, attempts, next_attempt_at)"
                    " VALUES (:m, 'KE', :a, :at)"
                ),
                {"m": pk, "a": attempts, "at": AT},
            )
            for minutes in range(attempts):
                connection.execute(
                    text(
                        "INSERT INTO events (message, at, kind, detail)"
                        " VALUES (:m, :at, 'retry', '{}')"
                    ),
                    {"m": pk, "at": AT.replace(minute=10 + minutes)},
                )

    db = Database.open(url)
    try:
        await db.write(_upgrade("0007"))  # type: ignore[arg-type]
        await db.write(outbox_as_0007_left_it)
        await db.write(_upgrade("head"))  # type: ignore[arg-type]
    finally:
        await db.close()
    store = Store.open(url)
    try:
        claimed = await store.claim_due(
            now=AT.replace(hour=12), lease=timedelta(minutes=1), limit=9
        )
    finally:
        await store.close()
    since = {item.message.certificate_number: item.failing_since for item in claimed}
    assert since == {"NL-1": AT.replace(minute=10), "NL-2": None}
