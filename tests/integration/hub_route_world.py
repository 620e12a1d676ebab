"""Nodes and a hub on loopback, made and wired by the real code, for the hub route tests.

Every identity comes from `init_node` / `init_hub`, the directory from the registry's
own `publish` (NL and US with endpoints, KE hub-only, the hub listed), and each node is
what `run_node` builds, driven by hand instead of by the scheduler: a SQLite store, a
`NodeRuntime`, the `HubClient` of `node_hub_client` (the directory's hub, trusted by
its pins), the `HubPuller` and, for the sender, the `OutboxWorker` with a real
`DeliveryClient`. Endpoints are sockets bound before the directory is published (so its
URLs are known), which refuse connections until a server takes them: a partner or a hub
that is down is simply one not started.
"""

from __future__ import annotations

import hashlib
import socket
import uuid
from collections.abc import Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from node.certificate.validate import Validator
from node.clock import FixedClock
from node.codelists.lists import bundled
from node.directory import Directory, TrustedDirectory
from node.hub.config import DEFAULT_POLICY
from node.hub.records import HubSettings
from node.hub.service import hub_client_certificates
from node.hub.setup import init_hub
from node.hub.store import HubStore
from node.hub.web import SERVICE_PATH, HubContext, create_hub_app
from node.identity.config import NodeConfig, load_config
from node.identity.store import init_node
from node.inbox.puller import HubPuller
from node.outbox.policy import Backoff, Fallback
from node.outbox.worker import Deliverer, OutboxWorker
from node.runtime import NodeRuntime, ValidationThread
from node.store.store import NewMessage, Store
from node.transport.client import DeliveryClient
from node.transport.hub_client import HubClient, node_hub_client
from node.web.exchange import create_exchange_app
from node.web.tls import server_ssl_context
from registry.state import RegistryState
from tests.integration.hub_world import Party, SoapClient

# OpenSSL checks certificate validity against the real clock: the tests' time is real.
T0 = datetime.now(UTC).replace(microsecond=0)
FALLBACK_ATTEMPTS = 3
HUB_RECHECK = timedelta(seconds=30)

# A node's TLS identity, its config, and the socket of its direct endpoint (None: hub only).
Identity = tuple[Party, NodeConfig, socket.socket | None]


def _bound() -> socket.socket:
    """A loopback port that refuses connections until a server listens on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _url(sock: socket.socket) -> str:
    return f"https://127.0.0.1:{sock.getsockname()[1]}"


@dataclass
class HubServer:
    """The hub app over mutual TLS on its bound socket, with a SQLite hub store."""

    party: Party
    sock: socket.socket
    database: Path
    clock: FixedClock
    trust: TrustedDirectory
    validator: Validator
    store: HubStore | None = None
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return _url(self.sock) + SERVICE_PATH

    async def start(self) -> None:
        store = HubStore.open(f"sqlite+aiosqlite:///{self.database}", HubSettings())
        await store.migrate()
        context = HubContext(
            name="Test Hub",
            store=store,
            directory=lambda: self.trust.usable(self.clock.now()),
            clock=self.clock,
            default_policy=DEFAULT_POLICY,
            validator=self.validator,
        )

        def trusted_certs() -> Iterable[bytes]:
            now = self.clock.now()
            return hub_client_certificates(self.trust.usable(now), now)

        ssl_context = server_ssl_context(
            self.party.cert_path, self.party.key_path, trusted_client_certs=trusted_certs
        )
        runner = web.AppRunner(create_hub_app(context))
        await runner.setup()
        await web.SockSite(runner, self.sock, ssl_context=ssl_context).start()
        self.store, self.runner = store, runner

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        if self.store is not None:
            await self.store.close()
            self.store = None


@dataclass
class NodeUnderTest:
    """One NPPO's node, as `run_node` wires it, driven by hand."""

    country: str
    config: NodeConfig
    party: Party
    sock: socket.socket | None  # its direct endpoint; None: hub only
    store: Store
    runtime: NodeRuntime
    hub: HubClient
    validation: ValidationThread  # one per node, shared by the endpoint and the puller
    puller: HubPuller
    client: DeliveryClient
    runner: web.AppRunner | None = None
    worker: OutboxWorker = field(init=False)

    def __post_init__(self) -> None:
        self.worker = self.make_worker(self.client)

    def make_worker(
        self, client: Deliverer, *, fallback_attempts: int = FALLBACK_ATTEMPTS
    ) -> OutboxWorker:
        """The outbox worker as `run_node` builds it, over `client` (the real one, or a
        wrapper around it)."""
        return OutboxWorker(
            self.store,
            client,
            self.runtime.directory,
            country=self.country,
            signing_key=self.runtime.signing_key,
            clock=self.runtime.clock,
            # No waiting between attempts: each run_once is the next attempt.
            backoff=Backoff(base=timedelta(0)),
            hub=self.hub,
            hub_listed=lambda d: d.hub is not None,
            fallback=Fallback(attempts=fallback_attempts, after=timedelta(minutes=5)),
            hub_recheck=HUB_RECHECK,
        )

    async def serve(self) -> None:
        """Start its exchange endpoint (mutual TLS, peers from the directory)."""
        assert self.sock is not None, f"{self.country} has no direct endpoint"
        runtime = self.runtime
        ssl_context = server_ssl_context(
            self.party.cert_path,
            self.party.key_path,
            trusted_client_certs=runtime.trusted_client_certs,
        )
        self.runner = web.AppRunner(create_exchange_app(runtime, self.validation))
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock, ssl_context=ssl_context).start()


@dataclass
class Network:
    clock: FixedClock
    directory: Directory
    hub: HubServer
    nodes: dict[str, NodeUnderTest]
    parties: dict[str, Party] = field(default_factory=dict)

    def soap(self, country: str) -> SoapClient:
        """A bare SOAP client of `country` (another NPPO's own system, say)."""
        return SoapClient(self.hub.url, self.hub.party, self.parties[country])


def make_identities(
    root: Path, clock: FixedClock, validator: Validator
) -> tuple[Directory, TrustedDirectory, HubServer, dict[str, Identity]]:
    """NL and US with direct endpoints, KE hub-only, the hub; published and trusted."""
    registry = RegistryState.init(
        root / "registry", maintainer="m", threshold=1, now=T0, actor="test"
    )
    made: dict[str, Identity] = {}
    for country, direct in (("NL", True), ("KE", False), ("US", True)):
        sock = _bound() if direct else None
        result = init_node(
            root / country.lower(),
            country=country,
            name=f"NPPO {country}",
            endpoint=None if sock is None else _url(sock),
            now=T0 - timedelta(hours=1),
        )
        config = load_config(result.config)
        party = Party(
            country, result.directory, result.certificate, config.path(config.keys.tls_key)
        )
        made[country] = (party, config, sock)
        registry.enrol(result.request.read_bytes(), T0, "test")
    hub_sock = _bound()
    hub = init_hub(
        root / "hub", name="Test Hub", endpoint=_url(hub_sock), now=T0 - timedelta(hours=1)
    )
    registry.set_hub(hub.request.read_bytes(), T0, "test")
    directory, signed = registry.publish(T0, "test", code_lists=bundled().versions())
    trust = TrustedDirectory(registry.maintainers)
    trust.update(signed, T0)
    server = HubServer(
        party=Party("hub", hub.directory, hub.certificate, hub.tls_key),
        sock=hub_sock,
        database=root / "hub.db",
        clock=clock,
        trust=trust,
        validator=validator,
    )
    return directory, trust, server, made


async def open_network(
    stack: AsyncExitStack, root: Path, clock: FixedClock, validator: Validator
) -> Network:
    """Everything made and opened; `stack` closes it all again, sockets included."""
    directory, trust, hub, made = make_identities(root, clock, validator)
    stack.callback(hub.sock.close)
    stack.push_async_callback(hub.stop)

    def usable() -> Directory:
        return trust.usable(clock.now())

    def trusted_client_certs() -> Iterable[bytes]:
        return usable().tls_certificates(clock.now())

    nodes: dict[str, NodeUnderTest] = {}
    for country, (party, config, sock) in made.items():
        if sock is not None:
            stack.callback(sock.close)
        store = Store.open(f"sqlite+aiosqlite:///{root / (country.lower() + '.db')}")
        stack.push_async_callback(store.close)
        await store.migrate()
        runtime = NodeRuntime.from_config(
            config,
            directory=usable,
            store=store,
            clock=clock,
            validator=validator,
            trusted_client_certs=trusted_client_certs,
        )
        client = await stack.enter_async_context(
            DeliveryClient(tls_certificate=party.cert_path, tls_key=party.key_path, timeout=10)
        )
        hub_client = await stack.enter_async_context(node_hub_client(config, usable, clock))
        validation = ValidationThread(runtime.validator)
        stack.callback(validation.close)
        puller = HubPuller(runtime, hub_client, validation)
        node = NodeUnderTest(
            country=country,
            config=config,
            party=party,
            sock=sock,
            store=store,
            runtime=runtime,
            hub=hub_client,
            validation=validation,
            puller=puller,
            client=client,
        )

        async def stop(node: NodeUnderTest = node) -> None:
            if node.runner is not None:
                await node.runner.cleanup()

        stack.push_async_callback(stop)
        nodes[country] = node
    return Network(
        clock=clock,
        directory=directory,
        hub=hub,
        nodes=nodes,
        parties={country: party for country, (party, _, _) in made.items()},
    )


def outgoing(
    sender: str,
    recipient: str,
    payload: bytes,
    number: str,
    *,
    certificate_type: str = "851",
    status: str = "70",
) -> NewMessage:
    """A message to send whose envelope header will say these values."""
    return NewMessage(
        message_id=str(uuid.uuid4()),
        sender=sender,
        recipient=recipient,
        certificate_number=number,
        certificate_type=certificate_type,
        certificate_status=status,
        content_digest="sha256:" + hashlib.sha256(payload).hexdigest(),
        payload=payload,
    )


async def submit_from_nl(
    net: Network,
    to: str,
    payload: bytes,
    *,
    number: str,
    certificate_type: str = "851",
    status: str = "70",
) -> int:
    """NL's store takes a message for `to`, as its API would after validating it."""
    message = outgoing("NL", to, payload, number, certificate_type=certificate_type, status=status)
    return await net.nodes["NL"].store.submit(message, now=net.clock.now())
