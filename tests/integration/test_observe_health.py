"""A node's health and metrics listener (issue 12), the node run in-process with a clock
the test moves: `/health/ready` answers 200 while the directory is trusted and fresh and
503 naming the failing check once it has expired; `/health/live` answers while the loop
does; hostile requests get a short 4xx; the API port serves no metrics. A real registry
process, real TLS files and a real SQLite store."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from node.clock import SystemClock
from node.crypto.ids import tls_pin
from node.demo.network import free_port
from node.identity.config import dump_config, load_config
from node.observe.formatting import FIELDS
from node.observe.settings import ListenAddress
from node.service import Listening, run_node
from tests.integration.test_node_serve import Server, run
from tests.integration.test_observe_network import forms_of_private_key


class MovedClock:
    """The system's time, moved forward by the test."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def now(self) -> datetime:
        return SystemClock().now() + self.ahead


def get(url: str, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def ready(url: str) -> tuple[int, dict[str, Any]]:
    status, body = get(url)
    return status, json.loads(body)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            server.close()


@pytest.mark.asyncio
async def test_ready_while_the_directory_is_fresh_then_503_naming_it(
    tmp_path: Path, servers: list[Server], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # whatever the node says, at its most talkative
    registry_dir, node_dir = tmp_path / "registry", tmp_path / "nl"
    port = free_port()
    run("registry", "init", "--dir", registry_dir)
    run("node", "init", "--country", "NL", "--name", "NVWA", "--endpoint",
        f"https://127.0.0.1:{free_port()}", "--dir", node_dir)  # fmt: skip
    run("node", "configure", "--dir", node_dir, "--registry",
        f"http://127.0.0.1:{port}/directory.json",
        "--anchor", registry_dir / "maintainers" / "maintainers.json",
        "--api-port", str(free_port()))  # fmt: skip
    run("registry", "add", "--dir", registry_dir, node_dir / "enrolment-request.json")
    passphrase = b"correct horse battery staple 42"
    (tmp_path / "passphrase").write_bytes(passphrase)  # outside the node directory
    run("node", "protect-keys", "--passphrase-file", tmp_path / "passphrase", "--dir", node_dir)
    run("registry", "publish", "--dir", registry_dir, "--expires-in", "1d")
    registry = Server(
        "registry", ["registry", "serve", "--dir", str(registry_dir), "--port", str(port)], tmp_path
    )
    servers.append(registry)
    registry.wait_for(re.compile(r"^serving "))
    path = node_dir / "node.toml"
    config = dataclasses.replace(load_config(path), metrics_listen=ListenAddress("127.0.0.1", 0))
    path.write_text(dump_config(config))
    clock, stop, listening = MovedClock(), asyncio.Event(), []
    node = asyncio.create_task(
        run_node(load_config(path), clock=clock, stop=stop, ready=listening.append)
    )
    try:
        for _ in range(400):
            if listening or node.done():
                break
            await asyncio.sleep(0.05)
        assert listening, node.result()
        up: Listening = listening[0]
        assert up.ready_url is not None and up.metrics_url is not None
        assert up.ready_url.endswith("/health/ready") and up.metrics_url.endswith("/metrics")

        status, body = await asyncio.to_thread(ready, up.ready_url)
        assert status == 200, body
        assert body["failing"] == [] and body["checks"]["store"]["ok"] is True
        live = up.ready_url.replace("/health/ready", "/health/live")
        assert await asyncio.to_thread(get, live) == (200, b'{"live": true}')

        clock.ahead = timedelta(days=3)  # the directory (and the timestamp) ran out
        status, body = await asyncio.to_thread(ready, up.ready_url)
        assert status == 503, body
        assert body["failing"] == ["directory"]
        assert body["checks"]["store"]["ok"] and body["checks"]["keys"]["ok"]
        assert "expired" in body["checks"]["directory"]["detail"]
        _, text = await asyncio.to_thread(get, up.metrics_url)
        expiry = re.search(rb"^ephyto_directory_expires_in_seconds (\S+)$", text, re.M)
        assert expiry is not None and float(expiry[1]) < 0

        clock.ahead = timedelta(0)
        assert (await asyncio.to_thread(ready, up.ready_url))[0] == 200

        # Hostile or wrong requests: a short 4xx, never a 500, never a traceback.
        assert (await asyncio.to_thread(get, up.metrics_url, "POST"))[0] == 405
        assert (await asyncio.to_thread(get, up.metrics_url + "/../../etc"))[0] == 404
        assert (await asyncio.to_thread(get, up.ready_url + "?x=" + "a" * 5000))[0] == 200
        assert (await asyncio.to_thread(_raw, up.metrics_url, b"GARBAGE\r\n\r\n")).startswith(
            b"HTTP/1.0 400"
        )
        # A TLS client the directory does not list: refused in the handshake, its pin logged
        # once (a second try within the hour adds no line).
        stranger = _stranger_certificate(tmp_path)
        exchange = up.exchange_url.removeprefix("https://")
        for _ in range(2):
            await asyncio.to_thread(_handshake, exchange, *stranger)
        refused = [r for r in caplog.records if "refused a TLS client" in r.getMessage()]
        assert len(refused) == 1, caplog.text
        assert getattr(refused[0], FIELDS)["pin"] == stranger[2]
        # The API port serves no metrics and no health.
        for where in ("/metrics", "/health/ready"):
            status, text = await asyncio.to_thread(get, up.api_url + where)
            assert status in (401, 404) and b"ephyto_" not in text
    finally:
        stop.set()
        await asyncio.wait_for(node, timeout=30)
    # Nothing secret in anything it logged: the keys (encrypted at rest, so their raw
    # bytes too), the passphrase, the API token.
    secrets = {passphrase.decode(), config.api_token}
    for key_file in (node_dir / "keys").glob("*.key"):
        secrets |= forms_of_private_key(key_file.read_bytes(), passphrase)
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert len(secrets) > 10 and len(caplog.records) > 20
    assert [s[:8] for s in secrets if s in logged] == []


def _stranger_certificate(tmp_path: Path) -> tuple[Path, Path, str]:
    """A self-signed TLS client certificate no directory lists: its files and pin."""
    key = Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger")])
    now = SystemClock().now()
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(7)
        .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
        .sign(key, None)
    )  # fmt: skip
    cert_path, key_path = tmp_path / "stranger.crt", tmp_path / "stranger.key"
    cert_path.write_bytes(certificate.public_bytes(Encoding.PEM))
    key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return cert_path, key_path, tls_pin(certificate)


def _handshake(address: str, cert_path: Path, key_path: Path, _pin: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.load_cert_chain(cert_path, key_path)
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        try:
            with context.wrap_socket(raw) as tls:
                # TLS 1.3: the server's refusal arrives after the client's handshake ends.
                tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = tls.recv(5)
        except (ssl.SSLError, OSError):
            return
    assert not answer.startswith(b"HTTP/"), "a client the directory does not list got in"


def _raw(url: str, request: bytes) -> bytes:
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        return connection.recv(200)
