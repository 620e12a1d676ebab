"""The importer's answer through the hub (issue 11), end to end over real mutual TLS.

A hub-only exporter (KE) gets its answer sealed through the hub, as a certificate would
go; an exporter outside the importer's directory gets it as the SPSAcknowledgement the
IPPC Hub carries (`DeliverCountryResponseEnvelope`), and a node that pulls one records it
as the answer to the certificate it sent under that number. The world is
tests/integration/hub_route_world.py: real identities, registry directory, hub app,
SQLite stores, outbox workers and pullers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from datetime import timedelta

import pytest

from node.certificate.model import Certificate
from node.directory import Directory
from node.envelope.acknowledgement import (
    ACK_NS,
    Acknowledgement,
    acknowledgement_text,
    parse_acknowledgement,
)
from node.envelope.response import Decision, Response
from node.ippc import CountryResponseEnvelope, DeliverCountryResponseEnvelope, XmlTree
from node.outbox.policy import Backoff, Fallback
from node.outbox.worker import OutboxWorker
from node.store.store import NewMessage
from tests import binding_documents
from tests.integration import test_hub_route as hub_route
from tests.integration.hub_route_world import (
    HUB_RECHECK,
    T0,
    Network,
    NodeUnderTest,
    outgoing,
)

# The hub-route tests' network: NL and US with endpoints, KE hub-only, the hub.
net = hub_route.net


async def _certificate(
    net: Network, phyto: Certificate, exporter: str, importer: str, number: str
) -> tuple[int, int]:
    """`exporter` sends `importer` a certificate directly; (its id at the exporter, its
    id at the importer)."""
    sender, receiver = net.nodes[exporter], net.nodes[importer]
    await receiver.serve()
    document = binding_documents.document(
        phyto, number=number, exporter=exporter, importer=importer
    )
    pk = await sender.store.submit(
        outgoing(exporter, importer, document, number), now=net.clock.now()
    )
    assert await sender.worker.run_once() == 1
    assert (await sender.store.message(pk)).state == "delivered"
    [received] = [m for m in await receiver.store.messages("in") if m.certificate_number == number]
    return pk, received.id


async def _answer(
    node: NodeUnderTest, received: int, decision: Decision, text: str | None = None
) -> int:
    """`node`'s store takes its answer to certificate `received`, as its API would."""
    certificate = await node.store.message(received)
    payload = Response(
        certificate_number=certificate.certificate_number,
        certificate_message_id=certificate.message_id,
        decision=decision,
        responded_at=T0,
        text=text,
    ).to_bytes()
    new = NewMessage(
        str(uuid.uuid4()), node.country, certificate.sender, certificate.certificate_number,
        certificate.certificate_type, certificate.certificate_status,
        "sha256:" + hashlib.sha256(payload).hexdigest(), payload, kind="response",
        answers=certificate.id,
    )  # fmt: skip
    detail = {"decision": decision.value} | ({} if text is None else {"text": text})
    pk = await node.store.submit_response(new, now=T0, responded=detail)
    assert isinstance(pk, int)
    return pk


def _without(directory: Directory, country: str) -> Directory:
    """`directory` as a node that has not heard of `country` sees it."""
    kept = tuple(e for e in directory.nppos if e.country != country)
    return dataclasses.replace(directory, nppos=kept)


def _blind_worker(net: Network, node: NodeUnderTest, unknown: str) -> OutboxWorker:
    """`node`'s outbox worker over a directory without `unknown` (an NPPO on GeNS, say,
    which the hub knows but the directory does not list)."""

    def directory() -> Directory:
        return _without(node.runtime.directory(), unknown)

    return OutboxWorker(
        node.store, node.client, directory, country=node.country,
        signing_key=node.runtime.signing_key, clock=node.runtime.clock,
        backoff=Backoff(base=timedelta(0)),
        hub=node.hub, hub_listed=lambda d: d.hub is not None,
        fallback=Fallback(), hub_recheck=HUB_RECHECK,
    )  # fmt: skip


@pytest.mark.asyncio
async def test_an_answer_to_a_hub_only_exporter_goes_sealed_through_the_hub(
    net: Network, phyto: Certificate
) -> None:
    nl, ke = net.nodes["NL"], net.nodes["KE"]
    await net.hub.start()
    sent, received = await _certificate(net, phyto, "KE", "NL", "KE-2026-1")
    pk = await _answer(nl, received, Decision.REJECTED, "wrong botanical name")

    assert await nl.worker.run_once() == 1
    relayed = await nl.store.message(pk)
    assert (relayed.state, relayed.route) == ("relayed", "hub")
    events = await nl.store.events(pk)
    assert [e.kind for e in events] == ["submitted", "relayed"]
    assert events[-1].detail["why"] == "the partner has no direct endpoint"

    assert await ke.puller.run_once() == 1
    answer = await ke.store.response_to(sent)
    assert answer is not None and answer.sender == "NL"
    assert Response.from_bytes(answer.payload).text == "wrong botanical name"
    kinds = [e.kind for e in await ke.store.events(sent)]
    assert kinds[-1] == "responded"
    assert await ke.puller.run_once() == 0  # acknowledged: nothing left at the hub

    assert await nl.worker.run_once() == 0
    net.clock.advance(seconds=HUB_RECHECK.total_seconds())
    assert await nl.worker.run_once() == 1
    settled = await nl.store.message(pk)
    assert (settled.state, settled.route) == ("delivered", "hub")


@pytest.mark.asyncio
async def test_an_answer_to_an_nppo_outside_the_directory_goes_as_spsacknowledgement(
    net: Network, phyto: Certificate
) -> None:
    """US's certificate reached NL; NL's directory does not list US (US is on GeNS, as
    far as NL knows), so the answer goes as the IPPC Hub carries one. US's node pulls
    the SPSAcknowledgement and records it against the certificate it sent."""
    nl, us = net.nodes["NL"], net.nodes["US"]
    await net.hub.start()
    sent, received = await _certificate(net, phyto, "US", "NL", "US-2026-7")
    pk = await _answer(nl, received, Decision.CORRECTION_REQUESTED, "add the treatment date")

    assert await _blind_worker(net, nl, "US").run_once() == 1
    relayed = await nl.store.message(pk)
    assert (relayed.state, relayed.route) == ("relayed", "hub")
    why = (await nl.store.events(pk))[-1].detail["why"]
    assert why.endswith("is not in the directory: SPSAcknowledgement through the hub"), why

    # What the hub holds for US is the document GeNS would read.
    [header] = await us.hub.import_headers()
    envelope = await us.hub.pull(header.hub_delivery_number or "")
    content = (envelope.content or "").encode("utf-8")
    assert ACK_NS.encode() in content and b"Correction requested: add the treatment" in content
    assert parse_acknowledgement(content).certificate_number == "US-2026-7"

    assert await us.puller.run_once() == 1
    answer = await us.store.response_to(sent)
    assert answer is not None and answer.sender == "NL"
    recorded = Response.from_bytes(answer.payload)
    assert (recorded.decision, recorded.text) == (
        Decision.CORRECTION_REQUESTED, "add the treatment date",
    )  # fmt: skip
    assert recorded.certificate_message_id == (await us.store.message(sent)).message_id
    assert await us.puller.run_once() == 0


def _ack_envelope(number: str, tree: str, *, to: str = "KE") -> CountryResponseEnvelope:
    return CountryResponseEnvelope(
        from_="US", to=to, certificate_type=851, certificate_status=70,
        nppo_certificate_number=number, sps_acknowledgement=XmlTree(tree),
    )  # fmt: skip


def _ack(number: str, status_decision: Decision = Decision.ACCEPTED) -> str:
    return acknowledgement_text(
        Acknowledgement(
            certificate_number=number,
            certificate_type="851",
            decision=status_decision,
            issued_at=T0,
            text=None if status_decision is Decision.ACCEPTED else "no",
        )
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("number", "tree", "why"),
    [
        # An answer to a certificate KE never sent to US.
        ("KE-NEVER-SENT", _ack("KE-NEVER-SENT"), "did not send to US"),
        # The hub's header and the document disagree on the certificate.
        ("KE-2026-3", _ack("KE-OTHER"), "the hub says 'KE-2026-3'"),
        # A status that is no answer (42: approval pending).
        (
            "KE-2026-3",
            _ack("KE-2026-3").replace(">39<", ">42<"),
            "StatusCode '42' is neither 39",
        ),
        # No certificate named at all.
        (
            "KE-2026-3",
            _ack("KE-2026-3").split("<ram:ReferenceSPSReferencedDocument")[0]
            + "</rsm:SPSAcknowledgementDocument></rsm:SPSAcknowledgement>",
            "ReferenceSPSReferencedDocument is missing",
        ),
    ],
)
async def test_an_acknowledgement_that_answers_nothing_we_sent_is_failed_and_not_stored(
    net: Network, phyto: Certificate, number: str, tree: str, why: str
) -> None:
    ke = net.nodes["KE"]
    await net.hub.start()
    # KE did send US a certificate numbered KE-2026-3 (directly: US has an endpoint).
    await _certificate(net, phyto, "KE", "US", "KE-2026-3")
    before = await ke.store.messages("in")
    sent = await net.soap("US").call(DeliverCountryResponseEnvelope(_ack_envelope(number, tree)))
    tracking = sent.result.hub_delivery_number

    assert await ke.puller.run_once() == 1
    assert await ke.store.messages("in") == before  # nothing stored
    assert net.hub.store is not None
    state = await net.hub.store.tracking("US", tracking)
    assert state.state == "FailedDelivery"
    assert why in (state.message or ""), state.message
    assert await ke.puller.run_once() == 0  # failed at the hub: not pulled again
