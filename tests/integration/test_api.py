"""The national-system API over real HTTP, with a real SQLite store."""

from __future__ import annotations

import io
import json
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from node.api.app import MAX_CERTIFICATE_BYTES, ApiContext, create_api_app
from node.certificate.jsonmodel import certificate_to_json, to_plain
from node.certificate.model import Attachment, Certificate, ReferencedDocument
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
    client = TestClient(TestServer(create_api_app(context)))
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
    for query in ("", "?reason=", "?reason=+", "?reason=line%0Abreak", "?reason=%00"):
        bad_reason = await client.post(
            f"/api/v1/certificates/{sent['id']}/replace{query}", data=new, headers=XML
        )
        # A parameter the request needs, not a certificate that cannot be processed.
        assert bad_reason.status == 400, query
        assert (await bad_reason.json())["title"] == "Bad request"
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
        "detail": {"replaces": sent["id"], "reason": "Change in consignee"},
    }


@pytest.mark.asyncio
async def test_a_sent_certificate_shows_it_was_replaced_and_by_which(
    api: tuple[TestClient, Store, list[int]], phyto: Certificate, phyto_xml: bytes
) -> None:
    client, store, _ = api
    sent = await (await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)).json()
    new = to_xml_bytes(replace(phyto, number="NL-2026-0001235"))
    replaced = await client.post(
        f"/api/v1/certificates/{sent['id']}/replace?reason=Change+in+consignee",
        data=new,
        headers=XML,
    )
    body = await replaced.json()
    original = await (await client.get(f"/api/v1/certificates/{sent['id']}", headers=AUTH)).json()
    assert original["lifecycle"] == {
        "status": "replaced",
        "by": {
            "id": body["id"],
            "certificate_number": "NL-2026-0001235",
            "at": "2026-11-28T10:00:00+00:00",
            "reason": "Change in consignee",
        },
    }
    assert original["events"][-1]["kind"] == "replaced"
    # A replacement that failed for good replaced nothing.
    await store.fail(body["id"], now=datetime(2026, 11, 28, 11, tzinfo=UTC), error="refused")
    again = await (await client.get(f"/api/v1/certificates/{sent['id']}", headers=AUTH)).json()
    assert again["lifecycle"] == {"status": "issued", "by": None}


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


# --- the API is exactly its spec; no input yields a 500 (issue 11) -------------------------

SPEC = Path(__file__).resolve().parents[2] / "node" / "api" / "openapi.yaml"
BAD_IDS = [
    "9223372036854775808",  # 2**63: past a 64-bit id
    "99999999999999999999999999",
    "0",
    "-1",
    "1e3",
    "abc",
    "%D9%A3",  # ٣, ARABIC-INDIC DIGIT THREE: a digit to str.isdigit(), not to the spec
    "%EF%BC%91",  # U+FF11, FULLWIDTH DIGIT ONE
]


def _schema(name: str) -> dict[str, Any]:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    schema: dict[str, Any] = spec["components"]["schemas"][name]
    return schema


async def _problem(response: ClientResponse, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = await response.json()
    assert body["status"] == status
    return body


@pytest.mark.asyncio
@pytest.mark.parametrize("raw_id", BAD_IDS)
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("GET", "/xml"), ("GET", "/pdf"), ("POST", "/withdraw"), ("POST", "/replace")],
)
async def test_an_id_outside_the_spec_names_no_certificate(
    api: tuple[TestClient, Store, list[int]], raw_id: str, method: str, suffix: str
) -> None:
    client, store, _ = api
    path = f"/api/v1/certificates/{raw_id}{suffix}" + ("?reason=r" if suffix == "/replace" else "")
    response = await client.request(method, URL(path, encoded=True), headers=XML, data=b"<x/>")
    await _problem(response, 404)
    assert await store.messages("out") == []


@pytest.mark.asyncio
async def test_a_unicode_digit_is_not_an_id(
    api: tuple[TestClient, Store, list[int]], phyto_xml: bytes
) -> None:
    client, _, _ = api
    sent = await (await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)).json()
    assert sent["id"] == 1
    assert (await client.get("/api/v1/certificates/1", headers=AUTH)).status == 200
    for one in ("%D9%A1", "%EF%BC%91", "%E0%A5%A7"):  # Arabic-Indic, fullwidth, Devanagari 1
        response = await client.get(URL(f"/api/v1/certificates/{one}", encoded=True), headers=AUTH)
        await _problem(response, 404)


@pytest.mark.asyncio
async def test_the_largest_id_is_just_not_found(api: tuple[TestClient, Store, list[int]]) -> None:
    client, _, _ = api
    response = await client.get(f"/api/v1/certificates/{2**63 - 1}", headers=AUTH)
    assert "no message" in (await _problem(response, 404))["detail"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "query",
    [
        "limit=%C2%B2",  # ², which str.isdigit() takes and int() does not
        "limit=%D9%A3",
        "limit=1_0",
        "limit=+5",
        "limit=%205",
        "limit=",
        "limit=99999999999999999999999999999",
        "offset=%C2%B2",
        "offset=1000000001",
        "direction=",
    ],
)
async def test_list_parameters_are_read_strictly(
    api: tuple[TestClient, Store, list[int]], query: str
) -> None:
    client, _, _ = api
    response = await client.get(URL(f"/api/v1/certificates?{query}", encoded=True), headers=AUTH)
    assert (await _problem(response, 400))["title"] == "Bad request"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[" * 200_000, "nested deeper than"),
        (b'{"a":' * 200_000, "nested deeper than"),
        (b'{"number": ' + b"1" * 5000 + b"}", "not JSON"),
        (b'{"number": 1e99999}', "expected a string"),
    ],
)
async def test_hostile_json_is_refused_and_stores_nothing(
    api: tuple[TestClient, Store, list[int]], body: bytes, fragment: str
) -> None:
    client, store, kicks = api
    response = await client.post(
        "/api/v1/certificates", data=body, headers={"Content-Type": "application/json", **AUTH}
    )
    assert fragment in (await _problem(response, 422))["detail"]
    assert await store.messages("out") == []
    assert kicks == []


@pytest.mark.asyncio
@pytest.mark.parametrize("as_json", [False, True])
async def test_a_decimal_in_exponent_form_is_refused_before_it_is_written_out(
    api: tuple[TestClient, Store, list[int]], phyto: Certificate, phyto_xml: bytes, as_json: bool
) -> None:
    # Written out in plain notation, as the XML needs it, 1E999999999 is a gigabyte: 1E99
    # stands for it here.
    client, store, _ = api
    sent = await (await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)).json()
    new = replace(phyto, number="NL-2026-0001235")
    if as_json:
        plain = to_plain(new)
        plain["consignment"]["items"][0]["net_weight"]["value"] = "1E99"
        body, content_type = json.dumps(plain).encode(), "application/json"
    else:
        body = to_xml_bytes(new).replace(
            b'unitCode="KGM">12000</ram:NetWeightMeasure>',
            b'unitCode="KGM">1E99</ram:NetWeightMeasure>',
        )
        assert b">1E99<" in body
        content_type = "application/xml"
    response = await client.post(
        f"/api/v1/certificates/{sent['id']}/replace?reason=r",
        data=body,
        headers={"Content-Type": content_type, **AUTH},
    )
    assert "1E99" in (await _problem(response, 422))["detail"]
    assert len(await store.messages("out")) == 1


@pytest.mark.asyncio
async def test_a_broken_body_encoding_is_a_bad_request(
    api: tuple[TestClient, Store, list[int]],
) -> None:
    client, store, _ = api
    response = await client.post(
        "/api/v1/certificates",
        data=b"this is not gzip",
        headers={**XML, "Content-Encoding": "gzip"},
    )
    await _problem(response, 400)
    assert await store.messages("out") == []


def _with_attachment(cert: Certificate, size: int) -> Certificate:
    """`cert` with a scanned document attached: `size` bytes, Base64 in the XML."""
    attached = ReferencedDocument(
        type_code="916",
        id="SCAN-1",
        attachments=(Attachment(os.urandom(size), "application/pdf", "scan.pdf"),),
    )
    return replace(cert, references=(*cert.references, attached))


@pytest.mark.asyncio
@pytest.mark.parametrize("as_json", [False, True])
async def test_a_certificate_with_attachments_up_to_the_limit_is_accepted(
    api: tuple[TestClient, Store, list[int]], phyto: Certificate, as_json: bool
) -> None:
    client, store, _ = api
    # 4.9 MiB as XML: past aiohttp's default 1 MiB body limit, within the API's own.
    cert = _with_attachment(phyto, 3_800_000)
    xml = to_xml_bytes(cert)
    body = certificate_to_json(cert).encode() if as_json else xml
    assert 4 * 1024 * 1024 < len(xml) <= MAX_CERTIFICATE_BYTES
    assert len(body) <= MAX_CERTIFICATE_BYTES
    content_type = "application/json" if as_json else "application/xml"
    response = await client.post(
        "/api/v1/certificates",
        data=io.BytesIO(body),
        headers={"Content-Type": content_type, **AUTH},
    )
    assert response.status == 202, await response.text()
    (stored,) = await store.messages("out")
    assert stored.payload == xml


@pytest.mark.asyncio
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_body_over_the_limit_is_refused_naming_the_real_limit(
    api: tuple[TestClient, Store, list[int]], framing: str
) -> None:
    client, store, _ = api
    size = MAX_CERTIFICATE_BYTES + 1
    body: Any = io.BytesIO(b" " * size) if framing == "content-length" else _chunks(size)
    response = await client.post("/api/v1/certificates", data=body, headers=XML)
    problem = await _problem(response, 413)
    assert problem["detail"] == f"the body is over the {MAX_CERTIFICATE_BYTES}-byte limit"
    assert await store.messages("out") == []


@pytest.mark.asyncio
async def test_a_json_model_whose_xml_is_over_the_limit_is_refused(
    api: tuple[TestClient, Store, list[int]], phyto: Certificate
) -> None:
    client, store, _ = api

    # The same Base64 in both, but XML says more around it: an attachment that makes
    # the compact JSON just fit makes the XML just too large.
    def compact(cert: Certificate) -> bytes:
        return json.dumps(to_plain(cert), separators=(",", ":")).encode()

    empty = _with_attachment(phyto, 0)
    size = 3 * ((MAX_CERTIFICATE_BYTES - len(compact(empty))) // 4)
    cert = _with_attachment(phyto, size)
    body = compact(cert)
    assert len(body) <= MAX_CERTIFICATE_BYTES < len(to_xml_bytes(cert))
    response = await client.post(
        "/api/v1/certificates",
        data=io.BytesIO(body),
        headers={"Content-Type": "application/json", **AUTH},
    )
    assert "as XML, over the" in (await _problem(response, 413))["detail"]
    assert await store.messages("out") == []


async def _chunks(size: int) -> AsyncIterator[bytes]:
    chunk = b" " * 65536
    for start in range(0, size, len(chunk)):
        yield chunk[: size - start]


@pytest.mark.asyncio
async def test_every_202_says_where_the_new_message_is(
    api: tuple[TestClient, Store, list[int]], phyto: Certificate, phyto_xml: bytes
) -> None:
    client, _, _ = api
    submitted = await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)
    first = await submitted.json()
    new = to_xml_bytes(replace(phyto, number="NL-2026-0001235"))
    replaced = await client.post(
        f"/api/v1/certificates/{first['id']}/replace?reason=Change", data=new, headers=XML
    )
    withdrawn = await client.post(f"/api/v1/certificates/{first['id']}/withdraw", headers=AUTH)
    for response in (submitted, replaced, withdrawn):
        assert response.status == 202
        body = await response.json()
        assert response.headers["Location"] == f"/api/v1/certificates/{body['id']}"
        again = await client.get(response.headers["Location"], headers=AUTH)
        assert (await again.json())["message_id"] == body["message_id"]


@pytest.mark.asyncio
async def test_findings_on_a_json_submission_point_into_the_json(
    api: tuple[TestClient, Store, list[int]], phyto: Certificate
) -> None:
    client, store, _ = api
    plain = to_plain(phyto)
    del plain["consignment"]["items"][0]["scientific_names"]
    response = await client.post(
        "/api/v1/certificates",
        data=json.dumps(plain).encode(),
        headers={"Content-Type": "application/json", **AUTH},
    )
    findings = (await _problem(response, 422))["findings"]
    assert findings, "an invalid certificate comes back with its findings"
    for finding in findings:
        # Where in what the national system wrote: no XPath or line of the node's XML.
        assert set(finding) == {"level", "area", "message", "path"}, finding
        assert finding["path"].startswith("$"), finding
    botanical = [f for f in findings if "botanical name" in f["message"]]
    assert botanical and botanical[0]["path"] == "$.consignment.items[0]"
    assert await store.messages("out") == []


@pytest.mark.asyncio
async def test_findings_on_an_xml_submission_point_into_the_xml(
    api: tuple[TestClient, Store, list[int]], phyto_xml: bytes
) -> None:
    client, _, _ = api
    broken = phyto_xml.replace(b"<ram:ScientificName>Rosa hybrida</ram:ScientificName>", b"")
    response = await client.post("/api/v1/certificates", data=broken, headers=XML)
    for finding in (await _problem(response, 422))["findings"]:
        assert set(finding) == {"level", "area", "message", "xpath", "line"}, finding
        assert finding["xpath"].startswith("/rsm:SPSCertificate"), finding


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("route", "stored", "shown"),
    [
        ("direct", "accepted", "accepted"),
        ("direct", "accepted-with-warnings", "accepted-with-warnings"),
        ("hub", "Delivered", "accepted"),
        ("hub", "DeliveredWithWarnings", "accepted-with-warnings"),
        ("hub", "DeliveredNotReadable", "rejected"),
    ],
)
async def test_states_and_outcomes_are_the_spec_s_on_both_routes(
    api: tuple[TestClient, Store, list[int]],
    phyto_xml: bytes,
    route: str,
    stored: str,
    shown: str,
) -> None:
    client, store, _ = api
    states = _schema("Summary")["properties"]["state"]["enum"]
    outcomes = _schema("Summary")["properties"]["outcome"]["enum"]
    pk = (await (await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)).json())[
        "id"
    ]
    now = datetime(2026, 11, 28, 10, 1, tzinfo=UTC)
    if route == "hub":
        await store.relayed(pk, now=now, tracking="T-1", next_check_at=now, reason="no endpoint")
        relayed = await (await client.get(f"/api/v1/certificates/{pk}", headers=AUTH)).json()
        assert relayed["state"] == "relayed" and relayed["state"] in states
    await store.delivered(pk, now=now, route=route, outcome=stored, receipt=None)
    body = await (await client.get(f"/api/v1/certificates/{pk}", headers=AUTH)).json()
    assert (body["state"], body["route"], body["outcome"]) == ("delivered", route, shown)
    assert body["state"] in states and body["outcome"] in outcomes
    delivered = body["events"][-1]
    assert delivered["kind"] == "delivered"
    assert delivered["detail"]["outcome"] == shown
    if route == "hub":
        assert delivered["detail"]["hub_state"] == stored  # the hub's own word, kept
    listing = await (await client.get("/api/v1/certificates", headers=AUTH)).json()
    assert listing["certificates"][0]["outcome"] == shown
    # The stored history is what the hub said, unchanged.
    assert (await store.message(pk)).outcome == stored


@pytest.mark.asyncio
async def test_unknown_paths_and_methods_are_problems(
    api: tuple[TestClient, Store, list[int]],
) -> None:
    client, _, _ = api
    await _problem(await client.get("/api/v1/nothing", headers=AUTH), 404)
    await _problem(await client.get("/", headers=AUTH), 404)
    response = await client.delete("/api/v1/certificates", headers=AUTH)
    await _problem(response, 405)
    assert set(response.headers["Allow"].split(",")) >= {"GET", "POST"}


@pytest.mark.asyncio
async def test_the_routes_are_the_spec_s_paths(api: tuple[TestClient, Store, list[int]]) -> None:
    client, _, _ = api
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    documented = {
        (method.upper(), path.replace("{id}", "ID"))
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    served = {
        (route.method, route.resource.canonical.removeprefix("/api/v1").replace("{id}", "ID"))
        for route in client.server.app.router.routes()  # type: ignore[union-attr]
        if route.method != "HEAD" and route.resource is not None
    }
    assert served == documented


@pytest.mark.asyncio
async def test_event_text_is_shown_on_one_line(
    api: tuple[TestClient, Store, list[int]], phyto_xml: bytes
) -> None:
    client, store, _ = api
    sent = await (await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)).json()
    # A hub's FailedDelivery message is its own text, line breaks and all.
    reason = "the hub reports FailedDelivery: refused\r\n  at line 2\u2028and 3"
    await store.fail(sent["id"], now=datetime(2026, 11, 28, 10, 1, tzinfo=UTC), error=reason)
    detail = await (await client.get(f"/api/v1/certificates/{sent['id']}", headers=AUTH)).json()
    failed = detail["events"][-1]
    assert failed["kind"] == "failed"
    assert failed["detail"]["error"] == "the hub reports FailedDelivery: refused   at line 2 and 3"
