"""The event feed (GET /api/v1/events): every event, in commit order, resumable, on real
SQLite and PostgreSQL; and on PostgreSQL, no event committing behind one already read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from node.api.app import ApiContext, create_api_app
from node.api.feed import cursor
from node.certificate.validate import Validator
from node.clock import FixedClock
from node.store import writes
from node.store.store import NewMessage, Store
from tests.databases import database_url

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TOKEN = "feed-token-0123456789abcdef0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _message(message_id: str, sender: str = "NL", number: str = "NL-1") -> NewMessage:
    return NewMessage(
        message_id=message_id,
        sender=sender,
        recipient="KE" if sender == "NL" else "NL",
        certificate_number=number,
        certificate_type="851",
        certificate_status="70",
        content_digest="sha256:" + message_id,
        payload=b"<rsm:SPSCertificate/>",
    )


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async for url in database_url(request.param, tmp_path, "feed"):
        yield url


@pytest_asyncio.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = Store.open(store_url)
    await opened.migrate()
    yield opened
    await opened.close()


@pytest_asyncio.fixture
async def client(store: Store, validator: Validator) -> AsyncIterator[TestClient]:
    context = ApiContext(
        country="NL", api_token=TOKEN, store=store, validator=validator, clock=FixedClock(T0)
    )
    served = TestClient(TestServer(create_api_app(context)))
    await served.start_server()
    yield served
    await served.close()


async def _history(store: Store) -> None:
    """Sent and delivered; sent and failed; received; a sent withdrawal."""
    sent = await store.submit(_message("m-1"), now=T0)
    failed = await store.submit(_message("m-2", number="NL-2"), now=T0)
    await store.reschedule(failed, now=T0, next_attempt_at=T0, error="down")
    await store.delivered(sent, now=T0, route="direct", outcome="accepted", receipt=b"r")
    await store.fail(failed, now=T0, error="gone")
    await store.receive(_message("k-1", sender="KE", number="KE-1"), now=T0,
                        make_receipt=lambda: ("accepted", b"r"))  # fmt: skip
    await store.submit(_message("m-3"), now=T0, lifecycle={"withdraws": sent})


async def _feed(client: TestClient, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/api/v1/events{query}", headers=AUTH)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


@pytest.mark.asyncio
async def test_the_feed_lists_every_event_in_order_in_the_issue_s_words(
    store: Store, client: TestClient
) -> None:
    await _history(store)
    body = await _feed(client)
    seen = [(e["certificate"], e["direction"], e["number"], e["kind"]) for e in body["events"]]
    assert seen == [
        (1, "sent", "NL-1", "sent"),
        (2, "sent", "NL-2", "sent"),
        (2, "sent", "NL-2", "retry"),
        (1, "sent", "NL-1", "delivered"),
        (2, "sent", "NL-2", "failed"),
        (3, "received", "KE-1", "received"),
        (4, "sent", "NL-1", "sent"),
        (4, "sent", "NL-1", "withdraws"),
    ]
    assert body["events"][4]["detail"] == {"error": "gone"}
    assert body["events"][0]["at"] == T0.isoformat()
    assert body["next"] == body["events"][-1]["id"]
    assert len({e["id"] for e in body["events"]}) == 8


@pytest.mark.asyncio
async def test_the_feed_resumes_after_its_cursor_and_misses_nothing(
    store: Store, client: TestClient
) -> None:
    await _history(store)
    everything = (await _feed(client))["events"]
    pages: list[dict[str, Any]] = []
    query = "?limit=3"
    while True:
        body = await _feed(client, query)
        if not body["events"]:
            break
        pages.extend(body["events"])
        query = f"?limit=3&after={body['next']}"
    assert pages == everything
    # Nothing new: `next` stays where it was, ready for the next poll.
    last = await _feed(client, f"?after={everything[-1]['id']}")
    assert last == {"events": [], "next": everything[-1]["id"]}
    await store.add_event(1, now=T0 + timedelta(seconds=1), kind="delivered", detail={})
    (new,) = (await _feed(client, f"?after={last['next']}"))["events"]
    assert new["kind"] == "delivered"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "after",
    [
        "",
        "1",
        "not a cursor",
        "e000000000000001",  # 15 digits
        "e00000000000000001",  # 17
        "e8000000000000000",  # 2**63: no id is that large
        "E0000000000000001",
        "e000000000000000A",  # one spelling only: lower case
        "e000000000000000\u0661",  # an Arabic-Indic digit
        " e0000000000000001",
    ],
)
async def test_a_bad_cursor_is_400(store: Store, client: TestClient, after: str) -> None:
    assert cursor(5) == "e0000000000000005"
    response = await client.get("/api/v1/events", params={"after": after}, headers=AUTH)
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert "cursor" in (await response.json())["detail"]


@pytest.mark.asyncio
@pytest.mark.parametrize("limit", ["0", "1001", "x", "-1"])
async def test_a_bad_limit_is_400(client: TestClient, limit: str) -> None:
    response = await client.get("/api/v1/events", params={"limit": limit}, headers=AUTH)
    assert response.status == 400


@pytest.mark.asyncio
async def test_events_written_by_an_api_call_name_the_client(
    store: Store, client: TestClient
) -> None:
    await store.submit_once(_message("m-9"), now=T0, client="backoffice")
    await store.receive(_message("k-9", sender="KE", number="KE-9"), now=T0,
                        make_receipt=lambda: ("accepted", b"r"))  # fmt: skip
    events = (await _feed(client))["events"]
    assert [(e["kind"], e["client"]) for e in events] == [
        ("sent", "backoffice"),
        ("received", None),
    ]
    assert [e.client for e in await store.events(1)] == ["backoffice"]


@pytest.mark.asyncio
async def test_postgres_an_event_never_commits_behind_one_already_read(tmp_path: Path) -> None:
    """Two writers: the first holds its transaction open after inserting its event. The
    second must not commit a later id meanwhile, or a reader would pass the first."""
    async for url in database_url("postgresql", tmp_path, "feedrace"):
        store = Store.open(url)
        await store.migrate()
        held = create_async_engine(url)
        try:
            await _race(store, held)
        finally:
            await held.dispose()
            await store.close()


async def _race(store: Store, held: Any) -> None:
    pk = await store.submit(_message("m-1"), now=T0)
    (start,) = await store.feed(after=0, limit=10)
    async with held.connect() as conn:
        transaction = await conn.begin()
        write = [writes.AddEvent(pk, T0, "retry", {"error": "first"})]
        await conn.run_sync(lambda c: writes.apply(c, write))
        second = asyncio.create_task(
            store.add_event(pk, now=T0, kind="retry", detail={"error": "second"})
        )
        await _until_done_or_waiting(store, second)
        # The first is not committed: the feed shows nothing after the start, not the
        # second (a reader that saw it would move past the first for good).
        assert await store.feed(after=start.id, limit=10) == []
        await transaction.commit()
    await second
    after = await store.feed(after=start.id, limit=10)
    assert [e.detail["error"] for e in after] == ["first", "second"]
    assert after[0].id < after[1].id


async def _until_done_or_waiting(store: Store, task: asyncio.Task[None]) -> None:
    """Until `task` has committed, or is waiting for a lock another session holds."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(600):
        if task.done():
            return
        count = await store._db.read(lambda c: c.execute(waiting).scalar_one())
        if count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the second writer neither committed nor waited")
