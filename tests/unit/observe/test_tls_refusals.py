"""A TLS client refused at the handshake: its certificate read from the handshake
message (hostile bytes refused quietly), its pin logged once per hour."""

from __future__ import annotations

import logging
import ssl
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from node.crypto.ids import tls_pin
from node.observe.formatting import FIELDS
from node.observe.tls_refusals import RefusalWatcher, due, first_certificate


def _certificate(name: str = "stranger") -> x509.Certificate:
    key = Ed25519PrivateKey.generate()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .sign(key, None)
    )


def _u24(n: int) -> bytes:
    return n.to_bytes(3, "big")


def _message(der: bytes, *, tls13: bool) -> bytes:
    entry = _u24(len(der)) + der + (b"\x00\x00" if tls13 else b"")
    body = (b"\x00" if tls13 else b"") + _u24(len(entry)) + entry
    return b"\x0b" + _u24(len(body)) + body


@pytest.mark.parametrize("tls13", [True, False])
def test_the_first_certificate_is_read_from_either_version(tls13: bool) -> None:
    der = _certificate().public_bytes(Encoding.DER)
    assert first_certificate(_message(der, tls13=tls13), tls13=tls13) == der


def test_an_empty_certificate_list_is_no_certificate() -> None:
    assert first_certificate(b"\x0b" + _u24(4) + b"\x00" + _u24(0), tls13=True) == b""


@pytest.mark.parametrize(
    "message",
    [b"", b"\x0b", b"\x0c\x00\x00\x00", b"\x0b\x00\x00\x10\x00", b"\x0b\x00\x00\x01\x00"],
)
def test_broken_messages_are_not_read(message: bytes) -> None:
    assert first_certificate(message, tls13=True) is None


@given(st.binary(max_size=200), st.booleans())
def test_any_bytes_give_bytes_or_none_never_an_exception(data: bytes, tls13: bool) -> None:
    found = first_certificate(data, tls13=tls13)
    assert found is None or isinstance(found, bytes)


def test_due_once_an_hour() -> None:
    assert due(None, 5.0)
    assert not due(5.0, 3000.0)
    assert due(5.0, 3605.0)


def test_a_refused_client_is_logged_once_per_pin_per_hour(caplog: pytest.LogCaptureFixture) -> None:
    trusted = _certificate("friend").public_bytes(Encoding.DER)
    stranger, other = _certificate(), _certificate("other")
    now = [100.0]
    watcher = RefusalWatcher(lambda der: der == trusted, clock=lambda: now[0])
    stranger_message = _message(stranger.public_bytes(Encoding.DER), tls13=True)
    caplog.set_level(logging.WARNING, "node.web.tls")

    def handshake(message: bytes) -> None:
        watcher.on_message(None, "read", ssl.TLSVersion.TLSv1_3, 22, 11, message)

    handshake(stranger_message)
    handshake(stranger_message)  # the same client again within the hour: no second line
    handshake(_message(trusted, tls13=True))  # trusted: not a refusal
    handshake(_message(other.public_bytes(Encoding.DER), tls13=True))
    handshake(b"\x0b\x00\x00\x09garbage!!")  # a certificate that does not parse: quiet
    watcher.on_message(None, "write", ssl.TLSVersion.TLSv1_3, 22, 11, stranger_message)
    now[0] += 3600
    handshake(stranger_message)
    pins = [getattr(r, FIELDS)["pin"] for r in caplog.records]
    assert pins == [tls_pin(stranger), tls_pin(other), tls_pin(stranger)]
    assert all("not one the directory lists" in r.getMessage() for r in caplog.records)
