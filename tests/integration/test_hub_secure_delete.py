"""What the hub deletes leaves no trace in its SQLite files (issue 11).

The hub holds content only until it is acknowledged or expires. SQLite leaves deleted
bytes in free pages and freed cell space unless `secure_delete` is on, and old frames of
the write-ahead log stay in the -wal file until they are overwritten. Many builds (Debian's
among them) turn `secure_delete` on by default, others do not: these tests turn it off
on every connection first, as such a build would, so that they test the hub's own setting.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from node.hub.accounts import AccountPolicy, Prepaid
from node.hub.records import HubSettings
from node.hub.store import HubStore
from node.store.database import Database

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
MARKER = b"MARKER-OF-SEALED-CONTENT-"
# Larger than a page: it spills into overflow pages, which a delete hands to the free
# list as they are (a small value's freed cell space may be reused or defragmented away).
CONTENT = MARKER * (50_000 // len(MARKER))


def _secure_delete_off(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA secure_delete=OFF")


def _as_on_a_build_without_secure_delete(store: HubStore, *, first: bool) -> None:
    """Every connection starts with `secure_delete` off: before the hub's own pragmas when
    `first` (a build whose default is off), after them otherwise (no hub setting at all)."""
    engine = store._db._sync
    assert engine is not None
    event.listen(engine, "connect", _secure_delete_off, insert=first)


async def _opened(store: HubStore) -> HubStore:
    await store.migrate()
    for nppo in ("NL", "KE"):
        await store.set_policy(nppo, AccountPolicy("EUR", Prepaid(fee=0)), T0)
    return store


async def _acknowledged(store: HubStore, tracking: str) -> None:
    await store.acknowledge("KE", tracking, T0 + timedelta(minutes=1))


async def _expired(store: HubStore, _tracking: str) -> None:
    assert await store.expire(T0 + timedelta(days=8), timedelta(days=7)) == [_tracking]


DELETIONS: dict[str, Callable[[HubStore, str], Awaitable[None]]] = {
    "acknowledged": _acknowledged,
    "expired": _expired,
}


def _checkpoint(path: Path) -> None:
    """What SQLite's automatic checkpoint does: copy the log's pages into the file."""
    with closing(sqlite3.connect(path)) as db:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0


def traces(*paths: Path) -> int:
    """How often the marker occurs in these files (absent files hold none)."""
    return sum(p.read_bytes().count(MARKER) for p in paths if p.exists())


async def _deliver_delete_checkpoint(
    path: Path, store: HubStore, delete: Callable[[HubStore, str], Awaitable[None]]
) -> None:
    await _opened(store)
    tracking, _ = await store.deliver("NL", "KE", 851, 70, "NL-1", CONTENT, T0)
    assert traces(path, Path(f"{path}-wal")) > 0
    await delete(store, tracking)
    _checkpoint(path)


@pytest.mark.asyncio
@pytest.mark.parametrize("deletion", DELETIONS)
async def test_content_the_hub_deleted_is_not_left_in_its_database_file(
    tmp_path: Path, deletion: str
) -> None:
    path = tmp_path / "hub.db"
    store = HubStore.open(f"sqlite+aiosqlite:///{path}")
    _as_on_a_build_without_secure_delete(store, first=True)
    try:
        await _deliver_delete_checkpoint(path, store, DELETIONS[deletion])
        assert traces(path) == 0
        with closing(sqlite3.connect(path)) as db:  # the content is gone, the row stays
            assert db.execute("SELECT count(*), max(content) FROM hub_envelopes").fetchone() == (
                1,
                None,
            )
    finally:
        await store.close()
    assert traces(path) == 0


@pytest.mark.asyncio
async def test_without_secure_delete_the_same_steps_leave_the_content_in_the_file(
    tmp_path: Path,
) -> None:
    """The check above can see what it looks for: with `secure_delete` forced off after
    the hub's pragmas, the deleted content is still in the file."""
    path = tmp_path / "hub.db"
    store = HubStore.open(f"sqlite+aiosqlite:///{path}")
    _as_on_a_build_without_secure_delete(store, first=False)
    try:
        await _deliver_delete_checkpoint(path, store, _acknowledged)
        assert traces(path) > 0
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_the_hubs_write_ahead_log_drops_deleted_content_after_the_next_checkpoint(
    tmp_path: Path,
) -> None:
    """Once a checkpoint has copied the log into the file, the next write starts the log
    again from its beginning; the frames past it, which held the content, are cut off."""
    path, wal = tmp_path / "hub.db", tmp_path / "hub.db-wal"
    store = HubStore.open(f"sqlite+aiosqlite:///{path}")
    _as_on_a_build_without_secure_delete(store, first=True)
    try:
        await _deliver_delete_checkpoint(path, store, _acknowledged)
        await store.deliver("NL", "KE", 851, 70, "NL-2", b"another envelope", T0)
        assert wal.exists()
        assert traces(wal) == 0
        assert traces(path) == 0
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_the_hub_asks_for_secure_delete_and_the_node_keeps_the_builds_setting(
    tmp_path: Path,
) -> None:
    """The node's store keeps whatever the build does: it never deletes certificates."""
    hub = HubStore.open(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    node = HubStore(Database.open(f"sqlite+aiosqlite:///{tmp_path / 'node.db'}"), HubSettings())
    for store in (hub, node):
        _as_on_a_build_without_secure_delete(store, first=True)
    pragma = "PRAGMA secure_delete"
    try:
        assert await hub._db.read(lambda c: c.exec_driver_sql(pragma).scalar()) == 1
        assert await node._db.read(lambda c: c.exec_driver_sql(pragma).scalar()) == 0
    finally:
        await hub.close()
        await node.close()
