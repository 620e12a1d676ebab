"""The hub's SOAP endpoint over real mutual TLS on 127.0.0.1, with a real SQLite store.

Identities are made by `init_node` and `init_hub`, the directory by the registry's own
publish; the client speaks the contract through `build_request` / `parse_response`.
Every refusal is checked for its fault, and that nothing was stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from node.certificate.validate import Validator
from node.clock import FixedClock, SystemClock
from node.codelists.lists import bundled
from node.hub.accounts import AccountPolicy, Prepaid
from node.hub.config import DEFAULT_POLICY, load_hub_config
from node.hub.records import HubSettings
from node.hub.service import HubListening, hub_client_certificates, run_hub
from node.hub.store import HubStore
from node.hub.web import HEALTH_PATH, SERVICE_PATH, HubContext, create_hub_app
from node.ippc import (
    AcknowledgeEnvelopeReceipt,
    AcknowledgeFailedEnvelopeReceipt,
    AdvancedAcknowledgeEnvelopeReceipt,
    CountryResponseEnvelope,
    DeliverCountryResponseEnvelope,
    DeliverEnvelope,
    DeliverPhytoEnvelope,
    Envelope,
    EPhytoEnvelope,
    GetActiveNppos,
    GetAvailableChannels,
    GetEnvelopeTrackingInfo,
    GetImportEnvelopeHeaders,
    GetPackageTypes,
    GetPesticides,
    GetProfile,
    GetUnderDeliveryEnvelope,
    GetUnitMeasures,
    HubFault,
    PULLImportEnvelope,
    PULLSingleImportEnvelope,
    SetTrackingInfoUpdate,
    ValidateAndDeliverEnvelope,
    ValidatePhytoXML,
    ValidationLevel,
    XmlTree,
)
from node.web.tls import server_ssl_context
from registry.web import create_registry_app
from tests.integration.hub_world import T0, SoapClient, World, client_context, make_world, trusted

UNKNOWN_TN = "00000000-0000-4000-8000-000000000000"
CONTENT = "c2VhbGVkIGVudmVsb3BlIGJ5dGVz&<>\u00e9\u4e2d"  # escaping and non-ASCII survive


@dataclass
class Hub:
    url: str
    store: HubStore
    clock: FixedClock
    world: World

    def client(self, country: str | None) -> SoapClient:
        party = None if country is None else self.world.nppos[country]
        return SoapClient(self.url + SERVICE_PATH, self.world.hub, party)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("hub-world"))


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator.default()


async def _start(
    world: World,
    tmp_path: Path,
    validator: Validator,
    *,
    default_policy: AccountPolicy | None = DEFAULT_POLICY,
    max_body_bytes: int | None = None,
) -> tuple[Hub, web.AppRunner]:
    clock = FixedClock(T0)
    trust = trusted(world)
    store = HubStore.open(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", HubSettings())
    await store.migrate()
    context = HubContext(
        name="Test Hub",
        store=store,
        directory=lambda: trust.usable(clock.now()),
        clock=clock,
        default_policy=default_policy,
        validator=validator,
        **({} if max_body_bytes is None else {"max_body_bytes": max_body_bytes}),
    )
    # FR (in no directory) and CN (suspended) pass the TLS layer here, so that the
    # endpoint's own refusal of them is tested; the real service lets neither in.
    extra = (world.nppos["FR"].cert_pem, world.nppos["CN"].cert_pem)

    def trusted_certs() -> Iterable[bytes]:
        return hub_client_certificates(trust.usable(clock.now()), clock.now()) + extra

    ssl_context = server_ssl_context(
        world.hub.cert_path, world.hub.key_path, trusted_client_certs=trusted_certs
    )
    runner = web.AppRunner(create_hub_app(context))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
    port = runner.addresses[0][1]
    return Hub(f"https://127.0.0.1:{port}", store, clock, world), runner


@pytest_asyncio.fixture
async def hub(world: World, tmp_path: Path, validator: Validator) -> AsyncIterator[Hub]:
    server, runner = await _start(world, tmp_path, validator)
    try:
        yield server
    finally:
        await runner.cleanup()
        await server.store.close()


def _envelope(
    sender: str = "NL", to: str = "KE", content: str = CONTENT, number: str = "NL-2026-1"
) -> Envelope:
    return Envelope(
        from_=sender,
        to=to,
        certificate_type=851,
        certificate_status=70,
        nppo_certificate_number=number,
        content=content,
    )


async def _deliver(hub: Hub, envelope: Envelope | None = None) -> str:
    answer = await hub.client("NL").call(DeliverEnvelope(envelope or _envelope()))
    assert answer.result.hub_delivery_number
    tn: str = answer.result.hub_delivery_number
    return tn


async def _fault(hub: Hub, country: str | None, request: object) -> HubFault:
    with pytest.raises(HubFault) as caught:
        await hub.client(country).call(request)  # type: ignore[arg-type]
    return caught.value


async def _nothing_for_ke(hub: Hub) -> None:
    assert await hub.store.import_headers("KE") == []


# --- the way of an envelope -------------------------------------------------------------


@pytest.mark.asyncio
async def test_nl_delivers_ke_lists_pulls_acknowledges_and_nl_sees_it_delivered(hub: Hub) -> None:
    nl, ke = hub.client("NL"), hub.client("KE")
    sent = (await nl.call(DeliverEnvelope(_envelope()))).result
    assert (sent.from_, sent.to, sent.nppo_certificate_number) == ("NL", "KE", "NL-2026-1")
    assert sent.hub_tracking_info == "PendingDelivery"
    tn = sent.hub_delivery_number
    under = (await nl.call(GetUnderDeliveryEnvelope())).headers
    assert [h.hub_delivery_number for h in under] == [tn]

    headers = (await ke.call(GetImportEnvelopeHeaders())).headers
    assert [(h.hub_delivery_number, h.from_) for h in headers] == [(tn, "NL")]
    assert (await ke.call(GetImportEnvelopeHeaders(country_code="US"))).headers == ()
    assert len((await ke.call(GetImportEnvelopeHeaders(country_code="NL"))).headers) == 1
    single = (await ke.call(PULLSingleImportEnvelope(tn))).result
    assert single.content == CONTENT  # the same string, byte for byte
    assert single.hub_delivery_number == tn
    everything = (await ke.call(PULLImportEnvelope())).envelopes
    assert [e.content for e in everything] == [CONTENT]

    assert await ke.call(AcknowledgeEnvelopeReceipt(tn)) is not None
    tracked = (await nl.call(GetEnvelopeTrackingInfo(tn))).result
    assert (tracked.hub_delivery_number, tracked.hub_tracking_info) == (tn, "Delivered")
    assert (await ke.call(GetImportEnvelopeHeaders())).headers == ()
    assert (await nl.call(GetUnderDeliveryEnvelope())).headers == ()


@pytest.mark.asyncio
async def test_a_repeated_delivery_gets_the_same_tracking_number(hub: Hub) -> None:
    assert await _deliver(hub) == await _deliver(hub)
    assert len(await hub.store.import_headers("KE")) == 1


@pytest.mark.asyncio
async def test_warnings_and_failures_reach_the_sender(hub: Hub) -> None:
    ke, nl = hub.client("KE"), hub.client("NL")
    warned = await _deliver(hub, _envelope(content="one"))
    failed = await _deliver(hub, _envelope(content="two"))
    answer = await ke.call(AdvancedAcknowledgeEnvelopeReceipt(warned, "botanical name unusual"))
    assert answer.return_ == "DeliveredWithWarnings"
    answer = await ke.call(AcknowledgeFailedEnvelopeReceipt(failed, "cannot decrypt"))
    assert answer.return_ == "FailedDelivery"
    one = (await nl.call(GetEnvelopeTrackingInfo(warned))).result
    two = (await nl.call(GetEnvelopeTrackingInfo(failed))).result
    assert (one.hub_tracking_info, one.hub_delivery_error_message) == (
        "DeliveredWithWarnings", "botanical name unusual",
    )  # fmt: skip
    assert (two.hub_tracking_info, two.hub_delivery_error_message) == (
        "FailedDelivery", "cannot decrypt",
    )  # fmt: skip


@pytest.mark.asyncio
async def test_validate_and_deliver_takes_a_valid_ephyto_and_refuses_an_invalid_one(
    hub: Hub, phyto_xml: bytes
) -> None:
    nl = hub.client("NL")
    text = phyto_xml.decode("utf-8")
    header = (await nl.call(ValidateAndDeliverEnvelope(_envelope(content=text)))).result
    assert header.hub_tracking_info == "PendingDelivery"
    pulled = await hub.client("KE").call(PULLSingleImportEnvelope(header.hub_delivery_number))
    assert pulled.result.content == text

    broken = text.replace("<rsm:SPSExchangedDocument>", "<rsm:SPSExchangedDocument><x/>", 1)
    fault = await _fault(hub, "NL", ValidateAndDeliverEnvelope(_envelope(content=broken)))
    assert fault.fault_code == "Client"
    assert fault.message and fault.message.startswith("the ePhyto is not valid: SEVERE")
    assert len(await hub.store.import_headers("KE")) == 1  # only the valid one


@pytest.mark.asyncio
async def test_validate_phyto_xml_reports_findings(hub: Hub, phyto_xml: bytes) -> None:
    nl = hub.client("NL")
    assert (await nl.call(ValidatePhytoXML(phyto_xml.decode()))).results == ()
    results = (await nl.call(ValidatePhytoXML("<not-an-ephyto/>"))).results
    assert results and results[0].level is ValidationLevel.SEVERE
    assert all(r.msg and r.field_ for r in results)


@pytest.mark.asyncio
async def test_who_is_on_the_hub_and_the_code_lists(hub: Hub) -> None:
    nl = hub.client("NL")
    nppos = (await nl.call(GetActiveNppos())).nppos
    assert [(n.country, n.receive, n.send) for n in nppos] == [
        ("KE", "true", "true"),
        ("NL", "true", "true"),
        ("US", "true", "true"),
    ]  # fmt: skip  (CN is suspended: not listed)
    assert (await nl.call(GetProfile())).result.country == "NL"
    assert (await nl.call(GetAvailableChannels())).channels == ()
    packages = (await nl.call(GetPackageTypes())).entries
    assert packages and all(p.code and p.description for p in packages)
    # Codes a Rec 21 edition deleted are given too, as inactive ones.
    assert {p.code for p in packages if not p.active} == set(bundled().get("package_types").deleted)
    assert any(u.code == "KGM" for u in (await nl.call(GetUnitMeasures())).entries)
    assert (await nl.call(GetPesticides())).entries == ()  # no list of ours behind it


@pytest.mark.asyncio
async def test_health_answers_a_trusted_client(hub: Hub) -> None:
    connector = aiohttp.TCPConnector(ssl=client_context(hub.world.hub, hub.world.nppos["KE"]))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(hub.url + HEALTH_PATH) as response,
    ):
        assert response.status == 200
        assert await response.json() == {"hub": "Test Hub", "status": "ok"}


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_malformed_soap_is_a_client_fault(hub: Hub) -> None:
    for body in (b"<not soap", b"<a/>", b""):
        status, answer = await hub.client("NL").post(body)
        assert status == 500
        assert b"<faultcode>soap:" in answer and b"HubWebException" in answer


@pytest.mark.asyncio
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_an_oversized_body_is_refused(
    world: World, tmp_path: Path, validator: Validator, framing: str
) -> None:
    hub, runner = await _start(world, tmp_path, validator, max_body_bytes=64 * 1024)
    try:
        size = 64 * 1024 + 1
        body: object = io.BytesIO(b"x" * size) if framing == "content-length" else _chunks(size)
        status, answer = await hub.client("NL").post(body)  # type: ignore[arg-type]
        assert status == 500
        assert b"over the 65536-byte limit" in answer
    finally:
        await runner.cleanup()
        await hub.store.close()


async def _chunks(size: int) -> AsyncIterator[bytes]:
    for start in range(0, size, 4096):
        yield b"x" * min(4096, size - start)


@pytest.mark.asyncio
async def test_a_spoofed_from_is_refused_and_nothing_stored(hub: Hub) -> None:
    fault = await _fault(hub, "US", DeliverEnvelope(_envelope(sender="NL")))
    assert fault.fault_code == "Client"
    assert "From is 'NL' but the TLS client is US" in str(fault)
    await _nothing_for_ke(hub)


@pytest.mark.asyncio
@pytest.mark.parametrize("to", ["CN", "FR", "ZZ"])
async def test_only_active_nppos_of_the_directory_receive(hub: Hub, to: str) -> None:
    fault = await _fault(hub, "NL", DeliverEnvelope(_envelope(to=to)))
    assert f"To '{to}' is not an active NPPO" in str(fault)


@pytest.mark.asyncio
async def test_another_nppos_envelope_cannot_be_pulled_acknowledged_or_tracked(hub: Hub) -> None:
    tn = await _deliver(hub)
    for country, request in (
        ("US", PULLSingleImportEnvelope(tn)),
        ("US", AcknowledgeEnvelopeReceipt(tn)),
        ("NL", AcknowledgeEnvelopeReceipt(tn)),  # the sender cannot acknowledge either
        ("KE", GetEnvelopeTrackingInfo(tn)),  # only the sender tracks
        ("US", GetEnvelopeTrackingInfo(tn)),
    ):
        fault = await _fault(hub, country, request)
        assert str(fault).startswith("EnvelopeNotExists: "), (country, request)
    assert [h.state for h in await hub.store.import_headers("KE")] == ["PendingDelivery"]
    assert (await hub.client("US").call(PULLImportEnvelope())).envelopes == ()


@pytest.mark.asyncio
async def test_an_unknown_tracking_number_does_not_exist(hub: Hub) -> None:
    for request in (GetEnvelopeTrackingInfo(UNKNOWN_TN), PULLSingleImportEnvelope("nonsense")):
        fault = await _fault(hub, "NL", request)
        assert str(fault).startswith("EnvelopeNotExists: ")


@pytest.mark.asyncio
async def test_acknowledging_again_otherwise_is_refused(hub: Hub) -> None:
    tn = await _deliver(hub)
    ke = hub.client("KE")
    await ke.call(AcknowledgeEnvelopeReceipt(tn))
    await ke.call(AcknowledgeEnvelopeReceipt(tn))  # a retry after a lost answer: fine
    fault = await _fault(hub, "KE", AcknowledgeFailedEnvelopeReceipt(tn, "changed my mind"))
    assert f"envelope {tn} is already Delivered" in str(fault)
    tracked = (await hub.client("NL").call(GetEnvelopeTrackingInfo(tn))).result
    assert tracked.hub_tracking_info == "Delivered"


@pytest.mark.asyncio
async def test_an_unknown_client_certificate_is_refused_at_the_handshake(hub: Hub) -> None:
    for caller in ("BR", None):  # in no directory and trusted nowhere; no certificate
        with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
            await hub.client(caller).call(GetActiveNppos())


@pytest.mark.asyncio
async def test_clients_the_directory_does_not_list_as_active_get_a_fault(hub: Hub) -> None:
    unknown = await _fault(hub, "FR", GetActiveNppos())
    assert unknown.fault_code == "Client" and str(unknown).startswith("unknown NPPO: ")
    suspended = await _fault(hub, "CN", DeliverEnvelope(_envelope(sender="CN")))
    assert "NPPO CN is suspended" in str(suspended)
    await _nothing_for_ke(hub)


@pytest.mark.asyncio
async def test_insufficient_balance_is_a_clear_fault_and_nothing_is_stored(hub: Hub) -> None:
    await hub.store.set_policy("NL", AccountPolicy("EUR", Prepaid(150)), T0)
    fault = await _fault(hub, "NL", DeliverEnvelope(_envelope()))
    assert fault.fault_code == "Client"
    assert "refused, nothing stored: NL: insufficient balance" in str(fault)
    assert "1.50 EUR" in str(fault)
    await _nothing_for_ke(hub)
    await hub.store.credit("NL", 150, T0)
    await _deliver(hub)
    assert (await hub.store.account("NL")).balance == 0


@pytest.mark.asyncio
async def test_without_a_default_policy_nppos_need_an_account(
    world: World, tmp_path: Path, validator: Validator
) -> None:
    hub, runner = await _start(world, tmp_path, validator, default_policy=None)
    try:
        fault = await _fault(hub, "NL", DeliverEnvelope(_envelope()))
        assert "has no account at this hub" in str(fault)
        for country in ("NL", "KE"):
            await hub.store.set_policy(country, AccountPolicy("EUR", Prepaid(0)), T0)
        await _deliver(hub)
    finally:
        await runner.cleanup()
        await hub.store.close()


@pytest.mark.asyncio
async def test_set_tracking_info_update_is_refused_by_name(hub: Hub) -> None:
    header = _envelope().header
    fault = await _fault(hub, "NL", SetTrackingInfoUpdate(header))
    assert "SetTrackingInfoUpdate" in str(fault)


@pytest.mark.asyncio
async def test_an_expired_envelope_is_failed_for_its_sender(hub: Hub) -> None:
    tn = await _deliver(hub)
    hub.clock.advance(hours=73)
    assert await hub.store.expire(hub.clock.now(), timedelta(hours=72)) == [tn]
    tracked = (await hub.client("NL").call(GetEnvelopeTrackingInfo(tn))).result
    assert (tracked.hub_tracking_info, tracked.hub_delivery_error_message) == (
        "FailedDelivery", "expired",
    )  # fmt: skip


# --- the service as a whole ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_run_hub_refreshes_its_directory_serves_and_stops_clean(
    world: World, tmp_path: Path
) -> None:
    """run_hub against the registry's own HTTP app: the directory comes from the registry."""
    registry = web.AppRunner(create_registry_app(world.registry.root))
    await registry.setup()
    await web.TCPSite(registry, "127.0.0.1", 0).start()
    registry_url = f"http://127.0.0.1:{registry.addresses[0][1]}/directory.json"
    hub_dir = world.hub.directory
    config = dataclasses.replace(
        load_hub_config(hub_dir / "hub.toml"),
        directory=tmp_path,  # cache and database here, keys from the hub's directory
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        listen_port=0,
        tls_key=str(world.hub.key_path),
        tls_certificate=str(world.hub.cert_path),
        registry_url=registry_url,
        registry_anchor="maintainers.json",
    )
    (tmp_path / "maintainers.json").write_bytes(
        (world.registry.root / "maintainers" / "maintainers.json").read_bytes()
    )
    stop = asyncio.Event()
    ready: list[HubListening] = []
    task = asyncio.create_task(run_hub(config, clock=SystemClock(), stop=stop, ready=ready.append))
    try:
        for _ in range(200):
            if ready or task.done():
                break
            await asyncio.sleep(0.05)
        assert ready, task.result()
        url = ready[0].url + SERVICE_PATH
        nl = SoapClient(url, world.hub, world.nppos["NL"])
        header = (await nl.call(DeliverEnvelope(_envelope()))).result
        assert header.hub_tracking_info == "PendingDelivery"
        ke = SoapClient(url, world.hub, world.nppos["KE"])
        assert len((await ke.call(GetImportEnvelopeHeaders())).headers) == 1
        # CN is active in the registry's published version 1: it gets in.
        cn = SoapClient(url, world.hub, world.nppos["CN"])
        assert (await cn.call(GetProfile())).result.country == "CN"
        assert (tmp_path / "directory.json").exists()  # the trusted copy is cached
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)
        await registry.cleanup()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


def test_the_hub_lets_in_active_nppos_but_never_its_own_certificate(world: World) -> None:
    allowed = hub_client_certificates(world.directory, T0)
    assert world.hub.cert_pem in world.directory.tls_certificates(T0)  # listed as the hub
    assert world.hub.cert_pem not in allowed
    assert {world.nppos[c].cert_pem for c in ("NL", "KE", "US")} == set(allowed)  # not CN


# --- country responses and ePhytos as typed trees --------------------------------------

ACK = (
    '<a:SPSAcknowledgement xmlns:a="urn:un:unece:uncefact:data:standard:SPSAcknowledgement:17"'
    ' xmlns:r="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21">'
    "<a:SPSAcknowledgementDocument><r:StatusCode>39</r:StatusCode>"
    "<r:ReasonInformation>accepted &amp; \u00e9</r:ReasonInformation>"
    "</a:SPSAcknowledgementDocument></a:SPSAcknowledgement>"
)


def _response(
    sender: str = "KE", to: str = "NL", tree: str | None = ACK
) -> CountryResponseEnvelope:
    return CountryResponseEnvelope(
        from_=sender, to=to, certificate_type=851, certificate_status=70,
        nppo_certificate_number="NL-2026-1",
        sps_acknowledgement=None if tree is None else XmlTree(tree),
    )  # fmt: skip


@pytest.mark.asyncio
async def test_a_country_response_is_relayed_pulled_and_tracked(hub: Hub) -> None:
    ke, nl = hub.client("KE"), hub.client("NL")
    sent = (await ke.call(DeliverCountryResponseEnvelope(_response()))).result
    assert sent.hub_tracking_info == "PendingDelivery"
    tn = sent.hub_delivery_number
    assert [h.hub_delivery_number for h in (await nl.call(GetImportEnvelopeHeaders())).headers] == [
        tn
    ]
    pulled = (await nl.call(PULLSingleImportEnvelope(tn))).result
    assert (pulled.from_, pulled.nppo_certificate_number) == ("KE", "NL-2026-1")
    assert pulled.content == ACK  # the SPSAcknowledgement document: a response, by its root
    await nl.call(AcknowledgeEnvelopeReceipt(tn))
    tracked = (await ke.call(GetEnvelopeTrackingInfo(tn))).result
    assert tracked.hub_tracking_info == "Delivered"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("caller", "response", "says"),
    [
        ("US", _response(sender="KE"), "From is 'KE' but the TLS client is US"),
        ("KE", _response(to="ZZ"), "To 'ZZ' is not an active NPPO"),
        ("KE", _response(tree=None), "the envelope carries no SPSAcknowledgement"),
    ],
)
async def test_a_wrong_country_response_is_refused_and_nothing_stored(
    hub: Hub, caller: str, response: CountryResponseEnvelope, says: str
) -> None:
    fault = await _fault(hub, caller, DeliverCountryResponseEnvelope(response))
    assert fault.fault_code == "Client"
    assert says in str(fault)
    for country in ("NL", "ZZ"):
        assert await hub.store.import_headers(country) == []


def _phyto(text: str | None, sender: str = "NL") -> EPhytoEnvelope:
    return EPhytoEnvelope(
        from_=sender, to="KE", certificate_type=851, certificate_status=70,
        nppo_certificate_number="NL-2026-1",
        sps_certificate=None if text is None else XmlTree(text),
    )  # fmt: skip


@pytest.mark.asyncio
async def test_deliver_phyto_envelope_takes_a_valid_ephyto_tree_and_refuses_others(
    hub: Hub, phyto_xml: bytes
) -> None:
    nl = hub.client("NL")
    text = phyto_xml.decode("utf-8").split("?>", 1)[-1].strip()  # the tree, no declaration
    header = (await nl.call(DeliverPhytoEnvelope(_phyto(text)))).result
    assert header.hub_tracking_info == "PendingDelivery"
    pulled = await hub.client("KE").call(PULLSingleImportEnvelope(header.hub_delivery_number))
    assert validated(pulled.result.content) == validated(text)

    broken = text.replace("<rsm:SPSExchangedDocument>", "<rsm:SPSExchangedDocument><x/>", 1)
    fault = await _fault(hub, "NL", DeliverPhytoEnvelope(_phyto(broken)))
    assert fault.message and fault.message.startswith("the ePhyto is not valid: SEVERE")
    fault = await _fault(hub, "NL", DeliverPhytoEnvelope(_phyto(None)))
    assert "the envelope carries no SPSCertificate" in str(fault)
    fault = await _fault(hub, "US", DeliverPhytoEnvelope(_phyto(text, sender="NL")))
    assert "From is 'NL' but the TLS client is US" in str(fault)
    assert len(await hub.store.import_headers("KE")) == 1  # only the valid one


def validated(text: str | None) -> bytes:
    """The certificate's canonical form, to compare trees whatever their serialisation."""
    from lxml import etree

    return etree.tostring(etree.fromstring((text or "").encode()), method="c14n", exclusive=True)


@pytest.mark.asyncio
async def test_the_node_hub_client_sends_a_country_response_and_an_ephyto_tree(
    hub: Hub, phyto_xml: bytes
) -> None:
    from cryptography import x509

    from node.crypto.ids import tls_pin
    from node.transport.hub_client import HubClient, HubRefusal

    def client(country: str) -> HubClient:
        party = hub.world.nppos[country]
        pin = tls_pin(x509.load_pem_x509_certificate(hub.world.hub.cert_pem))
        return HubClient(
            hub.url + SERVICE_PATH, tls_certificate=party.cert_path, tls_key=party.key_path,
            pins=lambda: frozenset({pin}),
        )  # fmt: skip

    text = phyto_xml.decode("utf-8").split("?>", 1)[-1].strip()
    async with client("NL") as nl, client("KE") as ke:
        phyto_tn = await nl.deliver_phyto(_phyto(text))
        response_tn = await ke.deliver_country_response(_response())
        assert validated((await ke.pull(phyto_tn)).content) == validated(text)
        assert (await nl.pull(response_tn)).content == ACK
        with pytest.raises(HubRefusal, match="From is 'KE' but the TLS client is NL"):
            await nl.deliver_country_response(_response(sender="KE"))
