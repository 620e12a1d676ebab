"""The one database runner every concern of the hub's store shares: transactions, group
commit, open, migrate and close.

Every operation is a synchronous function of a SQLAlchemy `Connection` that
`node.store.database.Database` runs in one transaction (or, for reads, outside one):
on SQLite on one dedicated thread, one hand-off per operation and one writer by
construction; on PostgreSQL with asyncpg, each statement an awaited round trip.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Self, TypeVar, cast

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from node.hub.records import HubSettings, HubStoreError
from node.hub.schema import VERSION_TABLE
from node.store.database import Database, Migrated, StoreDamagedError, StoreError

T = TypeVar("T")

_MIGRATIONS = Path(__file__).parent.parent / "migrations"


class HubStoreBase:
    """The runner the concern stores are mixed into: one database, one write queue."""

    def __init__(self, database: Database, settings: HubSettings) -> None:
        self._db = database
        self._settings = settings
        self._postgres = database.dialect == "postgresql"
        # SQLite: writes queued while one transaction runs go together in the next.
        self._queued: list[tuple[Callable[[Connection], Any], asyncio.Future[_Outcome]]] = []
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, url: str, settings: HubSettings | None = None) -> Self:
        """A store on `url` (sqlite[+aiosqlite]:///path.db or postgresql+asyncpg://...).

        On SQLite, what is deleted (content once acknowledged or expired) is overwritten
        in the file and cut from the write-ahead log after the next checkpoint, not left
        in free pages for whoever reads the file later.
        """
        try:
            database = Database.open(url, scrub_deleted=True)
        except StoreError as e:
            raise HubStoreError(str(e)) from None
        return cls(database, settings or HubSettings())

    @property
    def dialect(self) -> str:
        return self._db.dialect

    @property
    def name(self) -> str:
        """The SQLite file, or the URL without its password: what messages name."""
        return self._db.name

    @property
    def settings(self) -> HubSettings:
        return self._settings

    async def check(self) -> None:
        """Before serving: StoreDamagedError if the SQLite file is damaged (quick_check)."""
        try:
            await self._db.check()
        except StoreDamagedError:
            raise
        except StoreError as e:
            raise HubStoreError(str(e)) from None

    async def migrate(self) -> Migrated:
        """Bring the schema to the newest migration (idempotent); SchemaTooNewError if
        a newer version migrated it. `ephyto hub migrate`, and tests."""
        try:
            return await self._db.migrate(_MIGRATIONS, version_table=VERSION_TABLE)
        except (DBAPIError, OSError) as e:
            raise HubStoreError(f"the hub's database failed: {_first_line(e)}") from e

    async def ensure_schema(self, hub_directory: Path) -> Migrated:
        """At start: create a new store at the newest schema revision; refuse one at
        another (SchemaOutdatedError, saying to run `ephyto hub migrate`, or
        SchemaTooNewError)."""
        command = f"ephyto hub migrate --dir {hub_directory}"
        try:
            return await self._db.ensure_schema(
                _MIGRATIONS, migrate_command=command, version_table=VERSION_TABLE
            )
        except (DBAPIError, OSError) as e:
            raise HubStoreError(f"the hub's database failed: {_first_line(e)}") from e

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.shield(self._writer)
        await self._db.close()

    async def _write(self, work: Callable[[Connection], T]) -> T:
        """`work` in a transaction, committed when this returns; raises what `work` raised.

        On SQLite the writes that queue up while one transaction runs are committed
        together in the next (group commit: one hand-off to the database thread and one
        fsync for all of them). On PostgreSQL each is a transaction of its own: one that
        locked several processes' accounts in whatever order its callers came could
        deadlock with another hub process.
        """
        if self._postgres:
            return await self._transaction(work)
        done: asyncio.Future[_Outcome] = asyncio.get_running_loop().create_future()
        self._queued.append((work, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_queued())
        # Shielded: a caller that gives up (a closed HTTP request) does not cancel the
        # transaction that carries other callers' writes too.
        ok, result = await asyncio.shield(done)
        if not ok:
            assert isinstance(result, BaseException)
            raise result
        return cast(T, result)

    async def _write_queued(self) -> None:
        """Commit everything queued, batch after batch, until the queue is empty."""
        while self._queued:
            batch, self._queued = self._queued, []
            if len(batch) > 1:
                try:
                    results = await self._db.write(
                        functools.partial(_all, [work for work, _ in batch])
                    )
                except Exception:
                    pass  # one of them refused or failed: each again alone, below
                else:
                    for (_, done), result in zip(batch, results, strict=True):
                        _resolve(done, (True, result))
                    continue
            for work, done in batch:
                try:
                    result = await self._transaction(work)
                except Exception as e:
                    _resolve(done, (False, e))
                else:
                    _resolve(done, (True, result))

    async def _transaction(self, work: Callable[[Connection], T]) -> T:
        """`work` in a transaction of its own."""
        try:
            return await self._db.write(work)
        except (DBAPIError, OSError) as e:
            raise HubStoreError(f"the hub's database failed: {_first_line(e)}") from e

    async def _read(self, work: Callable[[Connection], T]) -> T:
        """`work` outside a transaction: on PostgreSQL no BEGIN and ROLLBACK, two round
        trips fewer for a pull."""
        if self._postgres:
            work = functools.partial(_autocommit, work)
        try:
            return await self._db.read(work)
        except (DBAPIError, OSError) as e:
            raise HubStoreError(f"the hub's database failed: {_first_line(e)}") from e


def aware(at: datetime) -> None:
    """Refuse a naive datetime: the clock gives aware UTC, so a naive one is a bug."""
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the hub store; the clock gives aware UTC")


_Outcome = tuple[bool, object]


def _all(works: list[Callable[[Connection], Any]], conn: Connection) -> list[Any]:
    """Every work in `works`, in order, in the one transaction of `conn`."""
    return [work(conn) for work in works]


def _resolve(done: asyncio.Future[_Outcome], outcome: _Outcome) -> None:
    if not done.done():
        done.set_result(outcome)


def _autocommit(work: Callable[[Connection], T], conn: Connection) -> T:
    return work(conn.execution_options(isolation_level="AUTOCOMMIT"))


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
