"""Named API clients over real HTTP: scopes per route, a client added or revoked while
the node runs, and the events a client's calls write naming it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from node.api.app import ApiContext, create_api_app
from node.certificate.model import Certificate
from node.certificate.validate import Validator
from node.clock import FixedClock
from node.identity.api_clients import add_client, revoke_client
from node.store.store import Store
from tests.binding_documents import document

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
ADMIN = "clients-admin-token-0123456789abcdef"
XML_TYPE = {"Content-Type": "application/xml"}


@pytest_asyncio.fixture
async def api(tmp_path: Path, validator: Validator) -> AsyncIterator[tuple[TestClient, Path]]:
    store = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'node.db'}")
    await store.migrate()
    clients_file = tmp_path / "api-clients.json"
    context = ApiContext(
        country="NL", api_token=ADMIN, store=store, validator=validator,
        clock=FixedClock(NOW), clients_file=clients_file,
    )  # fmt: skip
    client = TestClient(TestServer(create_api_app(context)))
    await client.start_server()
    yield client, clients_file
    await client.close()
    await store.close()


def _auth(token: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **more}


async def _submit(client: TestClient, token: str, xml: bytes) -> Any:
    headers = _auth(token, **{"Content-Type": "application/xml"})
    return await client.post("/api/v1/certificates", data=xml, headers=headers)


@pytest.mark.asyncio
async def test_each_route_needs_its_scope(api: tuple[TestClient, Path], phyto_xml: bytes) -> None:
    client, path = api
    reader = add_client(path, "dashboard", ["read"], now=NOW)
    sender = add_client(path, "backoffice", ["submit"], now=NOW)
    refused = await _submit(client, reader, phyto_xml)
    assert refused.status == 403
    assert refused.content_type == "application/problem+json"
    body = await refused.json()
    assert body["scope"] == "submit" and "dashboard" in body["detail"]
    assert (await client.get("/api/v1/certificates", headers=_auth(reader))).status == 200
    assert (await client.get("/api/v1/events", headers=_auth(reader))).status == 200
    # A refused call stored nothing.
    assert (await (await client.get("/api/v1/events", headers=_auth(reader))).json())[
        "events"
    ] == []
    accepted = await _submit(client, sender, phyto_xml)
    assert accepted.status == 202, await accepted.text()
    forbidden = await client.get("/api/v1/events", headers=_auth(sender))
    assert forbidden.status == 403 and (await forbidden.json())["scope"] == "read"


@pytest.mark.asyncio
async def test_events_name_the_client_that_caused_them(
    api: tuple[TestClient, Path], phyto_xml: bytes
) -> None:
    client, path = api
    sender = add_client(path, "backoffice", ["submit", "read"], now=NOW)
    sent = await (await _submit(client, sender, phyto_xml)).json()
    withdrawn = await client.post(
        f"/api/v1/certificates/{sent['id']}/withdraw", headers=_auth(ADMIN)
    )
    assert withdrawn.status == 202, await withdrawn.text()
    feed = await (await client.get("/api/v1/events", headers=_auth(sender))).json()
    assert [(e["kind"], e["client"]) for e in feed["events"]] == [
        ("sent", "backoffice"),
        ("sent", "national-system"),
        ("withdraws", "national-system"),
    ]
    one = await (
        await client.get(f"/api/v1/certificates/{sent['id']}", headers=_auth(sender))
    ).json()
    assert [e["kind"] for e in one["events"]] == ["submitted"]


@pytest.mark.asyncio
async def test_a_client_added_or_revoked_counts_without_a_restart(
    api: tuple[TestClient, Path],
) -> None:
    client, path = api
    assert (await client.get("/api/v1/events", headers=_auth("x" * 43))).status == 401
    token = add_client(path, "dashboard", ["read"], now=NOW)
    assert (await client.get("/api/v1/events", headers=_auth(token))).status == 200
    revoke_client(path, "dashboard", now=NOW)
    refused = await client.get("/api/v1/events", headers=_auth(token))
    assert refused.status == 401
    # node.toml's own token is unaffected, and still has every scope.
    assert (await client.get("/api/v1/events", headers=_auth(ADMIN))).status == 200


@pytest.mark.asyncio
async def test_an_unreadable_clients_file_refuses_named_clients_not_the_admin_token(
    api: tuple[TestClient, Path],
) -> None:
    client, path = api
    token = add_client(path, "dashboard", ["read"], now=NOW)
    path.write_text("{not json")
    os.utime(path, ns=(1, 1))
    refused = await client.get("/api/v1/events", headers=_auth(token))
    assert refused.status == 503
    assert "api-clients.json" in (await refused.json())["detail"]
    assert (await client.get("/api/v1/events", headers=_auth(ADMIN))).status == 200


@pytest.mark.asyncio
async def test_each_client_has_idempotency_keys_of_its_own(
    api: tuple[TestClient, Path], phyto: Certificate
) -> None:
    """The same key from two clients names two requests, not one answer for both."""
    client, path = api
    first = add_client(path, "backoffice", ["submit"], now=NOW)
    second = add_client(path, "port-office", ["submit"], now=NOW)
    key = {"Idempotency-Key": "order-0001"}
    one = document(phyto, number="NL-2026-IDEM-1", exporter="NL", importer="CN")
    other = document(phyto, number="NL-2026-IDEM-2", exporter="NL", importer="CN")
    a = await client.post("/api/v1/certificates", data=one, headers=_auth(first, **XML_TYPE, **key))
    b = await client.post(
        "/api/v1/certificates", data=other, headers=_auth(second, **XML_TYPE, **key)
    )
    assert (a.status, b.status) == (202, 202), await b.text()
    assert (await a.json())["id"] != (await b.json())["id"]
    # Each client's retry still gets its own first answer back.
    again = await client.post(
        "/api/v1/certificates", data=other, headers=_auth(second, **XML_TYPE, **key)
    )
    assert (await again.json())["id"] == (await b.json())["id"]
