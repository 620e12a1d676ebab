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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from node.errors import EphytoError

T = TypeVar("T")

# Any fixed number: every ephyto process migrating a database takes this one lock.
_MIGRATION_LOCK = 0x65706879746F


class StoreError(EphytoError):
    """The database failed or is not what the node expects (check the database URL)."""


class Database:
    """Runs `fn(connection)` in a transaction (`write`) or outside one (`read`)."""

    def __init__(
        self,
        *,
        dialect: str,
        sync_engine: Engine | None = None,
        async_engine: AsyncEngine | None = None,
    ) -> None:
        self.dialect = dialect
        self._sync = sync_engine
        self._async = async_engine
        self._thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="ephyto-sqlite")
            if sync_engine is not None
            else None
        )

    @classmethod
    def open(cls, url: str) -> Database:
        """sqlite[+aiosqlite]:///path.db (one file, WAL) or postgresql+asyncpg://..."""
        try:
            parsed = make_url(url)
            if parsed.get_backend_name() == "sqlite":
                engine = create_engine(parsed.set(drivername="sqlite"))
                event.listen(engine, "connect", _sqlite_pragmas)
                return cls(dialect="sqlite", sync_engine=engine)
            async_engine = create_async_engine(parsed)
        except (SQLAlchemyError, ArgumentError, ImportError, ValueError) as e:
            raise StoreError(f"cannot open database {redacted(url)}: {e}") from None
        return cls(dialect=async_engine.dialect.name, async_engine=async_engine)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """`fn` in one transaction: committed when this returns, rolled back if it raises."""
        if self._sync is not None:
            return await self._on_thread(_in_transaction, self._sync, fn)
        assert self._async is not None
        async with self._async.begin() as conn:
            return await conn.run_sync(fn)

    async def migrate(self, migrations: Path) -> None:
        """Bring the schema to the newest of the Alembic `migrations` (idempotent).

        On PostgreSQL, under a transaction-scoped advisory lock: processes that start
        together on a new database (hub replicas, say) would otherwise create the same
        tables at once, and all but one would fail.
        """

        def upgrade(connection: Connection) -> None:
            if self.dialect == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            config = Config()
            config.set_main_option("script_location", str(migrations))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

        await self.write(upgrade)

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


def _in_transaction(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return fn(conn)


def _connected(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with engine.connect() as conn:
        return fn(conn)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (another process, the CLI) run beside the writer; synchronous=FULL
    # makes a committed transaction survive power loss, which "nothing lost" needs.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def redacted(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
