"""A hold (the partner is suspended) releases a message without counting an attempt, on
both databases: the count is what sends a message through the hub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from node.store.store import NewMessage, Store
from tests.databases import database_url

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async for url in database_url(request.param, tmp_path, "node"):
        opened = Store.open(url)
        await opened.migrate()
        yield opened
        await opened.close()


def _message(message_id: str) -> NewMessage:
    return NewMessage(
        message_id=message_id,
        sender="NL",
        recipient="KE",
        certificate_number=f"NL-{message_id}",
        certificate_type="851",
        certificate_status="70",
        content_digest="sha256:aa",
        payload=b"<rsm:SPSCertificate/>",
    )


@pytest.mark.asyncio
async def test_a_hold_counts_no_attempt_and_a_retry_in_the_same_batch_does(store: Store) -> None:
    held = await store.submit(_message("m-1"), now=T0)
    failed = await store.submit(_message("m-2"), now=T0)
    await store.claim_due(now=T0, lease=LEASE, limit=10)
    later = T0 + timedelta(minutes=10)
    # At once, so that SQLite commits both in one batch: one statement for both rows.
    await asyncio.gather(
        store.reschedule(
            held, now=T0, next_attempt_at=later, error="KE is suspended", count_attempt=False
        ),
        store.reschedule(failed, now=T0, next_attempt_at=later, error="connection refused"),
    )
    assert await store.claim_due(now=later - timedelta(seconds=1), lease=LEASE, limit=10) == []
    items = await store.claim_due(now=later, lease=LEASE, limit=10)
    assert {item.message.id: item.attempts for item in items} == {held: 0, failed: 1}
    hold = (await store.events(held))[-1]
    assert (hold.kind, hold.detail["error"]) == ("retry", "KE is suspended")
