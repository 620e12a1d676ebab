"""The sending side over real TLS on 127.0.0.1: delivery client (mTLS, SPKI pins) and worker.

The partners are minimal aiohttp servers written here, which open the envelope for real
and answer with a receipt signed by the receiver's identity (`init_node`), or refuse.
"""

from __future__ import annotations

import asyncio
import base64
import random
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from uuid import uuid4

import pytest
import pytest_asyncio
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from node.clock import FixedClock
from node.crypto.ids import key_id, tls_pin
from node.directory import (
    Directory,
    KeyEntry,
    MaintainerSet,
    NppoEntry,
    TlsPin,
    TrustedDirectory,
    sign_directory,
)
from node.envelope.envelope import open_envelope, peek_header
from node.envelope.receipt import Outcome, Receipt, make_receipt
from node.identity.keys import load_encryption_key, load_signing_key
from node.identity.store import init_node
from node.outbox.policy import Backoff
from node.outbox.worker import NO_DIRECT_ENDPOINT, OutboxWorker
from node.store.store import NewMessage, Store
from node.transport.client import (
    ENVELOPE_MEDIA_TYPE,
    DeliveryClient,
    PermanentDeliveryError,
    PinMismatchError,
    TransientDeliveryError,
)

T0 = datetime.now(UTC).replace(microsecond=0)
PAYLOAD = b'<?xml version="1.0" encoding="UTF-8"?><rsm:SPSCertificate/>'
PROBLEM = "application/problem+json"


# --- identities, directory, store ---------------------------------------------------------


@dataclass
class Node:
    """A node identity made by `init_node`, with the socket its endpoint names."""

    country: str
    sock: socket.socket | None
    certificate: Path
    tls_key: Path
    signing: Ed25519PrivateKey
    encryption: X25519PrivateKey
    pin: str

    @property
    def endpoint(self) -> str | None:
        return None if self.sock is None else f"https://127.0.0.1:{self.sock.getsockname()[1]}"


def _node(root: Path, country: str, *, listening: bool = True) -> Node:
    sock = None
    if listening:
        # Bound but not listening until a server takes it: connecting is refused till then.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
    endpoint = None if sock is None else f"https://127.0.0.1:{sock.getsockname()[1]}"
    made = init_node(
        root / country, country=country, name=f"NPPO {country}", endpoint=endpoint, now=T0
    )
    signing_path, encryption_path, tls_key = made.private_keys
    return Node(
        country=country,
        sock=sock,
        certificate=made.certificate,
        tls_key=tls_key,
        signing=load_signing_key(signing_path.read_bytes(), str(signing_path)),
        encryption=load_encryption_key(encryption_path.read_bytes(), str(encryption_path)),
        pin=made.tls_pin,
    )


def _entry(node: Node) -> NppoEntry:
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=365)
    signing = node.signing.public_key().public_bytes_raw()
    encryption = node.encryption.public_key().public_bytes_raw()
    return NppoEntry(
        country=node.country,
        name=f"NPPO {node.country}",
        status="active",
        endpoint=node.endpoint,
        keys=(
            KeyEntry("signing", signing, key_id(signing), start, end),
            KeyEntry("encryption", encryption, key_id(encryption), start, end),
        ),
        tls_pins=(TlsPin(node.pin, start, end),),
        schema_versions=("D17A",),
    )


def _directory(*nodes: Node) -> Directory:
    """Signed by a maintainer and trusted the way a node trusts it, then made usable."""
    maintainer = Ed25519PrivateKey.generate()
    raw = maintainer.public_key().public_bytes_raw()
    anchor = MaintainerSet.from_plain(
        {
            "threshold": 1,
            "keys": [
                {"name": "m0", "keyid": key_id(raw), "public_key": base64.b64encode(raw).decode()}
            ],
        }
    )
    directory = Directory(
        version=1,
        issued=T0 - timedelta(hours=1),
        expires=T0 + timedelta(days=7),
        maintainers=anchor,
        nppos=tuple(sorted((_entry(n) for n in nodes), key=lambda e: e.country)),
        hub=None,
        code_lists=(),
    )
    trusted = TrustedDirectory(anchor)
    trusted.update(sign_directory(directory, [maintainer]), T0)
    return trusted.usable(T0)


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'node.db'}")
    await opened.migrate()
    yield opened
    await opened.close()


def _message(recipient: str, sender: str = "NL") -> NewMessage:
    return NewMessage(
        message_id=str(uuid4()),
        sender=sender,
        recipient=recipient,
        certificate_number=f"{sender}-2026-0001",
        certificate_type="851",
        certificate_status="70",
        content_digest="sha256:" + sha256(PAYLOAD).hexdigest(),
        payload=PAYLOAD,
    )


# --- a partner node: a minimal receiving endpoint ------------------------------------------


Answer = Callable[[web.Request, bytes], Awaitable[web.StreamResponse | None]]


@dataclass
class Partner:
    """A receiving endpoint that opens envelopes and answers with signed receipts.

    Like a real node, it answers a repeated message id with the original receipt.
    `answer` may intercept a request (a refusal, a forged receipt) by returning a response.
    """

    node: Node
    sender: Node
    directory: Directory
    answer: Answer | None = None
    bodies: list[bytes] = field(default_factory=list)
    client_pins: list[str] = field(default_factory=list)
    receipts: dict[str, bytes] = field(default_factory=dict)
    payloads: list[bytes] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.bodies.append(body)
        peer = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = peer.getpeercert(binary_form=True) if peer else None
        if der is not None:
            self.client_pins.append(tls_pin(x509.load_der_x509_certificate(der)))
        if self.answer is not None and (answered := await self.answer(request, body)):
            return answered
        opened = open_envelope(
            body,
            max_bytes=1 << 20,
            recipient_country=self.node.country,
            recipient_private_key=self.node.encryption,
            recipient_key_id=key_id(self.node.encryption.public_key().public_bytes_raw()),
            resolve_sender_key=lambda c, k: self.directory.signing_key(c, k, T0),
        )
        header = opened.header
        if header.message_id not in self.receipts:
            self.payloads.append(opened.payload)
            self.receipts[header.message_id] = self.receipt(
                header.message_id, header.content_digest, header.from_country
            )
        return web.Response(
            body=self.receipts[header.message_id],
            content_type="application/ephyto-receipt+json",
        )

    def receipt(
        self, message_id: str, digest: str, to: str, key: Ed25519PrivateKey | None = None
    ) -> bytes:
        return make_receipt(
            Receipt(
                message_id=message_id,
                content_digest=digest,
                from_country=self.node.country,
                to_country=to,
                received=T0,
                outcome=Outcome.ACCEPTED,
            ),
            receiver_signing_key=key or self.node.signing,
        )

    async def start(self) -> None:
        assert self.node.sock is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.node.certificate, self.node.tls_key)
        # Demand the client certificate: the sender's own self-signed one is the anchor.
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=self.sender.certificate.read_text())
        app = web.Application()
        app.router.add_post("/ephyto/v1/envelopes", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.SockSite(self.runner, self.node.sock, ssl_context=context).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@dataclass
class World:
    sender: Node
    partners: dict[str, Partner]
    directory: Directory
    store: Store
    clock: FixedClock
    client: DeliveryClient
    worker: OutboxWorker


@pytest_asyncio.fixture
async def world(tmp_path: Path, store: Store) -> AsyncIterator[World]:
    """NL sends; KE and US run nodes (KE started, US not yet); FR has no endpoint."""
    sender = _node(tmp_path, "NL")
    ke, us, fr = (
        _node(tmp_path, "KE"),
        _node(tmp_path, "US"),
        _node(tmp_path, "FR", listening=False),
    )
    directory = _directory(sender, ke, us, fr)
    partners = {n.country: Partner(n, sender, directory) for n in (ke, us)}
    await partners["KE"].start()
    clock = FixedClock(T0)
    async with DeliveryClient(
        tls_certificate=sender.certificate, tls_key=sender.tls_key, timeout=10
    ) as client:
        worker = OutboxWorker(
            store,
            client,
            lambda: directory,
            country="NL",
            signing_key=sender.signing,
            clock=clock,
            backoff=Backoff(base=timedelta(seconds=10)),
            rng=random.Random(7),
        )
        yield World(sender, partners, directory, store, clock, client, worker)
    for partner in partners.values():
        await partner.stop()
    for node in (sender, ke, us):
        assert node.sock is not None
        node.sock.close()


async def _kinds(store: Store, pk: int) -> list[str]:
    return [event.kind for event in await store.events(pk)]


def _problem(status: int, title: str, detail: str) -> Answer:
    async def answer(_request: web.Request, _body: bytes) -> web.Response:
        return web.json_response(
            {"type": "about:blank", "title": title, "status": status, "detail": detail},
            status=status,
            content_type=PROBLEM,
        )

    return answer


# --- the client ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_happy_path_delivers_with_verified_receipt(world: World) -> None:
    pk = await world.store.submit(_message("KE"), now=T0)

    assert await world.worker.run_once() == 1

    stored = await world.store.message(pk)
    assert (stored.state, stored.route, stored.outcome) == ("delivered", "direct", "accepted")
    ke = world.partners["KE"]
    assert stored.receipt == ke.receipts[stored.message_id]
    assert ke.payloads == [PAYLOAD]  # the partner really opened it
    assert ke.client_pins == [world.sender.pin]  # we presented our certificate (mTLS)
    assert await _kinds(world.store, pk) == ["submitted", "schema-version", "delivered"]
    assert await world.store.pending_count() == 0


@pytest.mark.asyncio
async def test_server_down_is_transient_then_delivered_when_up(world: World) -> None:
    pk = await world.store.submit(_message("US"), now=T0)

    assert await world.worker.run_once() == 1  # US is bound but not listening: refused

    events = await world.store.events(pk)
    assert [e.kind for e in events] == ["submitted", "schema-version", "retry"]
    assert "ClientConnectorError" in events[2].detail["error"]
    expected = Backoff(base=timedelta(seconds=10)).next_attempt(1, T0, random.Random(7))
    assert events[2].detail["next"] == expected.isoformat()
    assert await world.worker.run_once() == 0  # not due before the backoff
    assert (await world.store.message(pk)).state == "queued"

    await world.partners["US"].start()
    world.clock.advance(seconds=10)
    assert await world.worker.run_once() == 1
    assert (await world.store.message(pk)).state == "delivered"
    assert await _kinds(world.store, pk) == ["submitted", "schema-version", "retry", "delivered"]


@pytest.mark.asyncio
async def test_503_is_transient(world: World) -> None:
    world.partners["KE"].answer = _problem(503, "Busy", "try again later")
    pk = await world.store.submit(_message("KE"), now=T0)

    await world.worker.run_once()

    events = await world.store.events(pk)
    assert events[-1].kind == "retry"
    assert "HTTP 503: Busy: try again later" in events[-1].detail["error"]
    assert (await world.store.message(pk)).state == "queued"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "title"),
    [(400, "Malformed envelope"), (403, "TLS identity is not the sender")],
)
async def test_4xx_is_permanent_with_the_reason(world: World, status: int, title: str) -> None:
    world.partners["KE"].answer = _problem(status, title, "see the protocol")
    pk = await world.store.submit(_message("KE"), now=T0)

    await world.worker.run_once()

    assert (await world.store.message(pk)).state == "failed"
    events = await world.store.events(pk)
    assert [e.kind for e in events] == ["submitted", "schema-version", "failed"]
    assert f"HTTP {status}: {title}: see the protocol" in events[-1].detail["error"]
    assert await world.store.pending_count() == 0


@pytest.mark.asyncio
async def test_client_classifies_refusals_and_problem_text_is_one_line(world: World) -> None:
    ke = world.partners["KE"]
    endpoint, pins = ke.node.endpoint or "", frozenset({ke.node.pin})
    ke.answer = _problem(409, "Replay\nwith other content", "x" * 1000)
    with pytest.raises(PermanentDeliveryError) as refused:
        await world.client.deliver(endpoint, b"{}", pins=pins)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 400
    ke.answer = _problem(429, "Slow down", "")
    with pytest.raises(TransientDeliveryError, match="HTTP 429: Slow down"):
        await world.client.deliver(endpoint, b"{}", pins=pins)


# --- pinning: a server with an unpinned key never receives a byte of the request ---------


@dataclass
class RawTlsServer:
    """A TLS server that records every application byte it receives, and answers 503."""

    received: list[bytes] = field(default_factory=list)
    handshakes: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
            self.received.append(data)
            writer.write(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            self.received.append(data)
        finally:
            writer.close()


@pytest.mark.asyncio
async def test_pin_mismatch_never_sends_the_envelope(tmp_path: Path, world: World) -> None:
    impostor = _node(tmp_path / "impostor", "KE")
    assert impostor.sock is not None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(impostor.certificate, impostor.tls_key)
    raw = RawTlsServer()
    server = await asyncio.start_server(raw.serve, sock=impostor.sock, ssl=context)
    endpoint = impostor.endpoint or ""
    envelope = b'{"ciphertext":"SECRET-ENVELOPE-BYTES"}'
    try:
        # The real KE's pin only: the impostor's key is refused inside the handshake.
        with pytest.raises(PinMismatchError, match="not pinned"):
            await world.client.deliver(endpoint, envelope, pins=frozenset({world.sender.pin}))
        await asyncio.sleep(0.1)  # let the server side see whatever it would see
        assert all(data == b"" for data in raw.received)
        assert not any(b"SECRET" in data or b"POST" in data for data in raw.received)

        # Control: the same server, once pinned, does receive the request and its body.
        with pytest.raises(TransientDeliveryError, match="HTTP 503"):
            await world.client.deliver(endpoint, envelope, pins=frozenset({impostor.pin}))
        assert any(
            data.startswith(b"POST /ephyto/v1/envelopes") and ENVELOPE_MEDIA_TYPE.encode() in data
            for data in raw.received
        )
    finally:
        server.close()
        await server.wait_closed()
        impostor.sock.close()


@pytest.mark.asyncio
async def test_pin_mismatch_in_the_worker_is_transient(world: World) -> None:
    # KE rotated its TLS key and our directory still pins another one: retry, send nothing.
    ke = world.partners["KE"]
    stale = _directory(world.sender, replace(ke.node, pin="sha256:" + "ab" * 32))
    worker = OutboxWorker(
        world.store,
        world.client,
        lambda: stale,
        country="NL",
        signing_key=world.sender.signing,
        clock=world.clock,
    )
    pk = await world.store.submit(_message("KE"), now=T0)

    await worker.run_once()

    assert ke.bodies == []
    events = await world.store.events(pk)
    assert [e.kind for e in events] == ["submitted", "schema-version", "retry"]
    assert "is not pinned for this partner" in events[-1].detail["error"]
    assert (await world.store.message(pk)).state == "queued"


# --- receipts -----------------------------------------------------------------------------


def _forged(partner: Partner, kind: str) -> Answer:
    async def answer(_request: web.Request, body: bytes) -> web.Response | None:
        header = peek_header(body, max_bytes=1 << 20)
        if kind == "bad signature":
            data = partner.receipt(
                header.message_id, header.content_digest, "NL", Ed25519PrivateKey.generate()
            )
        else:
            data = partner.receipt(str(uuid4()), header.content_digest, "NL")
        return web.Response(body=data, content_type="application/ephyto-receipt+json")

    return answer


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["bad signature", "wrong message id"])
async def test_bad_receipt_is_not_delivered_and_retried(world: World, kind: str) -> None:
    ke = world.partners["KE"]
    ke.answer = _forged(ke, kind)
    pk = await world.store.submit(_message("KE"), now=T0)

    await world.worker.run_once()

    assert (await world.store.message(pk)).state == "queued"
    events = await world.store.events(pk)
    assert events[-1].kind == "retry"
    assert events[-1].detail["error"].startswith("bad receipt from KE")

    ke.answer = None  # the partner is fixed: the retry gets a good receipt
    world.clock.advance(seconds=10)
    await world.worker.run_once()
    assert (await world.store.message(pk)).state == "delivered"


@pytest.mark.asyncio
async def test_lost_answer_means_redelivery_with_the_original_receipt(world: World) -> None:
    class LosesFirstAnswer:
        def __init__(self) -> None:
            self.lost = False

        async def deliver(self, endpoint: str, envelope: bytes, *, pins: frozenset[str]) -> bytes:
            receipt = await world.client.deliver(endpoint, envelope, pins=pins)
            if not self.lost:
                self.lost = True  # as if the node crashed before `delivered`
                raise TransientDeliveryError("connection reset after the body was sent")
            return receipt

    worker = OutboxWorker(
        world.store,
        LosesFirstAnswer(),
        lambda: world.directory,
        country="NL",
        signing_key=world.sender.signing,
        clock=world.clock,
        rng=random.Random(1),
    )
    pk = await world.store.submit(_message("KE"), now=T0)
    await worker.run_once()
    world.clock.advance(seconds=1)  # past the first backoff (base 1 s)
    await worker.run_once()

    ke = world.partners["KE"]
    stored = await world.store.message(pk)
    assert stored.state == "delivered"
    assert len(ke.bodies) == 2 and ke.bodies[0] != ke.bodies[1]  # sealed anew each time
    assert ke.payloads == [PAYLOAD]  # stored once
    assert stored.receipt == ke.receipts[stored.message_id]


# --- destinations -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_destinations_run_concurrently_each_one_in_order(world: World) -> None:
    ke, us = world.partners["KE"], world.partners["US"]
    await us.start()
    us_seen = asyncio.Event()
    in_flight = {"KE": 0, "max": 0}

    async def ke_waits_for_us(_request: web.Request, _body: bytes) -> None:
        in_flight["KE"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["KE"])
        try:
            # Served one destination after another, KE would wait here for ever.
            await asyncio.wait_for(us_seen.wait(), timeout=5)
        finally:
            in_flight["KE"] -= 1
        return None

    async def us_signals(_request: web.Request, _body: bytes) -> None:
        us_seen.set()
        return None

    ke.answer, us.answer = ke_waits_for_us, us_signals
    first = await world.store.submit(_message("KE"), now=T0)
    second = await world.store.submit(_message("KE"), now=T0)
    third = await world.store.submit(_message("US"), now=T0)

    assert await world.worker.run_once() == 3

    for pk in (first, second, third):
        assert (await world.store.message(pk)).state == "delivered"
    assert in_flight["max"] == 1  # one partner's messages never overlap
    assert len(ke.payloads) == 2 and len(us.payloads) == 1


@pytest.mark.asyncio
async def test_destination_that_fails_is_left_alone_for_the_batch(world: World) -> None:
    first = await world.store.submit(_message("US"), now=T0)
    second = await world.store.submit(_message("US"), now=T0)

    await world.worker.run_once()

    assert (await world.store.events(first))[-1].kind == "retry"
    last = (await world.store.events(second))[-1]
    assert last.kind == "retry" and last.detail["error"].startswith("not tried, US just failed")


@pytest.mark.asyncio
async def test_partner_without_endpoint_stays_queued(world: World) -> None:
    pk = await world.store.submit(_message("FR"), now=T0)

    assert await world.worker.run_once() == 1

    assert (await world.store.message(pk)).state == "queued"
    assert await world.store.pending_count() == 1
    events = await world.store.events(pk)
    assert [e.kind for e in events] == ["submitted", "schema-version", NO_DIRECT_ENDPOINT, "retry"]
    assert events[2].detail == {"to": "FR"}
    assert "no direct endpoint and no hub is set" in events[3].detail["error"]


# --- running: kick and the scheduler ------------------------------------------------------


@pytest.mark.asyncio
async def test_kick_runs_at_once(world: World) -> None:
    pk = await world.store.submit(_message("KE"), now=T0)

    await world.worker.kick()

    assert (await world.store.message(pk)).state == "delivered"


@pytest.mark.asyncio
async def test_scheduled_job_delivers(world: World) -> None:
    scheduler = AsyncIOScheduler()
    scheduler.start()
    try:
        world.worker.schedule(scheduler, timedelta(seconds=0.05))
        pk = await world.store.submit(_message("KE"), now=T0)
        for _ in range(200):
            if (await world.store.message(pk)).state == "delivered":
                break
            await asyncio.sleep(0.05)
        assert (await world.store.message(pk)).state == "delivered"
    finally:
        scheduler.shutdown(wait=False)
