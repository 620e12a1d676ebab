"""Two hub processes on one PostgreSQL database: no envelope delivered twice or lost.

Real processes (`ephyto hub serve` twice, the same hub directory copied, listening on two
ports), the real PostgreSQL on 127.0.0.1:5432 (a database of its own, dropped after), the
real `HubClient` with NL's and KE's own keys. NL delivers distinct sealed envelopes to
both processes at once, some of them to both (a client retrying through the other
process); KE lists, pulls and acknowledges from both processes at once, its takers
racing each other for the same envelopes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from node.demo.network import network
from node.hub.config import CONFIG_FILE, load_hub_config
from node.hub.schema import envelopes
from node.hub.store import HubStore
from node.ippc import Envelope, TrackingState
from node.transport.hub_client import HubClient, HubError, HubRefusal
from tests.databases import postgres_database
from tests.integration.hub_processes import (
    hub_client,
    hub_service_url,
    sealed_envelopes,
    serve_hub_copy,
    trusted_directory,
)

COUNT = 200
# Every few envelopes, NL delivers the same one to both processes at the same moment.
TWICE_EVERY = 5
IN_FLIGHT = 8
TAKERS_PER_PROCESS = 3
DRAIN_TIMEOUT = 40.0


@pytest_asyncio.fixture
async def pg_url() -> AsyncIterator[str]:
    async for url in postgres_database("ephyto_hub_processes_test"):
        yield url


class Relay:
    """What NL and KE saw."""

    def __init__(self, envelopes: list[Envelope]) -> None:
        self.sent = {e.nppo_certificate_number: e for e in envelopes}
        self.tracking: dict[str, str] = {}  # certificate number -> tracking number
        self.twice: dict[str, tuple[str, str]] = {}  # both answers, for those sent twice
        self.pulled: dict[str, Envelope] = {}  # tracking number -> what KE got
        self.acknowledged: Counter[str] = Counter()  # successful AcknowledgeEnvelopeReceipt
        self.settled_refusals = 0  # pulls that found the envelope already acknowledged
        self.errors: list[str] = []
        self.sender_done = asyncio.Event()


async def _send(relay: Relay, nl: tuple[HubClient, HubClient]) -> None:
    limiter = asyncio.Semaphore(IN_FLIGHT)

    async def one(i: int, envelope: Envelope) -> None:
        number = envelope.nppo_certificate_number
        async with limiter:
            try:
                if i % TWICE_EVERY == 0:
                    answers = await asyncio.gather(nl[0].deliver(envelope), nl[1].deliver(envelope))
                    relay.twice[number] = (answers[0], answers[1])
                    relay.tracking[number] = answers[0]
                else:
                    relay.tracking[number] = await nl[i % 2].deliver(envelope)
            except HubError as e:
                relay.errors.append(f"deliver {number}: {e}")

    try:
        await asyncio.gather(*(one(i, e) for i, e in enumerate(relay.sent.values())))
    finally:
        relay.sender_done.set()


async def _take(relay: Relay, own: HubClient, ke: tuple[HubClient, HubClient], seed: int) -> None:
    """List from `own`, pull from `own`, acknowledge through either process, until done."""
    rng = random.Random(seed)
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        done = relay.sender_done.is_set()
        expected = set(relay.tracking.values())
        if done and expected <= set(relay.acknowledged):
            return
        try:
            headers = list(await own.import_headers())
        except HubError as e:
            relay.errors.append(f"list: {e}")
            return
        if not headers:
            await asyncio.sleep(0.01)
            continue
        rng.shuffle(headers)  # the takers meet on some envelopes, not on all
        for header in headers[:10]:
            tracking = header.hub_delivery_number
            assert tracking is not None
            try:
                envelope = await own.pull(tracking)
            except HubRefusal as e:
                if f"is already {TrackingState.DELIVERED.value}" in e.reason:
                    relay.settled_refusals += 1  # another taker acknowledged it meanwhile
                    continue
                relay.errors.append(f"pull {tracking}: {e}")
                continue
            except HubError as e:
                relay.errors.append(f"pull {tracking}: {e}")
                continue
            relay.pulled[tracking] = envelope
            try:
                await rng.choice(ke).acknowledge(tracking)
            except HubError as e:
                relay.errors.append(f"acknowledge {tracking}: {e}")
                continue
            relay.acknowledged[tracking] += 1
    relay.errors.append(f"KE taker gave up after {DRAIN_TIMEOUT:.0f} s")


async def _hub_records(
    database_url: str,
) -> tuple[int, Counter[str | None], Counter[str | None], int]:
    """From the shared database: envelopes stored, 'delivered' and 'acknowledged' events
    per tracking number, 'redelivered' events."""
    store = HubStore.open(database_url)
    try:
        events = await store.events(limit=100_000)
    finally:
        await store.close()
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            stored = (await conn.execute(select(func.count()).select_from(envelopes))).scalar_one()
    finally:
        await engine.dispose()
    delivered = Counter(e.tracking_number for e in events if e.kind == "delivered")
    acknowledged = Counter(e.tracking_number for e in events if e.kind == "acknowledged")
    redelivered = sum(1 for e in events if e.kind == "redelivered")
    return int(stored), delivered, acknowledged, redelivered


@pytest.mark.asyncio
async def test_two_hub_processes_on_one_postgres_deliver_each_envelope_once(
    tmp_path: Path, pg_url: str
) -> None:
    with (
        (tmp_path / "demo.log").open("w") as log,
        network(
            # NL and KE are enrolled but not served: this test plays both with HubClient.
            # KE has no endpoint, so the hub holds its envelopes for it to pull.
            tmp_path,
            log,
            ("NL",),
            hub=True,
            hub_only=("KE",),
            hub_database=pg_url,
            deferred=("NL", "KE"),
        ) as net,
    ):
        assert load_hub_config(tmp_path / "hub" / CONFIG_FILE).database_url == pg_url
        urls = (hub_service_url(net), serve_hub_copy(net, "hub-b"))
        assert urls[0] != urls[1]
        envelopes = sealed_envelopes(net, "NL", "KE", COUNT, "NL-TWOHUBS")
        relay = Relay(envelopes)
        nl_directory = await trusted_directory(net, "NL")
        ke_directory = await trusted_directory(net, "KE")
        async with (
            hub_client(net, "NL", urls[0], nl_directory) as nl_a,
            hub_client(net, "NL", urls[1], nl_directory) as nl_b,
            hub_client(net, "KE", urls[0], ke_directory) as ke_a,
            hub_client(net, "KE", urls[1], ke_directory) as ke_b,
        ):
            ke = (ke_a, ke_b)
            await asyncio.gather(
                _send(relay, (nl_a, nl_b)),
                *(
                    _take(relay, ke[p], ke, seed=10 * p + t)
                    for p in (0, 1)
                    for t in range(TAKERS_PER_PROCESS)
                ),
            )
            assert relay.errors == []
            # Both processes know every envelope NL sent, and say the same about it.
            trackings = {
                number: await asyncio.gather(nl_a.tracking(tn), nl_b.tracking(tn))
                for number, tn in relay.tracking.items()
            }
            # Nothing is left waiting for KE at either process.
            assert await ke_a.import_headers() == ()
            assert await ke_b.import_headers() == ()

        # Every envelope has its own tracking number; one sent to both processes at once
        # got the same number from both.
        assert len(relay.tracking) == COUNT
        assert len(set(relay.tracking.values())) == COUNT
        assert len(relay.twice) == COUNT // TWICE_EVERY
        assert all(a == b for a, b in relay.twice.values()), relay.twice
        # KE acknowledged each (distinct; a repeat with the same outcome is idempotent) and
        # got exactly what NL sent.
        assert set(relay.acknowledged) == set(relay.tracking.values())
        for number, tracking in relay.tracking.items():
            got, sent = relay.pulled[tracking], relay.sent[number]
            assert (got.from_, got.to, got.nppo_certificate_number) == ("NL", "KE", number)
            assert got.content == sent.content
        for number, (at_a, at_b) in trackings.items():
            assert at_a == at_b, number
            assert at_a.hub_delivery_number == relay.tracking[number]
            assert at_a.hub_tracking_info == TrackingState.DELIVERED.value, at_a

        # The shared database: one envelope per certificate, delivered once and settled
        # once (a repeated delivery or acknowledgement records no second one).
        stored, delivered, acknowledged, redelivered = await _hub_records(pg_url)
        assert stored == COUNT
        assert delivered == Counter[str | None](set(relay.tracking.values()))
        assert acknowledged == Counter[str | None](set(relay.tracking.values()))
        assert redelivered == COUNT // TWICE_EVERY
