"""How the store's transactions run: SQLite on one dedicated thread, PostgreSQL on asyncpg.

Every store operation is written once, as a synchronous function of a SQLAlchemy
`Connection`; `Database` runs it in a transaction without blocking the event loop.

- PostgreSQL: the async engine (asyncpg) runs it with `AsyncConnection.run_sync`, where
  each statement is an awaited network round trip, as it would be anyway.
- SQLite: a synchronous engine on one thread of its own runs the whole function there,
  one hand-off per transaction. Through aiosqlite, every statement, fetch, BEGIN and
  COMMIT was its own hand-off to the driver's thread and back through the event loop
  (0.12 to 0.15 ms each here, and a whole loop iteration when the loop is busy), about
  thirty per certificate exchanged (docs/adr/0006-group-commit.md). One thread also
  means one writer, so SQLite never makes a writer wait in its busy handler.

A SQLite file is created readable by its owner alone (it holds certificates in clear, or
a hub's accounts), and one found looser is tightened when it is opened. `check` runs
SQLite's `quick_check` before a service starts on the file (docs/operations.md, "A
damaged or empty store at start").
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    column,
    create_engine,
    event,
    inspect,
    select,
    table,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from node.errors import EphytoError

T = TypeVar("T")

log = logging.getLogger(__name__)

# Any fixed number: every ephyto process migrating a database takes this one lock.
_MIGRATION_LOCK = 0x65706879746F


# Where an operator reads what to do about a damaged or empty store.
STORE_GUIDE = 'docs/operations.md, "A damaged or empty store at start"'
# The private mode of a SQLite file and of the -wal and -shm files SQLite keeps beside it.
PRIVATE = 0o600
# SQLite's primary result codes for a damaged file: SQLITE_CORRUPT, SQLITE_NOTADB.
_DAMAGED_CODES = (11, 26)


class StoreError(EphytoError):
    """The database failed or is not what the node expects (check the database URL)."""


class StoreDamagedError(StoreError):
    """The database file is damaged: stop and restore it from a backup."""


# Alembic's table of the schema revision (the hub's has a name of its own).
VERSION_TABLE = "alembic_version"
# Where an operator reads how to migrate, and how to go back to the version before.
UPGRADE_GUIDE = 'docs/operations.md, "Upgrading and rolling back"'


class SchemaError(StoreError):
    """The store's schema is not the one this version's code is written for."""


class SchemaOutdatedError(SchemaError):
    """The store is at an older schema revision: run the migrate command first."""


class SchemaTooNewError(SchemaError):
    """The store was migrated by a newer version: run that, or restore the older backup."""


@dataclass(frozen=True, slots=True)
class Migrated:
    """A store's schema revision before a migration (None: a new store) and after it."""

    before: str | None
    after: str


class Database:
    """Runs `fn(connection)` in a transaction (`write`) or outside one (`read`)."""

    def __init__(
        self,
        *,
        dialect: str,
        sync_engine: Engine | None = None,
        async_engine: AsyncEngine | None = None,
        path: Path | None = None,
        name: str = "the database",
    ) -> None:
        self.dialect = dialect
        self.path = path  # the SQLite file, if there is one
        self.name = name  # for messages: the file, or the URL without its password
        self._sync = sync_engine
        self._async = async_engine
        self._thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="ephyto-sqlite")
            if sync_engine is not None
            else None
        )

    @classmethod
    def open(cls, url: str, *, scrub_deleted: bool = False) -> Database:
        """sqlite[+aiosqlite]:///path.db (one file, WAL) or postgresql+asyncpg://...

        `scrub_deleted` (SQLite): what is deleted is overwritten in the file, and the
        write-ahead log drops old frames once checkpointed, for a store whose deleted
        content must not linger (the hub's).
        """
        try:
            parsed = make_url(url)
            if parsed.get_backend_name() == "sqlite":
                engine = create_engine(parsed.set(drivername="sqlite"))
                path = _sqlite_file(parsed.database)
                if path is not None:
                    _make_private(path)
                    event.listen(engine, "do_connect", _creating_private(path))
                event.listen(engine, "connect", _sqlite_pragmas(scrub_deleted=scrub_deleted))
                return cls(dialect="sqlite", sync_engine=engine, path=path, name=str(path or url))
            async_engine = create_async_engine(parsed)
        except (SQLAlchemyError, ArgumentError, ImportError, ValueError) as e:
            raise StoreError(f"cannot open database {redacted(url)}: {e}") from None
        return cls(dialect=async_engine.dialect.name, async_engine=async_engine, name=redacted(url))

    @property
    def empty_file(self) -> bool:
        """A SQLite file that is missing or has 0 bytes: nothing was ever stored in it."""
        if self.path is None:
            return False
        try:
            return self.path.stat().st_size == 0
        except FileNotFoundError:
            return True

    async def check(self) -> None:
        """SQLite: `PRAGMA quick_check` (every page read once, structure only); raises
        StoreDamagedError naming the file, or StoreError if it cannot be read at all.

        PostgreSQL is not checked here: its own page checksums, if enabled, and its
        operator's tools are the place for that.
        """
        if self.path is None or self.empty_file:
            return
        try:
            findings = await self.read(_quick_check)
        except DBAPIError as e:
            if not _is_damage(e):
                raise StoreError(f"{self.path}: cannot read the store: {_first_line(e)}") from e
            findings = [_first_line(e.orig or e)]
        if findings != ["ok"]:
            raise StoreDamagedError(
                f"{self.path}: the store is damaged ({_finding(findings)}); nothing was"
                " started: move it aside with its -wal and -shm files, and restore the store"
                f" from your latest backup ({STORE_GUIDE})"
            )

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """`fn` in one transaction: committed when this returns, rolled back if it raises."""
        if self._sync is not None:
            return await self._on_thread(_in_transaction, self._sync, fn)
        assert self._async is not None
        async with self._async.begin() as conn:
            return await conn.run_sync(fn)

    async def migrate(self, migrations: Path, *, version_table: str = VERSION_TABLE) -> Migrated:
        """Bring the schema to the newest of the Alembic `migrations` (idempotent);
        SchemaTooNewError if the store is at a revision they do not know.

        On PostgreSQL, under a transaction-scoped advisory lock: processes that start
        together on a new database (hub replicas, say) would otherwise create the same
        tables at once, and all but one would fail.
        """
        upgrade = functools.partial(_upgrade, migrations, version_table, self, None)
        return await self.write(upgrade)

    async def ensure_schema(
        self, migrations: Path, *, migrate_command: str, version_table: str = VERSION_TABLE
    ) -> Migrated:
        """At start: a new store (no schema revision yet) is created at the newest
        revision; one at any other revision than the newest is refused, saying to run
        `migrate_command` (SchemaOutdatedError) or that a newer version migrated it
        (SchemaTooNewError). Migrating a store that holds data is an explicit step."""
        upgrade = functools.partial(_upgrade, migrations, version_table, self, migrate_command)
        return await self.write(upgrade)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        if self._sync is not None:
            return await self._on_thread(_connected, self._sync, fn)
        assert self._async is not None
        async with self._async.connect() as conn:
            return await conn.run_sync(fn)

    async def close(self) -> None:
        if self._sync is not None and self._thread is not None:
            await self._on_thread(self._sync.dispose)
            self._thread.shutdown(wait=True)
        if self._async is not None:
            await self._async.dispose()

    async def _on_thread(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._thread is not None
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)


def _upgrade(
    migrations: Path,
    version_table: str,
    database: Database,
    refuse_older: str | None,
    connection: Connection,
) -> Migrated:
    """The schema revision check and `upgrade head`, in one transaction (and, on
    PostgreSQL, under the migration lock, so the revision read is the one upgraded)."""
    # Alembic is imported here, not at the top: it costs a third of a second, and every
    # `ephyto` command imports this module without ever migrating.
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    if database.dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.attributes["connection"] = connection
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    assert head is not None, f"{migrations}: no migration, or more than one head"
    current = _current_revision(connection, version_table)
    if current is not None and current not in {r.revision for r in script.walk_revisions()}:
        raise SchemaTooNewError(
            f"the store at {database.name} is at schema revision {current}, which this"
            " version does not know: a newer version migrated it. Run that newer version, or"
            f" restore the backup taken before the upgrade ({UPGRADE_GUIDE})"
        )
    if current is not None and current != head and refuse_older is not None:
        raise SchemaOutdatedError(
            f"the store at {database.name} is at schema revision {current}, this version"
            f" needs {head}: run `{refuse_older}` (after a backup; {UPGRADE_GUIDE})"
        )
    if current != head:
        command.upgrade(config, "head")
    return Migrated(current, head)


def _current_revision(connection: Connection, version_table: str) -> str | None:
    """The store's schema revision; None for a new store. Read here rather than through
    Alembic's MigrationContext, which logs two lines before a refusal's one."""
    if not inspect(connection).has_table(version_table):
        return None
    versions = table(version_table, column("version_num"))
    revisions = [str(r) for r in connection.execute(select(versions.c.version_num)).scalars()]
    if len(revisions) > 1:
        raise SchemaError(f"{version_table}: {len(revisions)} schema revisions, expected one")
    return revisions[0] if revisions else None


def _in_transaction(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return fn(conn)


def _connected(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with engine.connect() as conn:
        return fn(conn)


def _sqlite_pragmas(*, scrub_deleted: bool) -> Callable[[Any, Any], None]:
    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers (another process, the CLI) run beside the writer;
        # synchronous=FULL makes a committed transaction survive power loss, which
        # "nothing lost" needs.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        if scrub_deleted:
            # Deleted cells and freed pages are zeroed (whatever the build's default);
            # and once a checkpoint has copied the log into the file, the next commit
            # cuts the -wal file to its own frames, so stale frames go too.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.execute("PRAGMA journal_size_limit=0")
        cursor.close()

    return pragmas


def _sqlite_file(database: str | None) -> Path | None:
    """The file a SQLite URL names; None in memory or for a `file:` URI."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _creating_private(path: Path) -> Callable[..., None]:
    """A `do_connect` hook: create the file with mode 0600 before SQLite opens it.

    SQLite gives the -wal and -shm files it creates the mode of the database file.
    """

    def create(*_args: Any) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        # There already, or not creatable: then SQLite says why it cannot open it.
        with contextlib.suppress(OSError):
            os.close(os.open(path, flags, PRIVATE))

    return create


def _make_private(path: Path) -> None:
    """Take group and others' access away from the store's files, saying so once."""
    loose: list[str] = []
    for file in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                file.chmod(mode & ~0o077)
                loose.append(f"{file} ({mode:04o})")
        except FileNotFoundError:
            continue
        except OSError as e:
            log.warning("%s: cannot make it private to its owner: %s", file, e.strerror or e)
    if loose:
        log.warning(
            "%s: group or others could read or write the store; made it private to its owner",
            ", ".join(loose),
        )


def _quick_check(connection: Connection) -> list[str]:
    return [str(row) for row in connection.exec_driver_sql("PRAGMA quick_check").scalars()]


def _is_damage(error: DBAPIError) -> bool:
    code = getattr(error.orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _DAMAGED_CODES
    text = str(error.orig)
    return "malformed" in text or "not a database" in text


def _finding(findings: list[str]) -> str:
    """SQLite's first finding on one line, without its '*** in database main ***'."""
    words = " ".join(findings[0].replace("*** in database main ***", " ").split())
    if len(words) > 160:
        words = words[:160] + "..."
    return words + (f"; {len(findings) - 1} more" if len(findings) > 1 else "")


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def redacted(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def with_password(url: str, password: str) -> str:
    """`url` with `password` set (escaped as a URL needs), for opening only: a password
    read from its own file is never written into a configuration file."""
    try:
        return make_url(url).set(password=password).render_as_string(hide_password=False)
    except (ArgumentError, ValueError) as e:
        raise StoreError(f"cannot open database {redacted(url)}: {e}") from None
