"""The envelope's header is bound to its document on the direct route (issue 11).

Over real mutual TLS on 127.0.0.1 with a real SQLite store, reusing the exchange
endpoint's fixtures (tests/integration/test_exchange_endpoint.py): NL receives, KE and
US send. The hub pushes through the same endpoint and the same check
(tests/integration/test_document_binding_hub.py).
"""

from __future__ import annotations

import uuid

import pytest

from node.certificate.model import Certificate
from node.envelope.envelope import EnvelopeHeader, seal
from node.envelope.receipt import Outcome
from node.web.problems import PROBLEM_BASE
from tests.binding_documents import document
from tests.integration import test_exchange_endpoint as endpoint
from tests.integration.test_exchange_endpoint import (
    T0,
    Answer,
    Node,
    Server,
    _nothing_stored,
    _post,
    _receipt_of,
)

# The endpoint's fixtures: NL's identities and directory, and NL's server over them.
nodes = endpoint.nodes
old_ke_signing = endpoint.old_ke_signing
server = endpoint.server

MISMATCH = PROBLEM_BASE + "document-mismatch"


def _sealed(
    sender: Node,
    recipient: Node,
    payload: bytes,
    *,
    number: str,
    certificate_type: str = "851",
    status: str = "70",
) -> bytes:
    return seal(
        header=EnvelopeHeader(
            message_id=str(uuid.uuid4()),
            from_country=sender.country,
            to_country=recipient.country,
            certificate_type=certificate_type,
            certificate_status=status,
            certificate_number=number,
            created=T0,
        ),
        payload=payload,
        sender_signing_key=sender.signing,
        recipient_public_key=recipient.encryption.public_key(),
    )


async def _refused(server: Server, answer: Answer, *expected: str) -> None:
    """A 422 document-mismatch whose detail names each of `expected`; nothing stored."""
    assert answer.status == 422, answer.body
    problem = answer.problem()
    assert problem["type"] == MISMATCH
    for text in expected:
        assert text in problem["detail"], problem["detail"]
    await _nothing_stored(server)


@pytest.mark.asyncio
async def test_a_header_number_other_than_the_documents_is_refused(
    server: Server, phyto: Certificate
) -> None:
    ke, nl = server.nodes.ke, server.nodes.nl
    payload = document(phyto, number="KE-BODY-2", exporter="KE", importer="NL")
    envelope = _sealed(ke, nl, payload, number="KE-HDR-1")

    answer = await _post(server, ke, envelope)

    await _refused(server, answer, "certificate_number", "'KE-HDR-1'", "'KE-BODY-2'")


@pytest.mark.asyncio
async def test_a_withdrawal_header_around_an_issued_document_is_refused(
    server: Server, phyto: Certificate
) -> None:
    ke, nl = server.nodes.ke, server.nodes.nl
    payload = document(phyto, number="KE-2026-7", exporter="KE", importer="NL", status="70")
    envelope = _sealed(ke, nl, payload, number="KE-2026-7", status="40")

    answer = await _post(server, ke, envelope)

    await _refused(server, answer, "certificate_status", "'40'", "'70'")


@pytest.mark.asyncio
async def test_a_certificate_exported_by_another_country_is_refused(
    server: Server, phyto: Certificate
) -> None:
    """US's certificate, sent by KE (authentic KE envelope, KE's TLS client)."""
    ke, nl = server.nodes.ke, server.nodes.nl
    payload = document(phyto, number="US-2026-8", exporter="US", importer="NL")
    envelope = _sealed(ke, nl, payload, number="US-2026-8")

    answer = await _post(server, ke, envelope)

    await _refused(server, answer, "from", "'KE'", "'US'")


@pytest.mark.asyncio
async def test_a_type_other_than_the_documents_is_refused(
    server: Server, reexport: Certificate
) -> None:
    us, nl = server.nodes.us, server.nodes.nl
    payload = document(reexport, number="US-RX-9", exporter="US", importer="NL")
    envelope = _sealed(us, nl, payload, number="US-RX-9", certificate_type="851")

    answer = await _post(server, us, envelope)

    await _refused(server, answer, "certificate_type", "'851'", "'657'")


@pytest.mark.asyncio
async def test_a_re_export_certificate_from_the_re_exporting_country_is_accepted(
    server: Server, reexport: Certificate
) -> None:
    """Goods from KE (RPCCO), re-exported by US: US's NPPO issues and sends the 657."""
    us, nl = server.nodes.us, server.nodes.nl
    payload = document(reexport, number="US-RX-10", exporter="US", importer="NL")
    envelope = _sealed(us, nl, payload, number="US-RX-10", certificate_type="657")

    answer = await _post(server, us, envelope)

    receipt = _receipt_of(server, answer, envelope)
    assert receipt.outcome is Outcome.ACCEPTED, receipt.findings
    [stored] = await server.store.messages("in")
    assert (stored.sender, stored.certificate_number, stored.certificate_type) == (
        "US", "US-RX-10", "657",
    )  # fmt: skip


@pytest.mark.asyncio
async def test_a_re_export_certificate_sent_by_the_country_of_origin_is_refused(
    server: Server, reexport: Certificate
) -> None:
    """The same 657 (re-exported by US) sent by KE, whose goods they were: not KE's."""
    ke, nl = server.nodes.ke, server.nodes.nl
    payload = document(reexport, number="US-RX-11", exporter="US", importer="NL")
    envelope = _sealed(ke, nl, payload, number="US-RX-11", certificate_type="657")

    answer = await _post(server, ke, envelope)

    await _refused(server, answer, "from", "'KE'", "'US'")


@pytest.mark.asyncio
async def test_an_invalid_but_readable_document_is_still_bound(
    server: Server, phyto: Certificate
) -> None:
    """Schema-invalid, yet its number can be read: a mismatch is refused, not stored."""
    ke, nl = server.nodes.ke, server.nodes.nl
    valid = document(phyto, number="KE-BODY-12", exporter="KE", importer="NL")
    broken = valid.replace(b"<rsm:SPSConsignment>", b"<rsm:SPSConsignment><x/>", 1)
    envelope = _sealed(ke, nl, broken, number="KE-HDR-12")

    answer = await _post(server, ke, envelope)

    await _refused(server, answer, "certificate_number", "'KE-HDR-12'", "'KE-BODY-12'")


@pytest.mark.asyncio
async def test_an_invalid_readable_document_that_matches_gets_a_rejected_receipt(
    server: Server, phyto: Certificate
) -> None:
    ke, nl = server.nodes.ke, server.nodes.nl
    valid = document(phyto, number="KE-2026-13", exporter="KE", importer="NL")
    broken = valid.replace(b"<rsm:SPSConsignment>", b"<rsm:SPSConsignment><x/>", 1)
    envelope = _sealed(ke, nl, broken, number="KE-2026-13")

    answer = await _post(server, ke, envelope)

    assert _receipt_of(server, answer, envelope).outcome is Outcome.REJECTED
    assert [m.outcome for m in await server.store.messages("in")] == ["rejected"]


@pytest.mark.asyncio
async def test_a_document_that_cannot_be_read_is_judged_as_before(server: Server) -> None:
    """Nothing to compare the header with: a rejected receipt, kept with its outcome."""
    ke, nl = server.nodes.ke, server.nodes.nl
    envelope = _sealed(ke, nl, b"<not-an-ephyto/>", number="KE-2026-14")

    answer = await _post(server, ke, envelope)

    assert _receipt_of(server, answer, envelope).outcome is Outcome.REJECTED
    assert [m.outcome for m in await server.store.messages("in")] == ["rejected"]


@pytest.mark.asyncio
async def test_a_control_character_in_the_document_number_is_not_echoed(
    server: Server, phyto: Certificate
) -> None:
    ke, nl = server.nodes.ke, server.nodes.nl
    payload = document(phyto, number="KE-2026-15", exporter="KE", importer="NL")
    # Character references: the document's number reads as "KE-2026-15\t\u2028\u202eX".
    payload = payload.replace(b">KE-2026-15<", b">KE-2026-15&#x9;&#x2028;&#x202e;X<", 1)
    envelope = _sealed(ke, nl, payload, number="KE-2026-15")

    answer = await _post(server, ke, envelope)

    await _refused(server, answer, "certificate_number", "'KE-2026-15X'")
    assert not {"\t", "\u2028", "\u202e"} & set(answer.problem()["detail"])
