"""Real databases for tests: a SQLite file, or a database of its own on the PostgreSQL
server at 127.0.0.1:5432 (trust auth), created for the test and dropped after it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


async def postgres_database(prefix: str) -> AsyncIterator[str]:
    """The URL of a new, empty database (skips the test when PostgreSQL is not there)."""
    asyncpg = pytest.importorskip("asyncpg", reason="asyncpg (the postgres extra) is not installed")
    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=5)
    except (OSError, asyncpg.PostgresError) as e:
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {e}")
    name = f"{prefix}_{secrets.token_hex(6)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def database_url(backend: str, tmp_path: Path, name: str) -> AsyncIterator[str]:
    """A SQLite file `name`.db in `tmp_path`, or a PostgreSQL database for `backend`
    "postgresql"."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / name}.db"
        return
    async for url in postgres_database(f"ephyto_{name}_test"):
        yield url
