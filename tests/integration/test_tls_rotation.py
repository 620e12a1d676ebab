"""A node's TLS key rotation on a node that keeps running, over real mutual TLS on 127.0.0.1.

NL's identity comes from `init_node`, its next keys and next TLS certificate from
`rotate_keys`. The directory that publishes the rotation is built here, with the entries a
registry lists for it (the old keys and pin capped at the end of the overlap, the new ones
valid from the rotation on), so that the node's side is tested on its own. NL and KE each
run the real exchange endpoint (`presenting_server_ssl_context` over `NodeRuntime.tls`)
and deliver with the real `DeliveryClient` presenting `NodeRuntime.tls`; NL's holder is
kept by `reload_tls`, what `ephyto node serve` runs after each directory refresh.

KE plays a partner whose TLS layer is stale (it pins, and lets in, only what the directory
before the rotation listed) or fresh: the reason NL presents its old certificate through
the first half of the overlap. Time is a FixedClock for the directory and NL's choice;
OpenSSL checks certificates against the real clock, so the story is placed in the past.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from uuid import uuid4

import pytest
import pytest_asyncio
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from node.certificate.validate import Validator
from node.clock import FixedClock
from node.crypto.ids import key_id, tls_pin
from node.demo.network import free_port
from node.directory import Directory, KeyEntry, TlsPin
from node.envelope.receipt import Receipt, verify_receipt_from
from node.identity.config import NodeConfig, dump_config, load_config
from node.identity.keys import (
    build_tls_certificate,
    certificate_pem,
    load_certificate,
    load_encryption_key,
    load_signing_key,
)
from node.identity.next_keys import RotationFinishError, finish_rotation, reload_tls
from node.identity.store import init_node, rotate_keys
from node.identity.tls_choice import TlsHolder
from node.outbox.sealing import seal_message
from node.outbox.worker import _partner
from node.runtime import NodeRuntime
from node.store.store import Store, StoredMessage
from node.transport.client import DeliveryClient, PinMismatchError, TransientDeliveryError
from node.transport.hub_client import HubClient
from node.web.exchange import create_exchange_app
from node.web.tls import peer_certificate, presenting_server_ssl_context
from registry.state import RegistryState

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
ROTATION = T0 + timedelta(hours=1)
OVERLAP = timedelta(hours=24)
MIDPOINT = ROTATION + OVERLAP / 2
END = ROTATION + OVERLAP  # the old keys and pin expire
VALIDITY = timedelta(days=730)
PAYLOAD = b'<?xml version="1.0" encoding="UTF-8"?><rsm:SPSCertificate/>'


def _rotated(base: Directory, node_dir: Path) -> Directory:
    """`base` with the rotation `rotate_keys` made in `node_dir` published, as a registry
    lists it: the old keys and TLS pin valid until END, the new ones from ROTATION."""
    config = load_config(node_dir / "node.toml")
    keys = config.keys
    assert keys.next_signing and keys.next_encryption and keys.next_tls_certificate
    signing = load_signing_key(config.path(keys.next_signing).read_bytes(), "s")
    encryption = load_encryption_key(config.path(keys.next_encryption).read_bytes(), "e")
    certificate = load_certificate(config.path(keys.next_tls_certificate).read_bytes(), "c")
    window = (ROTATION, ROTATION + VALIDITY)
    raw_signing = signing.public_key().public_bytes_raw()
    raw_encryption = encryption.public_key().public_bytes_raw()
    entry = base.nppo(config.country)
    entry = replace(
        entry,
        keys=(
            *(replace(k, valid_until=END) for k in entry.keys),
            KeyEntry("signing", raw_signing, key_id(raw_signing), *window),
            KeyEntry("encryption", raw_encryption, key_id(raw_encryption), *window),
        ),
        tls_pins=(
            *(replace(p, valid_until=END) for p in entry.tls_pins),
            TlsPin(tls_pin(certificate), *window, certificate_pem(certificate)),
        ),
    )
    nppos = tuple(entry if n.country == entry.country else n for n in base.nppos)
    return replace(base, version=base.version + 1, nppos=nppos)


@dataclass
class Peer:
    """One NPPO's node: its runtime and exchange endpoint, the directory it trusts, and the
    directory its TLS layer goes by (`tls_view`: the same, or an older one for a stale
    partner)."""

    country: str
    config: NodeConfig
    clock: FixedClock
    view: Directory
    tls_view: Directory
    store: Store
    port: int
    client_pins: list[str] = field(default_factory=list)  # of the TLS clients it served
    runner: web.AppRunner | None = None
    runtime: NodeRuntime = field(init=False)

    def __post_init__(self) -> None:
        self.boot()

    def boot(self) -> None:
        """The runtime as `ephyto node serve` builds it from node.toml at start."""
        self.config = load_config(self.config.directory / "node.toml")
        self.runtime = NodeRuntime.from_config(
            self.config,
            directory=lambda: self.view,
            store=self.store,
            clock=self.clock,
            validator=Validator.default(),
            trusted_client_certs=self.trusted,
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def tls(self) -> TlsHolder:
        assert self.runtime.tls is not None
        return self.runtime.tls

    def trusted(self) -> Iterable[bytes]:
        return self.tls_view.tls_certificates(self.clock.now())

    async def start(self) -> None:
        app = create_exchange_app(self.runtime)

        @web.middleware
        async def record(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            transport = request.transport
            ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
            self.client_pins.append(tls_pin(peer_certificate(ssl_object)))
            return await handler(request)

        app.middlewares.append(record)
        context = presenting_server_ssl_context(self.tls, trusted_client_certs=self.trusted)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, ssl_context=context).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def refresh(self) -> bool:
        """What the node runs after each directory refresh (for its TLS identity)."""
        now = self.clock.now()
        return reload_tls(self.tls, self.config.directory / "node.toml", self.country,
                          self.view, now)  # fmt: skip


@dataclass
class World:
    clock: FixedClock
    base: Directory  # before the rotation was published
    fresh: Directory  # with NL's rotation
    nl: Peer
    ke: Peer
    stack: AsyncExitStack

    def at(self, when: datetime) -> None:
        assert when >= self.clock.now()
        self.clock.advance(seconds=(when - self.clock.now()).total_seconds())

    async def restart_nl(self) -> None:
        """NL stops and starts again: a new runtime from node.toml, a new endpoint."""
        await self.nl.stop()
        self.nl.boot()
        self.nl.refresh()  # `ephyto node serve` does so before it listens
        await self.nl.start()


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    registry = RegistryState.init(
        tmp_path / "registry", maintainer="m1", threshold=1, now=T0, actor="test"
    )
    ports = {}
    for country in ("NL", "KE"):
        ports[country] = free_port()
        made = init_node(
            tmp_path / country,
            country=country,
            name=f"NPPO {country}",
            endpoint=f"https://127.0.0.1:{ports[country]}",
            now=T0,
        )
        registry.enrol(made.request.read_bytes(), T0, "test")
    base, _ = registry.publish(T0, "test", code_lists={})
    rotate_keys(tmp_path / "NL", now=ROTATION)
    fresh = _rotated(base, tmp_path / "NL")
    clock = FixedClock(T0)
    async with AsyncExitStack() as stack:
        peers = {}
        for country in ("NL", "KE"):
            config = load_config(tmp_path / country / "node.toml")
            store = Store.open(f"sqlite+aiosqlite:///{tmp_path / (country + '.db')}")
            stack.push_async_callback(store.close)
            await store.migrate()
            peer = Peer(country, config, clock, fresh, fresh, store, ports[country])
            stack.push_async_callback(peer.stop)
            peers[country] = peer
        world = World(clock, base, fresh, peers["NL"], peers["KE"], stack)
        world.nl.refresh()
        for peer in peers.values():
            await peer.start()
        yield world


async def _client(world: World, peer: Peer) -> DeliveryClient:
    return await world.stack.enter_async_context(DeliveryClient(presented=peer.tls, timeout=10))


def _message(sender: str, recipient: str) -> StoredMessage:
    return StoredMessage(
        id=1, direction="out", message_id=str(uuid4()), sender=sender, recipient=recipient,
        certificate_number=f"{sender}-2026-0001", certificate_type="851",
        certificate_status="70", content_digest="sha256:" + sha256(PAYLOAD).hexdigest(),
        payload=PAYLOAD, state="pending", route=None, outcome=None, receipt=None,
        created_at=T0, settled_at=None,
    )  # fmt: skip


async def _deliver(
    client: DeliveryClient, sender: Peer, receiver: Peer, *, pins: frozenset[str] | None = None
) -> Receipt:
    """`sender` seals to `receiver` as its outbox does and delivers over `client`, pinning
    the receiver to `pins` (by default those `sender`'s TLS layer knows); the receipt,
    checked with the keys of the sender's directory."""
    now = sender.clock.now()
    message = _message(sender.country, receiver.country)
    envelope = seal_message(
        message,
        country=sender.country,
        signing_key=sender.runtime.current_signing_key(now),
        recipient_key=sender.view.encryption_key(receiver.country, now).x25519(),
        now=now,
    )
    if pins is None:
        pins = sender.tls_view.tls_pins(receiver.country, now)
    data = await client.deliver(receiver.url, envelope, pins=pins)
    return verify_receipt_from(
        data,
        expected_message_id=message.message_id,
        expected_digest=message.content_digest,
        receiver=receiver.country,
        sender=sender.country,
        receiver_keys=_partner(sender.view, receiver.country, now).signing_keys,
    )


async def _served_pin(server: Peer, client: Peer) -> str:
    """The pin of the certificate `server` presents to `client` in a TLS handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we only look at what is presented
    context.load_cert_chain(client.tls().certificate, client.tls().key)
    _, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=context)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        with suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    return tls_pin(x509.load_der_x509_certificate(der))


def _pins(world: World) -> tuple[str, str]:
    """NL's old and new TLS pins, as the directory lists them."""
    old, new = (p.pin for p in world.fresh.nppo("NL").tls_pins)
    return old, new


# --- the rotation, start to finish -------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_new_certificate_is_presented_from_halfway_through_the_overlap(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    nl, ke = world.nl, world.ke
    old, new = _pins(world)
    nl_client, ke_client = await _client(world, nl), await _client(world, ke)

    # The first half of the overlap, with KE not refreshed since the rotation was
    # published: NL presents its old certificate, as server and as client, and both work.
    world.at(ROTATION + timedelta(hours=1))
    ke.tls_view = world.base
    assert nl.refresh() is False
    assert nl.tls().pin == old and nl.tls.held.next is not None
    assert await _served_pin(nl, ke) == old
    await _deliver(ke_client, ke, nl)
    await _deliver(nl_client, nl, ke)
    assert ke.client_pins == [old]

    # Past the midpoint NL presents the new one: one INFO line says so.
    world.at(MIDPOINT)
    with caplog.at_level(logging.INFO, logger="node.identity.next_keys"):
        assert nl.refresh() is True
        assert nl.refresh() is False  # once
    infos = [r.getMessage() for r in caplog.records if "presents its TLS" in r.getMessage()]
    assert len(infos) == 1 and old in infos[0] and new in infos[0], infos
    assert nl.tls().pin == new
    assert await _served_pin(nl, ke) == new
    # A partner that had still not refreshed would fail now, either way (why NL waited),
    # on a new connection: one made before the switch goes on with what it was made with.
    async with DeliveryClient(presented=ke.tls, timeout=10) as stale:
        with pytest.raises(PinMismatchError, match="not pinned"):
            await _deliver(stale, ke, nl)
    with pytest.raises(TransientDeliveryError):
        await _deliver(nl_client, nl, ke)
    # KE has refreshed: deliveries both ways, and NL's client certificate is the new one
    # on a new connection (the one made with the old certificate is not reused).
    ke.tls_view = world.fresh
    await _deliver(ke_client, ke, nl)
    await _deliver(nl_client, nl, ke)
    assert ke.client_pins[-1] == new

    # After the overlap: the old pin is gone; NL finishes the rotation while it runs.
    world.at(END + timedelta(hours=1))
    assert nl.refresh() is False
    node_dir = nl.config.directory
    old_crt = (node_dir / "keys/tls.crt").read_bytes()
    next_crt = (node_dir / "keys/tls.next.crt").read_bytes()
    next_key = (node_dir / "keys/tls.next.key").read_bytes()
    result = finish_rotation(node_dir, world.fresh, now=world.clock.now())
    assert result.tls_pin == new
    assert (node_dir / "keys/tls.crt").read_bytes() == next_crt
    assert (node_dir / "keys/tls.key").read_bytes() == next_key
    assert not (node_dir / "keys/tls.next.crt").exists()
    assert not (node_dir / "keys/tls.next.key").exists()
    kept = node_dir / "keys/retired" / ("tls-" + old.removeprefix("sha256:") + ".crt")
    assert kept.read_bytes() == old_crt and kept in result.retired
    assert kept.with_suffix(".key").exists()
    config = load_config(node_dir / "node.toml")
    assert config.keys.next_tls_key is None and config.keys.next_tls_certificate is None
    # The running node follows the files at its next refresh, and goes on.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="node.identity.next_keys"):
        assert nl.refresh() is True
    assert "presents its TLS" not in caplog.text  # the same certificate, from another file
    assert nl.tls() == replace(nl.tls(), certificate=node_dir / "keys/tls.crt", pin=new)
    assert nl.tls.held.next is None
    await _deliver(ke_client, ke, nl)
    await _deliver(nl_client, nl, ke)
    assert ke.client_pins[-1] == new

    # A restart presents the new certificate, now the current one.
    await world.restart_nl()
    assert await _served_pin(nl, ke) == new
    assert ke.tls_view.tls_pins("NL", world.clock.now()) == {new}
    await _deliver(ke_client, ke, nl)
    async with DeliveryClient(presented=nl.tls, timeout=10) as restarted:
        await _deliver(restarted, nl, ke)
    assert ke.client_pins[-1] == new


# --- finishing: refused in the overlap, restartable -----------------------------------------------


def _files(node_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(node_dir)): p.read_bytes()
        for p in sorted(node_dir.rglob("*"))
        if p.is_file() and p.suffix != ".db"
    }


@pytest.mark.asyncio
async def test_finish_waits_for_the_old_pin_and_a_run_cut_short_completes_when_run_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import node.identity.next_keys as next_keys

    node_dir = world.nl.config.directory
    old, new = _pins(world)
    # The keys' overlap is over, but the directory still lists the old TLS pin: refused.
    listed = world.fresh.nppo("NL")
    late = replace(listed, tls_pins=(replace(listed.tls_pins[0], valid_until=END + OVERLAP),
                                     listed.tls_pins[1]))  # fmt: skip
    directory = replace(world.fresh, nppos=tuple(
        late if n.country == "NL" else n for n in world.fresh.nppos
    ))  # fmt: skip
    world.at(END + timedelta(hours=1))
    before = _files(node_dir)
    with pytest.raises(RotationFinishError, match="the overlap runs until") as refused:
        finish_rotation(node_dir, directory, now=world.clock.now())
    assert "nothing changed" in str(refused.value)
    assert _files(node_dir) == before

    # Cut short between the TLS key and its certificate; run again: completed, the old
    # key and certificate kept under the old pin.
    real = next_keys.write_atomic

    def crash_at_the_certificate(path: Path, data: bytes, mode: int) -> None:
        if path.name == "tls.crt":
            raise OSError(28, "No space left on device")
        real(path, data, mode)

    monkeypatch.setattr(next_keys, "write_atomic", crash_at_the_certificate)
    with pytest.raises(OSError, match="No space"):
        finish_rotation(node_dir, world.fresh, now=world.clock.now())
    assert (node_dir / "keys/tls.key").read_bytes() == before["keys/tls.next.key"]
    assert (node_dir / "keys/tls.crt").read_bytes() == before["keys/tls.crt"]
    monkeypatch.setattr(next_keys, "write_atomic", real)
    result = finish_rotation(node_dir, world.fresh, now=world.clock.now())
    assert result.tls_pin == new
    retired = node_dir / "keys/retired" / ("tls-" + old.removeprefix("sha256:"))
    assert retired.with_suffix(".key").read_bytes() == before["keys/tls.key"]
    assert retired.with_suffix(".crt").read_bytes() == before["keys/tls.crt"]
    assert (node_dir / "keys/tls.crt").read_bytes() == before["keys/tls.next.crt"]
    assert load_config(node_dir / "node.toml").keys.next_tls_key is None
    rotate_keys(node_dir, now=world.clock.now())  # and the next rotation can start


# --- hostile and odd input ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_wrong_or_missing_next_file_is_logged_once_and_the_old_identity_serves(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    nl, ke = world.nl, world.ke
    old, new = _pins(world)
    ke_client = await _client(world, ke)
    node_dir = nl.config.directory
    next_crt = node_dir / "keys/tls.next.crt"
    genuine = next_crt.read_bytes()
    world.at(MIDPOINT + timedelta(hours=1))  # the new certificate would be presented now

    # A certificate for another key in place of the next one.
    other = ec.generate_private_key(ec.SECP256R1())
    foreign = build_tls_certificate(
        other, country="NL", name="NPPO NL", host="127.0.0.1",
        not_before=ROTATION, not_after=ROTATION + VALIDITY,
    )  # fmt: skip
    next_crt.write_bytes(certificate_pem(foreign))
    with caplog.at_level(logging.WARNING, logger="node.identity.next_keys"):
        assert nl.refresh() is False
        assert nl.refresh() is False  # the same situation: logged once
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "not the certificate of the TLS key" in warnings[0] and old in warnings[0]
    assert nl.tls().pin == old
    assert await _served_pin(nl, ke) == old
    await _deliver(ke_client, ke, nl)  # the old pin is still valid: NL keeps serving

    # The next key missing.
    caplog.clear()
    next_crt.write_bytes(genuine)
    (node_dir / "keys/tls.next.key").rename(node_dir / "moved-away.key")
    with caplog.at_level(logging.WARNING, logger="node.identity.next_keys"):
        assert nl.refresh() is False
    assert "tls.next.key: cannot read" in caplog.text
    assert await _served_pin(nl, ke) == old
    await _deliver(ke_client, ke, nl)

    # Repaired: the next refresh picks it up, no restart.
    (node_dir / "moved-away.key").rename(node_dir / "keys/tls.next.key")
    assert nl.refresh() is True
    assert nl.tls.warned == ""
    assert await _served_pin(nl, ke) == new
    await _deliver(ke_client, ke, nl)


@pytest.mark.asyncio
async def test_a_rotation_without_a_tls_key_serves_and_finishes_as_before(
    world: World,
) -> None:
    """node.toml without next_tls_* (a rotation made before the TLS key rotated)."""
    nl, ke = world.nl, world.ke
    node_dir = nl.config.directory
    config = load_config(node_dir / "node.toml")
    keys = replace(config.keys, next_tls_key=None, next_tls_certificate=None)
    (node_dir / "node.toml").write_text(dump_config(replace(config, keys=keys)))
    for name in ("tls.next.key", "tls.next.crt"):
        (node_dir / "keys" / name).unlink()
    old, _ = _pins(world)
    listed = world.fresh.nppo("NL")
    # The registry lists the new keys, and the one pin unchanged.
    unchanged = replace(listed, tls_pins=(replace(listed.tls_pins[0], valid_until=T0 + VALIDITY),))
    nl.view = ke.view = ke.tls_view = replace(world.fresh, nppos=tuple(
        unchanged if n.country == "NL" else n for n in world.fresh.nppos
    ))  # fmt: skip
    world.at(MIDPOINT)
    assert nl.refresh() is False and nl.tls().pin == old
    ke_client = await _client(world, ke)
    await _deliver(ke_client, ke, nl)
    world.at(END + timedelta(hours=1))
    result = finish_rotation(node_dir, nl.view, now=world.clock.now())
    assert result.tls_pin is None
    assert {p.suffix for p in result.retired} == {".key"} and len(result.retired) == 2
    assert nl.refresh() is False and nl.tls().pin == old
    await _deliver(ke_client, ke, nl)


# --- the clients' contexts follow the identity ----------------------------------------------------


def test_the_hub_client_makes_a_new_context_when_the_identity_changes(world: World) -> None:
    nl = world.nl
    identities = [nl.tls()]
    client = HubClient(
        "https://127.0.0.1:1/hub",
        presented=lambda: identities[-1],
        pins=lambda: frozenset({"sha256:" + "0" * 64}),
    )
    first = client._context()
    assert client._context() is first  # one context while nothing changes
    config = nl.config
    assert config.keys.next_tls_certificate and config.keys.next_tls_key
    identities.append(
        replace(
            identities[0],
            certificate=config.path(config.keys.next_tls_certificate),
            key=config.path(config.keys.next_tls_key),
            pin=_pins(world)[1],
        )
    )
    assert client._context() is not first
