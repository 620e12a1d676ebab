"""Nothing doubled, nothing accepted that can never go (issue 11): the API's
Idempotency-Key, its refusal of a repeated certificate, and its refusals at the door.

Real HTTP, a real SQLite store (and PostgreSQL for the kept keys); the directory is a
model handed to the API as the running node hands it the trusted copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from node.api.app import ApiContext, create_api_app
from node.api.door import Door
from node.certificate.model import Certificate
from node.certificate.validate import Validator
from node.certificate.xml_build import to_xml_bytes
from node.clock import FixedClock
from node.crypto.ids import key_id
from node.directory import Directory, KeyEntry, MaintainerSet, NppoEntry, TlsPin
from node.store.store import Store

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
XML = {"Content-Type": "application/xml", **AUTH}
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

Api = tuple[TestClient, Store]


def _entry(
    country: str, status: str = "active", versions: tuple[str, ...] = ("D17A",)
) -> NppoEntry:
    start, end = NOW - timedelta(days=1), NOW + timedelta(days=365)
    signing = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    encryption = X25519PrivateKey.generate().public_key().public_bytes_raw()
    return NppoEntry(
        country=country,
        name=f"NPPO {country}",
        status=status,  # type: ignore[arg-type]
        endpoint=f"https://{country.lower()}.example:8443",
        keys=(
            KeyEntry("signing", signing, key_id(signing), start, end),
            KeyEntry("encryption", encryption, key_id(encryption), start, end),
        ),
        tls_pins=(TlsPin("sha256:" + country.lower() * 32, start, end),),
        schema_versions=versions,
    )


def _directory(version: int, *entries: NppoEntry) -> Directory:
    return Directory(
        version=version,
        issued=NOW - timedelta(hours=1),
        expires=NOW + timedelta(days=7),
        maintainers=MaintainerSet(1, ()),
        nppos=tuple(sorted(entries, key=lambda e: e.country)),
        hub=None,
        code_lists=(),
        schemas=(),
    )


async def _api(tmp_path: Path, validator: Validator, door: Door | None, url: str) -> Api:
    store = Store.open(url)
    await store.migrate()
    context = ApiContext(
        country="NL",
        api_token=TOKEN,
        store=store,
        validator=validator,
        clock=FixedClock(NOW),
        door=door,
    )
    client = TestClient(TestServer(create_api_app(context)))
    await client.start_server()
    return client, store


@pytest_asyncio.fixture
async def api(tmp_path: Path, validator: Validator) -> AsyncIterator[Api]:
    client, store = await _api(
        tmp_path, validator, None, f"sqlite+aiosqlite:///{tmp_path / 'n.db'}"
    )
    try:
        yield client, store
    finally:
        await client.close()
        await store.close()


def _keyed(key: str) -> dict[str, str]:
    return {**XML, "Idempotency-Key": key}


# --- Idempotency-Key ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_same_key_and_body_gets_the_original_answer_and_stores_one(
    api: Api, phyto_xml: bytes
) -> None:
    client, store = api
    first = await client.post("/api/v1/certificates", data=phyto_xml, headers=_keyed("k-1"))
    assert first.status == 202, await first.text()
    again = await client.post("/api/v1/certificates", data=phyto_xml, headers=_keyed("k-1"))
    assert again.status == 202
    assert (await again.json())["id"] == (await first.json())["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert len(await store.messages("out")) == 1


@pytest.mark.asyncio
async def test_the_same_key_with_another_body_is_refused(
    api: Api, phyto: Certificate, phyto_xml: bytes
) -> None:
    client, store = api
    await client.post("/api/v1/certificates", data=phyto_xml, headers=_keyed("k-2"))
    other = to_xml_bytes(replace(phyto, number="NL-2026-0009999"))
    response = await client.post("/api/v1/certificates", data=other, headers=_keyed("k-2"))
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    assert "another request" in (await response.json())["detail"]
    assert len(await store.messages("out")) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9"])
async def test_a_malformed_key_is_a_bad_request(api: Api, phyto_xml: bytes, key: str) -> None:
    client, store = api
    headers = {**XML, "Idempotency-Key": key.encode().decode("latin-1")}
    response = await client.post("/api/v1/certificates", data=phyto_xml, headers=headers)
    assert response.status == 400
    assert "Idempotency-Key" in (await response.json())["detail"]
    assert await store.messages("out") == []


@pytest.mark.asyncio
async def test_the_longest_key_is_taken(api: Api, phyto_xml: bytes) -> None:
    client, _ = api
    response = await client.post("/api/v1/certificates", data=phyto_xml, headers=_keyed("~" * 255))
    assert response.status == 202


@pytest.mark.asyncio
async def test_concurrent_requests_with_one_key_store_one_message(
    api: Api, phyto_xml: bytes
) -> None:
    client, store = api
    answers = await asyncio.gather(
        *(
            client.post("/api/v1/certificates", data=phyto_xml, headers=_keyed("k-c"))
            for _ in range(4)
        )
    )
    ids = {(await a.json())["id"] for a in answers}
    assert len(ids) == 1
    assert len(await store.messages("out")) == 1


@pytest.mark.asyncio
async def test_a_retried_withdrawal_gets_its_answer_not_already_withdrawn(
    api: Api, phyto: Certificate, phyto_xml: bytes
) -> None:
    client, store = api
    sent = await (await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)).json()
    path = f"/api/v1/certificates/{sent['id']}/withdraw"
    headers = {**AUTH, "Idempotency-Key": "w-1"}
    first = await client.post(path, headers=headers)
    again = await client.post(path, headers=headers)
    assert (first.status, again.status) == (202, 202)
    assert (await again.json())["id"] == (await first.json())["id"]
    # The same key on another path is another request.
    other = await client.post(
        f"/api/v1/certificates/{sent['id']}/replace?reason=x", headers=headers
    )
    assert other.status == 422
    replaced = to_xml_bytes(replace(phyto, number="NL-2026-0001299"))
    replace_path = f"/api/v1/certificates/{sent['id']}/replace?reason=Typo"
    one = await client.post(replace_path, data=replaced, headers=_keyed("r-1"))
    two = await client.post(replace_path, data=replaced, headers=_keyed("r-1"))
    assert (one.status, two.status) == (202, 202)
    assert (await one.json())["id"] == (await two.json())["id"]
    assert len(await store.messages("out")) == 3


@pytest.mark.asyncio
async def test_a_refused_request_keeps_no_key(api: Api, phyto_xml: bytes) -> None:
    client, store = api
    broken = phyto_xml.replace(b"<ram:ScientificName>Rosa hybrida</ram:ScientificName>", b"")
    refused = await client.post("/api/v1/certificates", data=broken, headers=_keyed("k-r"))
    assert refused.status == 422
    # Nothing was done, so the key is free: the corrected certificate goes under it.
    fixed = await client.post("/api/v1/certificates", data=phyto_xml, headers=_keyed("k-r2"))
    assert fixed.status == 202
    assert await store.kept_answer("national-system", "k-r", now=NOW) is None


@pytest.mark.asyncio
async def test_keys_are_forgotten_after_a_day(
    tmp_path: Path, validator: Validator, phyto: Certificate
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'n.db'}"
    client, store = await _api(tmp_path, validator, None, url)
    try:
        first = to_xml_bytes(replace(phyto, number="NL-2026-0000101"))
        assert (
            await client.post("/api/v1/certificates", data=first, headers=_keyed("k-d"))
        ).status == 202
        assert (
            await store.kept_answer("national-system", "k-d", now=NOW + timedelta(hours=23))
            is not None
        )
        assert (
            await store.kept_answer("national-system", "k-d", now=NOW + timedelta(hours=25)) is None
        )
    finally:
        await client.close()
        await store.close()


# --- a certificate submitted twice ------------------------------------------------


@pytest.mark.asyncio
async def test_the_same_certificate_again_is_the_existing_message(
    api: Api, phyto: Certificate, phyto_xml: bytes
) -> None:
    client, store = api
    first = await (await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)).json()
    again = await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)
    assert again.status == 200
    assert (await again.json())["id"] == first["id"]
    assert again.headers["Location"] == f"/api/v1/certificates/{first['id']}"
    changed = phyto_xml.replace(b"Rosa hybrida", b"Rosa canina")
    conflict = await client.post("/api/v1/certificates", data=changed, headers=XML)
    assert conflict.status == 409
    problem = await conflict.json()
    assert problem["existing"] == first["id"]
    assert f"message {first['id']}" in problem["detail"]
    assert len(await store.messages("out")) == 1


@pytest.mark.asyncio
async def test_a_duplicate_with_a_key_keeps_its_200(api: Api, phyto_xml: bytes) -> None:
    client, store = api
    first = await (await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)).json()
    one = await client.post("/api/v1/certificates", data=phyto_xml, headers=_keyed("d-1"))
    two = await client.post("/api/v1/certificates", data=phyto_xml, headers=_keyed("d-1"))
    assert (one.status, two.status) == (200, 200)
    assert (await two.json())["id"] == first["id"]
    assert len(await store.messages("out")) == 1


@pytest.mark.asyncio
async def test_a_failed_certificate_may_be_submitted_again(api: Api, phyto_xml: bytes) -> None:
    client, store = api
    first = await (await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)).json()
    await store.fail(first["id"], now=NOW, error="revoked (test)")
    again = await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)
    assert again.status == 202
    assert (await again.json())["id"] != first["id"]


# --- refused at the door ----------------------------------------------------------


class _Registry:
    """The directory the API is handed, and a refresh that may publish a new version."""

    def __init__(
        self, current: Directory, published: Directory | None = None, *, own_hub: bool = False
    ) -> None:
        self.current, self.published, self.refreshed = current, published, 0
        self.own_hub = own_hub  # a hub named in node.toml, e.g. the IPPC Hub

    def directory(self) -> Directory:
        return self.current

    async def refresh(self) -> None:
        self.refreshed += 1
        if self.published is not None:
            self.current = self.published

    def door(self) -> Door:
        return Door(self.directory, self.refresh, lambda _: self.own_hub)


@pytest_asyncio.fixture
async def door_api(
    tmp_path: Path, validator: Validator
) -> AsyncIterator[Callable[[_Registry], asyncio.Future[Api]]]:
    opened: list[Api] = []

    async def make(registry: _Registry) -> Api:
        url = f"sqlite+aiosqlite:///{tmp_path / f'n{len(opened)}.db'}"
        api = await _api(tmp_path, validator, registry.door(), url)
        opened.append(api)
        return api

    yield make  # type: ignore[misc]
    for client, store in opened:
        await client.close()
        await store.close()


@pytest.mark.asyncio
async def test_a_country_not_in_the_directory_is_refused_after_one_refresh(
    door_api: Callable[[_Registry], asyncio.Future[Api]], phyto_xml: bytes
) -> None:
    registry = _Registry(_directory(7, _entry("NL"), _entry("KE")))
    client, store = await door_api(registry)
    response = await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)
    assert response.status == 422
    problem = await response.json()
    assert (problem["country"], problem["directory_version"]) == ("CN", 7)
    assert "CN" in problem["detail"] and "directory version 7" in problem["detail"]
    assert registry.refreshed == 1
    assert await store.messages("out") == []


@pytest.mark.asyncio
async def test_a_country_not_in_the_directory_goes_to_a_hub_named_in_node_toml(
    door_api: Callable[[_Registry], asyncio.Future[Api]], phyto_xml: bytes
) -> None:
    """The IPPC Hub knows countries that run no node; the directory's own hub does not."""
    registry = _Registry(_directory(7, _entry("NL"), _entry("KE")), own_hub=True)
    client, store = await door_api(registry)
    response = await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)
    assert response.status == 202, await response.text()
    assert [m.recipient for m in await store.messages("out")] == ["CN"]


@pytest.mark.asyncio
async def test_a_newly_published_country_is_found_by_the_refresh(
    door_api: Callable[[_Registry], asyncio.Future[Api]], phyto_xml: bytes
) -> None:
    registry = _Registry(
        _directory(7, _entry("NL")), published=_directory(8, _entry("NL"), _entry("CN"))
    )
    client, _ = await door_api(registry)
    response = await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)
    assert response.status == 202, await response.text()
    assert registry.refreshed == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("status", ["suspended", "revoked"])
async def test_a_partner_not_active_is_refused_with_its_status(
    door_api: Callable[[_Registry], asyncio.Future[Api]], phyto_xml: bytes, status: str
) -> None:
    registry = _Registry(_directory(3, _entry("NL"), _entry("CN", status)))
    client, store = await door_api(registry)
    response = await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)
    assert response.status == 409
    problem = await response.json()
    assert problem["partner_status"] == status
    assert status in problem["detail"]
    assert registry.refreshed == 0
    assert await store.messages("out") == []


@pytest.mark.asyncio
@pytest.mark.parametrize("number", ["N" * 129, "NL-2026\t0001", "NL-2026\u00850001"])
async def test_a_number_that_cannot_be_sealed_is_refused(
    api: Api, phyto: Certificate, number: str
) -> None:
    client, store = api
    data = to_xml_bytes(replace(phyto, number=number))
    response = await client.post("/api/v1/certificates", data=data, headers=XML)
    assert response.status == 422, await response.text()
    assert response.content_type == "application/problem+json"
    assert await store.messages("out") == []


@pytest.mark.asyncio
async def test_a_partner_without_a_common_schema_version_is_refused(
    door_api: Callable[[_Registry], asyncio.Future[Api]], phyto_xml: bytes
) -> None:
    registry = _Registry(_directory(3, _entry("NL"), _entry("CN", versions=("D99Z",))))
    client, store = await door_api(registry)
    response = await client.post("/api/v1/certificates", data=phyto_xml, headers=XML)
    assert response.status == 422
    assert "no common SPSCertificate version" in (await response.json())["detail"]
    assert await store.messages("out") == []
