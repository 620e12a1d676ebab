"""The SOAPAction header between the node's hub client and our hub, over real mutual TLS.

SOAP 1.1 (section 6.1.1) makes the header's value a quoted URI: the node's `HubClient`
sends it quoted, as clients generated from the IPPC Hub's WSDL do. Clients of the real
IPPC Hub vary (quoted, bare, none at all), and the body, not the header, names the
operation, so our hub takes any of them. The hub here is the real application
(`create_hub_app`) with a real SQLite store; a middleware records the headers it gets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from cryptography import x509

from node.certificate.validate import Validator
from node.clock import FixedClock
from node.crypto.ids import tls_pin
from node.hub.config import DEFAULT_POLICY
from node.hub.records import HubSettings
from node.hub.service import hub_client_certificates
from node.hub.store import HubStore
from node.hub.web import SERVICE_PATH, HubContext, create_hub_app
from node.ippc import (
    AdvancedAcknowledgeEnvelopeReceipt,
    AdvancedAcknowledgeEnvelopeReceiptResponse,
    GetActiveNppos,
    GetActiveNpposResponse,
    build_request,
    parse_response,
    soap_action,
)
from node.transport.hub_client import HubClient, HubRefusal
from node.web.tls import server_ssl_context
from tests.integration.hub_world import T0, SoapClient, World, make_world, trusted

UNKNOWN_TN = "00000000-0000-4000-8000-000000000000"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Hub:
    url: str
    world: World
    actions: list[str | None] = field(default_factory=list)  # SOAPAction of each request


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("soapaction-world"))


@pytest_asyncio.fixture
async def hub(world: World, tmp_path: Path, validator: Validator) -> AsyncIterator[Hub]:
    clock = FixedClock(T0)
    trust = trusted(world)
    store = HubStore.open(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", HubSettings())
    await store.migrate()
    app = create_hub_app(
        HubContext(
            name="Test Hub",
            store=store,
            directory=lambda: trust.usable(clock.now()),
            clock=clock,
            default_policy=DEFAULT_POLICY,
            validator=validator,
        )
    )
    actions: list[str | None] = []

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        actions.append(request.headers.get("SOAPAction"))
        return await handler(request)

    app.middlewares.append(record)

    def trusted_certs() -> Iterable[bytes]:
        return hub_client_certificates(trust.usable(clock.now()), clock.now())

    ssl_context = server_ssl_context(
        world.hub.cert_path, world.hub.key_path, trusted_client_certs=trusted_certs
    )
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
        port = runner.addresses[0][1]
        yield Hub(f"https://127.0.0.1:{port}{SERVICE_PATH}", world, actions)
    finally:
        await runner.cleanup()
        await store.close()


@pytest.mark.asyncio
async def test_the_hub_client_sends_the_soapaction_quoted(hub: Hub) -> None:
    nl = hub.world.nppos["NL"]
    hub_pin = tls_pin(x509.load_pem_x509_certificate(hub.world.hub.cert_pem))
    async with HubClient(
        hub.url,
        tls_certificate=nl.cert_path,
        tls_key=nl.key_path,
        pins=lambda: frozenset({hub_pin}),
    ) as client:
        await client.call(GetActiveNppos(), GetActiveNpposResponse)
        with pytest.raises(HubRefusal):  # refused (no such envelope): the header went all the same
            await client.call(
                AdvancedAcknowledgeEnvelopeReceipt(
                    hub_tracking_number=UNKNOWN_TN, warning_message="w"
                ),
                AdvancedAcknowledgeEnvelopeReceiptResponse,
            )
    assert hub.actions == [
        '"http://ephyto.ippc.int/IDeliveryService/GetActiveNppos"',
        # The binding's action for this operation has an older name (node/ippc/names.py).
        '"http://ephyto.ippc.int/IDeliveryService/NegativeAcknowledgeEnvelopeReceipt"',
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "header",
    [
        {"SOAPAction": f'"{soap_action("GetActiveNppos")}"'},
        {"SOAPAction": soap_action("GetActiveNppos")},
        {"SOAPAction": '""'},
        {},
    ],
    ids=["quoted", "unquoted", "empty", "absent"],
)
async def test_the_hub_answers_whatever_form_the_soapaction_takes(
    hub: Hub, header: dict[str, str]
) -> None:
    client = SoapClient(hub.url, hub.world.hub, hub.world.nppos["NL"])
    status, body = await client.post(build_request(GetActiveNppos()), header)
    assert status == 200, body
    answer = parse_response(GetActiveNpposResponse, body)
    assert {n.country for n in answer.nppos} >= {"NL", "KE", "US"}
    assert hub.actions == [header.get("SOAPAction")]
