"""Zeroconf discovery on real mDNS bound to 127.0.0.1, and the rule that it never grants trust."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import socket
import struct
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from node.crypto.ids import key_id
from node.directory import Directory, KeyNotValid, NppoNotActive, UnknownKey, UnknownNppo
from node.transport.discovery import (
    SERVICE_TYPE,
    Announcement,
    Announcer,
    MalformedAnnouncement,
    MdnsUnavailable,
    async_browse,
    require_trusted,
    trusted_endpoint,
)
from tests.cli.test_cert_cli import ephyto

LOOPBACK = ["127.0.0.1"]
NOW = datetime(2026, 3, 2, tzinfo=UTC)
Y26, Y27 = "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"


def _pin() -> str:
    # Fresh per test: another run on this host announces on the same loopback.
    return "sha256:" + secrets.token_hex(32)


def _announcement(country: str = "NL", **kw: Any) -> Announcement:
    fields: dict[str, Any] = {
        "country": country,
        "name": f"NPPO of {country}",
        "host": "127.0.0.1",
        "port": 8443,
        "tls_pin": _pin(),
        "signing_key_id": secrets.token_hex(16),
        "version": "0.1.0",
    }
    return Announcement(**(fields | kw))


def _txt(*items: bytes) -> bytes:
    return b"".join(bytes((len(i),)) + i for i in items)


GOOD_ITEMS = (
    b"txtvers=1",
    b"country=NL",
    b"name=NPPO of NL",
    b"tls_pin=sha256:" + b"ab" * 32,
    b"signing_key_id=" + b"cd" * 16,
    b"version=0.1.0",
)


# --- mDNS on loopback: probe it, and keep every test free of leftover threads ---------------


def _loopback_multicast_problem() -> str | None:
    """Why multicast on 127.0.0.1 does not work here, or None when a datagram goes round."""
    group, port = "224.0.0.251", 0
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        try:
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            rx.bind(("", port))
            port = rx.getsockname()[1]
            membership = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton(LOOPBACK[0]))
            rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(LOOPBACK[0]))
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            tx.sendto(b"ephyto-probe", (group, port))
            rx.settimeout(2)
            data = rx.recv(64)
        except OSError as e:
            return f"IPv4 multicast to {group} on 127.0.0.1 fails: {e}"
    return None if data == b"ephyto-probe" else "a different datagram came back"


@pytest.fixture(scope="module")
def mdns() -> None:
    if problem := _loopback_multicast_problem():
        pytest.skip(f"{problem} (try `ip link set lo multicast on`)")


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert left == [], f"threads outlived the test: {left}"


def _no_other_tasks() -> None:
    others = asyncio.all_tasks() - {asyncio.current_task()}
    assert others == set(), f"tasks outlived zeroconf: {others}"


# --- announce and browse over real mDNS ----------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.usefixtures("mdns")
async def test_two_announced_nodes_are_both_found() -> None:
    nl, ke = _announcement("NL"), _announcement("KE", port=9443, version="0.2.0")
    async with (
        Announcer(nl, interfaces=LOOPBACK) as a1,
        Announcer(ke, interfaces=LOOPBACK) as a2,
    ):
        assert a1.instance_name == f"ephyto-NL-{nl.signing_key_id[:12]}.{SERVICE_TYPE}"
        assert a2.instance_name == f"ephyto-KE-{ke.signing_key_id[:12]}.{SERVICE_TYPE}"
        seen = await async_browse(1.5, LOOPBACK)
    ours = [a for a in seen if a.tls_pin in {nl.tls_pin, ke.tls_pin}]
    assert ours == [ke, nl]  # sorted by country, every field as announced
    _no_other_tasks()


@pytest.mark.asyncio
@pytest.mark.usefixtures("mdns")
async def test_unregistered_node_is_no_longer_found() -> None:
    nl = _announcement("NL")
    async with Announcer(nl, interfaces=LOOPBACK) as announcer:
        await announcer.async_unregister()
        seen = await async_browse(1.0, LOOPBACK)
    assert nl not in seen
    _no_other_tasks()


@pytest.mark.asyncio
@pytest.mark.usefixtures("mdns")
async def test_malformed_announcements_are_ignored_not_fatal() -> None:
    good = _announcement("NL")
    bad_pin = _txt(*GOOD_ITEMS[:3], b"tls_pin=sha256:not-hex", *GOOD_ITEMS[4:])
    no_version = _txt(*GOOD_ITEMS[:-1])
    zc = AsyncZeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only)
    try:
        infos = [
            AsyncServiceInfo(
                SERVICE_TYPE,
                f"ephyto-bad-{i}-{secrets.token_hex(4)}.{SERVICE_TYPE}",
                addresses=[socket.inet_aton("127.0.0.1")],
                port=8443,
                properties=text,
                server=f"bad-{secrets.token_hex(4)}.local.",
            )
            for i, text in enumerate([bad_pin, no_version])
        ]
        await asyncio.gather(*[await zc.async_register_service(info) for info in infos])
        ignored: list[tuple[str, str]] = []
        async with Announcer(good, interfaces=LOOPBACK):
            seen = await async_browse(1.5, LOOPBACK, on_ignored=lambda n, r: ignored.append((n, r)))
    finally:
        await zc.async_close()
    assert good in seen
    reasons = " | ".join(r for n, r in ignored if n.startswith("ephyto-bad-"))
    assert "tls_pin 'sha256:not-hex'" in reasons
    assert "no 'version'" in reasons
    _no_other_tasks()


@pytest.mark.asyncio
@pytest.mark.usefixtures("mdns")
async def test_cli_discover_lists_an_announced_node(tmp_path: Path) -> None:
    nl = _announcement("NL", name="NPPO of the Netherlands")
    init = ephyto("node", "init", "--country", "KE", "--name", "KEPHIS", "--dir", tmp_path / "n")
    assert init.returncode == 0, init.stderr
    # Generous: three processes start at once, and a loaded machine delays the answers.
    args = ("discover", "--interface", "127.0.0.1", "--timeout", "5")
    config = ("--config", tmp_path / "n" / "node.toml")
    # The announcer answers on this loop, so the commands run in threads of our own.
    with ThreadPoolExecutor(max_workers=3) as pool:
        async with Announcer(nl, interfaces=LOOPBACK):
            loop = asyncio.get_running_loop()
            text, as_json, with_config = await asyncio.gather(
                loop.run_in_executor(pool, ephyto, *args),
                loop.run_in_executor(pool, ephyto, *args, "--json"),
                loop.run_in_executor(pool, ephyto, *args, *config),
            )
    assert text.returncode == 0, text.stderr
    assert "Traceback" not in text.stderr
    block = text.stdout.split(nl.tls_pin)[0].rsplit("NL  ", 1)[-1]
    assert "NPPO of the Netherlands" in block
    assert "https://127.0.0.1:8443" in block
    assert "unverified" in text.stdout and "trust comes only from the signed directory" in (
        text.stdout
    )
    assert with_config.returncode == 0, with_config.stderr
    # No directory cache yet: still unverified, and the output says why.
    assert "unverified: no cached directory for node KE yet" in with_config.stdout
    assert as_json.returncode == 0, as_json.stderr
    rows = [r for r in json.loads(as_json.stdout) if r["tls_pin"] == nl.tls_pin]
    assert rows == [
        {
            "country": "NL",
            "name": "NPPO of the Netherlands",
            "endpoint": "https://127.0.0.1:8443",
            "host": "127.0.0.1",
            "port": 8443,
            "tls_pin": nl.tls_pin,
            "signing_key_id": nl.signing_key_id,
            "version": "0.1.0",
            "directory": "unverified",
        }
    ]


def test_cli_refuses_an_interface_that_is_not_this_hosts() -> None:
    result = ephyto("discover", "--interface", "192.0.2.254", "--timeout", "0.5")
    assert result.returncode == 2
    assert "192.0.2.254 is not an address of this host" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.asyncio
async def test_browse_refuses_an_interface_that_is_not_an_address() -> None:
    with pytest.raises(MdnsUnavailable, match="not-an-ip"):
        await async_browse(0.1, ["not-an-ip"])


# --- trust comes only from the directory ---------------------------------------------------


def _raw(seed: int) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32).public_key().public_bytes_raw()


def _key(kind: str, raw: bytes) -> dict[str, str]:
    return {"kind": kind, "keyid": key_id(raw), "public_key": base64.b64encode(raw).decode()}


def _nppo(country: str, pins: list[str], status: str = "active") -> dict[str, Any]:
    seed = ord(country[0])
    return {
        "country": country,
        "name": f"NPPO of {country}",
        "status": status,
        "endpoint": f"https://{country.lower()}.example:8443",
        "keys": [
            _key("signing", _raw(seed)) | {"valid_from": Y26, "valid_until": Y27},
            _key("encryption", bytes([seed]) * 32) | {"valid_from": Y26, "valid_until": Y27},
        ],
        "tls_pins": [{"pin": p, "valid_from": Y26, "valid_until": Y27} for p in pins],
        "schema_versions": ["D17A"],
    }


def _directory(*nppos: dict[str, Any]) -> Directory:
    maintainer = _raw(1)
    return Directory.from_plain(
        {
            "format": 1,
            "version": 7,
            "issued": "2026-03-01T00:00:00Z",
            "expires": "2026-03-08T00:00:00Z",
            "maintainers": {
                "threshold": 1,
                "keys": [
                    {
                        "name": "m0",
                        "keyid": key_id(maintainer),
                        "public_key": base64.b64encode(maintainer).decode(),
                    }
                ],
            },
            "nppos": sorted(nppos, key=lambda n: n["country"]),
            "hub": None,
            "code_lists": {},
        }
    )


PIN_NL, PIN_NL_NEXT, PIN_US = ("sha256:" + c * 64 for c in "123")
DIRECTORY = _directory(_nppo("NL", [PIN_NL, PIN_NL_NEXT]), _nppo("US", [PIN_US], "suspended"))


@pytest.mark.parametrize("pin", [PIN_NL, PIN_NL_NEXT])
def test_matching_pin_yields_the_announced_endpoint(pin: str) -> None:
    lan = _announcement("NL", host="192.168.1.20", port=9443, tls_pin=pin)
    assert trusted_endpoint(lan, DIRECTORY, NOW) == "https://192.168.1.20:9443"


def test_ipv6_endpoint_is_bracketed() -> None:
    lan = _announcement("NL", host="fd00::20", tls_pin=PIN_NL)
    assert trusted_endpoint(lan, DIRECTORY, NOW) == "https://[fd00::20]:8443"


@pytest.mark.parametrize(
    ("announcement", "error"),
    [
        # An impostor announcing NL with its own key: the pin is not NL's.
        (_announcement("NL", tls_pin="sha256:" + "e" * 64), UnknownKey),
        # Another NPPO's real pin claimed for NL: pins are per country.
        (_announcement("NL", tls_pin=PIN_US), UnknownKey),
        (_announcement("KE", tls_pin=PIN_NL), UnknownNppo),
        (_announcement("US", tls_pin=PIN_US), NppoNotActive),
    ],
    ids=["foreign-pin", "other-countrys-pin", "unknown-country", "suspended-nppo"],
)
def test_anything_the_directory_does_not_vouch_for_is_refused(
    announcement: Announcement, error: type[Exception]
) -> None:
    assert trusted_endpoint(announcement, DIRECTORY, NOW) is None
    with pytest.raises(error):
        require_trusted(announcement, DIRECTORY, NOW)


def test_pin_outside_its_validity_is_refused() -> None:
    lan = _announcement("NL", tls_pin=PIN_NL)
    later = datetime(2027, 6, 1, tzinfo=UTC)
    assert trusted_endpoint(lan, DIRECTORY, later) is None
    with pytest.raises(KeyNotValid):
        require_trusted(lan, DIRECTORY, later)


# --- the TXT record: written one way, parsed strictly --------------------------------------


def test_txt_round_trip() -> None:
    a = _announcement("NL", name="Nederlandse Voedsel- en Warenautoriteit (NVWA) ü")
    assert Announcement.from_txt(a.to_txt(), host=a.host, port=a.port) == a
    assert a.to_txt().startswith(b"\x09txtvers=1")


def test_txt_keys_are_case_insensitive_and_unknown_keys_ignored() -> None:
    text = _txt(b"TXTVERS=1", *GOOD_ITEMS[1:], b"future=whatever", b"flag")
    a = Announcement.from_txt(text, host="127.0.0.1", port=8443)
    assert (a.country, a.tls_pin) == ("NL", "sha256:" + "ab" * 32)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", "no 'txtvers'"),
        (b"\x00", "no 'txtvers'"),
        (_txt(*GOOD_ITEMS[1:]), "no 'txtvers'"),
        (_txt(b"txtvers=2", *GOOD_ITEMS[1:]), "version '2' is not the supported '1'"),
        (_txt(*GOOD_ITEMS, b"Country=KE"), "'country' appears twice"),
        (_txt(*GOOD_ITEMS[:5], b"version"), "'version' has no value"),
        (_txt(*GOOD_ITEMS[:2], b"name=\xff\xfe", *GOOD_ITEMS[3:]), "'name' is not UTF-8"),
        (_txt(*GOOD_ITEMS)[:-3] + b"\x40abc", "runs past the end"),
        (_txt(*GOOD_ITEMS, b"=x"), "is not a key"),
        (_txt(b"txtvers=1", b"country=nl", *GOOD_ITEMS[2:]), "ISO 3166-1"),
        (_txt(*GOOD_ITEMS[:2], b"name= padded ", *GOOD_ITEMS[3:]), "surrounding spaces"),
        (_txt(*GOOD_ITEMS[:2], b"name=a\x07b", *GOOD_ITEMS[3:]), "control characters"),
        (_txt(*GOOD_ITEMS[:3], b"tls_pin=sha256:" + b"AB" * 32, *GOOD_ITEMS[4:]), "tls_pin"),
        (_txt(*GOOD_ITEMS[:4], b"signing_key_id=abc", GOOD_ITEMS[5]), "signing_key_id"),
        (_txt(*GOOD_ITEMS[:5], b"version=1 2"), "not a version string"),
    ],
)
def test_malformed_txt_is_refused_with_a_clear_reason(text: bytes, message: str) -> None:
    with pytest.raises(MalformedAnnouncement, match=message.replace("(", r"\(")):
        Announcement.from_txt(text, host="127.0.0.1", port=8443)


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        (None, 8443, "no usable address"),
        ("127.0.0.1", None, "no port"),
        ("127.0.0.1", 0, "port 0 is outside"),
        ("0.0.0.0", 8443, "not a unicast address"),
        ("224.0.0.251", 8443, "not a unicast address"),
        ("fd00:0::1", 8443, "canonical form"),
        ("nl.example", 8443, "not an IP address"),
    ],
)
def test_address_and_port_are_checked(host: str | None, port: int | None, message: str) -> None:
    with pytest.raises(MalformedAnnouncement, match=message):
        Announcement.from_txt(_txt(*GOOD_ITEMS), host=host, port=port)


def test_a_name_too_long_for_one_txt_string_is_refused() -> None:
    with pytest.raises(MalformedAnnouncement, match="250 bytes"):
        _announcement("NL", name="é" * 126)
