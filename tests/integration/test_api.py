"""The national-system API over real HTTP, with a real SQLite store."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.api.app import ApiContext, create_api_app
from node.certificate.jsonmodel import certificate_to_json
from node.certificate.model import Certificate
from node.certificate.validate import Validator
from node.certificate.xml_build import to_xml_bytes
from node.clock import FixedClock
from node.store.store import NewMessage, Store
from tests.unit.test_safe_xml import BILLION_LAUGHS

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
XML = {"Content-Type": "application/xml", **AUTH}


@pytest_asyncio.fixture
async def api(
    tmp_path: Path, validator: Validator
) -> AsyncIterator[tuple[TestClient, Store, list[int]]]:
    store = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'node.db'}")
    await store.migrate()
    kicks: list[int] = []
    context = ApiContext(
        country="NL",
        api_token=TOKEN,
        store=store,
        validator=validator,
        clock=FixedClock(datetime(2026, 11, 28, 10, 0, tzinfo=UTC)),
        kick=lambda: kicks.append(1),
    )
    outer = web.Application()
    outer.add_subapp("/api/v1", create_api_app(context))
    client = TestClient(TestServer(outer))
    await client.start_server()
    try:
        yield client, store, kicks
    finally:
        await client.close()
        await store.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]
)
async def test_every_call_needs_the_token(
    api: tuple[TestClient, Store, list[int]], headers: dict[str, str]
) -> None:
    client, _, _ = api
    response = await client.get("/api/v1/certificates", headers=headers)
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert (await response.json())["title"] == "Unauthorized"


@pytest.mark.asyncio
async def test_openapi_is_served(api: tuple[TestClient, Store, list[int]]) -> None:
    client, _, _ = api
    response = await client.get("/api/v1/openapi.yaml")
    assert response.status == 200
    assert "openapi: 3.1.0" in await response.text()


@pytest.mark.asyncio
async def test_submit_list_get_download(
    api: tuple[TestClient, Store, list[int]], phyto_xml: bytes
) -> None:
    client, store, kicks = api
    response = await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)
    assert response.status == 202, await response.text()
    body = await response.json()
    assert (body["state"], body["from"], body["to"], body["number"]) == (
        "queued",
        "NL",
        "CN",
        "NL-2026-0001234",
    )
    assert kicks == [1]
    listing = await (await client.get("/api/v1/certificates?direction=sent", headers=AUTH)).json()
    assert [c["id"] for c in listing["certificates"]] == [body["id"]]
    detail = await (await client.get(f"/api/v1/certificates/{body['id']}", headers=AUTH)).json()
    assert [e["kind"] for e in detail["events"]] == ["submitted"]
    xml = await client.get(f"/api/v1/certificates/{body['id']}/xml", headers=AUTH)
    assert await xml.read() == phyto_xml
    pdf = await client.get(f"/api/v1/certificates/{body['id']}/pdf", headers=AUTH)
    assert pdf.status == 200
    assert (await pdf.read()).startswith(b"%PDF")
    assert len(await store.messages("out")) == 1


@pytest.mark.asyncio
async def test_json_model_is_accepted(
    api: tuple[TestClient, Store, list[int]], phyto: Certificate
) -> None:
    client, _, _ = api
    response = await client.post(
        "/api/v1/certificates",
        data=certificate_to_json(phyto).encode(),
        headers={"Content-Type": "application/json", **AUTH},
    )
    assert response.status == 202


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        (BILLION_LAUGHS, "application/xml", 422, "DTD"),
        (b"{not json", "application/json", 422, "not JSON"),
        (b"hello", "text/plain", 415, "application/xml"),
    ],
)
async def test_bad_submissions_are_refused_and_store_nothing(
    api: tuple[TestClient, Store, list[int]],
    body: bytes,
    content_type: str,
    status: int,
    fragment: str,
) -> None:
    client, store, kicks = api
    response = await client.post(
        "/api/v1/certificates", data=body, headers={"Content-Type": content_type, **AUTH}
    )
    assert response.status == status
    assert fragment in (await response.json())["detail"]
    assert await store.messages("out") == []
    assert kicks == []


@pytest.mark.asyncio
async def test_invalid_certificate_comes_back_with_findings(
    api: tuple[TestClient, Store, list[int]], phyto_xml: bytes
) -> None:
    client, store, _ = api
    broken = phyto_xml.replace(b"<ram:ScientificName>Rosa hybrida</ram:ScientificName>", b"")
    response = await client.post("/api/v1/certificates", data=broken, headers=XML)
    assert response.status == 422
    problem = await response.json()
    assert "nothing was stored" in problem["detail"]
    assert any("botanical name" in f["message"] for f in problem["findings"])
    assert await store.messages("out") == []


@pytest.mark.asyncio
async def test_a_certificate_of_another_country_is_refused(
    api: tuple[TestClient, Store, list[int]], reexport: Certificate
) -> None:
    client, store, _ = api
    response = await client.post("/api/v1/certificates", data=to_xml_bytes(reexport), headers=XML)
    assert response.status == 422
    assert "this node sends for NL" in (await response.json())["detail"]
    assert await store.messages("out") == []


@pytest.mark.asyncio
async def test_oversized_body(api: tuple[TestClient, Store, list[int]]) -> None:
    client, _, _ = api
    response = await client.post(
        "/api/v1/certificates", data=io.BytesIO(b" " * (13 * 1024 * 1024)), headers=XML
    )
    assert response.status == 413


@pytest.mark.asyncio
async def test_withdraw_and_replace(
    api: tuple[TestClient, Store, list[int]], phyto: Certificate, phyto_xml: bytes
) -> None:
    client, _, _ = api
    sent = await (await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)).json()
    withdrawn = await client.post(f"/api/v1/certificates/{sent['id']}/withdraw", headers=AUTH)
    assert withdrawn.status == 202
    assert (await withdrawn.json())["status"] == "40"
    again = await client.post(f"/api/v1/certificates/{sent['id']}/withdraw", headers=AUTH)
    assert again.status == 409
    assert "was withdrawn by message" in (await again.json())["detail"]
    new = to_xml_bytes(replace(phyto, number="NL-2026-0001235"))
    missing_reason = await client.post(
        f"/api/v1/certificates/{sent['id']}/replace", data=new, headers=XML
    )
    assert missing_reason.status == 422
    replaced = await client.post(
        f"/api/v1/certificates/{sent['id']}/replace?reason=Change+in+consignee",
        data=new,
        headers=XML,
    )
    assert replaced.status == 202, await replaced.text()
    body = await replaced.json()
    xml = await (await client.get(f"/api/v1/certificates/{body['id']}/xml", headers=AUTH)).read()
    assert b"<ram:Subject>ADRPN</ram:Subject>" in xml and b"NL-2026-0001234" in xml
    detail = await (await client.get(f"/api/v1/certificates/{body['id']}", headers=AUTH)).json()
    assert detail["events"][-1] == {
        "at": "2026-11-28T10:00:00+00:00",
        "kind": "lifecycle",
        "detail": {"replaces": sent["id"]},
    }


@pytest.mark.asyncio
async def test_only_sent_certificates_can_be_withdrawn(
    api: tuple[TestClient, Store, list[int]], phyto_xml: bytes
) -> None:
    client, store, _ = api
    received = await store.receive(
        NewMessage("m-1", "KE", "NL", "KE-1", "851", "70", "sha256:00", phyto_xml),
        now=datetime(2026, 11, 28, tzinfo=UTC),
        make_receipt=lambda: ("accepted", b"r"),
    )
    response = await client.post(f"/api/v1/certificates/{received.message}/withdraw", headers=AUTH)
    assert response.status == 409
    listing = await (
        await client.get("/api/v1/certificates?direction=received", headers=AUTH)
    ).json()
    assert [c["from"] for c in listing["certificates"]] == ["KE"]


@pytest.mark.asyncio
@pytest.mark.parametrize("query", ["direction=both", "limit=0", "limit=x", "offset=-1"])
async def test_bad_queries(api: tuple[TestClient, Store, list[int]], query: str) -> None:
    client, _, _ = api
    response = await client.get(f"/api/v1/certificates?{query}", headers=AUTH)
    assert response.status == 400


@pytest.mark.asyncio
async def test_unknown_certificate(api: tuple[TestClient, Store, list[int]]) -> None:
    client, _, _ = api
    response = await client.get("/api/v1/certificates/999", headers=AUTH)
    assert response.status == 404
    assert json.loads(await response.text())["status"] == 404
