"""A key rotation from start to finish, and the next one, with the node running throughout.

Real files (`init_node`, `rotate_keys`, `finish_rotation`), a real registry
(RegistryState: rotate, publish), and NL's real exchange endpoint over mutual TLS on
127.0.0.1, built ONCE before anything rotates: the same runtime object opens envelopes
sealed to keys made after it started, once the directory refresh lists them
(`reload_keys` and `reload_tls`, what `ephyto node serve` runs after each refresh). Time
is a FixedClock.
"""

from __future__ import annotations

import logging
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
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from node.certificate.validate import Validator
from node.clock import FixedClock
from node.crypto.ids import key_id
from node.demo.network import free_port
from node.directory import Directory, TrustedDirectory
from node.envelope.receipt import Receipt, verify_receipt_from
from node.identity.config import load_config
from node.identity.keys import (
    KeyFileError,
    load_encryption_key,
    load_signing_key,
    private_key_pem,
)
from node.identity.next_keys import (
    RotationFinishError,
    finish_rotation,
    reload_keys,
    reload_tls,
)
from node.identity.store import IdentityExistsError, init_node, rotate_keys
from node.outbox.sealing import seal_message
from node.outbox.worker import _partner
from node.runtime import NodeRuntime
from node.store.store import Store, StoredMessage
from node.web.exchange import ENVELOPE_MEDIA_TYPE, ENVELOPES_PATH, create_exchange_app
from node.web.tls import presenting_server_ssl_context
from registry.state import RegistryState

# Three days ago: the rotations' TLS certificates are made at T1 and T2, and OpenSSL checks
# a certificate's validity against the real clock, so both must be in the past.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
T1 = T0 + timedelta(hours=1)  # the first rotation
OVERLAP = timedelta(hours=24)
T2 = T1 + OVERLAP + timedelta(hours=1)  # after the first overlap: the second rotation
PAYLOAD = b'<?xml version="1.0" encoding="UTF-8"?><rsm:SPSCertificate/>'


@dataclass
class World:
    registry: RegistryState
    trusted: TrustedDirectory
    clock: FixedClock
    nl: Path
    ke: Path

    def at(self, when: datetime) -> None:
        """Move the clock to `when` (forward only, as time goes)."""
        assert when >= self.clock.now()
        self.clock.advance(seconds=(when - self.clock.now()).total_seconds())

    def directory(self) -> Directory:
        return self.trusted.usable(self.clock.now())

    def rotate(self, node_dir: Path, at: datetime) -> None:
        """The NPPO runs `rotate-keys`; the registry records and publishes it at `at`."""
        rotate_keys(node_dir, now=at)
        signer = self.registry.default_signer()
        assert signer is not None
        raw = (node_dir / "rotation-request.json").read_bytes()
        self.registry.rotate(raw, OVERLAP, at, "test", signer)
        self.publish(at)

    def publish(self, at: datetime) -> None:
        _, data = self.registry.publish(at, "test", code_lists={})
        self.trusted.update(data, at)


@pytest.fixture
def world(tmp_path: Path) -> World:
    registry = RegistryState.init(
        tmp_path / "registry", maintainer="m1", threshold=1, now=T0, actor="test"
    )
    dirs = {}
    for country in ("NL", "KE"):
        made = init_node(
            tmp_path / country,
            country=country,
            name=f"NPPO {country}",
            endpoint=f"https://127.0.0.1:{free_port()}",
            now=T0,
        )
        registry.enrol(made.request.read_bytes(), T0, "test")
        dirs[country] = made.directory
    world = World(registry, TrustedDirectory(registry.maintainers), FixedClock(T0), **{
        "nl": dirs["NL"], "ke": dirs["KE"],
    })  # fmt: skip
    world.publish(T0)
    return world


@dataclass
class Running:
    url: str
    runtime: NodeRuntime


@pytest_asyncio.fixture
async def running(world: World, tmp_path: Path) -> AsyncIterator[Running]:
    """NL's exchange endpoint, started before any rotation: it holds one key of each kind."""
    config = load_config(world.nl / "node.toml")
    store = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'nl.db'}")
    await store.migrate()
    ke_cert = (world.ke / "keys/tls.crt").read_bytes()
    runtime = NodeRuntime.from_config(
        config,
        directory=world.directory,
        store=store,
        clock=world.clock,
        validator=Validator.default(),
        trusted_client_certs=lambda: [ke_cert],
    )
    assert runtime.tls is not None
    context = presenting_server_ssl_context(
        runtime.tls, trusted_client_certs=runtime.trusted_client_certs
    )
    runner = web.AppRunner(create_exchange_app(runtime))
    await runner.setup()
    assert config.endpoint is not None
    await web.TCPSite(runner, "127.0.0.1", config.endpoint.port, ssl_context=context).start()
    try:
        yield Running(config.endpoint.url, runtime)
    finally:
        await runner.cleanup()
        await store.close()


def _refresh(world: World, running: Running) -> bool:
    """What the node runs after each directory refresh; whether the held keys changed."""
    runtime = running.runtime
    assert runtime.keyring is not None and runtime.tls is not None
    directory, now = world.directory(), world.clock.now()
    changed = reload_keys(runtime.keyring, world.nl / "node.toml", "NL", directory, now)
    reload_tls(runtime.tls, world.nl / "node.toml", "NL", directory, now)
    return changed


def _message() -> StoredMessage:
    return StoredMessage(
        id=1, direction="out", message_id=str(uuid4()), sender="KE", recipient="NL",
        certificate_number="KE-2026-0001", certificate_type="851", certificate_status="70",
        content_digest="sha256:" + sha256(PAYLOAD).hexdigest(), payload=PAYLOAD,
        state="pending", route=None, outcome=None, receipt=None, created_at=T0, settled_at=None,
    )  # fmt: skip


async def _send(world: World, running: Running, *, to_key_id: str | None = None) -> Receipt:
    """KE seals to NL's newest encryption key (or `to_key_id`), as its outbox does, posts it
    over mutual TLS and checks the receipt with the keys the directory lists for NL."""
    now = world.clock.now()
    directory = world.directory()
    newest = directory.encryption_key("NL", now)
    key = newest if to_key_id is None else next(
        k for k in directory.nppo("NL").keys if k.key_id == to_key_id
    )  # fmt: skip
    ke_config = load_config(world.ke / "node.toml")
    signing_path = ke_config.path(ke_config.keys.signing)
    ke_signing = load_signing_key(signing_path.read_bytes(), str(signing_path))
    message = _message()
    envelope = seal_message(
        message, country="KE", signing_key=ke_signing, recipient_key=key.x25519(), now=now
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # KE knows NL by the certificates the directory lists for it (two during a rotation).
    listed = [p.certificate for p in directory.nppo("NL").tls_pins if p.valid_at(now)]
    ctx.load_verify_locations(cadata=b"".join(c for c in listed if c).decode())
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the exact one of two, same subject
    ctx.load_cert_chain(world.ke / "keys/tls.crt", world.ke / "keys/tls.key")
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session,
        session.post(
            running.url + ENVELOPES_PATH,
            data=envelope,
            headers={"Content-Type": ENVELOPE_MEDIA_TYPE},
        ) as response,
    ):
        status, data = response.status, await response.read()
    assert status == 200, data
    partner = _partner(directory, "NL", now)
    return verify_receipt_from(
        data,
        expected_message_id=message.message_id,
        expected_digest=message.content_digest,
        receiver="NL",
        sender="KE",
        receiver_keys=partner.signing_keys,
    )


def _ids(node_dir: Path, *, next_: bool) -> tuple[str, str]:
    config = load_config(node_dir / "node.toml")
    keys = config.keys
    signing = keys.next_signing if next_ else keys.signing
    encryption = keys.next_encryption if next_ else keys.encryption
    assert signing is not None and encryption is not None
    s = load_signing_key(config.path(signing).read_bytes(), "s")
    e = load_encryption_key(config.path(encryption).read_bytes(), "e")
    return key_id(s.public_key().public_bytes_raw()), key_id(e.public_key().public_bytes_raw())


def _snapshot(node_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(node_dir)): p.read_bytes()
        for p in sorted(node_dir.rglob("*"))
        if p.is_file() and p.suffix != ".db"
    }


# --- 1. no restart ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_keys_made_while_running_are_loaded_at_the_refresh_that_lists_them(
    world: World, running: Running
) -> None:
    runtime = running.runtime
    old_signing, old_encryption = _ids(world.nl, next_=False)
    assert not runtime.rotating

    # rotate-keys while running; the registry records it but has not published yet.
    rotate_keys(world.nl, now=T1)
    new_signing, new_encryption = _ids(world.nl, next_=True)
    assert _refresh(world, running) is False  # nothing listed that it lacks: no file read
    assert runtime.held_keys.ids == {old_signing, old_encryption}

    world.at(T1)
    signer = world.registry.default_signer()
    assert signer is not None
    raw = (world.nl / "rotation-request.json").read_bytes()
    world.registry.rotate(raw, OVERLAP, T1, "test", signer)
    world.publish(T1)
    world.clock.advance(hours=1)
    # Through the first half of the overlap partners still seal to the old key.
    assert world.directory().encryption_key("NL", world.clock.now()).key_id == old_encryption

    # The directory refresh brings the new keys: the same runtime loads them.
    assert _refresh(world, running) is True
    assert runtime.held_keys.ids == {old_signing, old_encryption, new_signing, new_encryption}
    assert runtime.rotating
    assert (await _send(world, running)).receiver_key_id == old_signing
    world.clock.advance(hours=11)  # halfway through the overlap: the new keys are in use
    assert world.directory().encryption_key("NL", world.clock.now()).key_id == new_encryption
    receipt = await _send(world, running)  # sealed to the NEW key
    assert receipt.receiver_key_id == new_signing  # and answered with the new signing key
    # Envelopes sealed to the old key before the rotation still open in the overlap.
    receipt = await _send(world, running, to_key_id=old_encryption)
    assert receipt.receiver_key_id == new_signing
    assert _refresh(world, running) is False  # loaded once


# --- 2. finishing, and the next rotation ------------------------------------------------------


@pytest.mark.asyncio
async def test_finish_is_refused_in_the_overlap_works_after_and_a_second_rotation_follows(
    world: World, running: Running
) -> None:
    runtime = running.runtime
    old_signing, old_encryption = _ids(world.nl, next_=False)
    old_files = {
        "signing": (world.nl / "keys/signing.key").read_bytes(),
        "encryption": (world.nl / "keys/encryption.key").read_bytes(),
        "tls key": (world.nl / "keys/tls.key").read_bytes(),
        "tls certificate": (world.nl / "keys/tls.crt").read_bytes(),
    }
    old_pin = runtime.tls.presented.pin if runtime.tls else ""
    rotate_keys(world.nl, now=T1)
    world.at(T1)
    # Not yet published: refused, saying to send the request.
    before = _snapshot(world.nl)
    with pytest.raises(RotationFinishError, match=r"rotation-request\.json to the registry"):
        finish_rotation(world.nl, world.directory(), now=world.clock.now())
    assert _snapshot(world.nl) == before

    signer = world.registry.default_signer()
    assert signer is not None
    world.registry.rotate(
        (world.nl / "rotation-request.json").read_bytes(), OVERLAP, T1, "test", signer
    )
    world.publish(T1)
    new_signing, new_encryption = _ids(world.nl, next_=True)
    request_bytes = (world.nl / "rotation-request.json").read_bytes()
    new_files = {
        "signing": (world.nl / "keys/signing.next.key").read_bytes(),
        "encryption": (world.nl / "keys/encryption.next.key").read_bytes(),
    }
    assert _refresh(world, running)

    # In the overlap: refused, nothing changed, and a second rotate-keys is refused too.
    world.clock.advance(hours=12)
    before = _snapshot(world.nl)
    with pytest.raises(RotationFinishError, match="the overlap runs until"):
        finish_rotation(world.nl, world.directory(), now=world.clock.now())
    with pytest.raises(IdentityExistsError, match="rotate-keys --finish"):
        rotate_keys(world.nl, now=world.clock.now())
    assert _snapshot(world.nl) == before

    # After the overlap: the next keys become the current ones.
    world.at(T1 + OVERLAP)
    result = finish_rotation(world.nl, world.directory(), now=world.clock.now())
    assert (result.signing_key_id, result.encryption_key_id) == (new_signing, new_encryption)
    config = load_config(world.nl / "node.toml")
    assert config.keys.next_signing is None and config.keys.next_encryption is None
    assert stat.S_IMODE((world.nl / "node.toml").stat().st_mode) == 0o600
    assert (world.nl / "keys/signing.key").read_bytes() == new_files["signing"]
    assert (world.nl / "keys/encryption.key").read_bytes() == new_files["encryption"]
    assert not (world.nl / "keys/signing.next.key").exists()
    assert not (world.nl / "keys/encryption.next.key").exists()
    retired = world.nl / "keys/retired"
    assert stat.S_IMODE(retired.stat().st_mode) == 0o700
    request = world.nl / "rotation-request.json"
    assert not request.exists()  # out of the way of the next rotate-keys, kept here:
    old_tls = "tls-" + old_pin.removeprefix("sha256:")
    assert {p.name: p.read_bytes() for p in retired.iterdir()} == {
        f"signing-{old_signing}.key": old_files["signing"],
        f"encryption-{old_encryption}.key": old_files["encryption"],
        f"{old_tls}.key": old_files["tls key"],
        f"{old_tls}.crt": old_files["tls certificate"],
        f"rotation-request-{new_signing}.json": request_bytes,
    }
    for path in result.retired:
        assert stat.S_IMODE(path.stat().st_mode) == (0o644 if path.suffix == ".crt" else 0o600)
    assert _ids(world.nl, next_=False) == (new_signing, new_encryption)
    with pytest.raises(RotationFinishError, match="no rotation to finish"):
        finish_rotation(world.nl, world.directory(), now=world.clock.now())

    # The running node went on across the promotion: it still signs with the new key, and
    # presents the new certificate, now from the current files.
    world.clock.advance(minutes=30)
    assert _refresh(world, running) is False
    assert runtime.tls is not None and runtime.tls.presented.pin == result.tls_pin
    assert runtime.tls.presented.certificate == world.nl / "keys/tls.crt"
    assert (await _send(world, running)).receiver_key_id == new_signing

    # The second rotation, end to end, the node still running.
    world.at(T2)
    world.rotate(world.nl, T2)
    newest_signing, newest_encryption = _ids(world.nl, next_=True)
    world.clock.advance(minutes=5)
    assert _refresh(world, running) is True
    assert {newest_signing, newest_encryption} <= runtime.held_keys.ids
    world.clock.advance(hours=12)  # halfway through the overlap
    assert world.directory().encryption_key("NL", world.clock.now()).key_id == newest_encryption
    assert (await _send(world, running)).receiver_key_id == newest_signing
    assert len(world.registry.rotations()["NL"]) == 2

    # And the second finish, after its overlap; the first retired keys stay.
    world.at(T2 + OVERLAP)
    finish_rotation(world.nl, world.directory(), now=world.clock.now())
    assert len(list(retired.iterdir())) == 10
    _refresh(world, running)  # the node refreshes every minute
    assert (await _send(world, running)).receiver_key_id == newest_signing


# --- 3. hostile and odd input -------------------------------------------------------------------


def test_a_missing_or_foreign_next_key_is_refused_and_nothing_changes(world: World) -> None:
    world.at(T1)
    world.rotate(world.nl, T1)
    world.at(T1 + OVERLAP)
    now = world.clock.now()
    next_encryption = world.nl / "keys/encryption.next.key"
    genuine = next_encryption.read_bytes()

    # A next key file missing: a KeyFileError naming it, nothing changed.
    next_encryption.rename(world.nl / "moved-away.key")
    before = _snapshot(world.nl)
    with pytest.raises(KeyFileError, match=r"encryption\.next\.key: cannot read"):
        finish_rotation(world.nl, world.directory(), now=now)
    assert _snapshot(world.nl) == before

    # A next key file that is not the key the registry recorded: refused, nothing changed.
    (world.nl / "moved-away.key").unlink()
    next_encryption.write_bytes(private_key_pem(X25519PrivateKey.generate()))
    before = _snapshot(world.nl)
    with pytest.raises(RotationFinishError, match="not the next key files") as refused:
        finish_rotation(world.nl, world.directory(), now=now)
    assert "nothing changed" in str(refused.value)
    assert _snapshot(world.nl) == before

    # A retired file in the way with other content: refused before anything is replaced.
    next_encryption.write_bytes(genuine)
    old_signing, _ = _ids(world.nl, next_=False)
    retired = world.nl / "keys/retired"
    retired.mkdir(mode=0o700)
    (retired / f"signing-{old_signing}.key").write_bytes(b"something else")
    before = _snapshot(world.nl)
    with pytest.raises(RotationFinishError, match="already exists with other content"):
        finish_rotation(world.nl, world.directory(), now=now)
    assert _snapshot(world.nl) == before
    (retired / f"signing-{old_signing}.key").unlink()
    finish_rotation(world.nl, world.directory(), now=now)


def test_a_finish_cut_short_is_completed_by_running_it_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import node.identity.next_keys as next_keys

    old_signing, old_encryption = _ids(world.nl, next_=False)
    old_signing_file = (world.nl / "keys/signing.key").read_bytes()
    world.at(T1)
    world.rotate(world.nl, T1)
    new_ids = _ids(world.nl, next_=True)
    real = next_keys.write_atomic

    def crash_at_the_config(path: Path, data: bytes, mode: int) -> None:
        if path.name == "node.toml":
            raise OSError(28, "No space left on device")
        real(path, data, mode)

    # Cut short after the key files were replaced, before node.toml was.
    monkeypatch.setattr(next_keys, "write_atomic", crash_at_the_config)
    now = T1 + OVERLAP
    with pytest.raises(OSError, match="No space"):
        finish_rotation(world.nl, world.directory(), now=now)
    assert _ids(world.nl, next_=False) == new_ids == _ids(world.nl, next_=True)
    monkeypatch.setattr(next_keys, "write_atomic", real)
    # Run again: the overlap check is not fooled, the retired copies are the OLD keys.
    result = finish_rotation(world.nl, world.directory(), now=now)
    assert (result.signing_key_id, result.encryption_key_id) == new_ids
    retired = world.nl / "keys/retired"
    assert (retired / f"signing-{old_signing}.key").read_bytes() == old_signing_file
    assert (retired / f"encryption-{old_encryption}.key").exists()
    assert load_config(world.nl / "node.toml").keys.next_signing is None
    rotate_keys(world.nl, now=now)  # and the next rotation can start


@pytest.mark.asyncio
async def test_next_key_files_that_do_not_match_the_directory_are_not_loaded_and_logged(
    world: World, running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    rotate_keys(world.nl, now=T1)
    new_signing, new_encryption = _ids(world.nl, next_=True)
    # Someone replaced the next encryption key file after the request was sent.
    (world.nl / "keys/encryption.next.key").write_bytes(
        private_key_pem(X25519PrivateKey.generate())
    )
    world.at(T1)
    signer = world.registry.default_signer()
    assert signer is not None
    world.registry.rotate(
        (world.nl / "rotation-request.json").read_bytes(), OVERLAP, T1, "test", signer
    )
    world.publish(T1)
    with caplog.at_level(logging.WARNING, logger="node.identity.next_keys"):
        assert _refresh(world, running) is True  # the matching signing key is taken
        _refresh(world, running)  # the same situation is logged once, not every minute
    held = running.runtime.held_keys
    assert new_signing in held.signing and new_encryption not in held.encryption
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert new_encryption in warnings[0] and "restore the key files" in warnings[0]
    # A damaged node.toml: logged, the node goes on with what it holds.
    caplog.clear()
    (world.nl / "node.toml").write_text("not toml [")
    world.clock.advance(minutes=1)
    with caplog.at_level(logging.WARNING, logger="node.identity.next_keys"):
        assert _refresh(world, running) is False
    assert "cannot read the keys named in node.toml" in caplog.text
    assert running.runtime.held_keys.ids == held.ids
