"""A node's API listener with the officer console mounted, over a real SQLite store, for
the console's tests over real HTTP (aiohttp's test server)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from node.api.app import ApiContext, create_api_app
from node.certificate.validate import Validator
from node.clock import FixedClock
from node.console import users
from node.console.app import mount_console, session_key
from node.console.context import ConsoleContext
from node.observe.metrics import NODE_COUNTERS, ProcessMetrics
from node.store.store import Store

TOKEN = "test-token-0123456789"
PASSWORD = "correct horse battery"
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
ROLES = ("admin", "clerk", "officer", "inspector", "auditor")
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    client: TestClient
    store: Store
    clock: FixedClock
    node_dir: Path
    kicks: list[int] = field(default_factory=list)
    metrics: ProcessMetrics | None = None

    def counted(self) -> str:
        assert self.metrics is not None
        return self.metrics.exposition([]).decode()

    async def csrf(self, path: str = "/console/login") -> str:
        response = await self.client.get(path)
        found = _CSRF.search(await response.text())
        assert found is not None, f"no CSRF token on {path}"
        return found.group(1)

    async def login(self, name: str, password: str = PASSWORD) -> ClientResponse:
        token = await self.csrf()
        return await self.client.post(
            "/console/login",
            data={"csrf": token, "user": name, "password": password},
            allow_redirects=False,
        )

    async def post(self, path: str, data: dict[str, str], **kwargs: object) -> ClientResponse:
        """A form posted with the session's CSRF token, as a browser would."""
        token = await self.csrf("/console/")
        return await self.client.post(
            path, data={"csrf": token, **data}, allow_redirects=False, **kwargs
        )

    async def logout(self) -> None:
        await self.post("/console/logout", {})


@contextmanager
def cheap_hashing() -> Iterator[None]:
    """Argon2 with tiny parameters while the block runs: the tests sign in dozens of
    times. The node's own hasher comes back after, for the tests that check it."""
    kept = users.PASSWORD_HASHER
    users.PASSWORD_HASHER = PasswordHasher(1, 8, 1)
    try:
        yield
    finally:
        users.PASSWORD_HASHER = kept


@asynccontextmanager
async def console(
    tmp_path: Path, validator: Validator, *, country: str = "NL"
) -> AsyncIterator[Console]:
    with cheap_hashing():
        async with _console(tmp_path, validator, country=country) as running:
            yield running


@asynccontextmanager
async def _console(tmp_path: Path, validator: Validator, *, country: str) -> AsyncIterator[Console]:
    node_dir = tmp_path / "node"
    node_dir.mkdir()
    for role in ROLES:
        users.add_user(users.users_path(node_dir), role, role, PASSWORD, now=NOW)
    users.add_user(users.users_path(node_dir), "officer2", "officer", PASSWORD, now=NOW)
    users.add_user(users.users_path(node_dir), "clerk2", "clerk", PASSWORD, now=NOW)
    store = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'node.db'}")
    await store.migrate()
    clock = FixedClock(NOW)
    kicks: list[int] = []
    api = ApiContext(
        country=country,
        api_token=TOKEN,
        store=store,
        validator=validator,
        clock=clock,
        kick=lambda: kicks.append(1),
    )
    metrics = ProcessMetrics(NODE_COUNTERS)
    app = create_api_app(api)
    mount_console(
        app,
        ConsoleContext(
            api=api,
            users_file=users.users_path(node_dir),
            session_key=session_key(node_dir),
            issuer_name="Netherlands Food and Consumer Product Safety Authority (NVWA)",
            secure_cookie=False,
            metrics=metrics,
        ),
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Console(client, store, clock, node_dir, kicks, metrics)
    finally:
        await client.close()
        await store.close()
