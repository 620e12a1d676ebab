"""A sealed response pulled from a hub is read as a response, as on the direct route:
stored once beside the certificate it answers, acknowledged at the hub; never stored as a
(rejected) certificate. The real network of tests/integration/hub_route_world.py: NL, KE
(hub only) and the hub, over real mutual TLS on loopback."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import pytest_asyncio

from node.certificate.validate import Validator
from node.clock import FixedClock
from node.envelope.envelope import EnvelopeHeader as SealedHeader
from node.envelope.envelope import seal
from node.envelope.response import RESPONSE_MEDIA_TYPE, Decision, Response
from node.ippc import Envelope, EnvelopeHeader
from node.store.store import NewMessage
from tests.integration.hub_route_world import T0, Network, open_network

CERT_ID = "3f2e1d0c-9b8a-4765-8432-10fedcba9876"
NUMBER = "NL-2026-0777"


@pytest_asyncio.fixture
async def net(tmp_path: Path, validator: Validator) -> AsyncIterator[Network]:
    async with AsyncExitStack() as stack:
        yield await open_network(stack, tmp_path, FixedClock(T0), validator)


async def _deliver_response(net: Network, answers: str) -> str:
    """KE hands the hub a sealed response to NL, as another implementation may."""
    now = net.clock.now()
    ke = net.nodes["KE"]
    payload = Response(
        certificate_number=NUMBER,
        certificate_message_id=answers,
        decision=Decision.CORRECTION_REQUESTED,
        responded_at=now.replace(microsecond=0),
        text="the treatment date is missing",
    ).to_bytes()
    sealed = seal(
        header=SealedHeader(
            message_id=str(uuid.uuid4()),
            from_country="KE",
            to_country="NL",
            certificate_type="851",
            certificate_status="70",
            certificate_number=NUMBER,
            created=now.replace(microsecond=0),
            media_type=RESPONSE_MEDIA_TYPE,
            kind="response",
        ),
        payload=payload,
        sender_signing_key=ke.runtime.current_signing_key(now),
        recipient_public_key=net.directory.encryption_key("NL", now).x25519(),
    )
    header = EnvelopeHeader(
        from_="KE",
        to="NL",
        certificate_type=851,
        certificate_status=70,
        nppo_certificate_number=NUMBER,
    )
    return await ke.hub.deliver(Envelope.of(header, sealed.decode("ascii")))


@pytest.mark.asyncio
async def test_a_pulled_response_is_stored_as_a_response(net: Network) -> None:
    nl = net.nodes["NL"]
    await net.hub.start()
    certificate = await nl.store.submit(
        NewMessage(CERT_ID, "NL", "KE", NUMBER, "851", "70", "sha256:00", b"<x/>"), now=T0
    )
    tracking = await _deliver_response(net, CERT_ID)

    assert await nl.puller.run_once() == 1
    assert await nl.store.summaries("in") == []  # not a received certificate
    answered = await nl.store.response_to(certificate)
    assert answered is not None and answered.sender == "KE"
    assert Response.from_bytes(answered.payload).decision is Decision.CORRECTION_REQUESTED
    kinds = [e.kind for e in await nl.store.events(certificate)]
    assert "responded" in kinds
    assert net.hub.store is not None
    assert (await net.hub.store.tracking("KE", tracking)).state == "Delivered"


@pytest.mark.asyncio
async def test_a_pulled_response_to_no_certificate_of_ours_is_failed_at_the_hub(
    net: Network,
) -> None:
    nl = net.nodes["NL"]
    await net.hub.start()
    tracking = await _deliver_response(net, str(uuid.uuid4()))

    assert await nl.puller.run_once() == 1
    assert await nl.store.summaries("in") == []
    assert net.hub.store is not None
    header = await net.hub.store.tracking("KE", tracking)
    assert header.state == "FailedDelivery"
    assert header.message is not None and "did not send" in header.message
