"""Withdrawals and replacements linked to the originals they supersede, on the receiving
node: over real mutual TLS into a real SQLite store, then read through the API."""

from __future__ import annotations

import re
import uuid
import zlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from node.api.app import ApiContext, create_api_app
from node.certificate.lifecycle import Standing, replacement_of
from node.certificate.model import Certificate
from node.certificate.xml_build import to_xml_bytes
from node.envelope.envelope import EnvelopeHeader, seal
from node.render.pdf import render_pdf
from tests.binding_documents import certificate
from tests.integration import test_exchange_endpoint as exchange
from tests.integration.test_exchange_endpoint import T0, Server, _post

# The receiving node of the exchange endpoint's tests: real mutual TLS, real SQLite.
nodes = exchange.nodes
old_ke_signing = exchange.old_ke_signing
validator = exchange.validator
server = exchange.server

NUMBER = "KE-2026-0001"
NEW_NUMBER = "KE-2026-0002"
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _original(phyto: Certificate) -> Certificate:
    return certificate(phyto, number=NUMBER, exporter="KE", importer="NL")


def _withdrawal(phyto: Certificate) -> Certificate:
    return replace(_original(phyto), status_code="40")


def _replacement(phyto: Certificate) -> Certificate:
    new = certificate(phyto, number=NEW_NUMBER, exporter="KE", importer="NL")
    return replacement_of(
        new,
        replaced_number=NUMBER,
        reason="Change in consignee",
        at=datetime(2026, 3, 2, tzinfo=UTC),
    )


async def _send(server: Server, cert: Certificate, message_id: str | None = None) -> None:
    ke = server.nodes.ke
    envelope = seal(
        header=EnvelopeHeader(
            message_id=message_id or str(uuid.uuid4()),
            from_country="KE",
            to_country="NL",
            certificate_type=cert.type_code,
            certificate_status=cert.status_code,
            certificate_number=cert.number,
            created=T0,
            content_digest="",
            sender_key_id="",
            recipient_key_id="",
        ),
        payload=to_xml_bytes(cert),
        sender_signing_key=ke.signing,
        recipient_public_key=server.nodes.nl.encryption.public_key(),
    )
    answer = await _post(server, ke, envelope)
    assert answer.status == 200, answer.body


async def _ids(server: Server) -> dict[tuple[str, str], int]:
    stored = await server.store.messages("in")
    return {(m.certificate_number, m.certificate_status): m.id for m in stored}


async def _get(server: Server, pk: int, validator: Any) -> dict[str, Any]:
    context = ApiContext(
        country="NL", api_token=TOKEN, store=server.store, validator=validator, clock=server.clock
    )
    client = TestClient(TestServer(create_api_app(context)))
    await client.start_server()
    try:
        response = await client.get(f"/api/v1/certificates/{pk}", headers=AUTH)
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body
    finally:
        await client.close()


def _kinds(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["detail"] for e in body["events"] if e["kind"] == kind]


@pytest.mark.asyncio
async def test_a_withdrawal_after_its_original_marks_it_withdrawn_with_links(
    server: Server, phyto: Certificate, validator: Any
) -> None:
    await _send(server, _original(phyto))
    server.clock.advance(minutes=10)
    await _send(server, _withdrawal(phyto))
    ids = await _ids(server)
    original, withdrawal = ids[(NUMBER, "70")], ids[(NUMBER, "40")]

    body = await _get(server, original, validator)
    assert body["lifecycle"]["status"] == "withdrawn"
    assert body["lifecycle"]["by"]["id"] == withdrawal
    assert body["lifecycle"]["by"]["certificate_number"] == NUMBER
    assert body["lifecycle"]["by"]["at"] is not None
    (event,) = _kinds(body, "withdrawn")
    assert event["by"] == withdrawal
    assert (body["withdraws"], body["replaces"]) == (None, None)

    other = await _get(server, withdrawal, validator)
    assert other["withdraws"]["id"] == original
    assert other["withdraws"]["certificate_number"] == NUMBER


@pytest.mark.asyncio
async def test_a_replacement_marks_the_original_replaced_by_the_new_number(
    server: Server, phyto: Certificate, validator: Any
) -> None:
    await _send(server, _original(phyto))
    await _send(server, _replacement(phyto))
    ids = await _ids(server)
    original, new = ids[(NUMBER, "70")], ids[(NEW_NUMBER, "70")]

    body = await _get(server, original, validator)
    assert body["lifecycle"]["status"] == "replaced"
    by = body["lifecycle"]["by"]
    assert (by["id"], by["certificate_number"]) == (new, NEW_NUMBER)
    assert by["reason"] == "Change in consignee"
    assert by["at"] == "2026-03-02T00:00:00+00:00"
    assert len(_kinds(body, "replaced")) == 1

    other = await _get(server, new, validator)
    assert other["replaces"] == {
        "id": original,
        "certificate_number": NUMBER,
        "at": None,
        "reason": None,
    }
    assert other["lifecycle"]["status"] == "issued"


@pytest.mark.asyncio
async def test_a_withdrawal_before_its_original_is_linked_when_the_original_arrives(
    server: Server, phyto: Certificate, validator: Any
) -> None:
    await _send(server, _withdrawal(phyto))
    ids = await _ids(server)
    withdrawal = ids[(NUMBER, "40")]
    early = await _get(server, withdrawal, validator)
    assert early["withdraws"] == {
        "id": None,
        "certificate_number": NUMBER,
        "at": None,
        "reason": None,
    }

    server.clock.advance(minutes=10)
    await _send(server, _original(phyto))
    original = (await _ids(server))[(NUMBER, "70")]
    body = await _get(server, original, validator)
    assert body["lifecycle"]["status"] == "withdrawn"
    assert body["lifecycle"]["by"]["id"] == withdrawal
    assert len(_kinds(body, "withdrawn")) == 1
    assert (await _get(server, withdrawal, validator))["withdraws"]["id"] == original


@pytest.mark.asyncio
async def test_a_replacement_before_its_original_is_linked_when_the_original_arrives(
    server: Server, phyto: Certificate, validator: Any
) -> None:
    await _send(server, _replacement(phyto))
    new = (await _ids(server))[(NEW_NUMBER, "70")]
    early = await _get(server, new, validator)
    assert early["replaces"] == {
        "id": None,
        "certificate_number": NUMBER,
        "at": None,
        "reason": None,
    }

    server.clock.advance(minutes=10)
    await _send(server, _original(phyto))
    original = (await _ids(server))[(NUMBER, "70")]
    body = await _get(server, original, validator)
    assert body["lifecycle"]["status"] == "replaced"
    by = body["lifecycle"]["by"]
    assert (by["id"], by["certificate_number"]) == (new, NEW_NUMBER)
    # What the replacement said, though it was said before the original came.
    assert (by["reason"], by["at"]) == ("Change in consignee", "2026-03-02T00:00:00+00:00")
    assert len(_kinds(body, "replaced")) == 1
    assert (await _get(server, new, validator))["replaces"]["id"] == original

    # The original arriving again (same content, a new message id) links nothing twice.
    await _send(server, _original(phyto))
    assert len(_kinds(await _get(server, original, validator), "replaced")) == 1


@pytest.mark.asyncio
async def test_a_withdrawal_arriving_twice_records_one_withdrawn_event(
    server: Server, phyto: Certificate, validator: Any
) -> None:
    await _send(server, _original(phyto))
    repeated = str(uuid.uuid4())
    await _send(server, _withdrawal(phyto), message_id=repeated)
    await _send(server, _withdrawal(phyto), message_id=repeated)  # the same message again
    await _send(server, _withdrawal(phyto))  # a second message with a new id
    original = (await _ids(server))[(NUMBER, "70")]
    body = await _get(server, original, validator)
    assert len(_kinds(body, "withdrawn")) == 1
    assert body["lifecycle"]["status"] == "withdrawn"


@pytest.mark.asyncio
async def test_a_rejected_withdrawal_withdraws_nothing(
    server: Server, phyto: Certificate, validator: Any
) -> None:
    await _send(server, _original(phyto))
    broken = replace(_withdrawal(phyto), signatories=())
    await _send(server, broken)
    original = (await _ids(server))[(NUMBER, "70")]
    body = await _get(server, original, validator)
    assert body["lifecycle"] == {"status": "issued", "by": None}
    assert _kinds(body, "withdrawn") == []


def _page_texts(pdf: bytes) -> str:
    """The text of every content stream (fpdf2 compresses them) as the PDF holds it."""
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            out.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            continue
    return "\n".join(out)


def test_the_pdf_of_a_withdrawn_or_replaced_certificate_is_stamped_so(phyto: Certificate) -> None:
    issued = _page_texts(render_pdf(phyto))
    withdrawn = _page_texts(render_pdf(phyto, Standing("withdrawn")))
    replaced = _page_texts(render_pdf(phyto, Standing("replaced", NEW_NUMBER)))
    assert "WITHDRAWN" not in issued and "REPLACED" not in issued
    assert "(WITHDRAWN) Tj" in withdrawn
    assert f"(REPLACED by {NEW_NUMBER}) Tj" in replaced
    assert render_pdf(phyto, Standing("issued")) == render_pdf(phyto)
