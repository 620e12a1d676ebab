"""The one runner every concern of the node's store shares: open, check, migrate and
close, the reads, and the group-commit writer.

Writes are group-committed (node/store/writes.py): callers queue them, one writer task
applies everything queued in one transaction, and each caller's await returns only once
that transaction has committed. Durability per caller is unchanged; the cost of a
commit is shared.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from sqlalchemy import Connection, Row, Select, inspect, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from node.store import writes
from node.store.database import Database, Migrated, StoreError
from node.store.schema import messages

_MIGRATIONS = Path(__file__).with_name("migrations")


class StoreBase:
    """The runner the concern stores are mixed into: one database, one write queue."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._queued: list[tuple[writes.Write, asyncio.Future[object]]] = []
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, url: str) -> Self:
        """A store on `url` (sqlite:///path.db or postgresql+asyncpg://...)."""
        return cls(Database.open(url))

    @property
    def dialect(self) -> str:
        return self._db.dialect

    @property
    def name(self) -> str:
        """The SQLite file, or the URL without its password: what messages name."""
        return self._db.name

    @property
    def empty_file(self) -> bool:
        """A SQLite file that is missing or has 0 bytes (never a PostgreSQL database)."""
        return self._db.empty_file

    async def check(self) -> None:
        """Before migrating: StoreDamagedError if the SQLite file is damaged."""
        await self._db.check()

    async def holds_messages(self) -> bool:
        """Whether any message is stored; False before the first migration too."""

        def any_message(conn: Connection) -> bool:
            if not inspect(conn).has_table(messages.name):
                return False
            return conn.execute(select(messages.c.id).limit(1)).first() is not None

        try:
            return await self._db.read(any_message)
        except SQLAlchemyError as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise StoreError(f"{self.name}: cannot read the store: {first}") from e

    async def migrate(self) -> Migrated:
        """Bring the schema to the newest migration (idempotent); SchemaTooNewError if
        a newer version migrated it. `ephyto node migrate`, and tests."""
        try:
            return await self._db.migrate(_MIGRATIONS)
        except SQLAlchemyError as e:
            raise StoreError(f"cannot migrate the store: {e}") from e

    async def ensure_schema(self, node_directory: Path) -> Migrated:
        """At start: create a new store at the newest schema revision; refuse one at
        another (SchemaOutdatedError, saying to run `ephyto node migrate`, or
        SchemaTooNewError)."""
        command = f"ephyto node migrate --dir {node_directory}"
        try:
            return await self._db.ensure_schema(_MIGRATIONS, migrate_command=command)
        except SQLAlchemyError as e:
            raise StoreError(f"cannot read or create the store's schema: {e}") from e

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.shield(self._writer)
        await self._db.close()

    async def _rows(self, query: Select[Any]) -> Sequence[Row[Any]]:
        def rows(conn: Connection) -> Sequence[Row[Any]]:
            return conn.execute(query).all()

        return await self._db.read(rows)

    async def _write(self, write: writes.Write) -> object:
        """Queue `write` for the next group commit; its result once that has committed."""
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._queued.append((write, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_queued())
        # Shielded: a caller that gives up (a closed HTTP request) does not cancel the
        # transaction that carries other callers' writes too.
        result = await asyncio.shield(done)
        if isinstance(result, BaseException):
            raise result
        return result

    async def _write_queued(self) -> None:
        """Commit everything queued, batch after batch, until the queue is empty."""
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                results = await self._db.write(
                    functools.partial(writes.apply, writes=[write for write, _ in batch])
                )
            except Exception as e:
                if len(batch) == 1:
                    _settle(batch[0][1], e)
                    continue
                # One bad write must not fail the others queued with it: each alone.
                await self._write_one_by_one(batch)
                continue
            for (_, done), result in zip(batch, results, strict=True):
                _settle(done, result)

    async def _write_one_by_one(
        self, batch: list[tuple[writes.Write, asyncio.Future[object]]]
    ) -> None:
        for write, done in batch:
            # A second try covers a concurrent writer (another process on PostgreSQL)
            # that stored the same inbound message first: the retry finds it.
            for attempt in (1, 2):
                try:
                    (result,) = await self._db.write(
                        functools.partial(writes.apply, writes=[write])
                    )
                except IntegrityError as e:
                    # A kept key or a received message another process wrote first.
                    retried = isinstance(write, writes.Receive | writes.RememberAnswer) or (
                        isinstance(write, writes.Submit) and write.remember is not None
                    )
                    if attempt == 2 or not retried:
                        _settle(done, e)
                        break
                    continue
                except Exception as e:
                    _settle(done, e)
                    break
                _settle(done, result)
                break


def _settle(done: asyncio.Future[object], result: object) -> None:
    if not done.done():
        done.set_result(result)
