"""The hub route end to end: outbox worker, hub, puller, over real mutual TLS on loopback.

Everything here is the real thing (tests/integration/hub_route_world.py): identities from
`init_node` / `init_hub`, the directory from the registry's `publish`, the hub app with a
SQLite hub store, SQLite node stores, `OutboxWorker` with a `DeliveryClient` and the
`HubClient` that `run_node` builds, `HubPuller`, and real exchange endpoints. Time is a
FixedClock moved by hand, and backoff is zero, so each `run_once` is the next attempt.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import sqlite3
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, closing, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from node.certificate.model import Certificate
from node.certificate.validate import Validator
from node.clock import FixedClock
from node.codelists.lists import bundled
from node.envelope.envelope import EnvelopeHeader as SealedHeader
from node.envelope.envelope import seal
from node.hub.accounts import AccountPolicy, Prepaid
from node.hub.push import HubPusher
from node.hub.web import SERVICE_PATH
from node.ippc import (
    DeliverEnvelope,
    DeliverEnvelopeResponse,
    Envelope,
    EnvelopeHeader,
    GetEnvelopeTrackingInfo,
    GetEnvelopeTrackingInfoResponse,
    HubResponse,
    parse_request,
    render_response,
)
from node.outbox.policy import Backoff
from node.store.store import Store, StoredMessage
from node.transport.client import DeliveryClient, TransientDeliveryError
from node.transport.hub_client import HubUnavailable
from registry.lifecycle import Lifecycle
from registry.state import RegistryState
from tests import binding_documents
from tests.integration.hub_route_world import (
    FALLBACK_ATTEMPTS,
    HUB_RECHECK,
    T0,
    Network,
    NodeUnderTest,
    open_network,
    outgoing,
    submit_from_nl,
)


@pytest_asyncio.fixture
async def net(tmp_path: Path, validator: Validator) -> AsyncIterator[Network]:
    async with AsyncExitStack() as stack:
        yield await open_network(stack, tmp_path, FixedClock(T0), validator)


async def _submit(net: Network, to: str, payload: bytes, number: str = "NL-2026-0001234") -> int:
    return await submit_from_nl(net, to, payload, number=number)


async def _kinds(node: NodeUnderTest, pk: int) -> list[str]:
    return [e.kind for e in await node.store.events(pk)]


async def _inbound(store: Store) -> list[StoredMessage]:
    return await store.messages("in")


async def _hub_state(net: Network, sender: str, tracking: str) -> tuple[str, str | None]:
    assert net.hub.store is not None
    header = await net.hub.store.tracking(sender, tracking)
    return header.state, header.message


async def _track_after_recheck(net: Network) -> None:
    """NL's next tick once the relayed message is due to be checked at the hub."""
    nl = net.nodes["NL"]
    assert await nl.worker.run_once() == 0  # not due yet: nothing asked of the hub
    net.clock.advance(seconds=HUB_RECHECK.total_seconds())
    assert await nl.worker.run_once() == 1


def _invalid(phyto_xml: bytes) -> bytes:
    return phyto_xml.replace(b"<rsm:SPSExchangedDocument>", b"<rsm:SPSExchangedDocument><x/>", 1)


# --- 1. a partner without an endpoint --------------------------------------------------------


@pytest.mark.asyncio
async def test_a_hub_only_partner_gets_it_through_the_hub_and_the_sender_settles_it(
    net: Network, phyto_xml: bytes
) -> None:
    nl, ke = net.nodes["NL"], net.nodes["KE"]
    await net.hub.start()
    pk = await _submit(net, "KE", phyto_xml)

    assert await nl.worker.run_once() == 1
    relayed = await nl.store.message(pk)
    assert (relayed.state, relayed.route) == ("relayed", "hub")
    events = await nl.store.events(pk)
    assert [e.kind for e in events] == ["submitted", "schema-version", "relayed"]
    assert events[-1].detail["why"] == "the partner has no direct endpoint"
    tracking = events[-1].detail["hub"]
    assert await _hub_state(net, "NL", tracking) == ("PendingDelivery", None)

    assert await ke.puller.run_once() == 1
    [received] = await _inbound(ke.store)
    assert (received.message_id, received.sender, received.recipient) == (
        relayed.message_id, "NL", "KE",
    )  # fmt: skip
    assert received.payload == phyto_xml  # byte for byte what NL submitted
    assert received.content_digest == relayed.content_digest
    assert received.outcome == "accepted"
    assert await _hub_state(net, "NL", tracking) == ("Delivered", None)
    assert await ke.puller.run_once() == 0  # acknowledged: nothing left at the hub
    assert len(await _inbound(ke.store)) == 1

    await _track_after_recheck(net)
    settled = await nl.store.message(pk)
    assert (settled.state, settled.route, settled.outcome) == ("delivered", "hub", "Delivered")
    assert settled.receipt is None  # a hub hands back no signed receipt
    assert await _kinds(nl, pk) == ["submitted", "schema-version", "relayed", "delivered"]
    assert await nl.store.pending_count() == 0


# --- 2. fallback from a partner that is down -------------------------------------------------


@pytest.mark.asyncio
async def test_after_the_failed_direct_attempts_the_message_goes_through_the_hub(
    net: Network, phyto_xml: bytes
) -> None:
    nl, us = net.nodes["NL"], net.nodes["US"]
    await net.hub.start()  # US is not: nothing listens on its endpoint
    pk = await _submit(net, "US", phyto_xml)

    for attempt in range(FALLBACK_ATTEMPTS):
        assert await nl.worker.run_once() == 1
        assert (await nl.store.message(pk)).state == "queued", attempt
    events = await nl.store.events(pk)
    assert [e.kind for e in events] == ["submitted", "schema-version"] + [
        "retry"
    ] * FALLBACK_ATTEMPTS
    assert all("127.0.0.1" in e.detail["error"] for e in events[2:])  # the partner's endpoint

    assert await nl.worker.run_once() == 1
    relayed = await nl.store.message(pk)
    assert (relayed.state, relayed.route) == ("relayed", "hub")
    last = (await nl.store.events(pk))[-1]
    assert last.kind == "relayed"
    assert last.detail["why"] == f"{FALLBACK_ATTEMPTS} direct attempts failed"

    assert await us.puller.run_once() == 1
    [received] = await _inbound(us.store)
    assert (received.message_id, received.payload) == (relayed.message_id, phyto_xml)
    await _track_after_recheck(net)
    settled = await nl.store.message(pk)
    assert (settled.state, settled.route) == ("delivered", "hub")


@pytest.mark.asyncio
async def test_direct_delivery_failing_for_fallback_seconds_also_goes_through_the_hub(
    net: Network, phyto_xml: bytes
) -> None:
    nl = net.nodes["NL"]
    await net.hub.start()
    pk = await _submit(net, "US", phyto_xml)
    assert await nl.worker.run_once() == 1  # one failed direct attempt
    net.clock.advance(minutes=5)
    assert await nl.worker.run_once() == 1
    last = (await nl.store.events(pk))[-1]
    assert (last.kind, last.detail["why"]) == ("relayed", "direct delivery failing for 300 s")


# --- 3. both ways, stored once ---------------------------------------------------------------


class _LostAnswer:
    """The real delivery client, whose answer never reaches the sender."""

    def __init__(self, node: NodeUnderTest) -> None:
        self._client = node.client
        self.receipts: list[bytes] = []

    async def deliver(self, endpoint: str, envelope: bytes, *, pins: frozenset[str]) -> bytes:
        self.receipts.append(await self._client.deliver(endpoint, envelope, pins=pins))
        raise TransientDeliveryError(f"{endpoint}: the connection dropped before the answer")


@pytest.mark.asyncio
async def test_a_message_that_arrives_directly_and_through_the_hub_is_stored_once(
    net: Network, phyto_xml: bytes
) -> None:
    nl, us = net.nodes["NL"], net.nodes["US"]
    await net.hub.start()
    await us.serve()
    lost = _LostAnswer(nl)
    worker = nl.make_worker(lost, fallback_attempts=1)
    pk = await _submit(net, "US", phyto_xml)

    assert await worker.run_once() == 1  # delivered directly; NL never hears of it
    assert len(lost.receipts) == 1
    [direct] = await _inbound(us.store)
    assert (await nl.store.message(pk)).state == "queued"

    assert await worker.run_once() == 1  # so it goes through the hub, same message id
    relayed = await nl.store.message(pk)
    assert relayed.state == "relayed"
    tracking = (await nl.store.events(pk))[-1].detail["hub"]

    assert await us.puller.run_once() == 1  # found already stored: acknowledged
    assert await _hub_state(net, "NL", tracking) == ("Delivered", None)
    [stored] = await _inbound(us.store)
    assert (stored.id, stored.message_id, stored.receipt) == (
        direct.id, relayed.message_id, direct.receipt,
    )  # fmt: skip
    # Stored once; the repeat is said (logs and metrics count it), from its sender.
    events = await us.store.events(stored.id)
    assert [e.kind for e in events] == ["received", "duplicate"]
    assert events[-1].detail == {"from": "NL"}

    net.clock.advance(seconds=HUB_RECHECK.total_seconds())
    assert await worker.run_once() == 1
    settled = await nl.store.message(pk)
    assert (settled.state, settled.route) == ("delivered", "hub")


# --- 4. rejected by the receiver -------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_rejection_through_the_hub_fails_the_message_with_the_receivers_reason(
    net: Network, phyto_xml: bytes
) -> None:
    nl, ke = net.nodes["NL"], net.nodes["KE"]
    await net.hub.start()
    pk = await _submit(net, "KE", _invalid(phyto_xml))
    assert await nl.worker.run_once() == 1
    tracking = (await nl.store.events(pk))[-1].detail["hub"]

    assert await ke.puller.run_once() == 1
    [received] = await _inbound(ke.store)
    assert received.outcome == "rejected"  # kept, as on the direct route, with why
    state, reason = await _hub_state(net, "NL", tracking)
    assert state == "FailedDelivery"
    assert reason is not None and reason.startswith("rejected: SEVERE")

    await _track_after_recheck(net)
    failed = await nl.store.message(pk)
    assert failed.state == "failed"
    last = (await nl.store.events(pk))[-1]
    assert last.kind == "failed"
    assert last.detail["error"] == f"the hub reports FailedDelivery: {reason}"
    assert await nl.store.pending_count() == 0


# --- 5. plain XML from another NPPO's own system ---------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("form", ["xml", "base64"])
async def test_plain_ephyto_xml_through_the_hub_is_stored_under_the_tracking_number(
    net: Network, phyto: Certificate, form: str
) -> None:
    """Our hub delivers only to NPPOs of the directory, so the plain route is tested from
    the receiving side: US's own system (no node) sends plain XML, as GeNS does."""
    # US's own certificate, numbered as the hub header says: the two must agree.
    phyto_xml = binding_documents.document(phyto, number="US-2026-1", exporter="US", importer="KE")
    ke = net.nodes["KE"]
    await net.hub.start()
    text = phyto_xml.decode("utf-8")
    content = text if form == "xml" else base64.b64encode(phyto_xml).decode("ascii")
    sent = await net.soap("US").call(DeliverEnvelope(_envelope("US", "KE", content)))
    tracking = sent.result.hub_delivery_number

    assert await ke.puller.run_once() == 1
    [received] = await _inbound(ke.store)
    assert (received.message_id, received.sender, received.recipient) == (
        f"hub:{tracking}", "US", "KE",
    )  # fmt: skip
    # Both forms keep every byte as sent, and the digest is of what was stored.
    document = phyto_xml
    assert received.payload == document
    assert received.content_digest == "sha256:" + hashlib.sha256(document).hexdigest()
    assert received.outcome == "accepted"
    assert (received.certificate_type, received.certificate_status) == ("851", "70")
    assert await _hub_state(net, "US", tracking) == ("Delivered", None)
    assert await ke.puller.run_once() == 0
    assert len(await _inbound(ke.store)) == 1


@pytest.mark.asyncio
async def test_to_an_nppo_outside_the_directory_and_refused_by_the_hub_fails_saying_why(
    net: Network, phyto_xml: bytes
) -> None:
    """The node's side of the plain route: our hub carries only to NPPOs of the
    directory, so it refuses the request itself (a Client fault). No route is left, so
    the message fails at once with the hub's reason instead of being retried for ever."""
    nl = net.nodes["NL"]
    await net.hub.start()
    pk = await _submit(net, "FR", phyto_xml)
    assert await nl.worker.run_once() == 1
    failed = await nl.store.message(pk)
    assert failed.state == "failed"
    last = (await nl.store.events(pk))[-1]
    assert last.kind == "failed"
    assert last.detail["error"].startswith(
        "FR is not in the directory and the hub refuses it (the hub refused DeliverEnvelope:"
        " To 'FR' is not an active NPPO"
    ), last.detail
    assert last.detail["error"].endswith("no route is left, nothing was delivered")
    assert await nl.store.pending_count() == 0


@pytest.mark.asyncio
async def test_a_refusal_for_a_node_partner_is_retried_and_goes_once_resolved(
    net: Network, phyto_xml: bytes
) -> None:
    """A Client fault for a partner our directory lists (here: NL's prepaid balance is
    used up) may clear (a credit, the hub's directory catching up): kept and retried."""
    nl = net.nodes["NL"]
    await net.hub.start()
    assert net.hub.store is not None
    await net.hub.store.set_policy("NL", AccountPolicy("EUR", Prepaid(150)), net.clock.now())
    pk = await _submit(net, "KE", phyto_xml)
    assert await nl.worker.run_once() == 1
    waiting = await nl.store.message(pk)
    assert waiting.state == "queued"
    last = (await nl.store.events(pk))[-1]
    assert last.kind == "retry"
    assert "insufficient balance" in last.detail["error"], last.detail

    await net.hub.store.credit("NL", 150, net.clock.now())
    net.clock.advance(seconds=3600)  # past any backoff
    assert await nl.worker.run_once() == 1
    relayed = await nl.store.message(pk)
    assert relayed.route == "hub" and relayed.state != "failed"


def _envelope(sender: str, to: str, content: str, number: str = "US-2026-1") -> Envelope:
    return Envelope.of(
        EnvelopeHeader(
            from_=sender,
            to=to,
            certificate_type=851,
            certificate_status=70,
            nppo_certificate_number=number,
        ),
        content,
    )


# --- 6. the hub is down ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_while_the_hub_is_down_the_message_waits_and_goes_once_it_is_up(
    net: Network, phyto_xml: bytes
) -> None:
    nl, ke = net.nodes["NL"], net.nodes["KE"]
    pk = await _submit(net, "KE", phyto_xml)

    assert await nl.worker.run_once() == 1
    assert (await nl.store.message(pk)).state == "queued"
    events = await nl.store.events(pk)
    assert [e.kind for e in events] == ["submitted", "schema-version", "retry"]
    error = events[-1].detail["error"]
    assert error.startswith(f"through the hub: {net.hub.url}: "), error
    with pytest.raises(HubUnavailable):
        await ke.puller.run_once()  # the receiving side sees the same hub down

    await net.hub.start()
    assert await nl.worker.run_once() == 1
    assert (await nl.store.message(pk)).state == "relayed"
    assert await ke.puller.run_once() == 1
    await _track_after_recheck(net)
    assert (await nl.store.message(pk)).state == "delivered"
    [received] = await _inbound(ke.store)
    assert received.payload == phyto_xml
    assert await _kinds(nl, pk) == ["submitted", "schema-version", "retry", "relayed", "delivered"]


# --- 7. hostile content from the hub ---------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("neither an envelope nor XML", "Content is neither a sealed envelope nor ePhyto XML"),
        (base64.b64encode(b"not xml").decode(), "Content is neither a sealed envelope nor"),
        ('{"not": "an envelope"}', "not accepted: "),
    ],
)
async def test_content_that_is_no_envelope_is_failed_and_nothing_stored(
    net: Network, content: str, reason: str
) -> None:
    ke = net.nodes["KE"]
    await net.hub.start()
    sent = await net.soap("US").call(DeliverEnvelope(_envelope("US", "KE", content)))
    tracking = sent.result.hub_delivery_number

    assert await ke.puller.run_once() == 1
    state, message = await _hub_state(net, "US", tracking)
    assert state == "FailedDelivery"
    assert message is not None and message.startswith(reason), message
    assert await _inbound(ke.store) == []
    assert await ke.puller.run_once() == 0


@pytest.mark.asyncio
async def test_a_sealed_envelope_from_another_nppo_than_the_hub_says_is_failed(
    net: Network, phyto_xml: bytes
) -> None:
    """US hands the hub an envelope NL sealed for KE: authentic, but not from US."""
    ke = net.nodes["KE"]
    await net.hub.start()
    message = outgoing("NL", "KE", phyto_xml, "NL-2026-0001")
    sealed = seal(
        header=SealedHeader(
            message_id=message.message_id,
            from_country="NL",
            to_country="KE",
            certificate_type="851",
            certificate_status="70",
            certificate_number=message.certificate_number,
            created=T0,
            content_digest=message.content_digest,
        ),
        payload=phyto_xml,
        sender_signing_key=net.nodes["NL"].runtime.signing_key,
        recipient_public_key=net.directory.encryption_key("KE", T0).x25519(),
    )
    envelope = _envelope("US", "KE", sealed.decode("ascii"))
    tracking = (await net.soap("US").call(DeliverEnvelope(envelope))).result.hub_delivery_number

    assert await ke.puller.run_once() == 1
    state, reason = await _hub_state(net, "US", tracking)
    assert (state, reason) == ("FailedDelivery", "the sealed envelope is from NL, the hub says US")
    assert await _inbound(ke.store) == []


# --- large answers -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_large_envelope_comes_back_whole(net: Network) -> None:
    """An answer larger than what one socket read returns is read to its end."""
    content = "<x>" + "y" * 2_000_000 + "</x>"
    await net.hub.start()
    tracking = await net.nodes["NL"].hub.deliver(_envelope("NL", "KE", content, "NL-BIG-1"))

    (header,) = await net.nodes["KE"].hub.import_headers()
    pulled = await net.nodes["KE"].hub.pull(tracking)

    assert header.hub_delivery_number == tracking
    assert pulled.content == content


# --- push mode ------------------------------------------------------------------------------


async def _relayed_to_us(net: Network, phyto_xml: bytes) -> int:
    """NL's message to US, through the hub after US's endpoint failed (US is down)."""
    nl = net.nodes["NL"]
    pk = await _submit(net, "US", phyto_xml)
    for _ in range(FALLBACK_ATTEMPTS + 1):
        await nl.worker.run_once()
    assert (await nl.store.message(pk)).state == "relayed"
    return pk


def _pusher(net: Network, client: DeliveryClient) -> HubPusher:
    assert net.hub.store is not None
    return HubPusher(
        net.hub.store,
        client,
        lambda: net.hub.trust.usable(net.clock.now()),
        net.clock,
        backoff=Backoff(base=timedelta(seconds=1)),
    )


@pytest.mark.asyncio
async def test_the_hub_pushes_to_a_node_with_an_endpoint_and_settles_on_its_receipt(
    net: Network, phyto_xml: bytes
) -> None:
    nl, us = net.nodes["NL"], net.nodes["US"]
    await net.hub.start()
    pk = await _relayed_to_us(net, phyto_xml)
    tracking = (await nl.store.events(pk))[-1].detail["hub"]
    await us.serve()  # US is back: the hub posts to its endpoint, as a node would

    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            DeliveryClient(tls_certificate=net.hub.party.cert_path, tls_key=net.hub.party.key_path)
        )
        assert await _pusher(net, client).run_once() == 1

    [received] = await _inbound(us.store)
    assert received.payload == phyto_xml
    assert await _hub_state(net, "NL", tracking) == ("Delivered", None)
    assert await us.puller.run_once() == 0  # nothing left to pull
    await _track_after_recheck(net)
    assert (await nl.store.message(pk)).state == "delivered"


@pytest.mark.asyncio
async def test_a_push_that_fails_is_retried_and_the_node_may_pull_meanwhile(
    net: Network, phyto_xml: bytes
) -> None:
    us = net.nodes["US"]
    await net.hub.start()
    pk = await _relayed_to_us(net, phyto_xml)
    tracking = (await net.nodes["NL"].store.events(pk))[-1].detail["hub"]

    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            DeliveryClient(tls_certificate=net.hub.party.cert_path, tls_key=net.hub.party.key_path)
        )
        pusher = _pusher(net, client)
        assert await pusher.run_once() == 0  # US is still down
        assert await _hub_state(net, "NL", tracking) == ("PendingDelivery", None)
        assert net.hub.store is not None
        assert [e.kind for e in await net.hub.store.events(tracking_number=tracking)][-1] == (
            "push_failed"
        )

        assert await us.puller.run_once() == 1  # US pulls it itself
        assert await _hub_state(net, "NL", tracking) == ("Delivered", None)
        net.clock.advance(minutes=30)
        assert await pusher.run_once() == 0  # settled: nothing left to push
    assert len(await _inbound(us.store)) == 1


# --- tracking a relayed message --------------------------------------------------------------


@contextmanager
def _hub_database_failing(net: Network) -> Iterator[None]:
    """The hub's database fails meanwhile (its envelopes table gone), so the hub answers
    every envelope operation with a Server fault; restored on leaving."""
    with closing(sqlite3.connect(net.hub.database)) as db:
        db.execute("ALTER TABLE hub_envelopes RENAME TO hub_envelopes_away")
        db.commit()
        try:
            yield
        finally:
            db.execute("ALTER TABLE hub_envelopes_away RENAME TO hub_envelopes")
            db.commit()


@pytest.mark.asyncio
async def test_a_server_fault_while_tracking_means_track_again_later_not_deliver_again(
    net: Network, phyto: Certificate, phyto_xml: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="node.outbox.hub_route")
    nl, ke = net.nodes["NL"], net.nodes["KE"]
    await net.hub.start()
    pk = await _submit(net, "KE", phyto_xml, phyto.number)
    assert await nl.worker.run_once() == 1
    tracking = (await nl.store.events(pk))[-1].detail["hub"]

    net.clock.advance(seconds=HUB_RECHECK.total_seconds())
    with _hub_database_failing(net):
        assert await nl.worker.run_once() == 1  # GetEnvelopeTrackingInfo: a Server fault
    assert "the hub's database failed" in caplog.text, caplog.text
    assert (await nl.store.message(pk)).state == "relayed"
    assert await _kinds(nl, pk) == ["submitted", "schema-version", "relayed"]
    assert await nl.worker.run_once() == 0  # asked again after the recheck interval

    assert await ke.puller.run_once() == 1
    await _track_after_recheck(net)
    settled = await nl.store.message(pk)
    assert (settled.state, settled.route, settled.outcome) == ("delivered", "hub", "Delivered")
    assert await _kinds(nl, pk) == ["submitted", "schema-version", "relayed", "delivered"]
    assert await _hub_state(net, "NL", tracking) == ("Delivered", None)
    assert await ke.puller.run_once() == 0  # the hub was handed the message once
    assert len(await _inbound(ke.store)) == 1


@pytest.mark.asyncio
async def test_a_tracking_number_the_hub_no_longer_knows_hands_the_message_over_again(
    net: Network, phyto: Certificate, phyto_xml: bytes
) -> None:
    """Our hub says so with a Client fault starting `EnvelopeNotExists:`."""
    nl, ke = net.nodes["NL"], net.nodes["KE"]
    await net.hub.start()
    pk = await _submit(net, "KE", phyto_xml, phyto.number)
    assert await nl.worker.run_once() == 1
    lost = (await nl.store.events(pk))[-1].detail["hub"]
    with closing(sqlite3.connect(net.hub.database)) as db:
        db.execute("DELETE FROM hub_envelopes")  # the hub lost it (a restore from backup)
        db.commit()

    await _track_after_recheck(net)
    events = await nl.store.events(pk)
    assert events[-1].kind == "retry"
    assert (
        events[-1]
        .detail["error"]
        .startswith("the hub refused GetEnvelopeTrackingInfo: EnvelopeNotExists:")
    ), events[-1].detail
    assert await nl.worker.run_once() == 1  # handed over again, same message id
    again = (await nl.store.events(pk))[-1]
    assert again.kind == "relayed" and again.detail["hub"] != lost

    assert await ke.puller.run_once() == 1
    await _track_after_recheck(net)
    assert (await nl.store.message(pk)).state == "delivered", await nl.store.events(pk)
    assert len(await _inbound(ke.store)) == 1


@dataclass
class _OtherHub:
    """A hub that answers an unknown tracking number as the IPPC Hub's contract allows: a
    header whose HUBTrackingInfo is EnvelopeNotExists, not a fault. It takes the place of
    our hub (its socket, its certificate), speaking the contract through node.ippc."""

    net: Network
    lose: int = 1  # how many of the first tracking numbers it no longer knows
    delivered: list[str] = field(default_factory=list)  # the tracking numbers it issued

    async def handle(self, request: web.Request) -> web.Response:
        match parse_request(await request.read()):
            case DeliverEnvelope(env=envelope):
                self.delivered.append(str(uuid.uuid4()))
                answer: HubResponse = DeliverEnvelopeResponse(
                    self._header(envelope, self.delivered[-1], "PendingDelivery")
                )
            case GetEnvelopeTrackingInfo(hub_tracking_number=tn):
                state = "EnvelopeNotExists" if tn in self.delivered[: self.lose] else "Delivered"
                answer = GetEnvelopeTrackingInfoResponse(self._header(None, tn, state))
            case other:
                raise AssertionError(f"not expected here: {other}")
        return web.Response(body=render_response(answer), content_type="text/xml")

    @staticmethod
    def _header(envelope: Envelope | None, tn: str, state: str) -> EnvelopeHeader:
        return EnvelopeHeader(
            from_="NL" if envelope is None else envelope.from_,
            to="KE" if envelope is None else envelope.to,
            certificate_type=851,
            certificate_status=70,
            nppo_certificate_number="NL-2026-0001",
            hub_delivery_number=tn,
            hub_tracking_info=state,
        )

    async def serve(self, stack: AsyncExitStack) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.net.hub.party.cert_path, self.net.hub.party.key_path)
        app = web.Application()
        app.router.add_post(SERVICE_PATH, self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.SockSite(runner, self.net.hub.sock, ssl_context=context).start()


@pytest.mark.asyncio
async def test_the_tracking_state_envelope_not_exists_hands_the_message_over_again(
    net: Network, phyto: Certificate, phyto_xml: bytes
) -> None:
    nl = net.nodes["NL"]
    other = _OtherHub(net)
    async with AsyncExitStack() as stack:
        await other.serve(stack)
        pk = await _submit(net, "KE", phyto_xml, phyto.number)
        assert await nl.worker.run_once() == 1
        await _track_after_recheck(net)  # EnvelopeNotExists
        assert await nl.worker.run_once() == 1  # handed over again
        assert len(other.delivered) == 2
        await _track_after_recheck(net)  # Delivered
    settled = await nl.store.message(pk)
    assert (settled.state, settled.outcome) == ("delivered", "Delivered")
    events = await nl.store.events(pk)
    assert [e.kind for e in events] == [
        "submitted", "schema-version", "relayed", "retry", "relayed", "delivered",
    ]  # fmt: skip
    assert [e.detail["hub"] for e in events if e.kind == "relayed"] == other.delivered


# --- a suspended partner ---------------------------------------------------------------------


def _registry_sets(net: Network, root: Path, country: str, action: Lifecycle) -> None:
    """The registry suspends or reinstates `country` and publishes; every node and the hub
    trust the new directory at once (as after their next refresh)."""
    registry = RegistryState(root / "registry")
    signer = registry.default_signer()
    assert signer is not None
    now = net.clock.now()
    registry.change_status(
        country, action, "test" if action != "reinstate" else None, now, "test", signer
    )
    _, signed = registry.publish(now, "test", code_lists=bundled().versions())
    net.hub.trust.update(signed, now)


@pytest.mark.asyncio
async def test_a_message_held_while_the_partner_is_suspended_goes_direct_once_reinstated(
    net: Network, phyto: Certificate, phyto_xml: bytes, tmp_path: Path
) -> None:
    """Holds are no failed direct attempts: however many, they send nothing to the hub."""
    nl, us = net.nodes["NL"], net.nodes["US"]
    await net.hub.start()
    await us.serve()
    _registry_sets(net, tmp_path, "US", "suspend")
    pk = await _submit(net, "US", phyto_xml, phyto.number)

    holds = FALLBACK_ATTEMPTS + 2
    for _ in range(holds):
        assert await nl.worker.run_once() == 1
        assert (await nl.store.message(pk)).state == "queued"
        assert await nl.worker.run_once() == 0  # held: not looked at again on every tick
        net.clock.advance(seconds=Backoff().cap.total_seconds())
    events = await nl.store.events(pk)
    assert [e.kind for e in events] == ["submitted"] + ["retry"] * holds
    assert all("US is suspended" in e.detail["error"] for e in events[1:]), events[1:]

    _registry_sets(net, tmp_path, "US", "reinstate")
    assert await nl.worker.run_once() == 1
    settled = await nl.store.message(pk)
    assert (settled.state, settled.route, settled.outcome) == ("delivered", "direct", "accepted")
    assert [e.kind for e in await nl.store.events(pk)][-2:] == ["schema-version", "delivered"]
    [received] = await _inbound(us.store)
    assert received.payload == phyto_xml
    assert await us.puller.run_once() == 0  # nothing went through the hub


@pytest.mark.asyncio
async def test_the_fallback_time_counts_from_the_first_failure_not_from_submission(
    net: Network, phyto: Certificate, phyto_xml: bytes, tmp_path: Path
) -> None:
    """A message held for an hour (its partner suspended) whose first direct attempt
    after reinstatement fails is not old enough for the hub: it has failed for 0 s."""
    nl = net.nodes["NL"]
    await net.hub.start()  # US stays down throughout
    _registry_sets(net, tmp_path, "US", "suspend")
    pk = await _submit(net, "US", phyto_xml, phyto.number)
    for _ in range(6):
        assert await nl.worker.run_once() == 1  # held
        net.clock.advance(seconds=Backoff().cap.total_seconds())

    _registry_sets(net, tmp_path, "US", "reinstate")
    assert await nl.worker.run_once() == 1  # the first direct attempt fails
    assert await nl.worker.run_once() == 1  # and the second goes direct again
    events = await nl.store.events(pk)
    assert [e.kind for e in events][-2:] == ["retry", "retry"]
    assert "relayed" not in [e.kind for e in events]

    net.clock.advance(minutes=5)  # failing for 300 s now
    assert await nl.worker.run_once() == 1
    last = (await nl.store.events(pk))[-1]
    assert (last.kind, last.detail["why"]) == ("relayed", "direct delivery failing for 300 s")
