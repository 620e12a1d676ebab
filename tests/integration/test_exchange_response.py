"""A response arriving at the exporter's exchange endpoint, over real mutual TLS on
127.0.0.1 with a real SQLite store (the fixtures of test_exchange_endpoint.py): stored
once, linked to the certificate it answers, answered with a signed receipt; refused,
storing nothing, when it answers no certificate the node sent to its sender."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.canonical import canonical_bytes
from node.envelope.envelope import EnvelopeHeader, seal
from node.envelope.receipt import Outcome
from node.envelope.response import RESPONSE_MEDIA_TYPE, Decision, Response
from node.store.store import NewMessage, NotFoundError, StoredMessage
from tests.integration import test_exchange_endpoint as exchange
from tests.integration.test_exchange_endpoint import T0, Node, Server, _post, _receipt_of

# The receiving node of the exchange endpoint's tests (NL, here the exporter).
nodes = exchange.nodes
old_ke_signing = exchange.old_ke_signing
server = exchange.server

CERT_ID = "7a9c4e12-3b5d-4f60-8a1b-2c3d4e5f6a7b"
NUMBER = "NL-2026-0042"


async def _sent(server: Server, to: str = "KE", message_id: str = CERT_ID) -> int:
    """A certificate NL sent to `to` (its delivery does not matter here)."""
    new = NewMessage(message_id, "NL", to, NUMBER, "851", "70", "sha256:00", b"<x/>")
    return await server.store.submit(new, now=T0 - timedelta(minutes=5))


def _response(
    decision: Decision = Decision.REJECTED,
    *,
    number: str = NUMBER,
    answers: str = CERT_ID,
    text: str | None = "no treatment declared",
) -> bytes:
    return Response(
        certificate_number=number,
        certificate_message_id=answers,
        decision=decision,
        responded_at=T0,
        text=text,
    ).to_bytes()


def _sealed(
    server: Server,
    payload: bytes,
    *,
    sender: Node | None = None,
    number: str = NUMBER,
    message_id: str | None = None,
    signer: Ed25519PrivateKey | None = None,
) -> bytes:
    sender = sender or server.nodes.ke
    return seal(
        header=EnvelopeHeader(
            message_id=message_id or str(uuid.uuid4()),
            from_country=sender.country,
            to_country="NL",
            certificate_type="851",
            certificate_status="70",
            certificate_number=number,
            created=T0,
            media_type=RESPONSE_MEDIA_TYPE,
            kind="response",
        ),
        payload=payload,
        sender_signing_key=signer or sender.signing,
        recipient_public_key=server.nodes.nl.encryption.public_key(),
    )


async def _responses(server: Server) -> list[StoredMessage]:
    stored = []
    for pk in range(1, 20):
        try:
            message = await server.store.message(pk)
        except NotFoundError:  # past the last id
            break
        if message.kind == "response":
            stored.append(message)
    return stored


@pytest.mark.asyncio
async def test_a_response_is_stored_once_linked_and_answered_with_a_receipt(
    server: Server,
) -> None:
    certificate = await _sent(server)
    envelope = _sealed(server, _response())
    first = await _post(server, server.nodes.ke, envelope)
    receipt = _receipt_of(server, first, envelope)
    assert (receipt.outcome, receipt.findings) == (Outcome.ACCEPTED, ())
    again = await _post(server, server.nodes.ke, envelope)
    assert again.status == 200 and again.body == first.body  # the original receipt

    (stored,) = await _responses(server)
    assert (stored.direction, stored.sender, stored.answers) == ("in", "KE", certificate)
    assert Response.from_bytes(stored.payload).decision is Decision.REJECTED
    assert await server.store.response_to(certificate) == stored
    responded = [e for e in await server.store.events(certificate) if e.kind == "responded"]
    assert [e.detail for e in responded] == [
        {
            "decision": "rejected",
            "reason": "no treatment declared",
            "from": "KE",
            "response": stored.id,
        }
    ]
    # Not a received certificate: listings and lifecycles do not see it.
    assert await server.store.summaries("in") == []


@pytest.mark.asyncio
@pytest.mark.parametrize("case", ["unknown-message", "sent-to-another", "other-number"])
async def test_a_response_to_no_certificate_of_ours_is_refused_and_stores_nothing(
    server: Server, case: str
) -> None:
    if case == "sent-to-another":
        await _sent(server, to="US")
    else:
        await _sent(server)
    answers = str(uuid.uuid4()) if case == "unknown-message" else CERT_ID
    number = "NL-2026-9999" if case == "other-number" else NUMBER
    envelope = _sealed(server, _response(answers=answers, number=number), number=number)
    answer = await _post(server, server.nodes.ke, envelope)
    assert answer.status == 422
    problem = answer.problem()
    assert problem["type"].endswith("/document-mismatch")
    assert await _responses(server) == []


@pytest.mark.asyncio
async def test_the_header_must_name_the_certificate_the_document_answers(server: Server) -> None:
    await _sent(server)
    envelope = _sealed(server, _response(), number="NL-2026-0043")
    answer = await _post(server, server.nodes.ke, envelope)
    assert answer.status == 422
    assert answer.problem()["type"].endswith("/document-mismatch")
    assert await _responses(server) == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "payload",
    [
        b"<xml/>",
        canonical_bytes({"format": "ephyto-response", "version": 2}),
        json.dumps({"format": "ephyto-response"}).encode(),
    ],
)
async def test_a_payload_that_is_no_response_document_is_refused(
    server: Server, payload: bytes
) -> None:
    await _sent(server)
    answer = await _post(server, server.nodes.ke, _sealed(server, payload))
    assert answer.status == 400
    assert answer.problem()["type"].endswith("/malformed-envelope")
    assert await _responses(server) == []
