"""POST /certificates/{id}/response on the importer: over real HTTP, a real SQLite store."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from node.api.app import ApiContext, create_api_app
from node.certificate.validate import Validator
from node.clock import FixedClock
from node.envelope.response import Decision, Response
from node.identity.api_clients import add_client
from node.store.store import NewMessage, Store

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
CERT_MESSAGE_ID = "0b6f4d0e-4d2a-4c1e-9a57-3f8d2b1c6e90"

World = tuple[TestClient, Store, list[int], Path]


@pytest_asyncio.fixture
async def api(tmp_path: Path, validator: Validator) -> AsyncIterator[World]:
    store = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'node.db'}")
    await store.migrate()
    kicks: list[int] = []
    clients_file = tmp_path / "api-clients.json"
    context = ApiContext(
        country="NL",
        api_token=TOKEN,
        store=store,
        validator=validator,
        clock=FixedClock(NOW),
        kick=lambda: kicks.append(1),
        clients_file=clients_file,
    )
    client = TestClient(TestServer(create_api_app(context)))
    await client.start_server()
    try:
        yield client, store, kicks, clients_file
    finally:
        await client.close()
        await store.close()


async def _received(store: Store, xml: bytes, message_id: str = CERT_MESSAGE_ID) -> int:
    new = NewMessage(message_id, "KE", "NL", "KE-2026-1", "851", "70", "sha256:00", xml)
    received = await store.receive(new, now=NOW, make_receipt=lambda: ("accepted", b"r"))
    return received.message


async def _respond(client: TestClient, pk: int, body: Any, **headers: str) -> Any:
    return await client.post(
        f"/api/v1/certificates/{pk}/response",
        data=body if isinstance(body, bytes) else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **AUTH, **headers},
    )


async def _everything(store: Store) -> tuple[int, list[Any]]:
    return await store.pending_count(), await store.messages("out")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ({"decision": "accepted"}, {"decision": "accepted", "reason": None, "text": None}),
        (
            {"decision": "rejected", "reason": "no treatment declared"},
            {"decision": "rejected", "reason": "no treatment declared", "text": None},
        ),
        (
            {"decision": "correction-requested", "text": "botanical name misspelt"},
            {
                "decision": "correction-requested",
                "reason": None,
                "text": "botanical name misspelt",
            },
        ),
    ],
)
async def test_a_response_is_stored_and_queued_to_the_exporter(
    api: World, phyto_xml: bytes, body: dict[str, str], shown: dict[str, Any]
) -> None:
    client, store, kicks, _ = api
    pk = await _received(store, phyto_xml)
    answer = await _respond(client, pk, body)
    assert answer.status == 202, await answer.text()
    assert answer.headers["Location"] == f"/api/v1/certificates/{pk}"
    expected = shown | {"at": NOW.isoformat(), "state": "queued"}
    assert await answer.json() == {"certificate": pk, "response": expected}
    assert kicks == [1]
    # Queued as a message of its own to the exporter, sealed later like a certificate.
    claimed = await store.claim_due(now=NOW, lease=timedelta(minutes=1), limit=10)
    assert [item.destination for item in claimed] == ["KE"]
    sent = claimed[0].message
    assert (sent.kind, sent.answers, sent.recipient, sent.certificate_number) == (
        "response",
        pk,
        "KE",
        "KE-2026-1",
    )
    document = Response.from_bytes(sent.payload)
    assert document.certificate_message_id == CERT_MESSAGE_ID
    assert document.decision is Decision(body["decision"])
    # The certificate shows it, with a `responded` event naming the caller.
    shown_cert = await (await client.get(f"/api/v1/certificates/{pk}", headers=AUTH)).json()
    assert shown_cert["response"] == expected
    responded = [e for e in shown_cert["events"] if e["kind"] == "responded"]
    assert len(responded) == 1
    assert responded[0]["detail"]["decision"] == body["decision"]
    assert responded[0]["detail"]["response"] == sent.id
    # A response is not a sent certificate: the listing does not show it.
    listing = await (await client.get("/api/v1/certificates", headers=AUTH)).json()
    assert listing["certificates"] == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"decision": "rejected"}, 422),
        ({"decision": "rejected", "reason": ""}, 422),
        ({"decision": "rejected", "reason": "two\nlines"}, 422),
        ({"decision": "rejected", "reason": 7}, 422),
        ({"decision": "rejected", "text": "the wrong member"}, 422),
        ({"decision": "correction-requested"}, 422),
        ({"decision": "correction-requested", "text": "x" * 2001}, 422),
        ({"decision": "accepted", "reason": "accepted has none"}, 422),
        ({"decision": "accepted", "reason": None}, 422),
        ({"decision": "maybe"}, 400),
        ({"decision": ["accepted"]}, 400),
        ({}, 400),
        ({"decision": "accepted", "extra": 1}, 400),
        (["accepted"], 400),
        (b"{not json", 400),
        (b"\xff", 400),
        (b"[" * 100000, 400),
    ],
)
async def test_a_bad_response_is_refused_and_stores_nothing(
    api: World, phyto_xml: bytes, body: Any, status: int
) -> None:
    client, store, kicks, _ = api
    pk = await _received(store, phyto_xml)
    answer = await _respond(client, pk, body)
    assert answer.status == status, await answer.text()
    assert answer.content_type == "application/problem+json"
    assert await _everything(store) == (0, [])
    assert kicks == []
    shown = await (await client.get(f"/api/v1/certificates/{pk}", headers=AUTH)).json()
    assert shown["response"] is None


@pytest.mark.asyncio
async def test_only_a_received_certificate_can_be_answered(api: World, phyto_xml: bytes) -> None:
    client, store, _, _ = api
    sent = await store.submit(
        NewMessage(str(uuid.uuid4()), "NL", "CN", "NL-1", "851", "70", "sha256:00", phyto_xml),
        now=NOW,
    )
    answer = await _respond(client, sent, {"decision": "accepted"})
    assert answer.status == 409
    assert (await _respond(client, 999, {"decision": "accepted"})).status == 404
    assert await store.pending_count() == 1  # only the certificate


@pytest.mark.asyncio
async def test_a_body_that_is_not_json_is_415(api: World, phyto_xml: bytes) -> None:
    client, store, _, _ = api
    pk = await _received(store, phyto_xml)
    answer = await client.post(
        f"/api/v1/certificates/{pk}/response",
        data=b'{"decision":"accepted"}',
        headers={"Content-Type": "application/xml", **AUTH},
    )
    assert answer.status == 415
    assert await store.pending_count() == 0


@pytest.mark.asyncio
async def test_a_certificate_is_answered_once(api: World, phyto_xml: bytes) -> None:
    client, store, _, _ = api
    pk = await _received(store, phyto_xml)
    assert (await _respond(client, pk, {"decision": "accepted"})).status == 202
    again = await _respond(client, pk, {"decision": "rejected", "reason": "changed my mind"})
    assert again.status == 409
    assert "already answered" in (await again.json())["title"].lower()
    assert await store.pending_count() == 1


@pytest.mark.asyncio
async def test_a_certificate_that_came_as_plain_xml_through_a_hub_can_be_answered(
    api: World, phyto_xml: bytes
) -> None:
    """Plain XML from a hub has no envelope message id: the response names the message
    by the UUID its receipt named it by (through the hub it goes as an
    SPSAcknowledgement, which names the number: test_response_hub_route.py)."""
    client, store, _, _ = api
    pk = await _received(store, phyto_xml, message_id="hub:T-1")
    answer = await _respond(client, pk, {"decision": "accepted"})
    assert answer.status == 202
    queued = await store.response_to(pk)
    assert queued is not None
    sent = Response.from_bytes(queued.payload)
    assert sent.certificate_message_id == str(uuid.uuid5(uuid.NAMESPACE_URL, "hub:T-1"))
    assert await store.pending_count() == 1


@pytest.mark.asyncio
async def test_an_idempotency_key_answers_a_retry_with_the_first_answer(
    api: World, phyto_xml: bytes
) -> None:
    client, store, _, _ = api
    pk = await _received(store, phyto_xml)
    body = {"decision": "rejected", "reason": "no treatment"}
    first = await _respond(client, pk, body, **{"Idempotency-Key": "resp-1"})
    again = await _respond(client, pk, body, **{"Idempotency-Key": "resp-1"})
    assert (first.status, again.status) == (202, 202)
    assert await first.json() == await again.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert await store.pending_count() == 1
    other = await _respond(client, pk, {"decision": "accepted"}, **{"Idempotency-Key": "resp-1"})
    assert other.status == 422  # the same key for another request


@pytest.mark.asyncio
async def test_answering_needs_the_respond_scope(api: World, phyto_xml: bytes) -> None:
    client, store, _, clients_file = api
    pk = await _received(store, phyto_xml)
    submitter = add_client(clients_file, "backoffice", ["submit"], now=NOW)
    inspector = add_client(clients_file, "inspection", ["respond"], now=NOW)
    refused = await _respond(
        client, pk, {"decision": "accepted"}, Authorization=f"Bearer {submitter}"
    )
    assert refused.status == 403
    assert (await refused.json())["scope"] == "respond"
    taken = await _respond(
        client, pk, {"decision": "accepted"}, Authorization=f"Bearer {inspector}"
    )
    assert taken.status == 202
    events = await store.events(pk)
    assert [(e.kind, e.client) for e in events if e.kind == "responded"] == [
        ("responded", "inspection")
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/xml"), ("GET", "/pdf"), ("POST", "/withdraw"), ("POST", "/replace?reason=x")],
)
async def test_a_response_message_is_no_certificate(
    api: World, phyto_xml: bytes, method: str, path: str
) -> None:
    client, store, _, _ = api
    pk = await _received(store, phyto_xml)
    assert (await _respond(client, pk, {"decision": "accepted"})).status == 202
    response = await store.message(pk + 1)  # the one message stored after it
    assert response.kind == "response"
    answer = await client.request(
        method,
        f"/api/v1/certificates/{response.id}{path}",
        data=phyto_xml,
        headers={"Content-Type": "application/xml", **AUTH},
    )
    assert answer.status == 404, await answer.text()
    assert await store.pending_count() == 1
