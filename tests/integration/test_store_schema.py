"""Migrations as an explicit step (issue 12): node and hub create a new store at start, but
refuse one at an older schema revision (saying which `migrate` command to run) or at a
revision their code does not know (a newer version migrated it), on real SQLite and
PostgreSQL, and as operators run them (`ephyto node serve`, `ephyto hub serve`).

The code's newest revision is read from the Alembic scripts, never written here: the
tests hold as migrations are added.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

import node.hub.migrations
import node.store.migrations
from node.hub.config import load_hub_config
from node.hub.schema import VERSION_TABLE as HUB_VERSION_TABLE
from node.hub.store import HubStore
from node.identity.config import CONFIG_FILE, load_config
from node.store.database import Database, Migrated, SchemaOutdatedError, SchemaTooNewError
from node.store.store import Store
from tests.databases import database_url
from tests.ephyto_cli import ok, refused
from tests.integration.test_store_damage import READY, _new_hub, _new_node, _refused, _serve

NODE_MIGRATIONS = Path(node.store.migrations.__file__).parent
HUB_MIGRATIONS = Path(node.hub.migrations.__file__).parent
FUTURE = "9999_from_a_newer_version"
GUIDE = 'docs/operations.md, "Upgrading and rolling back"'


def _head(migrations: Path) -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(migrations))
    return ScriptDirectory.from_config(config)


def _revisions(migrations: Path) -> tuple[str, str]:
    """The code's newest revision and the one before it."""
    script = _head(migrations)
    head = script.get_current_head()
    assert head is not None
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str)
    return head, previous


async def _put_at(url: str, migrations: Path, revision: str) -> None:
    """The store at `url` created up to `revision` only, as an older version left it."""

    def upgrade(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(migrations))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    db = Database.open(url)
    try:
        await db.write(upgrade)
    finally:
        await db.close()


async def _mark(url: str, revision: str, table: str = "alembic_version") -> None:
    """Say the store at `url` is at `revision` (one this code does not know, say)."""
    db = Database.open(url)
    try:
        await db.write(
            lambda c: c.execute(text(f"UPDATE {table} SET version_num = :r"), {"r": revision})
        )
    finally:
        await db.close()


async def _current(url: str, table: str = "alembic_version") -> str:
    def read(connection: Connection) -> str:
        return str(connection.execute(text(f"SELECT version_num FROM {table}")).scalar_one())

    db = Database.open(url)
    try:
        return await db.read(read)
    finally:
        await db.close()


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async for found in database_url(request.param, tmp_path, "schema"):
        yield found


@pytest.mark.asyncio
async def test_a_new_node_store_is_created_at_the_newest_revision(url: str) -> None:
    head, _ = _revisions(NODE_MIGRATIONS)
    store = Store.open(url)
    try:
        assert await store.ensure_schema(Path("nl")) == Migrated(None, head)
        assert await store.ensure_schema(Path("nl")) == Migrated(head, head)
        assert await store.migrate() == Migrated(head, head)
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_an_older_node_store_is_refused_until_migrated(url: str) -> None:
    head, previous = _revisions(NODE_MIGRATIONS)
    await _put_at(url, NODE_MIGRATIONS, previous)
    store = Store.open(url)
    try:
        with pytest.raises(SchemaOutdatedError) as refusal:
            await store.ensure_schema(Path("/srv/ephyto/nl"))
        assert str(refusal.value) == (
            f"the store at {store.name} is at schema revision {previous}, this version needs"
            f" {head}: run `ephyto node migrate --dir /srv/ephyto/nl` (after a backup; {GUIDE})"
        )
        assert await _current(url) == previous  # refused: nothing migrated
        assert await store.migrate() == Migrated(previous, head)
        assert await store.ensure_schema(Path("nl")) == Migrated(head, head)
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_a_node_store_migrated_by_a_newer_version_is_refused(url: str) -> None:
    head, _ = _revisions(NODE_MIGRATIONS)
    await _put_at(url, NODE_MIGRATIONS, head)
    await _mark(url, FUTURE)
    store = Store.open(url)
    try:
        for attempt in (store.ensure_schema(Path("nl")), store.migrate()):
            with pytest.raises(SchemaTooNewError, match="a newer version migrated it") as refusal:
                await attempt
            assert FUTURE in str(refusal.value) and GUIDE in str(refusal.value)
            assert "restore the backup taken before the upgrade" in str(refusal.value)
        assert await _current(url) == FUTURE
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_the_hub_store_is_checked_the_same_way(url: str) -> None:
    head = _head(HUB_MIGRATIONS).get_current_head()
    assert head is not None
    store = HubStore.open(url)
    try:
        assert await store.ensure_schema(Path("hub")) == Migrated(None, head)
    finally:
        await store.close()
    await _mark(url, FUTURE, HUB_VERSION_TABLE)
    store = HubStore.open(url)
    try:
        with pytest.raises(SchemaTooNewError, match=FUTURE):
            await store.ensure_schema(Path("hub"))
        with pytest.raises(SchemaTooNewError, match=FUTURE):
            await store.migrate()
        await _mark(url, head, HUB_VERSION_TABLE)
        assert await store.ensure_schema(Path("hub")) == Migrated(head, head)
    finally:
        await store.close()


def test_node_serve_refuses_an_older_store_and_node_migrate_brings_it_up(tmp_path: Path) -> None:
    head, previous = _revisions(NODE_MIGRATIONS)
    node_dir = _new_node(tmp_path)
    url = load_config(node_dir / CONFIG_FILE).database_url
    asyncio.run(_put_at(url, NODE_MIGRATIONS, previous))

    line = _refused(tmp_path, "node", "serve", "--dir", node_dir)
    assert f"is at schema revision {previous}, this version needs {head}" in line
    assert f"run `ephyto node migrate --dir {node_dir}`" in line
    assert asyncio.run(_current(url)) == previous

    said = ok("node", "migrate", "--dir", node_dir)
    db = node_dir / "node.db"
    assert said == f"migrated the store at {db} from schema revision {previous} to {head}\n"
    assert "nothing to do" in ok("node", "migrate", "--dir", node_dir)
    server = _serve(node_dir)
    try:
        server.wait_for(READY)
    finally:
        assert server.terminate() == 0, server.output()


def test_node_serve_and_migrate_refuse_a_store_of_a_newer_version(tmp_path: Path) -> None:
    node_dir = _new_node(tmp_path)
    url = load_config(node_dir / CONFIG_FILE).database_url
    assert "created the store" in ok("node", "migrate", "--dir", node_dir)
    asyncio.run(_mark(url, FUTURE))
    line = _refused(tmp_path, "node", "serve", "--dir", node_dir)
    assert "a newer version migrated it" in line and FUTURE in line
    assert "a newer version migrated it" in refused("node", "migrate", "--dir", node_dir)
    assert asyncio.run(_current(url)) == FUTURE


def test_hub_serve_accounts_and_migrate_refuse_a_store_of_another_revision(
    tmp_path: Path,
) -> None:
    hub_dir = _new_hub(tmp_path)
    url = load_hub_config(hub_dir / "hub.toml").database_url
    head = _head(HUB_MIGRATIONS).get_current_head()
    assert ok("hub", "migrate", "--dir", hub_dir) == (
        f"created the store at {hub_dir / 'hub.db'} at schema revision {head}\n"
    )
    asyncio.run(_mark(url, FUTURE, HUB_VERSION_TABLE))
    assert "a newer version migrated it" in _refused(tmp_path, "hub", "serve", "--dir", hub_dir)
    assert "a newer version migrated it" in refused(
        "hub", "account", "show", "NL", "--dir", hub_dir
    )
    assert "a newer version migrated it" in refused("hub", "migrate", "--dir", hub_dir)
    assert asyncio.run(_current(url, HUB_VERSION_TABLE)) == FUTURE


def test_migrate_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    assert "node.toml" in refused("node", "migrate", "--dir", tmp_path / "none")
    assert "hub.toml" in refused("hub", "migrate", "--dir", tmp_path / "none")
    node_dir = _new_node(tmp_path)
    db = node_dir / "node.db"
    db.write_bytes(b"this is not a SQLite file, but it is long enough to be read " * 100)
    db.chmod(0o600)
    assert "damaged" in refused("node", "migrate", "--dir", node_dir)
