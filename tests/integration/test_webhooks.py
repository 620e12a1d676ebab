"""Webhooks end to end: a real aiohttp receiver on loopback, a real store (SQLite file
and PostgreSQL), the sender's scheduled job called directly."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from node.api.webhooks import WebhookSender
from node.clock import FixedClock
from node.identity.api_clients import add_webhook_client, revoke_client
from node.outbox.policy import Backoff
from node.store.store import NewMessage, Store
from tests.databases import database_url

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@dataclass
class Receiver:
    """A webhook receiver: what it was sent, and the statuses it answers in turn."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 204)


@dataclass
class Setup:
    store: Store
    clients: Path
    receiver: Receiver
    clock: FixedClock
    sender: WebhookSender


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def setup(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    async for url in database_url(request.param, tmp_path, "webhooks"):
        store = Store.open(url)
        await store.migrate()
        receiver = Receiver()
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        receiver.url = str(server.make_url("/hook"))
        clock = FixedClock(NOW)
        clients = tmp_path / "api-clients.json"
        async with aiohttp.ClientSession() as session:
            backoff = Backoff(base=timedelta(seconds=30), cap=timedelta(seconds=30))
            sender = WebhookSender(
                store, clients, session, clock=clock, backoff=backoff, rng=random.Random(1)
            )
            yield Setup(store, clients, receiver, clock, sender)
        await server.close()
        await store.close()


async def _submit(store: Store, number: str, now: datetime) -> int:
    new = NewMessage(f"m-{number}", "NL", "CN", number, "851", "70", "sha256:00", b"<x/>")
    return await store.submit(new, now=now)


def _verified(secret: str, headers: dict[str, str], body: bytes) -> list[dict[str, Any]]:
    """The events of a delivery whose signature checks out, checked with the stdlib only."""
    timestamp = headers["Ephyto-Webhook-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    assert hmac.compare_digest(headers["Ephyto-Webhook-Signature"], "v1=" + expected.hexdigest())
    assert headers["Content-Type"] == "application/json"
    events: list[dict[str, Any]] = json.loads(body)["events"]
    assert headers["Ephyto-Webhook-Id"] == ",".join(e["id"] for e in events)
    return events


@pytest.mark.asyncio
async def test_delivers_signed_events_and_advances_the_cursor(setup: Setup) -> None:
    s = setup
    _, secret = add_webhook_client(s.clients, "dash", ["read"], s.receiver.url, now=NOW)
    await _submit(s.store, "NL-1", NOW)
    await _submit(s.store, "NL-2", NOW)
    assert await s.sender.run_once() == 2
    ((headers, body),) = s.receiver.received
    assert headers["Ephyto-Webhook-Timestamp"] == str(int(NOW.timestamp()))
    events = _verified(secret, headers, body)
    assert [(e["number"], e["kind"]) for e in events] == [("NL-1", "sent"), ("NL-2", "sent")]
    # The same objects the feed gives.
    feed = await s.store.feed(after=0, limit=10)
    assert (await s.store.webhook_state("dash")).cursor == feed[-1].id
    # Nothing new: nothing sent; something new: only it.
    assert await s.sender.run_once() == 0
    assert len(s.receiver.received) == 1
    await _submit(s.store, "NL-3", NOW)
    assert await s.sender.run_once() == 1
    (event,) = _verified(secret, *s.receiver.received[1])
    assert event["number"] == "NL-3"


@pytest.mark.asyncio
async def test_a_failed_delivery_goes_again_with_the_same_ids(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    s = setup
    _, secret = add_webhook_client(s.clients, "dash", ["read"], s.receiver.url, now=NOW)
    await _submit(s.store, "NL-1", NOW)
    s.receiver.statuses = [500]
    with caplog.at_level(logging.WARNING, logger="node.api.webhooks"):
        assert await s.sender.run_once() == 0
    (warning,) = [r for r in caplog.records if r.name == "node.api.webhooks"]
    assert "dash" in warning.getMessage() and "answered 500" in warning.getMessage()
    state = await s.store.webhook_state("dash")
    assert state.cursor == 0 and state.attempts == 1 and state.last_error is not None
    assert state.next_attempt_at is not None and state.next_attempt_at > NOW
    # Backing off: not again before its time.
    assert await s.sender.run_once() == 0
    assert len(s.receiver.received) == 1
    s.clock.advance(seconds=31)
    assert await s.sender.run_once() == 1
    first, second = (_verified(secret, *r) for r in s.receiver.received)
    assert [e["id"] for e in first] == [e["id"] for e in second]
    state = await s.store.webhook_state("dash")
    assert state.attempts == 0 and state.next_attempt_at is None and state.last_error is None


@pytest.mark.asyncio
async def test_an_unreachable_receiver_backs_off(setup: Setup) -> None:
    s = setup
    # A port nothing listens on: bound and closed again.
    server = TestServer(web.Application(), host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("/hook"))
    await server.close()
    add_webhook_client(s.clients, "dash", ["read"], url, now=NOW)
    await _submit(s.store, "NL-1", NOW)
    assert await s.sender.run_once() == 0
    state = await s.store.webhook_state("dash")
    assert (
        state.cursor == 0
        and state.attempts == 1
        and "ClientConnectorError" in str(state.last_error)
    )


@pytest.mark.asyncio
async def test_a_revoked_clients_webhook_stops(setup: Setup) -> None:
    s = setup
    add_webhook_client(s.clients, "dash", ["read"], s.receiver.url, now=NOW)
    await _submit(s.store, "NL-1", NOW)
    assert await s.sender.run_once() == 1
    revoke_client(s.clients, "dash", now=NOW)
    await _submit(s.store, "NL-2", NOW)
    assert await s.sender.run_once() == 0
    assert len(s.receiver.received) == 1
