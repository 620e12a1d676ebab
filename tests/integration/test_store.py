"""The store on real databases: a SQLite file (WAL) and the PostgreSQL on 127.0.0.1."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from node.store.store import NewMessage, NotFoundError, ReplayError, Store
from tests.databases import database_url, postgres_database

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def _message(message_id: str = "m-1", digest: str = "sha256:aa", sender: str = "NL") -> NewMessage:
    return NewMessage(
        message_id=message_id,
        sender=sender,
        recipient="KE" if sender == "NL" else "NL",
        certificate_number="NL-1",
        certificate_type="851",
        certificate_status="70",
        content_digest=digest,
        payload=b"<rsm:SPSCertificate/>",
    )


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async for url in database_url(request.param, tmp_path, "node"):
        yield url


@pytest_asyncio.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = Store.open(store_url)
    await opened.migrate()
    yield opened
    await opened.close()


@pytest.mark.asyncio
async def test_migrate_is_idempotent(store: Store) -> None:
    await store.migrate()
    assert await store.messages("out") == []


@pytest.mark.asyncio
async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}")
    await store.migrate()
    await store.submit(_message(), now=T0)
    await store.close()
    assert (tmp_path / "wal.db").exists()
    import sqlite3

    with sqlite3.connect(tmp_path / "wal.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.asyncio
async def test_submit_claim_deliver(store: Store) -> None:
    pk = await store.submit(_message(), now=T0)
    (item,) = await store.claim_due(now=T0, lease=LEASE, limit=10)
    assert item.message.id == pk and item.destination == "KE" and item.attempts == 0
    assert item.message.payload == b"<rsm:SPSCertificate/>"
    # Claimed: nobody else gets it while the lease runs.
    assert await store.claim_due(now=T0 + timedelta(seconds=1), lease=LEASE, limit=10) == []
    await store.delivered(pk, now=T0, route="direct", outcome="accepted", receipt=b"receipt")
    stored = await store.message(pk)
    assert (stored.state, stored.route, stored.outcome, stored.receipt) == (
        "delivered",
        "direct",
        "accepted",
        b"receipt",
    )
    assert stored.created_at == T0
    assert [e.kind for e in await store.events(pk)] == ["submitted", "delivered"]
    assert await store.pending_count() == 0


@pytest.mark.asyncio
async def test_an_expired_lease_is_claimed_again(store: Store) -> None:
    """A worker killed mid-delivery: its claim runs out and the message goes again."""
    pk = await store.submit(_message(), now=T0)
    assert len(await store.claim_due(now=T0, lease=LEASE, limit=10)) == 1
    (again,) = await store.claim_due(now=T0 + LEASE + timedelta(seconds=1), lease=LEASE, limit=10)
    assert again.message.id == pk


@pytest.mark.asyncio
async def test_a_restarted_node_releases_the_claims_of_its_dead_process(store: Store) -> None:
    pk = await store.submit(_message(), now=T0)
    assert len(await store.claim_due(now=T0, lease=LEASE, limit=10)) == 1
    assert await store.release_claims() == 1
    (again,) = await store.claim_due(now=T0 + timedelta(seconds=1), lease=LEASE, limit=10)
    assert again.message.id == pk


@pytest.mark.asyncio
async def test_a_delivery_wakes_the_destinations_backed_off_queue(store: Store) -> None:
    first = await store.submit(_message("m-1"), now=T0)
    second = await store.submit(_message("m-2"), now=T0)
    await store.claim_due(now=T0, lease=LEASE, limit=10)
    far = T0 + timedelta(minutes=10)
    await store.reschedule(second, now=T0, next_attempt_at=far, error="down")
    assert (
        await store.delivered(first, now=T0, route="direct", outcome="accepted", receipt=b"r") == 1
    )
    (item,) = await store.claim_due(now=T0, lease=LEASE, limit=10)
    assert item.message.id == second


@pytest.mark.asyncio
async def test_transient_failure_waits_for_its_time(store: Store) -> None:
    pk = await store.submit(_message(), now=T0)
    await store.claim_due(now=T0, lease=LEASE, limit=10)
    later = T0 + timedelta(minutes=2)
    await store.reschedule(pk, now=T0, next_attempt_at=later, error="connection refused")
    assert await store.claim_due(now=later - timedelta(seconds=1), lease=LEASE, limit=10) == []
    (item,) = await store.claim_due(now=later, lease=LEASE, limit=10)
    assert item.attempts == 1
    retry = (await store.events(pk))[-1]
    assert retry.kind == "retry" and retry.detail["error"] == "connection refused"


@pytest.mark.asyncio
async def test_permanent_failure_stops(store: Store) -> None:
    pk = await store.submit(_message(), now=T0)
    await store.fail(pk, now=T0, error="recipient refused: bad certificate")
    assert (await store.message(pk)).state == "failed"
    assert await store.claim_due(now=T0 + timedelta(days=1), lease=LEASE, limit=10) == []


@pytest.mark.asyncio
async def test_claims_come_in_due_order_and_respect_the_limit(store: Store) -> None:
    first = await store.submit(_message("m-1"), now=T0)
    second = await store.submit(_message("m-2"), now=T0 + timedelta(seconds=1))
    (item,) = await store.claim_due(now=T0 + timedelta(seconds=5), lease=LEASE, limit=1)
    assert item.message.id == first
    (item,) = await store.claim_due(now=T0 + timedelta(seconds=5), lease=LEASE, limit=1)
    assert item.message.id == second


@pytest.mark.asyncio
async def test_a_repeated_message_is_stored_once_and_gets_the_original_receipt(
    store: Store,
) -> None:
    made: list[str] = []

    def receipt(tag: str) -> tuple[str, bytes]:
        made.append(tag)
        return "accepted", f"receipt-{tag}".encode()

    first = await store.receive(_message(sender="KE"), now=T0, make_receipt=lambda: receipt("1"))
    again = await store.receive(_message(sender="KE"), now=T0, make_receipt=lambda: receipt("2"))
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.receipt == first.receipt == b"receipt-1"
    assert made == ["1"]
    assert len(await store.messages("in")) == 1


@pytest.mark.asyncio
async def test_a_replay_with_other_content_is_refused_and_changes_nothing(store: Store) -> None:
    await store.receive(_message(sender="KE"), now=T0, make_receipt=lambda: ("accepted", b"r"))
    with pytest.raises(ReplayError, match="already received with different content"):
        await store.receive(
            _message(sender="KE", digest="sha256:bb"), now=T0, make_receipt=lambda: ("x", b"x")
        )
    (only,) = await store.messages("in")
    assert only.content_digest == "sha256:aa"


@pytest.mark.asyncio
async def test_the_same_id_from_another_sender_is_another_message(store: Store) -> None:
    await store.receive(_message(sender="KE"), now=T0, make_receipt=lambda: ("accepted", b"1"))
    other = await store.receive(
        _message(sender="US"), now=T0, make_receipt=lambda: ("accepted", b"2")
    )
    assert not other.duplicate
    assert len(await store.messages("in")) == 2


@pytest.mark.asyncio
async def test_concurrent_deliveries_of_one_message_store_it_once(store_url: str) -> None:
    """Two connections race to store the same inbound message (a lost response)."""
    stores = [Store.open(store_url) for _ in range(2)]
    await stores[0].migrate()
    try:
        results = await asyncio.gather(
            *(
                s.receive(_message(sender="KE"), now=T0, make_receipt=lambda: ("accepted", b"r"))
                for s in stores
            ),
            return_exceptions=True,
        )
    finally:
        for s in stores:
            await s.close()
    received = [r for r in results if not isinstance(r, BaseException)]
    # SQLite serialises writers; it may report the loser as busy rather than racing.
    assert received, results
    assert all(r.receipt == b"r" for r in received)
    check = Store.open(store_url)
    assert len(await check.messages("in")) == 1
    await check.close()


@pytest.mark.asyncio
async def test_two_workers_never_claim_the_same_message(store_url: str) -> None:
    setup = Store.open(store_url)
    await setup.migrate()
    for i in range(40):
        await setup.submit(_message(f"m-{i}"), now=T0)
    await setup.close()
    workers = [Store.open(store_url) for _ in range(2)]

    async def drain(store: Store) -> list[int]:
        got: list[int] = []
        while batch := await store.claim_due(now=T0, lease=LEASE, limit=3):
            got += [item.message.id for item in batch]
            await asyncio.sleep(0)
        return got

    try:
        first, second = await asyncio.gather(*(drain(w) for w in workers))
    finally:
        for w in workers:
            await w.close()
    assert sorted(first + second) == sorted(set(first + second))
    assert len(first + second) == 40


def _count_transactions(store: Store) -> list[int]:
    """A one-item list counting the store's write transactions from now on."""
    count = [0]
    database = store._db
    write = database.write

    async def counted(fn: Any) -> Any:
        count[0] += 1
        return await write(fn)

    database.write = counted  # type: ignore[method-assign]
    return count


@pytest.mark.asyncio
async def test_writes_queued_together_commit_together_and_each_gets_its_own_answer(
    store: Store,
) -> None:
    """Group commit: many callers at once, one transaction, every result where it belongs."""
    first = await store.submit(_message("m-first"), now=T0)
    await store.claim_due(now=T0, lease=LEASE, limit=10)
    outbound = [_message(f"out-{i}") for i in range(20)]
    inbound = [_message(f"in-{i}", sender="KE") for i in range(20)]
    transactions = _count_transactions(store)
    results = await asyncio.gather(
        *(store.submit(m, now=T0, lifecycle={"n": i}) for i, m in enumerate(outbound)),
        *(
            store.receive(m, now=T0, make_receipt=lambda m=m: ("accepted", m.message_id.encode()))
            for m in inbound
        ),
        # The same inbound message twice in one batch: stored once, one receipt.
        store.receive(inbound[0], now=T0, make_receipt=lambda: ("accepted", b"other")),
        store.delivered(first, now=T0, route="direct", outcome="accepted", receipt=b"r"),
    )
    assert transactions == [1]  # 42 writes queued at once: one transaction
    pks = results[:20]
    assert len(set(pks)) == 20
    for pk, sent in zip(pks, outbound, strict=True):
        stored = await store.message(pk)
        assert stored.message_id == sent.message_id
        assert [e.kind for e in await store.events(pk)] == ["submitted", "lifecycle"]
    received = results[20:40]
    for answer, sent in zip(received, inbound, strict=True):
        assert answer.receipt == sent.message_id.encode()
        assert (await store.message(answer.message)).message_id == sent.message_id
    repeat = results[40]
    assert repeat.duplicate and repeat.receipt == b"in-0"
    assert (await store.message(first)).state == "delivered"
    assert len(await store.messages("in")) == 20


@pytest.mark.asyncio
async def test_a_refused_write_in_a_batch_leaves_the_others_committed(store: Store) -> None:
    await store.receive(_message("seen", sender="KE"), now=T0, make_receipt=lambda: ("ok", b"r"))
    replay, fresh, missing_message_event = await asyncio.gather(
        store.receive(
            _message("seen", sender="KE", digest="sha256:bb"),
            now=T0,
            make_receipt=lambda: ("ok", b"x"),
        ),
        store.submit(_message("fresh"), now=T0),
        # An event for a message that does not exist breaks the foreign key: that
        # transaction fails, and the batch is retried write by write.
        store.add_event(10**9, now=T0, kind="note", detail={}),
        return_exceptions=True,
    )
    assert isinstance(replay, ReplayError)
    assert isinstance(fresh, int)
    assert (await store.message(fresh)).state == "queued"
    assert isinstance(missing_message_event, Exception)
    assert len(await store.messages("in")) == 1


@pytest.mark.asyncio
async def test_unknown_message(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.message(12345)


def test_naive_times_are_refused() -> None:
    from node.store.types import UtcDateTime

    with pytest.raises(ValueError, match="naive"):
        UtcDateTime().process_bind_param(datetime(2026, 1, 1), None)


def _migrate_in_a_process(url: str, which: str) -> None:
    async def migrate() -> None:
        from node.hub.store import HubStore

        store = HubStore.open(url) if which == "hub" else Store.open(url)
        await store.migrate()
        await store.close()

    asyncio.run(migrate())


@pytest.mark.asyncio
@pytest.mark.parametrize("which", ["node", "hub"])
async def test_processes_that_migrate_a_new_postgres_database_at_once_all_succeed(
    which: str,
) -> None:
    """Replicas started together on a new database: without a lock, all but one failed
    creating the same tables."""
    async for url in postgres_database("ephyto_migrate_test"):
        spawn = multiprocessing.get_context("spawn")
        processes = [
            spawn.Process(target=_migrate_in_a_process, args=(url, which)) for _ in range(3)
        ]
        for process in processes:
            process.start()
        for process in processes:
            await asyncio.get_running_loop().run_in_executor(None, process.join, 60)
        assert [process.exitcode for process in processes] == [0, 0, 0]
