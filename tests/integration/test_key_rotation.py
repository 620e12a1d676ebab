"""NPPO key rotation without downtime, over real mutual TLS on 127.0.0.1.

Identities from `init_node`, new keys from `rotate_keys`, the rotation recorded and the
directory published by a real registry (RegistryState), the receiving node's real
exchange endpoint (NodeRuntime.from_config, so it loads its next keys from node.toml),
and the sender's side as the outbox worker does it (`_partner`, `seal_message`,
`verify_receipt_from`). Time is a FixedClock advanced by hand.
"""

from __future__ import annotations

import json
import ssl
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from uuid import uuid4

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from node.certificate.validate import Validator
from node.clock import FixedClock
from node.crypto.canonical import canonical_bytes
from node.crypto.ids import key_id
from node.demo.network import free_port
from node.directory import KeyNotValid, TrustedDirectory
from node.envelope.errors import BadSignatureError
from node.envelope.receipt import Outcome, Receipt, make_receipt, verify_receipt_from
from node.identity.config import load_config
from node.identity.enrolment import format_time
from node.identity.keys import load_encryption_key, load_signing_key
from node.identity.rotation import RotationError, verify_rotation_request
from node.identity.store import IdentityExistsError, init_node, rotate_keys
from node.outbox.sealing import seal_message
from node.outbox.worker import _partner
from node.runtime import NodeRuntime
from node.store.store import Store, StoredMessage
from node.web.exchange import ENVELOPE_MEDIA_TYPE, ENVELOPES_PATH, create_exchange_app
from node.web.tls import server_ssl_context
from registry.publish import RegistryError
from registry.state import RegistryState
from tests.rotation_requests import rotation_request_bytes

# In the past: OpenSSL checks TLS certificates' dates against the real clock, and the
# test's FixedClock runs a day and more ahead of T0 (the next certificates start at T1).
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
T1 = T0 + timedelta(hours=1)  # the rotation
OVERLAP = timedelta(hours=24)
PAYLOAD = b'<?xml version="1.0" encoding="UTF-8"?><rsm:SPSCertificate/>'


@dataclass
class Identity:
    country: str
    directory: Path
    signing: Ed25519PrivateKey
    cert_path: Path
    key_path: Path


def _identity(root: Path, country: str, port: int) -> tuple[Identity, bytes]:
    made = init_node(
        root / country,
        country=country,
        name=f"NPPO {country}",
        endpoint=f"https://127.0.0.1:{port}",
        now=T0,
    )
    signing_path, _, tls_key = made.private_keys
    identity = Identity(
        country=country,
        directory=made.directory,
        signing=load_signing_key(signing_path.read_bytes(), str(signing_path)),
        cert_path=made.certificate,
        key_path=tls_key,
    )
    return identity, made.request.read_bytes()


@dataclass
class World:
    registry: RegistryState
    trusted: TrustedDirectory
    clock: FixedClock
    nl: Identity
    ke: Identity


@pytest.fixture
def world(tmp_path: Path) -> World:
    registry = RegistryState.init(
        tmp_path / "registry", maintainer="m1", threshold=1, now=T0, actor="test"
    )
    nl, nl_request = _identity(tmp_path, "NL", free_port())
    ke, ke_request = _identity(tmp_path, "KE", free_port())
    registry.enrol(nl_request, T0, "test")
    registry.enrol(ke_request, T0, "test")
    _, data = registry.publish(T0, "test", code_lists={})
    trusted = TrustedDirectory(registry.maintainers)
    trusted.update(data, T0)
    return World(registry, trusted, FixedClock(T0), nl, ke)


def _rotate(world: World, identity: Identity) -> None:
    """The NPPO makes its next keys; the registry records them at T1 (not yet published)."""
    rotate_keys(identity.directory, now=T1)
    raw = (identity.directory / "rotation-request.json").read_bytes()
    signer = world.registry.default_signer()
    assert signer is not None
    world.registry.rotate(raw, OVERLAP, T1, "test", signer)


def _publish(world: World, at: datetime) -> None:
    _, data = world.registry.publish(at, "test", code_lists={})
    world.trusted.update(data, at)


# --- the rotation request ----------------------------------------------------------------


def test_rotate_keys_writes_new_private_keys_and_a_request_signed_by_the_current_key(
    world: World,
) -> None:
    before = load_config(world.nl.directory / "node.toml")
    result = rotate_keys(world.nl.directory, now=T1)
    config = load_config(world.nl.directory / "node.toml")
    assert config.keys.signing == before.keys.signing  # the current keys stay in use
    assert config.keys.next_signing is not None and config.keys.next_encryption is not None
    assert config.api_token == before.api_token
    for path in result.private_keys:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((world.nl.directory / "node.toml").stat().st_mode) == 0o600
    next_signing = config.path(config.keys.next_signing)
    assert key_id(
        load_signing_key(next_signing.read_bytes(), "x").public_key().public_bytes_raw()
    ) == (result.signing_key_id)
    raw = result.request.read_bytes()
    current = world.nl.signing.public_key().public_bytes_raw()
    request = verify_rotation_request(raw, current)
    assert (request.country, request.signing_key_id) == ("NL", result.signing_key_id)
    assert request.encryption_key_id == result.encryption_key_id
    # Never twice, never overwriting.
    with pytest.raises(IdentityExistsError, match="rotation is pending"):
        rotate_keys(world.nl.directory, now=T1)


def test_a_tampered_request_or_one_signed_by_another_key_is_refused(world: World) -> None:
    result = rotate_keys(world.nl.directory, now=T1)
    raw = result.request.read_bytes()
    current = world.nl.signing.public_key().public_bytes_raw()
    document = json.loads(raw)
    document["body"]["created"] = format_time(T1 + timedelta(minutes=1))  # still well-formed
    with pytest.raises(RotationError, match="current signing key"):
        verify_rotation_request(canonical_bytes(document), current)
    with pytest.raises(RotationError, match="canonical"):
        verify_rotation_request(raw.replace(b'{"body"', b'{ "body"'), current)
    # KE's key signs a rotation of NL: its key id is not NL's, and forging the id fails too.
    forged = rotation_request_bytes(world.ke.signing, country="NL", created=T1)
    with pytest.raises(RotationError, match="the registry lists"):
        verify_rotation_request(forged, current)
    signer = world.registry.default_signer()
    assert signer is not None
    with pytest.raises(RegistryError, match="rotation request refused"):
        world.registry.rotate(forged, OVERLAP, T1, "test", signer)
    with pytest.raises(RegistryError, match="rotation request refused"):
        world.registry.rotate(canonical_bytes(document), OVERLAP, T1, "test", signer)
    assert not (world.registry.root / "rotations").exists() or not any(
        (world.registry.root / "rotations").iterdir()
    )
    # The genuine one is recorded, audit-logged, and listed from the next publish.
    rotation = world.registry.rotate(raw, OVERLAP, T1, "test", signer)
    assert rotation.request.signing_key_id == result.signing_key_id
    entry = world.registry.audit_entries()[-1]
    assert entry["action"] == "rotate"
    assert entry["details"]["signing_key_id"] == result.signing_key_id
    assert not world.registry.verify_audit().problems
    with pytest.raises(RegistryError, match="overlaps until"):
        world.registry.rotate(raw, OVERLAP, T1, "test", signer)
    _publish(world, T1)
    directory = world.trusted.usable(T1)
    keys = {k.key_id: k for k in directory.nppo("NL").keys}
    old_id = key_id(current)
    assert keys[old_id].valid_until == T1 + OVERLAP
    assert keys[result.signing_key_id].valid_from == T1
    # Senders seal to the old key through the first half of the overlap, then to the new.
    (old_encryption,) = (
        k.key_id for k in keys.values() if k.kind == "encryption" and k.valid_from < T1
    )
    assert directory.encryption_key("NL", T1).key_id == old_encryption
    halfway = T1 + OVERLAP / 2
    assert directory.encryption_key("NL", halfway).key_id == result.encryption_key_id


# --- without downtime, over real TLS -------------------------------------------------------


@dataclass
class Server:
    url: str
    runtime: NodeRuntime
    store: Store


@pytest_asyncio.fixture
async def server(world: World, tmp_path: Path) -> AsyncIterator[Server]:
    # Both NPPOs ask for new keys; the receiver (NL) is started after, so it holds both.
    rotate_keys(world.nl.directory, now=T1)
    rotate_keys(world.ke.directory, now=T1)
    config = load_config(world.nl.directory / "node.toml")
    store = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'nl.db'}")
    await store.migrate()
    clock = world.clock
    # KE's old and next TLS certificates: after the overlap KE connects with its next one.
    ke_certs = [world.ke.cert_path.read_bytes(), _next_tls(world.ke)[0].read_bytes()]
    runtime = NodeRuntime.from_config(
        config,
        directory=lambda: world.trusted.usable(clock.now()),
        store=store,
        clock=clock,
        validator=Validator.default(),
        trusted_client_certs=lambda: ke_certs,
    )
    assert runtime.tls_certificate is not None and runtime.tls_key is not None
    context = server_ssl_context(
        runtime.tls_certificate, runtime.tls_key, trusted_client_certs=runtime.trusted_client_certs
    )
    runner = web.AppRunner(create_exchange_app(runtime))
    await runner.setup()
    assert config.endpoint is not None
    await web.TCPSite(runner, "127.0.0.1", config.endpoint.port, ssl_context=context).start()
    try:
        yield Server(config.endpoint.url, runtime, store)
    finally:
        await runner.cleanup()
        await store.close()


def _message() -> StoredMessage:
    return StoredMessage(
        id=1,
        direction="out",
        message_id=str(uuid4()),
        sender="KE",
        recipient="NL",
        certificate_number="KE-2026-0001",
        certificate_type="851",
        certificate_status="70",
        content_digest="sha256:" + sha256(PAYLOAD).hexdigest(),
        payload=PAYLOAD,
        state="pending",
        route=None,
        outcome=None,
        receipt=None,
        created_at=T0,
        settled_at=None,
    )


def _seal(
    world: World, signing: Ed25519PrivateKey, recipient: X25519PublicKey
) -> tuple[StoredMessage, bytes]:
    message = _message()
    envelope = seal_message(
        message, country="KE", signing_key=signing, recipient_key=recipient, now=world.clock.now()
    )
    return message, envelope


def _next_tls(identity: Identity) -> tuple[Path, Path]:
    """The next TLS certificate and key `rotate_keys` wrote."""
    config = load_config(identity.directory / "node.toml")
    assert config.keys.next_tls_certificate is not None and config.keys.next_tls_key is not None
    return config.path(config.keys.next_tls_certificate), config.path(config.keys.next_tls_key)


async def _post(
    world: World, server: Server, envelope: bytes, client: tuple[Path, Path] | None = None
) -> tuple[int, bytes]:
    """POST as KE, presenting `client` (certificate, key); KE's current TLS identity by
    default."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=world.nl.cert_path.read_text())
    ctx.load_cert_chain(*(client or (world.ke.cert_path, world.ke.key_path)))
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session,
        session.post(
            server.url + ENVELOPES_PATH,
            data=envelope,
            headers={"Content-Type": ENVELOPE_MEDIA_TYPE},
        ) as response,
    ):
        return response.status, await response.read()


def _verified_at_sender(world: World, message: StoredMessage, data: bytes) -> Receipt:
    """The receipt checked as the outbox worker checks it: any NL key valid now."""
    partner = _partner(world.trusted.usable(world.clock.now()), "NL", world.clock.now())
    return verify_receipt_from(
        data,
        expected_message_id=message.message_id,
        expected_digest=message.content_digest,
        receiver="NL",
        sender="KE",
        receiver_keys=partner.signing_keys,
    )


def _next_keys(identity: Identity) -> tuple[Ed25519PrivateKey, X25519PublicKey]:
    config = load_config(identity.directory / "node.toml")
    assert config.keys.next_signing is not None and config.keys.next_encryption is not None
    signing = config.path(config.keys.next_signing)
    encryption = config.path(config.keys.next_encryption)
    return (
        load_signing_key(signing.read_bytes(), str(signing)),
        load_encryption_key(encryption.read_bytes(), str(encryption)).public_key(),
    )


@pytest.mark.asyncio
async def test_rotation_without_downtime(world: World, server: Server) -> None:
    nl_old_signing = world.nl.signing.public_key().public_bytes_raw()
    nl_new_signing, nl_new_encryption = _next_keys(world.nl)
    ke_new_signing, _ = _next_keys(world.ke)

    # Before the directory changes: a message sealed to NL's current key, signed by KE's
    # current key, is in flight (delivered only after the rotation is published).
    world.clock.advance(hours=1)
    directory = world.trusted.usable(T1)
    nl_old_encryption = directory.encryption_key("NL", T1)
    assert server.runtime.signing_key_at(directory, T1)[1] == key_id(nl_old_signing)
    in_flight, in_flight_envelope = _seal(world, world.ke.signing, nl_old_encryption.x25519())

    for identity in (world.nl, world.ke):
        raw = (identity.directory / "rotation-request.json").read_bytes()
        signer = world.registry.default_signer()
        assert signer is not None
        world.registry.rotate(raw, OVERLAP, T1, "test", signer)
    _publish(world, T1)

    # The first half of the overlap: partners may not know the new keys yet, so senders
    # still seal to NL's old key and NL still signs with its old one.
    world.clock.advance(hours=2)
    now = world.clock.now()
    directory = world.trusted.usable(now)
    assert directory.encryption_key("NL", now).key_id == nl_old_encryption.key_id
    assert server.runtime.signing_key_at(directory, now)[1] == key_id(nl_old_signing)
    message, envelope = _seal(world, world.ke.signing, nl_old_encryption.x25519())
    status, data = await _post(world, server, envelope)
    assert status == 200, data
    assert _verified_at_sender(world, message, data).receiver_key_id == key_id(nl_old_signing)

    # From halfway through the overlap: senders seal to NL's newest key, and both open.
    world.clock.advance(hours=10)
    now = world.clock.now()
    directory = world.trusted.usable(now)
    newest = directory.encryption_key("NL", now)
    assert newest.key_id == key_id(nl_new_encryption.public_bytes_raw())
    nl_new_id = key_id(nl_new_signing.public_key().public_bytes_raw())
    assert server.runtime.signing_key_at(directory, now)[1] == nl_new_id

    status, data = await _post(world, server, in_flight_envelope)
    assert status == 200, data
    receipt = _verified_at_sender(world, in_flight, data)
    assert receipt.receiver_key_id == nl_new_id  # NL now signs with its new key

    message, envelope = _seal(world, ke_new_signing, newest.x25519())
    status, data = await _post(world, server, envelope)
    assert status == 200, data
    assert _verified_at_sender(world, message, data).outcome in tuple(Outcome)

    # KE signing with its old key, to NL's old encryption key: still fine in the overlap.
    message, envelope = _seal(world, world.ke.signing, nl_old_encryption.x25519())
    status, data = await _post(world, server, envelope)
    assert status == 200, data
    _verified_at_sender(world, message, data)

    # A receipt signed with NL's OLD key verifies at the sender too.
    old_message = message
    old_receipt = make_receipt(
        Receipt(
            message_id=message.message_id,
            content_digest=message.content_digest,
            from_country="NL",
            to_country="KE",
            received=now,
            outcome=Outcome.ACCEPTED,
        ),
        receiver_signing_key=server.runtime.signing_key,
    )
    assert _verified_at_sender(world, message, old_receipt).receiver_key_id == key_id(
        nl_old_signing
    )

    # After the overlap the old keys retire: KE's old signing key is refused.
    world.clock.advance(hours=13)
    now = world.clock.now()
    directory = world.trusted.usable(now)
    with pytest.raises(KeyNotValid):
        directory.signing_key("NL", key_id(nl_old_signing), now)
    # KE presents its next TLS certificate: its old pin retired with the overlap too (a
    # client presenting it gets 403 unknown-tls-client before any signature is looked at).
    ke_tls = _next_tls(world.ke)
    message, envelope = _seal(world, world.ke.signing, directory.encryption_key("NL", now).x25519())
    status, data = await _post(world, server, envelope)
    assert status == 403 and json.loads(data)["type"].endswith("unknown-tls-client")
    status, data = await _post(world, server, envelope, ke_tls)
    assert status == 401
    assert json.loads(data)["type"].endswith("sender-key-not-valid")
    # And a receipt by NL's old key no longer verifies at the sender.
    with pytest.raises(BadSignatureError, match="not signed by"):
        _verified_at_sender(world, old_message, old_receipt)
    # The new keys carry on.
    message, envelope = _seal(world, ke_new_signing, directory.encryption_key("NL", now).x25519())
    status, data = await _post(world, server, envelope, ke_tls)
    assert status == 200, data
    assert _verified_at_sender(world, message, data).receiver_key_id == nl_new_id
