"""The response document (`ephyto-response` 1), its header kind, and the test vector."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from node.crypto.canonical import canonical_bytes
from node.envelope.envelope import EnvelopeHeader, open_envelope, peek_header
from node.envelope.errors import MalformedHeaderError
from node.envelope.response import (
    RESPONSE_MEDIA_TYPE,
    Decision,
    MalformedResponseError,
    Response,
)

VECTOR = json.loads(
    (Path(__file__).parents[1] / "vectors" / "response-v1.json").read_text(encoding="utf-8")
)
AT = datetime(2026, 11, 22, 14, 30, tzinfo=UTC)
CERT_ID = "0b6f4d0e-4d2a-4c1e-9a57-3f8d2b1c6e90"


def _doc(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "format": "ephyto-response",
        "version": 1,
        "certificate_number": "NL-2026-000123",
        "certificate_message_id": CERT_ID,
        "decision": "accepted",
        "responded_at": "2026-11-22T14:30:00Z",
    }
    value.update(changes)
    return {k: v for k, v in value.items() if v is not None}


@pytest.mark.parametrize(
    ("decision", "text"),
    [
        (Decision.ACCEPTED, None),
        (Decision.REJECTED, "no treatment"),
        (Decision.CORRECTION_REQUESTED, "fix the botanical name"),
    ],
)
def test_round_trip(decision: Decision, text: str | None) -> None:
    response = Response(
        certificate_number="NL-1",
        certificate_message_id=CERT_ID,
        decision=decision,
        responded_at=AT,
        text=text,
    )
    assert Response.from_bytes(response.to_bytes()) == response


def test_each_decision_names_its_text_member() -> None:
    rejected = Response(
        certificate_number="NL-1",
        certificate_message_id=CERT_ID,
        decision=Decision.REJECTED,
        responded_at=AT,
        text="why",
    )
    corrected = Response(
        certificate_number="NL-1",
        certificate_message_id=CERT_ID,
        decision=Decision.CORRECTION_REQUESTED,
        responded_at=AT,
        text="what",
    )
    assert json.loads(rejected.to_bytes())["reason"] == "why"
    assert "text" not in json.loads(rejected.to_bytes())
    assert json.loads(corrected.to_bytes())["text"] == "what"
    assert "reason" not in json.loads(corrected.to_bytes())


@pytest.mark.parametrize(
    ("decision", "text"),
    [
        (Decision.REJECTED, None),
        (Decision.REJECTED, ""),
        (Decision.REJECTED, "two\nlines"),
        (Decision.CORRECTION_REQUESTED, None),
        (Decision.CORRECTION_REQUESTED, "x" * 2001),
        (Decision.ACCEPTED, "accepted needs no reason"),
    ],
)
def test_text_rules_are_enforced_at_construction(decision: Decision, text: str | None) -> None:
    with pytest.raises(MalformedResponseError):
        Response(
            certificate_number="NL-1",
            certificate_message_id=CERT_ID,
            decision=decision,
            responded_at=AT,
            text=text,
        )


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        (_doc(format="ephyto-certificate"), "format"),
        (_doc(version=2), "version"),
        (_doc(version="1"), "version"),
        (_doc(version=True), "version"),
        (_doc(decision="maybe"), "decision"),
        (_doc(decision=None), "decision"),
        (_doc(decision="rejected"), "lacks member(s) reason"),
        (_doc(decision="rejected", text="wrong member"), "reason"),
        (_doc(reason="accepted has no reason"), "unknown member(s) reason"),
        (_doc(extra="x"), "unknown member(s) extra"),
        (_doc(certificate_message_id="not-a-uuid"), "certificate_message_id"),
        (_doc(certificate_message_id=None), "lacks member(s) certificate_message_id"),
        (_doc(certificate_number=""), "certificate_number"),
        (_doc(certificate_number="a\u2028b"), "certificate_number"),
        (_doc(certificate_number=7), "not a string"),
        (_doc(responded_at="2026-11-22T14:30:00+01:00"), "responded_at"),
        (_doc(responded_at="2026-02-30T14:30:00Z"), "real date"),
    ],
)
def test_hostile_documents_are_refused(document: dict[str, Any], needle: str) -> None:
    with pytest.raises(MalformedResponseError, match=re.escape(needle)):
        Response.from_bytes(canonical_bytes(document))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b"\xff\xfe",
        b'{"a":1,"a":1}',
        canonical_bytes(_doc()) + b"\n",
        json.dumps(_doc()).encode(),  # not canonical: spaces
        b"[" * 100000 + b"]" * 100000,
        b'{"format":"' + b"x" * 20000 + b'"}',
    ],
)
def test_bytes_that_are_not_a_canonical_object_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        Response.from_bytes(data)


def _header(**changes: Any) -> EnvelopeHeader:
    values: dict[str, Any] = {
        "message_id": "5d1c2b3a-9e8f-4a7b-8c6d-2e1f0a9b8c7d",
        "from_country": "US",
        "to_country": "NL",
        "certificate_type": "851",
        "certificate_status": "70",
        "certificate_number": "NL-2026-000123",
        "created": AT,
        "media_type": RESPONSE_MEDIA_TYPE,
        "kind": "response",
        "content_digest": "sha256:" + "0" * 64,
        "sender_key_id": "0" * 32,
        "recipient_key_id": "1" * 32,
    }
    values.update(changes)
    return EnvelopeHeader(**values)


def test_a_response_header_has_kind_and_a_certificate_header_has_none() -> None:
    response = json.loads(_header().to_bytes())
    certificate = json.loads(_header(kind="certificate", media_type="application/xml").to_bytes())
    assert response["kind"] == "response"
    assert "kind" not in certificate
    assert EnvelopeHeader.from_bytes(_header().to_bytes()).kind == "response"


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "answer"},
        {"media_type": "application/xml"},  # a response's media type is its own
        {"kind": "certificate"},  # ... and only a response carries it
    ],
)
def test_kind_and_media_type_go_together(changes: dict[str, Any]) -> None:
    with pytest.raises(MalformedHeaderError):
        _header(**changes)


def test_a_kind_member_other_than_response_is_refused_on_the_wire() -> None:
    value = json.loads(_header(kind="certificate", media_type="application/xml").to_bytes())
    value["kind"] = "certificate"
    with pytest.raises(MalformedHeaderError, match="kind"):
        EnvelopeHeader.from_bytes(canonical_bytes(value))


# The committed vector (tests/vectors/response-v1.json)


def test_vector_document_bytes_are_reproduced_exactly() -> None:
    given = VECTOR["response"]
    response = Response(
        certificate_number=given["certificate_number"],
        certificate_message_id=given["certificate_message_id"],
        decision=Decision(given["decision"]),
        responded_at=datetime.strptime(given["responded_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=UTC
        ),
        text=given["reason"],
    )
    assert response.to_bytes() == VECTOR["response_bytes_utf8"].encode("utf-8")
    assert canonical_bytes(given) == response.to_bytes()


def test_vector_header_bytes_are_canonical_and_parse() -> None:
    header_bytes = VECTOR["header_bytes_utf8"].encode("utf-8")
    assert canonical_bytes(VECTOR["header"]) == header_bytes
    header = EnvelopeHeader.from_bytes(header_bytes)
    assert header.to_bytes() == header_bytes
    assert (header.kind, header.media_type) == ("response", RESPONSE_MEDIA_TYPE)


def test_vector_envelope_opens_to_the_response() -> None:
    envelope = base64.b64decode(VECTOR["envelope_base64"])
    responder = Ed25519PrivateKey.from_private_bytes(
        bytes.fromhex(VECTOR["responder"]["ed25519_seed_hex"])
    ).public_key()
    exporter = X25519PrivateKey.from_private_bytes(
        bytes.fromhex(VECTOR["exporter"]["x25519_private_hex"])
    )
    assert peek_header(envelope, max_bytes=1 << 20).kind == "response"
    opened = open_envelope(
        envelope,
        max_bytes=1 << 20,
        recipient_country="NL",
        recipient_private_key=exporter,
        recipient_key_id=VECTOR["exporter"]["key_id"],
        resolve_sender_key=lambda country, key: responder,
    )
    assert opened.header_bytes == VECTOR["header_bytes_utf8"].encode("utf-8")
    assert opened.payload == VECTOR["response_bytes_utf8"].encode("utf-8")
    response = Response.from_bytes(opened.payload)
    assert response.decision is Decision.REJECTED
    assert response.certificate_message_id == CERT_ID
