"""Node identity: keys, TLS certificate, enrolment request and its proofs, config, store."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import stat
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st

from node.crypto.canonical import canonical_bytes
from node.crypto.ids import key_id, tls_pin
from node.errors import ConfigError, InputError
from node.identity import store
from node.identity.config import (
    dump_config,
    listen_address,
    load_config,
    new_config,
    parse_config,
)
from node.identity.enrolment import (
    CONTEXT_ENCRYPTION,
    CONTEXT_SIGNING,
    CONTEXT_TLS,
    EnrolmentError,
    build_request,
    parse_endpoint,
    verify_request,
)
from node.identity.keys import (
    TLS_SIGNATURE,
    KeyFileError,
    NodeKeys,
    build_tls_certificate,
    certificate_pem,
    edwards_candidates,
    generate_keys,
    is_low_order_ed25519,
    is_low_order_x25519,
    keys_from_seeds,
    load_certificate,
    load_encryption_key,
    load_signing_key,
    load_tls_key,
    private_key_pem,
)
from node.identity.store import IdentityExistsError, init_node

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "enrolment-v1.json"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(days=730)
SEEDS = (bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96)))
P = 2**255 - 19


def _keys() -> NodeKeys:
    return keys_from_seeds(*SEEDS)


def _request(
    keys: NodeKeys | None = None, endpoint: str | None = "https://node.nl.example:8443"
) -> bytes:
    keys = keys or _keys()
    host = parse_endpoint(endpoint).host if endpoint else None
    cert = build_tls_certificate(
        keys.tls, country="NL", name="NVWA", host=host, not_before=NOW, not_after=LATER
    )
    return build_request(
        keys,
        cert,
        country="NL",
        name="NVWA",
        endpoint=endpoint,
        created=NOW,
        valid_from=NOW,
        valid_until=LATER,
    )


def _resign(keys: NodeKeys, body: dict[str, Any], twin: Ed25519PrivateKey | None = None) -> bytes:
    """A request over `body` with valid proofs, made independently of build_request."""
    message = canonical_bytes(body)
    twin = twin or keys.encryption_twin
    assert twin is not None
    proofs = {
        "signing_key": base64.b64encode(keys.signing.sign(CONTEXT_SIGNING + message)).decode(),
        "encryption_key": base64.b64encode(twin.sign(CONTEXT_ENCRYPTION + message)).decode(),
        "tls": base64.b64encode(keys.tls.sign(CONTEXT_TLS + message, TLS_SIGNATURE)).decode(),
    }
    return canonical_bytes({"body": body, "proofs": proofs})


def _document() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(_request())
    return result


# --- keys and certificate ---------------------------------------------------------


def test_encryption_key_and_its_twin_share_the_scalar() -> None:
    keys = generate_keys()
    assert keys.encryption_twin is not None
    twin = keys.encryption_twin.public_key().public_bytes_raw()
    assert twin in edwards_candidates(keys.encryption.public_key().public_bytes_raw())


@pytest.mark.parametrize(
    "u",
    [0, 1, P - 1, 325606250916557431795983626356110631294008115727848805560023387167927233504],
)
def test_low_order_x25519_keys_are_refused(u: int) -> None:
    assert is_low_order_x25519(u.to_bytes(32, "little"))
    with pytest.raises(ValueError, match="low order"):
        edwards_candidates(u.to_bytes(32, "little"))


def test_non_canonical_x25519_key_is_refused() -> None:
    good = generate_keys().encryption.public_key().public_bytes_raw()
    top_bit = bytes([*good[:31], good[31] | 0x80])
    with pytest.raises(ValueError, match="canonically"):
        edwards_candidates(top_bit)


def test_low_order_ed25519_keys_are_detected() -> None:
    identity = (1).to_bytes(32, "little")
    order_two = (P - 1).to_bytes(32, "little")
    assert is_low_order_ed25519(identity)
    assert is_low_order_ed25519(order_two)
    assert not is_low_order_ed25519(generate_keys().signing.public_key().public_bytes_raw())


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("node.nl.example", x509.DNSName("node.nl.example")),
        ("127.0.0.1", x509.IPAddress(ip_address("127.0.0.1"))),
        ("[::1]", x509.IPAddress(ip_address("::1"))),
        (None, x509.DNSName("ke.ephyto.invalid")),
    ],
)
def test_certificate_names_the_endpoint_host(host: str | None, expected: x509.GeneralName) -> None:
    keys = _keys()
    cert = build_tls_certificate(
        keys.tls, country="KE", name="KEPHIS", host=host, not_before=NOW, not_after=LATER
    )
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [expected]
    assert cert.not_valid_before_utc == NOW
    assert cert.not_valid_after_utc == LATER
    assert cert.public_key() == keys.tls.public_key()
    cert.verify_directly_issued_by(cert)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_pem_round_trips_and_loaders_refuse_the_wrong_kind() -> None:
    keys = _keys()
    assert load_signing_key(private_key_pem(keys.signing), "s").public_key() == (
        keys.signing.public_key()
    )
    assert load_encryption_key(private_key_pem(keys.encryption), "e").public_key() == (
        keys.encryption.public_key()
    )
    assert load_tls_key(private_key_pem(keys.tls), "t").public_key() == keys.tls.public_key()
    with pytest.raises(KeyFileError, match=r"^e\.key: not an X25519 private key$"):
        load_encryption_key(private_key_pem(keys.signing), "e.key")
    with pytest.raises(KeyFileError, match="not an Ed25519"):
        load_signing_key(private_key_pem(keys.tls), "s.key")
    with pytest.raises(KeyFileError, match="not an ECDSA P-256"):
        load_tls_key(private_key_pem(keys.encryption), "t.key")
    with pytest.raises(KeyFileError, match="not a PEM private key"):
        load_signing_key(b"garbage", "s.key")
    with pytest.raises(KeyFileError, match=r"not a PEM X\.509"):
        load_certificate(b"garbage", "c.crt")


def test_python_ssl_does_mutual_tls_with_the_generated_material(tmp_path: Path) -> None:
    """A real TLS 1.3 handshake (in memory) between two nodes pinning each other's cert."""
    a, b = init_pair(tmp_path)

    def context(side: int, me: store.InitResult, peer: store.InitResult) -> ssl.SSLContext:
        ctx = ssl.SSLContext(side)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(me.certificate, me.private_keys[2])
        ctx.load_verify_locations(cadata=peer.certificate.read_text())
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    server_ctx = context(ssl.PROTOCOL_TLS_SERVER, a, b)
    client_ctx = context(ssl.PROTOCOL_TLS_CLIENT, b, a)
    assert client_ctx.check_hostname
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    done = {"server": False, "client": False}
    for _ in range(10):
        for name, conn, out, peer_in in (
            ("client", client, c_out, s_in),
            ("server", server, s_out, c_in),
        ):
            if not done[name]:
                try:
                    conn.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done.values()):
            break
    assert all(done.values())
    assert server.getpeercert(binary_form=True) == x509.load_pem_x509_certificate(
        b.certificate.read_bytes()
    ).public_bytes(Encoding.DER)


def init_pair(tmp_path: Path) -> tuple[store.InitResult, store.InitResult]:
    a = init_node(tmp_path / "a", country="NL", name="A", endpoint="https://127.0.0.1:1", now=NOW)
    b = init_node(tmp_path / "b", country="KE", name="B", endpoint=None, now=NOW)
    return a, b


# --- enrolment request --------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["https://node.nl.example:8443", "https://[::1]:443", None])
def test_request_round_trip(endpoint: str | None) -> None:
    keys = _keys()
    data = _request(keys, endpoint)
    request = verify_request(data)
    assert request.country == "NL"
    assert request.name == "NVWA"
    assert (request.endpoint.url if request.endpoint else None) == endpoint
    assert (request.created, request.valid_from, request.valid_until) == (NOW, NOW, LATER)
    assert request.signing_key_id == keys.signing_key_id
    assert request.encryption_key_id == keys.encryption_key_id
    assert request.tls_pin == tls_pin(request.tls_certificate)
    assert request.body == canonical_bytes(json.loads(data)["body"])
    assert request.body in data  # the exact bytes, not a re-serialisation


def test_request_is_deterministic_for_fixed_keys() -> None:
    assert _request() == _request()


def test_request_vector() -> None:
    vector = json.loads(VECTOR.read_text(encoding="utf-8"))
    assert vector == make_vector()
    request = verify_request(vector["request"].encode("utf-8"))
    assert request.signing_key_id == vector["signing_key_id"]
    assert request.encryption_key_id == vector["encryption_key_id"]
    assert request.tls_pin == vector["tls_pin"]


def _mutate(change: Callable[[dict[str, Any]], None]) -> bytes:
    """A request whose body is changed by `change` and then validly re-signed."""
    document = _document()
    change(document["body"])
    return _resign(_keys(), document["body"])


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = body
        for part in parents:
            target = target[part]
        target[last] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("country", "nl"), "country 'nl' is not an ISO 3166-1 alpha-2 code"),
        (_set("country", "NLD"), "not an ISO 3166-1 alpha-2 code"),
        (_set("endpoint", "http://node.nl.example:8443"), "is not an https:// URL"),
        (_set("endpoint", "https://node.nl.example:8443/api"), "no path"),
        (_set("endpoint", "https://NODE.nl.example:8443"), "not in the form"),
        (_set("endpoint", "https://node.nl.example:99999"), "out of range"),
        (_set("name", ""), "name must be 1 to 200"),
        (_set("name", "a\nb"), "control characters"),
        (_set("version", 2), "only version 1"),
        (_set("version", True), "only version 1"),
        (_set("type", "something-else"), "body.type"),
        (_set("created", "2026-01-01T00:00:00+00:00"), "body.created"),
        (_set("valid_until", "2026-01-01T00:00:00Z"), "not after valid_from"),
        (_set("valid_until", "2029-01-01T00:00:00Z"), "does not cover"),
        (_set("extra", 1), "body: unknown field 'extra'"),
        (_set("signing_key.extra", 1), "body.signing_key: unknown field 'extra'"),
        (_set("tls.extra", 1), "body.tls: unknown field 'extra'"),
        (_set("signing_key.key_id", "00" * 16), "signing_key.key_id: does not match"),
        (_set("encryption_key.algorithm", "x448"), "expected 'x25519'"),
        (_set("signing_key.public_key", "AAAA"), "3 bytes, expected 32"),
        (_set("signing_key.public_key", "not base64!"), "not base64"),
        (_set("tls.pin", "sha256:" + "0" * 64), "body.tls.pin: does not match"),
        (_set("tls.certificate", "garbage"), "not a PEM X.509 certificate"),
        (_set("endpoint", "https://other.nl.example:8443"), "does not name other.nl.example"),
        (lambda body: body.pop("name"), "body: missing field 'name'"),
    ],
)
def test_request_shape_refusals(change: Callable[[dict[str, Any]], None], message: str) -> None:
    with pytest.raises(EnrolmentError, match=message):
        verify_request(_mutate(change))


def test_low_order_encryption_key_is_refused_even_if_signed() -> None:
    zero = bytes(32)
    data = _mutate(_set("encryption_key", _entry("x25519", zero)))
    with pytest.raises(EnrolmentError, match=r"body\.encryption_key: .*low order"):
        verify_request(data)


def _entry(algorithm: str, public: bytes) -> dict[str, str]:
    return {
        "algorithm": algorithm,
        "public_key": base64.b64encode(public).decode(),
        "key_id": key_id(public),
    }


def test_tampered_body_is_refused() -> None:
    data = _request().replace(b'"name":"NVWA"', b'"name":"NVWX"')
    with pytest.raises(EnrolmentError, match=r"proofs\.signing_key"):
        verify_request(data)


def test_swapped_key_without_its_id_is_refused() -> None:
    document = _document()
    other = X25519PrivateKey.generate().public_key().public_bytes_raw()
    document["body"]["encryption_key"]["public_key"] = base64.b64encode(other).decode()
    with pytest.raises(EnrolmentError, match=r"encryption_key\.key_id: does not match"):
        verify_request(canonical_bytes(document))


@pytest.mark.parametrize("field", ["signing_key", "encryption_key"])
def test_swapped_key_with_its_id_fails_the_proofs(field: str) -> None:
    document = _document()
    other = generate_keys()
    public = (
        other.signing.public_key() if field == "signing_key" else other.encryption.public_key()
    ).public_bytes_raw()
    document["body"][field] = _entry(document["body"][field]["algorithm"], public)
    with pytest.raises(EnrolmentError, match=r"proofs\.signing_key"):
        verify_request(canonical_bytes(document))


@pytest.mark.parametrize("field", ["signing_key", "encryption_key", "tls"])
def test_wrong_proof_for_each_key_is_refused(field: str) -> None:
    """Each proof made by a key other than the one it stands for, over the right body."""
    keys, stranger = _keys(), generate_keys()
    liar = NodeKeys(
        signing=stranger.signing if field == "signing_key" else keys.signing,
        encryption=keys.encryption,
        tls=stranger.tls if field == "tls" else keys.tls,
        encryption_twin=stranger.encryption_twin if field == "encryption_key" else None,
    )
    data = _resign(liar, _document()["body"], twin=liar.encryption_twin or keys.encryption_twin)
    with pytest.raises(EnrolmentError, match=f"^proofs.{field}: .* does not verify$"):
        verify_request(data)


def test_proofs_are_not_interchangeable() -> None:
    """The signing key's proof, context aside, cannot stand for the twin's."""
    document = _document()
    proofs = document["proofs"]
    proofs["encryption_key"] = proofs["signing_key"]
    with pytest.raises(EnrolmentError, match=r"proofs\.encryption_key"):
        verify_request(canonical_bytes(document))


def test_the_published_proof_key_design_would_be_forgeable() -> None:
    """Why the X25519 proof is a signature: DH with a published key needs no secret."""
    published = X25519PrivateKey.from_private_bytes(bytes(32))
    victim = generate_keys().encryption
    honest = victim.exchange(published.public_key())
    forger = published.exchange(victim.public_key())  # only public values used
    assert honest == forger


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\xff garbage", "not JSON"),
        (b"", "not JSON"),
        (b"[1,2]", "request: expected an object"),
        (b'{"body":{},"proofs":{},"x":1}', "request: unknown field 'x'"),
        (b'{"body":1,"body":1}', "not JSON"),
        (b'{"a":1.5}', "not canonical"),
        (b'{"proofs":{}, "body":{}}', "not canonical"),
    ],
)
def test_garbage_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(EnrolmentError, match=message):
        verify_request(data)


def test_pretty_printed_request_is_refused() -> None:
    data = json.dumps(_document(), indent=2).encode()
    with pytest.raises(EnrolmentError, match="not canonical JSON"):
        verify_request(data)


def test_oversized_request_is_refused() -> None:
    data = _request()
    with pytest.raises(EnrolmentError, match=rf"request is {len(data)} bytes, over the limit"):
        verify_request(data, max_bytes=len(data) - 1)
    with pytest.raises(EnrolmentError, match="over the limit of 65536"):
        verify_request(b" " * (64 * 1024 + 1))


_VALID = _request()


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(_VALID) - 1), st.integers(1, 255))
def test_every_single_byte_change_is_refused(position: int, delta: int) -> None:
    data = bytearray(_VALID)
    data[position] = (data[position] + delta) % 256
    with pytest.raises(EnrolmentError):
        verify_request(bytes(data))


_LABELS = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@given(st.lists(_LABELS, min_size=1, max_size=4), st.integers(1, 65535))
def test_endpoint_round_trips(labels: list[str], port: int) -> None:
    endpoint = parse_endpoint(f"https://{'.'.join(labels).upper()}:{port}/")
    assert endpoint.host == ".".join(labels)
    assert parse_endpoint(endpoint.url) == endpoint


@pytest.mark.parametrize(
    "text",
    [
        "http://a.example:1",
        "https://user@a.example:1",
        "https://a.example:1?x",
        "https://-a.example",
        "https://a..example",
        "https://999.1.1.1",
        "https://[zz::1]:1",
        "https://a.example:0",
        "https://",
    ],
)
def test_bad_endpoints_are_refused(text: str) -> None:
    with pytest.raises(EnrolmentError, match="endpoint"):
        parse_endpoint(text)


def test_build_refuses_keys_without_the_twin() -> None:
    keys = _keys()
    cert = build_tls_certificate(
        keys.tls, country="NL", name="N", host=None, not_before=NOW, not_after=LATER
    )
    stale = NodeKeys(keys.signing, keys.encryption, keys.tls, None)
    with pytest.raises(EnrolmentError, match="seed is gone"):
        build_request(
            stale, cert, country="NL", name="N", endpoint=None,
            created=NOW, valid_from=NOW, valid_until=LATER,
        )  # fmt: skip


# --- config -------------------------------------------------------------------------


def test_config_round_trip(tmp_path: Path) -> None:
    config = new_config(
        tmp_path, country="NL", name="NVWA", endpoint="https://node.nl.example", api_token="t" * 43
    )
    (tmp_path / "node.toml").write_text(dump_config(config), encoding="utf-8")
    assert load_config(tmp_path / "node.toml") == config
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 443)
    assert config.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/node.db"
    assert config.path(config.keys.tls_key) == tmp_path / "keys" / "tls.key"


def test_listen_address() -> None:
    assert listen_address(None) == ("127.0.0.1", 8443)
    assert listen_address(parse_endpoint("https://127.0.0.2:9")) == ("127.0.0.2", 9)
    assert listen_address(parse_endpoint("https://[::1]:9")) == ("::1", 9)
    assert listen_address(parse_endpoint("https://localhost:9")) == ("127.0.0.1", 9)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('country = "NL"', 'country = "Netherlands"', "country: country 'Netherlands' is not"),
        ('country = "NL"\n', "", "country: missing"),
        ("port = 8443", 'port = "8443"', "listen.port: expected an integer"),
        ("port = 8443", "port = 70000", "listen.port: 70000 is out of range"),
        ('signing = "keys/signing.key"', 'signing = "/etc/k"', "keys.signing: '/etc/k' must"),
        ('signing = "keys/signing.key"', 'signing = "../k"', "keys.signing: '../k' must"),
        ("version = 1", "version = 1\nverison = 1", "verison: unknown key"),
        ("[listen]", "[listen]\nhots = 1", "listen.hots: unknown key"),
        ("version = 1", "version = 2", "version: only version 1"),
        ("version = 1", "version = [", "not valid TOML"),
        ("maintainer_keys = []", "maintainer_keys = [1]", "expected a list of strings"),
    ],
)
def test_config_errors_name_the_file_and_key(old: str, new: str, message: str) -> None:
    config = new_config(Path("/n"), country="NL", name="N", endpoint=None, api_token="t" * 43)
    text = dump_config(config)
    assert old in text
    with pytest.raises(ConfigError, match=f"^/n/node.toml: .*{message}"):
        parse_config(text.replace(old, new, 1), source="/n/node.toml", directory=Path("/n"))


def test_missing_config_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run `ephyto node init` first"):
        load_config(tmp_path / "node.toml")


# --- store --------------------------------------------------------------------------


def test_init_node_writes_a_complete_identity(tmp_path: Path) -> None:
    result = init_node(
        tmp_path / "n", country="NL", name="NVWA", endpoint="https://127.0.0.1:9443", now=NOW
    )
    for path in (*result.private_keys, result.config):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = load_config(result.config)
    assert load_signing_key(config.path(config.keys.signing).read_bytes(), "s").public_key()
    request = verify_request(result.request.read_bytes())
    assert request.signing_key_id == result.signing_key_id
    assert request.tls_pin == result.tls_pin
    assert certificate_pem(request.tls_certificate) == result.certificate.read_bytes()


def test_init_node_refuses_an_existing_identity(tmp_path: Path) -> None:
    init_node(tmp_path, country="NL", name="NVWA", endpoint=None, now=NOW)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(IdentityExistsError, match="already exists"):
        init_node(tmp_path, country="NL", name="NVWA", endpoint=None, now=NOW)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="https://"):
        init_node(tmp_path / "n", country="NL", name="N", endpoint="http://x:1", now=NOW)
    assert not (tmp_path / "n").exists()


def test_a_failed_write_leaves_no_half_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store.write_exclusive
    calls = []

    def failing(path: Path, data: bytes, mode: int) -> None:
        calls.append(path)
        if len(calls) == 4:
            raise OSError(28, "No space left on device", str(path))
        real(path, data, mode)

    monkeypatch.setattr(store, "write_exclusive", failing)
    with pytest.raises(OSError, match="No space"):
        init_node(tmp_path, country="NL", name="N", endpoint=None, now=NOW)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


# --- the test vector ----------------------------------------------------------------


def make_vector() -> dict[str, Any]:
    """The committed vector: rebuild it with `python -m tests.unit.test_identity`."""
    keys = _keys()
    request = _request(keys)
    body = canonical_bytes(json.loads(request)["body"])
    return {
        "description": "ephyto enrolment request v1 from fixed seeds "
        "(docs/protocol.md, Part B); not for real use",
        "seeds": {
            "signing_ed25519_seed": SEEDS[0].hex(),
            "encryption_ed25519_seed": SEEDS[1].hex(),
            "tls_p256_scalar_seed": SEEDS[2].hex(),
        },
        "encryption_x25519_private": keys.encryption.private_bytes_raw().hex(),
        "encryption_twin_ed25519_public": (
            keys.encryption_twin.public_key().public_bytes_raw().hex()
            if keys.encryption_twin
            else None
        ),
        "signing_key_id": keys.signing_key_id,
        "encryption_key_id": keys.encryption_key_id,
        "tls_pin": tls_pin(verify_request(request).tls_certificate),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "request": request.decode("utf-8"),
        "request_sha256": hashlib.sha256(request).hexdigest(),
    }


if __name__ == "__main__":
    VECTOR.write_text(json.dumps(make_vector(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {VECTOR}")


def test_a_tls_certificate_with_a_negative_serial_number_is_refused() -> None:
    """cryptography only warns of a serial number that is not positive (RFC 5280 forbids
    it) and will refuse it later: the request is refused now, with no warning escaping."""
    request = json.loads(_VALID)
    pem = request["body"]["tls"]["certificate"]
    der = bytearray(ssl.PEM_cert_to_DER_cert(pem))
    # Certificate SEQUENCE, tbsCertificate SEQUENCE, version [0] (5 bytes), serial INTEGER.
    serial = 4 + 4 + 5
    assert der[serial] == 0x02
    der[serial + 2] |= 0x80  # the serial's first byte: its sign bit set
    request["body"]["tls"]["certificate"] = ssl.DER_cert_to_PEM_cert(bytes(der))
    # As in production, where such a warning is no error unless we make it one.
    with warnings.catch_warnings(), pytest.raises(EnrolmentError, match="not a valid"):
        warnings.simplefilter("ignore")
        verify_request(canonical_bytes(request))
