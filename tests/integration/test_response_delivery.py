"""The outbox sends a response like a certificate: over real TLS to the partner endpoints
of test_delivery.py; held, with an event saying why, where no route exists (this world
has no hub; tests/integration/test_response_hub_route.py has one)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from hashlib import sha256

import pytest

from node.envelope.envelope import peek_header
from node.envelope.response import RESPONSE_MEDIA_TYPE, Decision, Response
from node.outbox.worker import RESPONSE_HELD
from node.store.store import NewMessage, Store
from tests.integration import test_delivery as delivery
from tests.integration.test_delivery import T0, World

store = delivery.store
world = delivery.world


async def _response_to(store: Store, exporter: str) -> int:
    """NL, as an importer, answers a certificate `exporter` sent it."""
    certificate = await store.receive(
        NewMessage(str(uuid.uuid4()), exporter, "NL", f"{exporter}-1", "851", "70", "sha256:0",
                   b"<x/>"),
        now=T0,
        make_receipt=lambda: ("accepted", b"r"),
    )  # fmt: skip
    message = await store.message(certificate.message)
    payload = Response(
        certificate_number=message.certificate_number,
        certificate_message_id=message.message_id,
        decision=Decision.ACCEPTED,
        responded_at=T0,
    ).to_bytes()
    new = NewMessage(
        str(uuid.uuid4()), "NL", exporter, message.certificate_number, "851", "70",
        "sha256:" + sha256(payload).hexdigest(), payload, kind="response", answers=message.id,
    )  # fmt: skip
    result = await store.submit_response(new, now=T0, responded={"decision": "accepted"})
    assert isinstance(result, int)
    return result


@pytest.mark.asyncio
async def test_a_response_goes_direct_sealed_as_a_response(world: World) -> None:
    pk = await _response_to(world.store, "KE")
    assert await world.worker.run_once() == 1
    sent = await world.store.message(pk)
    assert (sent.state, sent.route, sent.outcome) == ("delivered", "direct", "accepted")
    # No SPSCertificate version is chosen for what is no SPSCertificate.
    assert [e.kind for e in await world.store.events(pk)] == ["submitted", "delivered"]
    partner = world.partners["KE"]
    header = peek_header(partner.bodies[0], max_bytes=1 << 20)
    assert (header.kind, header.media_type) == ("response", RESPONSE_MEDIA_TYPE)
    assert Response.from_bytes(partner.payloads[0]).decision is Decision.ACCEPTED


@pytest.mark.asyncio
async def test_a_response_to_a_partner_without_an_endpoint_is_held_saying_why(
    world: World,
) -> None:
    pk = await _response_to(world.store, "FR")  # FR has no endpoint
    assert await world.worker.run_once() == 1
    assert (await world.store.message(pk)).state == "queued"
    events = await world.store.events(pk)
    assert [e.kind for e in events] == ["submitted", RESPONSE_HELD, "retry"]
    assert events[1].detail["to"] == "FR"
    # This world has no hub: nothing could carry it (test_response_hub_route.py: a hub).
    assert events[1].detail["reason"] == "FR: the partner has no direct endpoint and no hub is set"
    # Held, not tried: no attempt counted, looked at again after the longest backoff.
    claimed = await world.store.claim_due(
        now=T0 + timedelta(minutes=1), lease=timedelta(minutes=1), limit=10
    )
    assert claimed == []
