"""The inbound exchange endpoint over real mutual TLS on 127.0.0.1, with a real SQLite store.

Identities are made by `init_node`; the directory is signed by a test maintainer and
trusted through `TrustedDirectory`. Each refusal is checked for its status, its
problem+json body, and that nothing was stored.
"""

from __future__ import annotations

import base64
import io
import json
import re
import ssl
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from lxml import etree

from node.certificate.findings import Area, Finding, Level
from node.certificate.model import Certificate
from node.certificate.validate import Report, Validator
from node.clock import FixedClock
from node.crypto.canonical import canonical_bytes
from node.crypto.ids import key_id
from node.directory import MaintainerSet, TrustedDirectory, sign_directory
from node.envelope.envelope import SUITE, EnvelopeHeader, seal, signed_bytes
from node.envelope.receipt import MAX_FINDING_CHARS, MAX_FINDINGS, Outcome, verify_receipt
from node.identity.config import load_config
from node.identity.keys import KeyFileError, load_encryption_key, load_signing_key
from node.identity.store import init_node
from node.runtime import DEFAULT_MAX_ENVELOPE_BYTES, NodeRuntime
from node.store.store import Store
from node.web.exchange import (
    ENVELOPE_MEDIA_TYPE,
    ENVELOPES_PATH,
    HEALTH_PATH,
    RECEIPT_MEDIA_TYPE,
    create_exchange_app,
    judge,
    receipt_findings,
)
from node.web.problems import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from node.web.tls import server_ssl_context
from tests.binding_documents import document

# OpenSSL checks the certificates' validity against the real clock, so the test's time
# is the real one, to the second.
T0 = datetime.now(UTC).replace(microsecond=0)
MAINTAINER = Ed25519PrivateKey.generate()


@dataclass(frozen=True)
class Node:
    """One node identity on disk, and its keys in memory."""

    country: str
    directory: Path
    signing: Ed25519PrivateKey
    encryption: X25519PrivateKey
    cert_path: Path
    key_path: Path
    pin: str

    @property
    def cert_pem(self) -> bytes:
        return self.cert_path.read_bytes()


@dataclass(frozen=True)
class Nodes:
    nl: Node  # the receiver under test
    ke: Node  # the usual sender
    us: Node  # another active NPPO
    cn: Node  # suspended
    fr: Node  # not in the directory, but its certificate is trusted at the TLS layer
    ke_rogue: Node  # a KE certificate whose pin the directory does not list
    stranger: Node  # trusted nowhere


@dataclass
class Server:
    url: str
    store: Store
    clock: FixedClock
    nodes: Nodes
    old_ke_signing: Ed25519PrivateKey


def _make_node(root: Path, country: str, endpoint: str | None = None) -> Node:
    result = init_node(
        root / country.lower(),
        country=country,
        name=f"NPPO {country}",
        endpoint=endpoint,
        now=T0 - timedelta(hours=1),
    )
    config = load_config(result.config)
    return Node(
        country=country,
        directory=result.directory,
        signing=load_signing_key(result.private_keys[0].read_bytes(), "signing"),
        encryption=load_encryption_key(result.private_keys[1].read_bytes(), "encryption"),
        cert_path=result.certificate,
        key_path=config.path(config.keys.tls_key),
        pin=result.tls_pin,
    )


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Nodes:
    root = tmp_path_factory.mktemp("nodes")
    return Nodes(
        nl=_make_node(root, "NL", "https://127.0.0.1:8443"),
        ke=_make_node(root, "KE"),
        us=_make_node(root, "US"),
        cn=_make_node(root, "CN"),
        fr=_make_node(root, "FR"),
        ke_rogue=_make_node(root / "rogue", "KE"),
        stranger=_make_node(root, "BR"),
    )


@pytest.fixture(scope="module")
def old_ke_signing() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator.default()


@pytest.fixture(scope="module")
def phyto_xml(phyto: Certificate) -> bytes:
    """The sample as KE's certificate to NL, as the envelopes here say it is."""
    return document(phyto, number="KE-2026-0001", exporter="KE", importer="NL")


def _time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(kind: str, raw: bytes, start: datetime, end: datetime) -> dict[str, str]:
    return {
        "kind": kind,
        "keyid": key_id(raw),
        "public_key": base64.b64encode(raw).decode(),
        "valid_from": _time(start),
        "valid_until": _time(end),
    }


def _nppo(node: Node, status: str = "active", extra_keys: Iterable[dict[str, str]] = ()) -> Any:
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=365)
    return {
        "country": node.country,
        "name": f"NPPO {node.country}",
        "status": status,
        "endpoint": f"https://{node.country.lower()}.example:8443",
        "keys": [
            _key("signing", node.signing.public_key().public_bytes_raw(), start, end),
            _key("encryption", node.encryption.public_key().public_bytes_raw(), start, end),
            *extra_keys,
        ],
        "tls_pins": [{"pin": node.pin, "valid_from": _time(start), "valid_until": _time(end)}],
        "schema_versions": ["D17A"],
    }


def _signed_directory(nodes: Nodes, old_ke_signing: Ed25519PrivateKey) -> bytes:
    raw = MAINTAINER.public_key().public_bytes_raw()
    # KE's previous signing key, retired yesterday: still listed, no longer valid.
    old = _key(
        "signing",
        old_ke_signing.public_key().public_bytes_raw(),
        T0 - timedelta(days=400),
        T0 - timedelta(days=1),
    )
    plain = {
        "format": 1,
        "version": 1,
        "issued": _time(T0 - timedelta(hours=1)),
        "expires": _time(T0 + timedelta(days=7)),
        "maintainers": {
            "threshold": 1,
            "keys": [
                {"name": "m", "keyid": key_id(raw), "public_key": base64.b64encode(raw).decode()}
            ],
        },
        "nppos": [
            _nppo(nodes.cn, status="suspended"),
            _nppo(nodes.ke, extra_keys=[old]),
            _nppo(nodes.nl),
            _nppo(nodes.us),
        ],
        "hub": None,
        "code_lists": {},
    }
    return sign_directory(plain, [MAINTAINER])


@pytest_asyncio.fixture
async def server(
    nodes: Nodes, old_ke_signing: Ed25519PrivateKey, validator: Validator, tmp_path: Path
) -> AsyncIterator[Server]:
    server, runner = await _start(nodes, old_ke_signing, validator, tmp_path)
    try:
        yield server
    finally:
        await runner.cleanup()
        await server.store.close()


async def _start(
    nodes: Nodes,
    old_ke_signing: Ed25519PrivateKey,
    validator: Validator,
    tmp_path: Path,
) -> tuple[Server, web.AppRunner]:
    clock = FixedClock(T0)
    raw = MAINTAINER.public_key().public_bytes_raw()
    anchor = MaintainerSet.from_plain(
        {
            "threshold": 1,
            "keys": [
                {"name": "m", "keyid": key_id(raw), "public_key": base64.b64encode(raw).decode()}
            ],
        }
    )
    trusted = TrustedDirectory(anchor)
    trusted.update(_signed_directory(nodes, old_ke_signing), T0)
    store = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'nl.db'}")
    await store.migrate()
    peers = [n.cert_pem for n in (nodes.ke, nodes.us, nodes.cn, nodes.fr, nodes.ke_rogue)]
    runtime = NodeRuntime.from_config(
        load_config(nodes.nl.directory / "node.toml"),
        directory=lambda: trusted.usable(clock.now()),
        store=store,
        clock=clock,
        validator=validator,
        trusted_client_certs=lambda: peers,
    )
    assert runtime.tls_certificate is not None and runtime.tls_key is not None
    context = server_ssl_context(
        runtime.tls_certificate, runtime.tls_key, trusted_client_certs=runtime.trusted_client_certs
    )
    runner = web.AppRunner(create_exchange_app(runtime))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    server = Server(f"https://127.0.0.1:{port}", store, clock, nodes, old_ke_signing)
    return server, runner


# --- the minimal sending side -------------------------------------------------------------


def _client_context(server: Node, sender: Node | None) -> ssl.SSLContext:
    """The sender's side: its own certificate, and the receiver's as the only anchor."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # NL's certificate names 127.0.0.1, so the host check stays on; trusting that one
    # self-signed certificate and nothing else pins it.
    ctx.load_verify_locations(cadata=server.cert_pem.decode())
    if sender is not None:
        ctx.load_cert_chain(sender.cert_path, sender.key_path)
    return ctx


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    def problem(self) -> dict[str, Any]:
        assert self.content_type == PROBLEM_MEDIA_TYPE
        doc: dict[str, Any] = json.loads(self.body)
        assert set(doc) == {"type", "title", "status", "detail"}
        assert doc["status"] == self.status
        assert isinstance(doc["title"], str) and doc["title"]
        assert isinstance(doc["detail"], str) and doc["detail"]
        return doc


async def _post(
    server: Server,
    sender: Node | None,
    body: Any,
    content_type: str = ENVELOPE_MEDIA_TYPE,
) -> Answer:
    connector = aiohttp.TCPConnector(ssl=_client_context(server.nodes.nl, sender))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(
            server.url + ENVELOPES_PATH, data=body, headers={"Content-Type": content_type}
        ) as response,
    ):
        return Answer(response.status, response.content_type, await response.read())


def _header(
    *,
    message_id: str,
    from_country: str,
    to_country: str = "NL",
    digest: str = "",
    sender_key: str = "",
    recipient_key: str = "",
) -> EnvelopeHeader:
    return EnvelopeHeader(
        message_id=message_id,
        from_country=from_country,
        to_country=to_country,
        certificate_type="851",
        certificate_status="70",
        certificate_number="KE-2026-0001",
        created=T0,
        content_digest=digest,
        sender_key_id=sender_key,
        recipient_key_id=recipient_key,
    )


def _seal(
    payload: bytes,
    *,
    signer: Ed25519PrivateKey,
    from_country: str = "KE",
    recipient: Node,
    to_country: str = "NL",
    message_id: str | None = None,
) -> bytes:
    return seal(
        header=_header(
            message_id=message_id or str(uuid.uuid4()),
            from_country=from_country,
            to_country=to_country,
        ),
        payload=payload,
        sender_signing_key=signer,
        recipient_public_key=recipient.encryption.public_key(),
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _wire(header: bytes, ciphertext: bytes, signature: bytes) -> bytes:
    return canonical_bytes(
        {"ciphertext": _b64(ciphertext), "header": _b64(header), "signature": _b64(signature)}
    )


def _parts(envelope: bytes) -> tuple[bytes, bytes, bytes]:
    doc = json.loads(envelope)
    return _unb64(doc["header"]), _unb64(doc["ciphertext"]), _unb64(doc["signature"])


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


async def _nothing_stored(server: Server) -> None:
    assert await server.store.messages("in") == []


def _receipt_of(server: Server, answer: Answer, envelope: bytes) -> Any:
    header = json.loads(_parts(envelope)[0])
    assert answer.status == 200, answer.body
    assert answer.content_type == RECEIPT_MEDIA_TYPE
    return verify_receipt(
        answer.body,
        expected_message_id=header["message_id"],
        expected_digest=header["content_digest"],
        receiver_public_key=server.nodes.nl.signing.public_key(),
    )


# --- accepted, repeated, rejected -------------------------------------------------------


@pytest.mark.asyncio
async def test_health_answers_with_the_country(server: Server) -> None:
    connector = aiohttp.TCPConnector(ssl=_client_context(server.nodes.nl, server.nodes.ke))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(server.url + HEALTH_PATH) as response,
    ):
        assert response.status == 200
        assert await response.json() == {"country": "NL", "status": "ok"}


@pytest.mark.asyncio
async def test_valid_ephyto_is_accepted_stored_once_and_a_repeat_gets_the_same_receipt(
    server: Server, phyto_xml: bytes
) -> None:
    ke = server.nodes.ke
    envelope = _seal(phyto_xml, signer=ke.signing, recipient=server.nodes.nl)

    first = await _post(server, ke, envelope)
    receipt = _receipt_of(server, first, envelope)
    assert receipt.outcome is Outcome.ACCEPTED
    assert receipt.findings == ()
    assert (receipt.from_country, receipt.to_country) == ("NL", "KE")
    assert receipt.received == T0

    server.clock.advance(minutes=5)  # a retry later must still get the original receipt
    again = await _post(server, ke, envelope)
    assert again.status == 200
    assert again.body == first.body

    stored = await server.store.messages("in")
    assert len(stored) == 1
    assert stored[0].payload == phyto_xml
    assert (stored[0].sender, stored[0].recipient, stored[0].outcome) == ("KE", "NL", "accepted")
    assert stored[0].receipt == first.body


@pytest.mark.asyncio
async def test_invalid_ephyto_gets_a_rejected_receipt_and_is_kept_for_audit(
    server: Server, phyto_xml: bytes
) -> None:
    broken = re.sub(rb"<ram:ScientificName>.*?</ram:ScientificName>", b"", phyto_xml)
    envelope = _seal(broken, signer=server.nodes.ke.signing, recipient=server.nodes.nl)

    answer = await _post(server, server.nodes.ke, envelope)

    receipt = _receipt_of(server, answer, envelope)
    assert receipt.outcome is Outcome.REJECTED
    assert receipt.findings
    assert all(f.startswith("SEVERE MandatoryElements") for f in receipt.findings)
    assert any("ScientificName" in f for f in receipt.findings)
    stored = await server.store.messages("in")
    assert [(m.outcome, m.payload) for m in stored] == [("rejected", broken)]


# --- refusals: TLS identity ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_client_without_certificate_fails_the_handshake(
    server: Server, phyto_xml: bytes
) -> None:
    envelope = _seal(phyto_xml, signer=server.nodes.ke.signing, recipient=server.nodes.nl)
    with pytest.raises(aiohttp.ClientError):
        await _post(server, None, envelope)
    await _nothing_stored(server)


@pytest.mark.asyncio
async def test_a_certificate_the_node_does_not_know_fails_the_handshake(
    server: Server, phyto_xml: bytes
) -> None:
    envelope = _seal(phyto_xml, signer=server.nodes.ke.signing, recipient=server.nodes.nl)
    with pytest.raises(aiohttp.ClientError):
        await _post(server, server.nodes.stranger, envelope)
    await _nothing_stored(server)


@pytest.mark.asyncio
async def test_an_nppo_missing_from_the_directory_is_refused(
    server: Server, phyto_xml: bytes
) -> None:
    fr = server.nodes.fr
    envelope = _seal(phyto_xml, signer=fr.signing, from_country="FR", recipient=server.nodes.nl)
    answer = await _post(server, fr, envelope)
    assert answer.status == 403
    assert answer.problem()["type"] == PROBLEM_BASE + "unknown-tls-client"
    await _nothing_stored(server)


@pytest.mark.asyncio
async def test_a_tls_pin_the_directory_does_not_list_is_refused(
    server: Server, phyto_xml: bytes
) -> None:
    # A genuine KE envelope, but over a KE certificate whose pin is not in the directory.
    envelope = _seal(phyto_xml, signer=server.nodes.ke.signing, recipient=server.nodes.nl)
    answer = await _post(server, server.nodes.ke_rogue, envelope)
    assert answer.status == 403
    problem = answer.problem()
    assert problem["type"] == PROBLEM_BASE + "unknown-tls-client"
    assert server.nodes.ke_rogue.pin in problem["detail"]
    await _nothing_stored(server)


@pytest.mark.asyncio
async def test_from_other_than_the_tls_client_is_refused(server: Server, phyto_xml: bytes) -> None:
    us = server.nodes.us
    envelope = _seal(phyto_xml, signer=us.signing, from_country="US", recipient=server.nodes.nl)
    answer = await _post(server, server.nodes.ke, envelope)
    assert answer.status == 403
    assert answer.problem()["type"] == PROBLEM_BASE + "sender-mismatch"
    await _nothing_stored(server)


@pytest.mark.asyncio
async def test_a_suspended_nppo_is_refused(server: Server, phyto_xml: bytes) -> None:
    cn = server.nodes.cn
    envelope = _seal(phyto_xml, signer=cn.signing, from_country="CN", recipient=server.nodes.nl)
    answer = await _post(server, cn, envelope)
    assert answer.status == 403
    assert answer.problem()["type"] == PROBLEM_BASE + "sender-not-active"
    await _nothing_stored(server)


# --- refusals: the envelope ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_unknown_signing_key_is_refused(server: Server, phyto_xml: bytes) -> None:
    stranger_key = Ed25519PrivateKey.generate()
    envelope = _seal(phyto_xml, signer=stranger_key, recipient=server.nodes.nl)
    answer = await _post(server, server.nodes.ke, envelope)
    assert answer.status == 401
    assert answer.problem()["type"] == PROBLEM_BASE + "unknown-sender-key"
    await _nothing_stored(server)


@pytest.mark.asyncio
async def test_a_signing_key_outside_its_validity_is_refused(
    server: Server, phyto_xml: bytes
) -> None:
    envelope = _seal(phyto_xml, signer=server.old_ke_signing, recipient=server.nodes.nl)
    answer = await _post(server, server.nodes.ke, envelope)
    assert answer.status == 401
    assert answer.problem()["type"] == PROBLEM_BASE + "sender-key-not-valid"
    await _nothing_stored(server)


@pytest.mark.asyncio
@pytest.mark.parametrize("part", ["signature", "ciphertext", "header"])
async def test_a_tampered_envelope_fails_the_signature(
    server: Server, phyto_xml: bytes, part: str
) -> None:
    header, ciphertext, signature = _parts(
        _seal(phyto_xml, signer=server.nodes.ke.signing, recipient=server.nodes.nl)
    )
    if part == "signature":
        signature = _flip(signature, 0)
    elif part == "ciphertext":
        ciphertext = _flip(ciphertext, len(ciphertext) - 1)
    else:
        header = header.replace(b"KE-2026-0001", b"KE-2026-0002")
    answer = await _post(server, server.nodes.ke, _wire(header, ciphertext, signature))
    assert answer.status == 401
    assert answer.problem()["type"] == PROBLEM_BASE + "bad-signature"
    await _nothing_stored(server)


@pytest.mark.asyncio
async def test_a_ciphertext_broken_before_signing_is_unreadable(
    server: Server, phyto_xml: bytes
) -> None:
    # The sender's own bug: it signs a ciphertext that does not decrypt.
    ke = server.nodes.ke
    header, ciphertext, _ = _parts(_seal(phyto_xml, signer=ke.signing, recipient=server.nodes.nl))
    broken = _flip(ciphertext, len(ciphertext) - 1)
    envelope = _wire(header, broken, ke.signing.sign(signed_bytes(header, broken)))
    answer = await _post(server, ke, envelope)
    assert answer.status == 422
    assert answer.problem()["type"] == PROBLEM_BASE + "decryption-failed"
    await _nothing_stored(server)


@pytest.mark.asyncio
async def test_a_digest_that_does_not_match_the_content_is_refused(
    server: Server, phyto_xml: bytes
) -> None:
    ke, nl = server.nodes.ke, server.nodes.nl
    header = _header(
        message_id=str(uuid.uuid4()),
        from_country="KE",
        digest="sha256:" + "0" * 64,
        sender_key=key_id(ke.signing.public_key().public_bytes_raw()),
        recipient_key=key_id(nl.encryption.public_key().public_bytes_raw()),
    ).to_bytes()
    ciphertext = SUITE.encrypt(phyto_xml, nl.encryption.public_key(), info=header)
    envelope = _wire(header, ciphertext, ke.signing.sign(signed_bytes(header, ciphertext)))
    answer = await _post(server, ke, envelope)
    assert answer.status == 422
    assert answer.problem()["type"] == PROBLEM_BASE + "digest-mismatch"
    await _nothing_stored(server)


@pytest.mark.asyncio
async def test_an_envelope_for_another_node_is_misdirected(
    server: Server, phyto_xml: bytes
) -> None:
    envelope = _seal(
        phyto_xml, signer=server.nodes.ke.signing, recipient=server.nodes.us, to_country="US"
    )
    answer = await _post(server, server.nodes.ke, envelope)
    assert answer.status == 421
    assert answer.problem()["type"] == PROBLEM_BASE + "wrong-recipient"
    await _nothing_stored(server)


@pytest.mark.asyncio
async def test_a_reused_message_id_with_other_content_is_a_replay(
    server: Server, phyto_xml: bytes
) -> None:
    ke, nl = server.nodes.ke, server.nodes.nl
    message_id = str(uuid.uuid4())
    first = _seal(phyto_xml, signer=ke.signing, recipient=nl, message_id=message_id)
    assert (await _post(server, ke, first)).status == 200
    before = await server.store.messages("in")

    other = phyto_xml.replace(b"Heereweg 120", b"Heereweg 121")  # same header, other content
    answer = await _post(
        server, ke, _seal(other, signer=ke.signing, recipient=nl, message_id=message_id)
    )

    assert answer.status == 409
    assert answer.problem()["type"] == PROBLEM_BASE + "replayed-message-id"
    assert await server.store.messages("in") == before
    assert before[0].payload == phyto_xml


@pytest.mark.asyncio
async def test_garbage_is_malformed(server: Server) -> None:
    answer = await _post(server, server.nodes.ke, b'{"not": "an envelope"')
    assert answer.status == 400
    assert answer.problem()["type"] == PROBLEM_BASE + "malformed-envelope"
    await _nothing_stored(server)


@pytest.mark.asyncio
async def test_another_envelope_version_is_unsupported(server: Server) -> None:
    header = canonical_bytes({"version": "ephyto-envelope/2"})
    answer = await _post(server, server.nodes.ke, _wire(header, bytes(48), bytes(64)))
    assert answer.status == 400
    assert answer.problem()["type"] == PROBLEM_BASE + "unsupported-version"
    await _nothing_stored(server)


@pytest.mark.asyncio
async def test_another_media_type_is_refused(server: Server, phyto_xml: bytes) -> None:
    envelope = _seal(phyto_xml, signer=server.nodes.ke.signing, recipient=server.nodes.nl)
    answer = await _post(server, server.nodes.ke, envelope, content_type="application/json")
    assert answer.status == 415
    assert answer.problem()["type"] == PROBLEM_BASE + "unsupported-media-type"
    await _nothing_stored(server)


@pytest.mark.asyncio
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_an_oversized_body_is_refused(server: Server, framing: str) -> None:
    size = DEFAULT_MAX_ENVELOPE_BYTES + 1
    # With a Content-Length the node refuses before reading; chunked, it stops reading
    # at the limit (aiohttp's client_max_size).
    body: Any = io.BytesIO(b"x" * size) if framing == "content-length" else _chunks(size)
    answer = await _post(server, server.nodes.ke, body)
    assert answer.status == 413
    assert answer.problem()["type"] == PROBLEM_BASE + "envelope-too-large"
    await _nothing_stored(server)


async def _chunks(size: int) -> AsyncIterator[bytes]:
    chunk = b"x" * 65536
    for start in range(0, size, len(chunk)):
        yield chunk[: size - start]


@pytest.mark.asyncio
async def test_an_expired_directory_makes_the_node_unavailable(
    server: Server, phyto_xml: bytes
) -> None:
    server.clock.advance(days=8)
    envelope = _seal(phyto_xml, signer=server.nodes.ke.signing, recipient=server.nodes.nl)
    answer = await _post(server, server.nodes.ke, envelope)
    assert answer.status == 503
    assert answer.problem()["type"] == PROBLEM_BASE + "directory-unavailable"
    await _nothing_stored(server)


def test_problem_types_are_the_documented_ones() -> None:
    # docs/protocol.md Part E lists exactly these; a new one must be documented there.
    from node.web.problems import PROBLEMS

    documented = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
    text = documented.read_text(encoding="utf-8")
    for _, problem in PROBLEMS:
        assert f"`{problem.slug}`" in text, problem.slug


# --- the pure parts: outcome and findings, runtime construction ---------------------------


def test_warnings_accept_with_warnings_and_severe_rejects() -> None:
    root = etree.Element("root")
    warning = Finding(Level.WARNING, Area.MAPPING, "unit code is deprecated")
    severe = Finding(Level.SEVERE, Area.MANDATORY, "no consignor")
    assert judge(Report((), root)) == (Outcome.ACCEPTED, ())
    assert judge(Report((warning,), root)) == (Outcome.ACCEPTED_WITH_WARNINGS, (str(warning),))
    assert judge(Report((warning, severe), root))[0] is Outcome.REJECTED
    # Refused before any finding could be located (no root): still a reason to give.
    outcome, findings = judge(Report(()))
    assert outcome is Outcome.REJECTED and findings


def test_receipt_findings_are_single_bounded_lines() -> None:
    lines = receipt_findings(["a\nb\u2028c", "x" * 600, *(["f"] * 200)])
    assert lines[0] == "a b c"
    assert len(lines[1]) == MAX_FINDING_CHARS and lines[1].endswith("...")
    assert len(lines) == MAX_FINDINGS
    assert lines[-1] == f"... and {202 - (MAX_FINDINGS - 1)} more findings"


def test_runtime_from_config_names_a_missing_key_file(nodes: Nodes, tmp_path: Path) -> None:
    config = load_config(nodes.us.directory / "node.toml")
    moved = replace(config, directory=tmp_path)  # the keys are not there
    with pytest.raises(KeyFileError, match=r"signing\.key"):
        NodeRuntime.from_config(
            moved,
            directory=lambda: pytest.fail("not called"),
            store=Store.open(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"),
            clock=FixedClock(T0),
            validator=None,
        )
