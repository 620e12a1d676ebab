"""A registry, NPPO identities and a hub identity made by the real code, and a SOAP client.

Shared by the hub's service tests: keys come from `init_node` / `init_hub`, the
directory from the registry's own `publish` (NL, KE, US active, CN suspended, the hub
listed), and the client speaks the contract with `build_request` / `parse_response`
over aiohttp with the NPPO's certificate, pinning the hub's.
"""

from __future__ import annotations

import dataclasses
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from node.codelists.lists import bundled
from node.directory import Directory, TrustedDirectory, sign_directory
from node.hub.setup import init_hub
from node.identity.config import load_config
from node.identity.store import init_node
from node.ippc import (
    CONTENT_TYPE,
    HubRequest,
    HubResponse,
    build_request,
    operation_name,
    parse_response,
    response_type,
    soap_action,
)
from registry.state import RegistryState

R = TypeVar("R", bound=HubResponse)
# OpenSSL checks certificate validity against the real clock: the tests' time is real.
T0 = datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Party:
    """A TLS identity on disk: an NPPO's node, or the hub."""

    name: str
    directory: Path
    cert_path: Path
    key_path: Path

    @property
    def cert_pem(self) -> bytes:
        return self.cert_path.read_bytes()


@dataclass(frozen=True)
class World:
    registry: RegistryState
    hub: Party
    nppos: dict[str, Party]  # NL, KE, US active; CN suspended; FR and BR not enrolled
    directory: Directory
    signed: bytes  # the directory the hub trusts (CN suspended in it)


def make_world(root: Path) -> World:
    registry = RegistryState.init(
        root / "registry", maintainer="m", threshold=1, now=T0, actor="test"
    )
    nppos: dict[str, Party] = {}
    for country in ("NL", "KE", "US", "CN", "FR", "BR"):
        result = init_node(
            root / country.lower(),
            country=country,
            name=f"NPPO {country}",
            endpoint=None,
            now=T0 - timedelta(hours=1),
        )
        config = load_config(result.config)
        nppos[country] = Party(
            country, result.directory, result.certificate, config.path(config.keys.tls_key)
        )
        if country in ("NL", "KE", "US", "CN"):
            registry.enrol(result.request.read_bytes(), T0, "test")
    hub = init_hub(
        root / "hub",
        name="Test Hub",
        endpoint="https://127.0.0.1:8443",
        now=T0 - timedelta(hours=1),
    )
    registry.set_hub(hub.request.read_bytes(), T0, "test")
    published, _ = registry.publish(T0, "test", code_lists=bundled().versions())
    # The registry cannot suspend yet (governance): sign the next version by hand.
    directory = dataclasses.replace(
        published,
        version=published.version + 1,
        nppos=tuple(
            dataclasses.replace(n, status="suspended") if n.country == "CN" else n
            for n in published.nppos
        ),
    )
    signed = sign_directory(directory, registry.private_keys())
    return World(
        registry=registry,
        hub=Party("hub", hub.directory, hub.certificate, hub.tls_key),
        nppos=nppos,
        directory=directory,
        signed=signed,
    )


def trusted(world: World) -> TrustedDirectory:
    trust = TrustedDirectory(world.registry.maintainers)
    trust.update(world.signed, T0)
    return trust


def client_context(hub: Party, caller: Party | None) -> ssl.SSLContext:
    """The caller's side: its own certificate, and the hub's as the only anchor (a pin)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=hub.cert_pem.decode())
    if caller is not None:
        ctx.load_cert_chain(caller.cert_path, caller.key_path)
    return ctx


class SoapClient:
    """An NPPO calling the hub: one request, its typed response or HubFault."""

    def __init__(self, url: str, hub: Party, caller: Party | None) -> None:
        self.url = url
        self._context = client_context(hub, caller)

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        connector = aiohttp.TCPConnector(ssl=self._context)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post(
                self.url, data=body, headers={"Content-Type": CONTENT_TYPE, **(headers or {})}
            ) as response,
        ):
            return response.status, await response.read()

    async def call(self, request: HubRequest, expect: type[R] | None = None) -> Any:
        action = soap_action(operation_name(request))
        status, body = await self.post(build_request(request), {"SOAPAction": f'"{action}"'})
        answer = parse_response(expect or response_type(request), body)  # HubFault on a fault
        assert status == 200, body
        return answer
