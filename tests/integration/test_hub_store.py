"""The hub's store on real databases: a SQLite file (WAL) and the PostgreSQL on 127.0.0.1."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from node.hub.accounts import AccountPolicy, Plan, Prepaid, Tier, statement_csv
from node.hub.records import (
    DuplicateConflictError,
    EnvelopeNotFoundError,
    EnvelopeSettledError,
    HubSettings,
    InsufficientFundsError,
    InvalidValueError,
    UnknownNppoError,
)
from node.hub.store import HubStore
from tests.databases import database_url, postgres_database

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
FREE = AccountPolicy("EUR", Prepaid(fee=0))
PAID = AccountPolicy("EUR", Prepaid(fee=50))
UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def hub_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async for url in database_url(request.param, tmp_path, "hub"):
        yield url


@pytest_asyncio.fixture
async def pg_url() -> AsyncIterator[str]:
    async for url in postgres_database("ephyto_hub_test"):
        yield url


async def _opened(url: str, settings: HubSettings | None = None) -> HubStore:
    store = HubStore.open(url, settings)
    await store.migrate()
    for nppo in ("NL", "KE", "US"):
        await store.set_policy(nppo, FREE, T0)
    return store


@pytest_asyncio.fixture
async def hub(hub_url: str) -> AsyncIterator[HubStore]:
    store = await _opened(hub_url)
    yield store
    await store.close()


@pytest_asyncio.fixture
async def receiver_pays(hub_url: str) -> AsyncIterator[HubStore]:
    store = await _opened(hub_url, HubSettings(payer="receiver"))
    yield store
    await store.close()


async def _deliver(
    hub: HubStore, content: bytes = b"sealed-1", sender: str = "NL", recipient: str = "KE"
) -> str:
    tracking, duplicate = await hub.deliver(sender, recipient, 851, 70, "NL-1", content, T0)
    assert not duplicate
    return tracking


@pytest.mark.asyncio
async def test_migrate_is_idempotent(hub: HubStore) -> None:
    await hub.migrate()
    assert await hub.import_headers("KE") == []


@pytest.mark.asyncio
async def test_deliver_list_pull_acknowledge_round_trip(hub: HubStore) -> None:
    tracking = await _deliver(hub)
    (header,) = await hub.import_headers("KE", T0)
    assert (header.tracking_number, header.sender, header.recipient) == (tracking, "NL", "KE")
    assert (header.certificate_type, header.certificate_status) == (851, 70)
    assert header.state == "PendingDelivery" and header.created_at == T0
    pulled = await hub.pull("KE", tracking)
    assert pulled.content == b"sealed-1" and pulled.header == header
    assert [e.header.tracking_number for e in await hub.pull_all("KE")] == [tracking]
    # Pulling marks nothing: still pending, for the recipient and for the sender.
    assert (await hub.tracking("NL", tracking)).state == "PendingDelivery"
    ack = await hub.acknowledge("KE", tracking, T0 + timedelta(minutes=1))
    assert (ack.state, ack.repeated) == ("Delivered", False)
    tracked = await hub.tracking("NL", tracking)
    assert tracked.state == "Delivered" and tracked.settled_at == T0 + timedelta(minutes=1)
    assert await hub.import_headers("KE") == [] and await hub.pull_all("KE") == []
    assert [e.kind for e in await hub.events(tracking_number=tracking)] == [
        "delivered",
        "acknowledged",
    ]


@pytest.mark.asyncio
async def test_content_is_deleted_on_acknowledgement_but_header_and_digest_stay(
    hub: HubStore,
) -> None:
    tracking = await _deliver(hub)
    await hub.acknowledge("KE", tracking, T0, "DeliveredWithWarnings", "unknown code 'XX'")
    with pytest.raises(EnvelopeSettledError, match="DeliveredWithWarnings"):
        await hub.pull("KE", tracking)
    tracked = await hub.tracking("NL", tracking)
    assert (tracked.state, tracked.message) == ("DeliveredWithWarnings", "unknown code 'XX'")
    assert tracked.content_size == len(b"sealed-1") and len(tracked.content_sha256) == 64
    assert await _raw_content(hub, tracking) is None


async def _raw_content(hub: HubStore, tracking: str) -> bytes | None:
    from sqlalchemy import select

    from node.hub.schema import envelopes

    query = select(envelopes.c.content).where(envelopes.c.tracking_number == tracking)
    content: bytes | None = await hub._db.read(lambda conn: conn.execute(query).scalar_one())
    return content


@pytest.mark.asyncio
async def test_a_repeated_delivery_returns_the_original_and_charges_once(hub: HubStore) -> None:
    await hub.set_policy("NL", PAID, T0)
    await hub.credit("NL", 1000, T0, "prepayment")
    first = await hub.deliver("NL", "KE", 851, 70, "NL-1", b"same", T0)
    again = await hub.deliver("NL", "KE", 851, 70, "NL-1", b"same", T0 + timedelta(seconds=5))
    assert again.tracking_number == first.tracking_number and again.duplicate
    assert (await hub.account("NL")).balance == 950
    assert len(await hub.import_headers("KE")) == 1
    # The same content to another recipient is another envelope.
    other = await hub.deliver("NL", "US", 851, 70, "NL-1", b"same", T0)
    assert not other.duplicate and other.tracking_number != first.tracking_number
    with pytest.raises(DuplicateConflictError, match=first.tracking_number):
        await hub.deliver("NL", "KE", 851, 40, "NL-1", b"same", T0)


@pytest.mark.asyncio
async def test_after_a_failure_the_same_content_can_be_sent_again(hub: HubStore) -> None:
    first = await _deliver(hub)
    await hub.acknowledge("KE", first, T0, "Failed", "cannot decrypt")
    tracked = await hub.tracking("NL", first)
    assert (tracked.state, tracked.message) == ("FailedDelivery", "cannot decrypt")
    second = await _deliver(hub)
    assert second != first


@pytest.mark.asyncio
async def test_not_yours_is_the_same_error_as_unknown(hub: HubStore) -> None:
    tracking = await _deliver(hub)
    assert await hub.import_headers("US") == []
    assert await hub.pull_all("US") == []
    for number in (tracking, UNKNOWN, "not-a-number", "x" * 10_000):
        with pytest.raises(EnvelopeNotFoundError) as pulled:
            await hub.pull("US", number)
        with pytest.raises(EnvelopeNotFoundError) as acked:
            await hub.acknowledge("US", number, T0)
        with pytest.raises(EnvelopeNotFoundError) as tracked:
            await hub.tracking("KE", number)  # the recipient, not the sender
        assert type(pulled.value) is type(acked.value) is type(tracked.value)
    # The sender cannot pull or acknowledge its own envelope either.
    with pytest.raises(EnvelopeNotFoundError):
        await hub.pull("NL", tracking)
    with pytest.raises(EnvelopeNotFoundError):
        await hub.acknowledge("NL", tracking, T0)
    assert (await hub.tracking("NL", tracking)).state == "PendingDelivery"


@pytest.mark.asyncio
async def test_acknowledging_twice(hub: HubStore) -> None:
    tracking = await _deliver(hub)
    await hub.acknowledge("KE", tracking, T0)
    again = await hub.acknowledge("KE", tracking, T0 + timedelta(seconds=1))
    assert (again.state, again.repeated) == ("Delivered", True)
    with pytest.raises(EnvelopeSettledError, match="already Delivered"):
        await hub.acknowledge("KE", tracking, T0, "Failed", "too late")
    assert (await hub.tracking("NL", tracking)).settled_at == T0
    assert [e.kind for e in await hub.events(tracking_number=tracking)].count("acknowledged") == 1


@pytest.mark.asyncio
async def test_acknowledge_many_is_all_or_nothing(hub: HubStore) -> None:
    first, second = await _deliver(hub, b"1"), await _deliver(hub, b"2")
    with pytest.raises(EnvelopeNotFoundError):
        await hub.acknowledge_many("KE", [first, UNKNOWN, second], T0)
    assert len(await hub.import_headers("KE")) == 2
    acks = await hub.acknowledge_many("KE", [first, second, first], T0)
    assert [(a.tracking_number, a.repeated) for a in acks] == [
        (first, False),
        (second, False),
        (first, False),
    ]
    assert await hub.import_headers("KE") == []


@pytest.mark.asyncio
async def test_expiry_fails_old_envelopes_and_deletes_their_content(hub: HubStore) -> None:
    old = await _deliver(hub, b"old")
    young = (
        await hub.deliver("NL", "KE", 851, 70, "NL-2", b"young", T0 + timedelta(days=6))
    ).tracking_number
    expired = await hub.expire(T0 + timedelta(days=7, seconds=1), timedelta(days=7))
    assert expired == [old]
    tracked = await hub.tracking("NL", old)
    assert (tracked.state, tracked.message) == ("FailedDelivery", "expired")
    assert await _raw_content(hub, old) is None
    assert [h.tracking_number for h in await hub.import_headers("KE")] == [young]
    with pytest.raises(EnvelopeSettledError, match="expired"):
        await hub.acknowledge("KE", old, T0 + timedelta(days=8))
    with pytest.raises(EnvelopeSettledError):
        await hub.pull("KE", old)
    assert await hub.expire(T0 + timedelta(days=7, seconds=1), timedelta(days=7)) == []


@pytest.mark.asyncio
async def test_insufficient_balance_is_refused_and_nothing_is_stored(hub: HubStore) -> None:
    await hub.set_policy("NL", PAID, T0)
    await hub.credit("NL", 40, T0, "too little")
    with pytest.raises(InsufficientFundsError, match="insufficient balance") as refused:
        await hub.deliver("NL", "KE", 851, 70, "NL-1", b"x", T0)
    assert refused.value.refusal.amount == 50 and refused.value.nppo == "NL"
    assert await hub.import_headers("KE") == []
    account = await hub.account("NL")
    assert (account.balance, account.used) == (40, 0)
    assert [e.kind for e in (await hub.statement("NL", T0, T0 + timedelta(days=1))).entries] == [
        "credit"
    ]


@pytest.mark.asyncio
async def test_overdraft_is_allowed_up_to_its_limit(hub: HubStore) -> None:
    await hub.set_policy("NL", AccountPolicy("EUR", Prepaid(fee=50), overdraft=100), T0)
    await _deliver(hub, b"1")
    await _deliver(hub, b"2")
    assert (await hub.account("NL")).balance == -100
    with pytest.raises(InsufficientFundsError):
        await _deliver(hub, b"3")
    await hub.credit("NL", 50, T0, "top-up")
    await _deliver(hub, b"3")
    statement = await hub.statement("NL", T0, T0 + timedelta(days=1))
    assert statement.closing_balance == -100 == sum(e.amount for e in statement.entries)
    assert statement.currency == "EUR" and statement.opening_balance == 0
    assert statement_csv(statement.entries).count("\r\n") == 5


@pytest.mark.asyncio
async def test_receiver_pays_at_acknowledgement(receiver_pays: HubStore) -> None:
    hub = receiver_pays
    await hub.set_policy("KE", PAID, T0)
    await hub.credit("KE", 60, T0, "prepayment")
    await hub.set_policy("NL", PAID, T0)  # the sender has nothing and still delivers
    first, second = await _deliver(hub, b"1"), await _deliver(hub, b"2")
    assert (await hub.account("NL")).balance == 0
    assert (await hub.account("KE")).balance == 60
    await hub.acknowledge("KE", first, T0)
    assert (await hub.account("KE")).balance == 10
    await hub.acknowledge("KE", first, T0)  # the repeat is not charged again
    with pytest.raises(InsufficientFundsError):
        await hub.acknowledge("KE", second, T0)
    assert (await hub.tracking("NL", second)).state == "PendingDelivery"
    # A failure is not a delivery: the receiver is not charged for it.
    await hub.acknowledge("KE", second, T0, "Failed", "unreadable")
    assert (await hub.account("KE")).balance == 10
    (charge,) = [
        e for e in (await hub.statement("KE", T0, T0 + timedelta(1))).entries if e.amount < 0
    ]
    assert charge.reference == first


@pytest.mark.asyncio
async def test_plan_tiers_are_charged_by_volume_and_reset_each_period(hub: HubStore) -> None:
    plan = AccountPolicy("EUR", Plan("monthly", 2, (Tier(3, 30), Tier(None, 10))), overdraft=1000)
    await hub.set_policy("NL", plan, T0)
    for i in range(5):
        await _deliver(hub, f"{i}".encode())
    account = await hub.account("NL")
    assert (account.balance, account.used, account.period) == (-50, 5, "2026-11")
    next_month = datetime(2026, 12, 1, tzinfo=UTC)
    await hub.deliver("NL", "KE", 851, 70, "NL-9", b"december", next_month)
    account = await hub.account("NL")
    assert (account.balance, account.used, account.period) == (-50, 1, "2026-12")
    november = await hub.statement("NL", T0, next_month)
    assert [-e.amount for e in november.entries] == [0, 0, 30, 10, 10]


@pytest.mark.asyncio
async def test_unknown_nppos_are_refused(hub: HubStore) -> None:
    with pytest.raises(UnknownNppoError, match="ZZ"):
        await hub.deliver("NL", "ZZ", 851, 70, "NL-1", b"x", T0)
    with pytest.raises(UnknownNppoError, match="ZZ"):
        await hub.deliver("ZZ", "NL", 851, 70, "NL-1", b"x", T0)
    with pytest.raises(UnknownNppoError):
        await hub.account("ZZ")
    with pytest.raises(UnknownNppoError):
        await hub.credit("ZZ", 10, T0)


@pytest.mark.asyncio
async def test_hostile_values_are_refused_and_nothing_is_stored(hub_url: str) -> None:
    hub = await _opened(hub_url, HubSettings(max_content_bytes=1024))
    try:
        good: dict[str, Any] = {
            "sender": "NL",
            "recipient": "KE",
            "certificate_type": 851,
            "certificate_status": 70,
            "certificate_number": "NL-1",
            "content": b"x",
            "now": T0,
        }
        bad_values: list[dict[str, Any]] = [
            {"content": b"x" * 1025},
            {"content": b""},
            {"content": "text, not bytes"},
            {"sender": ""},
            {"recipient": ""},
            {"sender": "nl"},
            {"recipient": "KEN"},
            {"recipient": "K\n"},
            {"certificate_number": ""},
            {"certificate_number": "N" * 129},
            {"certificate_number": "NL-1\x00"},
            {"certificate_type": -1},
            {"certificate_status": 10**6},
            {"certificate_status": "70"},
        ]
        for bad in bad_values:
            with pytest.raises(InvalidValueError):
                await hub.deliver(**{**good, **bad})
        assert await hub.import_headers("KE") == []
        assert await hub.events(nppo="NL") == [
            e for e in await hub.events(nppo="NL") if e.kind == "policy"
        ]
        tracking = (await hub.deliver(**good)).tracking_number
        with pytest.raises(InvalidValueError):
            await hub.acknowledge("KE", tracking, T0, "Failed", None)
        with pytest.raises(InvalidValueError):
            await hub.acknowledge("KE", tracking, T0, "Failed", "x" * 5000)
        with pytest.raises(InvalidValueError):
            await hub.acknowledge("KE", tracking, T0, "Maybe")  # type: ignore[arg-type]
        with pytest.raises(InvalidValueError):
            await hub.import_headers("")
        with pytest.raises(InvalidValueError):
            await hub.set_push_endpoint("KE", "javascript:alert(1)", T0)
        assert (await hub.tracking("NL", tracking)).state == "PendingDelivery"
    finally:
        await hub.close()


@pytest.mark.asyncio
async def test_push_claims_leases_and_retries(hub: HubStore) -> None:
    await hub.set_push_endpoint("KE", "https://ke.example/push", T0)
    to_ke = await _deliver(hub, b"to-ke")
    await _deliver(hub, b"to-us", recipient="US")  # US pulls: never claimed for push
    (item,) = await hub.claim_push(T0, LEASE, 10)
    assert (item.envelope.header.tracking_number, item.url) == (to_ke, "https://ke.example/push")
    assert item.envelope.content == b"to-ke" and item.attempts == 0
    assert await hub.claim_push(T0 + timedelta(seconds=1), LEASE, 10) == []
    await hub.push_failed(to_ke, T0, T0 + timedelta(minutes=5), "connection refused")
    assert await hub.claim_push(T0 + timedelta(minutes=4), LEASE, 10) == []
    (again,) = await hub.claim_push(T0 + timedelta(minutes=5), LEASE, 10)
    assert again.attempts == 1
    # A lease that runs out (the pushing process died) is claimed again.
    later = T0 + timedelta(minutes=5) + LEASE + timedelta(seconds=1)
    assert len(await hub.claim_push(later, LEASE, 10)) == 1
    await hub.acknowledge("KE", to_ke, later)
    assert await hub.claim_push(later + timedelta(hours=1), LEASE, 10) == []


@pytest.mark.asyncio
async def test_concurrent_deliveries_never_overdraw(pg_url: str) -> None:
    hub = await _opened(pg_url)
    other = HubStore.open(pg_url)  # a second engine, as a second hub instance would have
    try:
        await hub.set_policy("NL", AccountPolicy("EUR", Prepaid(fee=10), overdraft=200), T0)
        await hub.credit("NL", 1000, T0, "prepayment")

        async def one(i: int) -> bool:
            store = hub if i % 2 else other
            try:
                await store.deliver("NL", "KE", 851, 70, f"NL-{i}", f"c{i}".encode(), T0)
            except InsufficientFundsError:
                return False
            return True

        results = await asyncio.gather(*(one(i) for i in range(200)))
        # Repeats of already-sent content, racing too: none is charged or stored again.
        await asyncio.gather(*(one(i) for i in range(0, 200, 7) if results[i]))
        assert sum(results) == 120
        account = await hub.account("NL")
        assert account.balance == -200
        statement = await hub.statement("NL", T0, T0 + timedelta(days=1))
        assert sum(e.amount for e in statement.entries) == account.balance
        assert len(await hub.import_headers("KE")) == 120
    finally:
        await other.close()
        await hub.close()


def _claim_in_process(url: str, barrier: Any, results: Any) -> None:
    """One hub process: claim push work in small batches until none is left."""

    async def run() -> list[str]:
        store = HubStore.open(url)
        claimed: list[str] = []
        try:
            barrier.wait(timeout=60)
            while batch := await store.claim_push(T0, LEASE, 3):
                claimed += [item.envelope.header.tracking_number for item in batch]
        finally:
            await store.close()
        return claimed

    results.put(asyncio.run(run()))


@pytest.mark.asyncio
async def test_two_processes_never_claim_the_same_envelope(pg_url: str) -> None:
    hub = await _opened(pg_url)
    try:
        await hub.set_push_endpoint("KE", "https://ke.example/push", T0)
        delivered = {await _deliver(hub, f"{i}".encode()) for i in range(150)}
    finally:
        await hub.close()
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(2), spawn.Queue()
    workers = [
        spawn.Process(target=_claim_in_process, args=(pg_url, barrier, results)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    claims = [await asyncio.to_thread(results.get, True, 120) for _ in workers]
    for worker in workers:
        await asyncio.to_thread(worker.join, 30)
        assert worker.exitcode == 0
    first, second = (set(c) for c in claims)
    assert len(claims[0]) == len(first) and len(claims[1]) == len(second)
    assert first.isdisjoint(second)
    assert first | second == delivered


@pytest.mark.asyncio
async def test_deliver_tracked_answers_what_tracking_shows(hub: HubStore) -> None:
    first, header = await hub.deliver_tracked("NL", "KE", 851, 70, "NL-1", b"sealed-1", T0)
    assert not first.duplicate and header == await hub.tracking("NL", first.tracking_number)
    await hub.acknowledge("KE", first.tracking_number, T0, "DeliveredWithWarnings", "note")
    again, header = await hub.deliver_tracked("NL", "KE", 851, 70, "NL-1", b"sealed-1", T0)
    assert again == (first.tracking_number, True)
    assert header == await hub.tracking("NL", first.tracking_number)
    assert (header.state, header.message) == ("DeliveredWithWarnings", "note")


@pytest.mark.asyncio
async def test_concurrent_writes_fail_alone_and_commit_together(hub_url: str) -> None:
    hub = await _opened(hub_url)
    try:
        await hub.set_policy("NL", PAID, T0)
        await hub.credit("NL", 100, T0)  # two envelopes' worth
        tracking = await _deliver(hub, b"known", sender="KE", recipient="NL")
        results = await asyncio.gather(
            *(hub.deliver("NL", "KE", 851, 70, f"NL-{i}", b"c%d" % i, T0) for i in range(4)),
            hub.deliver("KE", "NL", 851, 70, "other number", b"known", T0),
            hub.acknowledge("NL", tracking, T0),
            hub.acknowledge("NL", UNKNOWN, T0),
            return_exceptions=True,
        )
        *delivered, conflict, acknowledged, unknown = results
        assert sorted(type(r).__name__ for r in delivered) == [
            "Delivery",
            "Delivery",
            "InsufficientFundsError",
            "InsufficientFundsError",
        ]
        assert isinstance(conflict, DuplicateConflictError)
        assert isinstance(unknown, EnvelopeNotFoundError)
        assert not isinstance(acknowledged, BaseException) and acknowledged.state == "Delivered"
        assert (await hub.account("NL")).balance == 0
        assert len(await hub.import_headers("KE")) == 2
        assert [h.tracking_number for h in await hub.under_delivery("KE")] == []
    finally:
        await hub.close()
