"""The header is bound to its document on the hub's routes too: pull and push (issue 11).

The real network of tests/integration/hub_route_world.py (NL and US with endpoints, KE
hub-only, the hub; real mutual TLS on loopback, SQLite stores). The sender's outbox seals
the header from what was submitted, so a message submitted with a header other than its
document's is exactly what a lying or buggy sender puts on the wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from node.certificate.model import Certificate
from node.certificate.validate import Validator
from node.clock import FixedClock
from node.hub.push import HubPusher
from node.ippc import DeliverEnvelope, Envelope, EnvelopeHeader
from node.outbox.policy import Backoff
from node.transport.client import DeliveryClient
from tests.binding_documents import document
from tests.integration.hub_route_world import (
    FALLBACK_ATTEMPTS,
    HUB_RECHECK,
    T0,
    Network,
    open_network,
    submit_from_nl,
)


@pytest_asyncio.fixture
async def net(tmp_path: Path, validator: Validator) -> AsyncIterator[Network]:
    async with AsyncExitStack() as stack:
        yield await open_network(stack, tmp_path, FixedClock(T0), validator)


async def _hub_state(net: Network, sender: str, tracking: str) -> tuple[str, str | None]:
    assert net.hub.store is not None
    header = await net.hub.store.tracking(sender, tracking)
    return header.state, header.message


async def _track(net: Network) -> None:
    """NL's next tick once the relayed message is due to be checked at the hub."""
    net.clock.advance(seconds=HUB_RECHECK.total_seconds())
    assert await net.nodes["NL"].worker.run_once() == 1


# (the sample, what the header says, the document, the field the refusal names and its values)
REFUSED = [
    pytest.param(
        "phyto",
        {"number": "NL-HDR-1"},
        {"number": "NL-BODY-2", "exporter": "NL"},
        ("certificate_number", "'NL-HDR-1'", "'NL-BODY-2'"),
        id="number",
    ),
    pytest.param(
        "phyto",
        {"number": "NL-2026-3", "status": "40"},
        {"number": "NL-2026-3", "exporter": "NL"},
        ("certificate_status", "'40'", "'70'"),
        id="withdrawal-header-around-an-issued-document",
    ),
    pytest.param(
        "phyto",
        {"number": "US-2026-4"},
        {"number": "US-2026-4", "exporter": "US"},
        ("from", "'NL'", "'US'"),
        id="exported-by-another-country",
    ),
    pytest.param(
        "reexport",
        {"number": "US-RX-5", "certificate_type": "657"},
        {"number": "US-RX-5", "exporter": "US"},
        ("from", "'NL'", "'US'"),
        id="re-exported-by-another-country",
    ),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("sample", "header", "body", "named"), REFUSED)
async def test_a_pulled_envelope_unlike_its_document_is_failed_at_the_hub_and_not_stored(
    net: Network,
    phyto: Certificate,
    reexport: Certificate,
    sample: str,
    header: dict[str, str],
    body: dict[str, str],
    named: tuple[str, ...],
) -> None:
    """NL -> KE (hub only): KE refuses it, tells the hub why, and NL's message fails."""
    nl, ke = net.nodes["NL"], net.nodes["KE"]
    await net.hub.start()
    payload = document(reexport if sample == "reexport" else phyto, importer="KE", **body)
    pk = await submit_from_nl(net, "KE", payload, **header)
    assert await nl.worker.run_once() == 1
    tracking = (await nl.store.events(pk))[-1].detail["hub"]

    assert await ke.puller.run_once() == 1
    assert await ke.store.messages("in") == []
    state, reason = await _hub_state(net, "NL", tracking)
    assert state == "FailedDelivery"
    assert reason is not None and reason.startswith("not accepted: "), reason
    assert all(text in reason for text in named), reason
    assert await ke.puller.run_once() == 0  # acknowledged as failed: not pulled again

    await _track(net)
    failed = await nl.store.message(pk)
    assert failed.state == "failed"
    assert named[0] in (await nl.store.events(pk))[-1].detail["error"]


@pytest.mark.asyncio
async def test_a_re_export_certificate_pulled_from_the_re_exporting_country_is_accepted(
    net: Network, reexport: Certificate
) -> None:
    """NL re-exports goods that came from KE (RPCCO): NL's NPPO issues the 657."""
    ke = net.nodes["KE"]
    await net.hub.start()
    payload = document(reexport, number="NL-RX-6", exporter="NL", importer="KE")
    await submit_from_nl(net, "KE", payload, number="NL-RX-6", certificate_type="657")
    assert await net.nodes["NL"].worker.run_once() == 1

    assert await ke.puller.run_once() == 1
    [received] = await ke.store.messages("in")
    assert (received.sender, received.certificate_number, received.certificate_type) == (
        "NL", "NL-RX-6", "657",
    )  # fmt: skip
    assert received.outcome == "accepted"


def _plain(sender: str, to: str, xml: bytes, number: str) -> Envelope:
    return Envelope.of(
        EnvelopeHeader(
            from_=sender,
            to=to,
            certificate_type=851,
            certificate_status=70,
            nppo_certificate_number=number,
        ),
        xml.decode("utf-8"),
    )


@pytest.mark.asyncio
async def test_plain_xml_from_an_nppo_that_did_not_issue_it_is_failed_and_not_stored(
    net: Network, phyto: Certificate
) -> None:
    """US's own system (GeNS, say) hands the hub NL's certificate as its own."""
    ke = net.nodes["KE"]
    await net.hub.start()
    xml = document(phyto, number="NL-2026-7", exporter="NL", importer="KE")
    sent = await net.soap("US").call(DeliverEnvelope(_plain("US", "KE", xml, "NL-2026-7")))
    tracking = sent.result.hub_delivery_number

    assert await ke.puller.run_once() == 1
    assert await ke.store.messages("in") == []
    state, reason = await _hub_state(net, "US", tracking)
    assert state == "FailedDelivery"
    assert reason is not None and reason.startswith("not accepted: "), reason
    assert "from" in reason and "'US'" in reason and "'NL'" in reason


@pytest.mark.asyncio
async def test_plain_xml_whose_hub_header_says_another_number_is_failed(
    net: Network, phyto: Certificate
) -> None:
    ke = net.nodes["KE"]
    await net.hub.start()
    xml = document(phyto, number="US-BODY-8", exporter="US", importer="KE")
    sent = await net.soap("US").call(DeliverEnvelope(_plain("US", "KE", xml, "US-HDR-8")))

    assert await ke.puller.run_once() == 1
    assert await ke.store.messages("in") == []
    state, reason = await _hub_state(net, "US", sent.result.hub_delivery_number)
    assert state == "FailedDelivery"
    assert reason is not None and "certificate_number" in reason, reason


@pytest.mark.asyncio
async def test_direct_delivery_refused_for_a_mismatch_fails_the_message_at_once(
    net: Network, phyto: Certificate
) -> None:
    """422 document-mismatch is permanent: no retry, no fallback to the hub."""
    nl, us = net.nodes["NL"], net.nodes["US"]
    await net.hub.start()
    await us.serve()
    payload = document(phyto, number="NL-BODY-9", exporter="NL", importer="US")
    pk = await submit_from_nl(net, "US", payload, number="NL-HDR-9")

    assert await nl.worker.run_once() == 1

    failed = await nl.store.message(pk)
    assert (failed.state, failed.route) == ("failed", None)
    error = (await nl.store.events(pk))[-1].detail["error"]
    assert "422" in error and "certificate_number" in error, error
    assert await us.store.messages("in") == []


@pytest.mark.asyncio
async def test_a_pushed_envelope_unlike_its_document_is_refused_and_settles_as_failed(
    net: Network, phyto: Certificate
) -> None:
    """The hub pushes to US's endpoint: refused (nothing stored, nothing settled); US's
    own pull then fails it at the hub, and NL's message fails."""
    nl, us = net.nodes["NL"], net.nodes["US"]
    await net.hub.start()  # US is down: NL's message goes through the hub
    payload = document(phyto, number="NL-2026-10", exporter="NL", importer="US")
    pk = await submit_from_nl(net, "US", payload, number="NL-2026-10", status="40")
    for _ in range(FALLBACK_ATTEMPTS + 1):
        await nl.worker.run_once()
    assert (await nl.store.message(pk)).state == "relayed"
    tracking = (await nl.store.events(pk))[-1].detail["hub"]
    await us.serve()

    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            DeliveryClient(tls_certificate=net.hub.party.cert_path, tls_key=net.hub.party.key_path)
        )
        assert net.hub.store is not None
        pusher = HubPusher(
            net.hub.store,
            client,
            lambda: net.hub.trust.usable(net.clock.now()),
            net.clock,
            backoff=Backoff(base=timedelta(seconds=1)),
        )
        assert await pusher.run_once() == 0  # refused: nothing settled
        # A refusal of the envelope itself is not retried with backoff: the same
        # envelope would be refused again (left for US to pull, below).
        net.clock.advance(hours=1)
        assert await pusher.run_once() == 0
        assert net.hub.store is not None
        kinds = [e.kind for e in await net.hub.store.events(tracking_number=tracking)]
        assert kinds.count("push_failed") == 1, kinds
    assert await us.store.messages("in") == []
    assert await _hub_state(net, "NL", tracking) == ("PendingDelivery", None)
    events = await net.hub.store.events(tracking_number=tracking)
    assert events[-1].kind == "push_failed"
    error = events[-1].detail["error"]
    assert "HTTP 422" in error and "certificate_status" in error, error

    assert await us.puller.run_once() == 1
    assert await us.store.messages("in") == []
    state, reason = await _hub_state(net, "NL", tracking)
    assert state == "FailedDelivery"
    assert reason is not None and "certificate_status" in reason, reason
    await _track(net)
    assert (await nl.store.message(pk)).state == "failed"
