"""The sender picks the SPSCertificate version before sealing (node/directory/schemas.py):
with no version in common the message fails for good, with the reason, and is not retried.

A real store (SQLite); the directory is a model; the transport is a stand-in that records
what it was asked to deliver, since no delivery may happen without a common version.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from uuid import uuid4

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from node.clock import FixedClock
from node.crypto.ids import key_id
from node.directory import Directory, KeyEntry, MaintainerSet, NppoEntry, SchemaVersion, TlsPin
from node.outbox.worker import SCHEMA_VERSION, OutboxWorker
from node.store.store import NewMessage, Store
from node.transport.client import TransientDeliveryError

T0 = datetime(2027, 3, 1, tzinfo=UTC)
SIGNING = Ed25519PrivateKey.generate()
PAYLOAD = b"<SPSCertificate/>"  # never read: sealed as it is


class _Transport:
    """Fails every delivery transiently (so a message that gets this far is retried)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def deliver(self, endpoint: str, envelope: bytes, *, pins: frozenset[str]) -> bytes:
        self.asked.append(endpoint)
        raise TransientDeliveryError(f"{endpoint}: down (test)")


def _entry(country: str, *versions: str) -> NppoEntry:
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=365)
    signing = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    encryption = X25519PrivateKey.generate().public_key().public_bytes_raw()
    return NppoEntry(
        country=country,
        name=f"NPPO {country}",
        status="active",
        endpoint=f"https://{country.lower()}.example:8443",
        keys=(
            KeyEntry("signing", signing, key_id(signing), start, end),
            KeyEntry("encryption", encryption, key_id(encryption), start, end),
        ),
        tls_pins=(TlsPin("sha256:" + country.lower() * 32, start, end),),
        schema_versions=versions,
    )


def _directory(*entries: NppoEntry, schemas: tuple[SchemaVersion, ...] = ()) -> Directory:
    return Directory(
        version=1,
        issued=T0 - timedelta(hours=1),
        expires=T0 + timedelta(days=7),
        maintainers=MaintainerSet(1, ()),
        nppos=tuple(sorted(entries, key=lambda e: e.country)),
        hub=None,
        code_lists=(),
        schemas=schemas,
    )


def _message(recipient: str) -> NewMessage:
    return NewMessage(
        message_id=str(uuid4()),
        sender="NL",
        recipient=recipient,
        certificate_number="NL-2027-0001",
        certificate_type="851",
        certificate_status="70",
        content_digest="sha256:" + sha256(PAYLOAD).hexdigest(),
        payload=PAYLOAD,
    )


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'node.db'}")
    await opened.migrate()
    yield opened
    await opened.close()


def _worker(store: Store, directory: Directory, transport: _Transport) -> OutboxWorker:
    return OutboxWorker(
        store,
        transport,
        lambda: directory,
        country="NL",
        signing_key=SIGNING,
        clock=FixedClock(T0),
        rng=random.Random(7),
    )


@pytest.mark.asyncio
async def test_a_partner_speaking_only_an_unsupported_version_fails_for_good(
    store: Store,
) -> None:
    transport = _Transport()
    worker = _worker(store, _directory(_entry("NL", "D17A"), _entry("XX", "D20B")), transport)
    pk = await store.submit(_message("XX"), now=T0)

    assert await worker.run_once() == 1

    message = await store.message(pk)
    assert message.state == "failed"
    events = await store.events(pk)
    assert [e.kind for e in events] == ["submitted", "failed"]
    assert events[-1].detail["error"] == (
        "NL speaks D17A, XX speaks D20B only: no common SPSCertificate version"
    )
    assert transport.asked == []  # never sealed, never sent
    assert await store.pending_count() == 0
    assert await worker.run_once() == 0  # not retried


@pytest.mark.asyncio
async def test_a_shared_version_retired_network_wide_fails_for_good(store: Store) -> None:
    network = (
        SchemaVersion("D17A", datetime(2020, 1, 1, tzinfo=UTC), T0 - timedelta(days=1)),
        SchemaVersion("D20B", datetime(2026, 1, 1, tzinfo=UTC), None),
    )
    directory = _directory(_entry("NL", "D17A"), _entry("XX", "D17A", "D20B"), schemas=network)
    transport = _Transport()
    pk = await store.submit(_message("XX"), now=T0)

    assert await _worker(store, directory, transport).run_once() == 1

    events = await store.events(pk)
    assert (await store.message(pk)).state == "failed"
    assert "NL and XX share D17A, not in force network-wide" in events[-1].detail["error"]
    assert transport.asked == []


@pytest.mark.asyncio
async def test_the_chosen_version_is_in_the_messages_events(store: Store) -> None:
    network = (SchemaVersion("D17A", datetime(2020, 1, 1, tzinfo=UTC), None),)
    partner = _entry("KE", "D16B", "D17A", "D20B")
    transport = _Transport()
    worker = _worker(store, _directory(_entry("NL", "D17A"), partner, schemas=network), transport)
    pk = await store.submit(_message("KE"), now=T0)

    assert await worker.run_once() == 1

    events = await store.events(pk)
    assert [e.kind for e in events] == ["submitted", SCHEMA_VERSION, "retry"]
    assert events[1].detail == {"to": "KE", "version": "D17A"}
    assert transport.asked == [partner.endpoint]
    # A later attempt does not record it again.
    worker = _worker(store, _directory(_entry("NL", "D17A"), partner), transport)  # no `schemas`
    await store.reschedule(pk, now=T0, next_attempt_at=T0, error="again")
    assert await worker.run_once() == 1
    assert [e.kind for e in await store.events(pk)].count(SCHEMA_VERSION) == 1
