"""Which of an NPPO's processes runs the jobs that must run once (shell).

A node (or a hub) on PostgreSQL may run as several processes on several hosts sharing
one store: all of them serve the exchange endpoint and the API, and their outboxes
claim messages with `FOR UPDATE SKIP LOCKED`, so each message goes once. Some
scheduled jobs must run in one process only: pulling from the hub, sending webhooks,
logging the event feed, expiring held envelopes. The process holding a PostgreSQL
session advisory lock runs them; the lock lives as long as that process's connection,
so when the process dies (SIGKILL, a lost host), PostgreSQL ends its session and
another process takes the lock at its next check, within one `check` interval.

On SQLite there is one process by construction (one file on one host): it always leads.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

# Advisory lock keys (64-bit), one per kind of process sharing a database: "EPHYNODE"
# and "EPHYHUB!" in ASCII, so that they clash with nothing of ours or anybody's likely.
NODE_LEADER_KEY = int.from_bytes(b"EPHYNODE", "big") - (1 << 63)
HUB_LEADER_KEY = int.from_bytes(b"EPHYHUB!", "big") - (1 << 63)


class Leadership:
    """Whether this process leads; `check` (scheduled) takes or confirms the lock."""

    def __init__(self, database_url: str, key: int, *, what: str) -> None:
        self._what = what  # for log lines: "node NL", "hub Test Hub"
        self._key = key
        self._engine: AsyncEngine | None = None
        self._connection: AsyncConnection | None = None
        self._leading = False
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite":
            self._leading = True  # one process by construction
        else:
            # A connection of its own, outside the store's pool: the lock is the session's.
            self._engine = create_async_engine(url, poolclass=NullPool)

    @property
    def leading(self) -> bool:
        """This process runs the run-once jobs now (as of the last check)."""
        return self._leading

    @property
    def shared(self) -> bool:
        """The store may be shared with other processes (PostgreSQL)."""
        return self._engine is not None

    async def check(self) -> bool:
        """Confirm the lock is still ours, or try to take it; whether we lead now.

        Never raises: a database that cannot be reached means not leading (the jobs
        wait), and the next check tries again."""
        if self._engine is None:
            return True
        was = self._leading
        try:
            if self._connection is None:
                connection = await self._engine.connect()
                self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            if self._leading:
                await self._connection.execute(text("SELECT 1"))  # the session still lives
            else:
                taken = await self._connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                )
                self._leading = bool(taken.scalar_one())
        except (SQLAlchemyError, OSError) as e:
            self._leading = False
            await self._drop_connection()
            log.warning("%s: cannot check leadership now: %s", self._what, _first_line(e))
        if self._leading != was:
            log.info(
                "%s %s the run-once jobs (pull, webhooks, event log, expiry)",
                self._what, "now runs" if self._leading else "no longer runs",
            )  # fmt: skip
        return self._leading

    async def close(self) -> None:
        """Give the lock up (by ending the session) and close."""
        await self._drop_connection()
        if self._engine is not None:
            await self._engine.dispose()
        self._leading = self._engine is None

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # Gone already, maybe: the session (and the lock) with it.
            with contextlib.suppress(SQLAlchemyError, OSError):
                await connection.close()

    def only(
        self,
        job: Callable[[], Awaitable[Any]],
        *,
        meanwhile: Callable[[], Awaitable[Any]] | None = None,
    ) -> Callable[[], Awaitable[None]]:
        """`job` as run by the leader only; the other processes run `meanwhile` instead,
        if given (to keep up without acting: a log tailer moving to the newest event, so
        that on taking over it does not log again what the old leader logged)."""

        async def run() -> None:
            if self._leading:
                await job()
            elif meanwhile is not None:
                await meanwhile()

        return run


def _first_line(error: BaseException) -> str:
    return str(error).strip().split("\n", 1)[0][:200]
