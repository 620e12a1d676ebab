"""Key rotation on a node that keeps running: `ephyto node serve` in a real process.

A registry and two nodes in subprocesses (real TLS, SQLite, HTTP on loopback), each node
refreshing its directory every second. NL runs `ephyto node rotate-keys` while serving,
the registry rotates and publishes, and then KE submits a certificate to NL: KE's outbox
still seals it to NL's old encryption key and NL, which holds both, answers with its old
signing key: the first half of the overlap is for partners to refresh. Halfway through,
the very same NL process (no restart) signs with its new key, is sealed to with its new
key, and presents its new TLS certificate; certificates still go both ways.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import socket
import sqlite3
import ssl
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

from node.crypto.ids import key_id, tls_pin
from node.envelope.receipt import Receipt
from node.identity.config import dump_config, load_config
from node.identity.keys import load_signing_key
from tests.integration.test_node_serve import (
    READY,
    Server,
    api,
    certificate_between,
    free_port,
    run,
    servers,  # noqa: F401 (the fixture)
)

WAIT = 30.0


def _until(what: str, check: Callable[[], bool], *servers_: Server, wait: float = WAIT) -> None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}\n" + "\n".join(s.output() for s in servers_))


def _receipt_key_id(node_dir: Path, message_id: str) -> str:
    with closing(sqlite3.connect(node_dir / "node.db")) as db:
        (wire,) = db.execute(
            "SELECT receipt FROM messages WHERE direction = 'out' AND message_id = ?",
            (message_id,),
        ).fetchone()
    body = json.loads(wire)["receipt"]
    return Receipt.from_bytes(
        base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    ).receiver_key_id


def _presented_pin(exchange_url: str, client_dir: Path) -> str:
    """The pin of the certificate a node's exchange endpoint presents, asked as a known
    partner (the client presents its own certificate, as the server requires)."""
    host, port = urlsplit(exchange_url).hostname, urlsplit(exchange_url).port
    assert host is not None and port is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the pin is checked
    context.load_cert_chain(client_dir / "keys" / "tls.crt", client_dir / "keys" / "tls.key")
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return tls_pin(x509.load_der_x509_certificate(der))


def test_a_serving_node_rotates_without_restart(
    tmp_path: Path,
    servers: list[Server],  # noqa: F811
) -> None:
    registry_dir = tmp_path / "registry"
    run("registry", "init", "--dir", registry_dir)
    registry_port = free_port()
    registry_url = f"http://127.0.0.1:{registry_port}/directory.json"
    nodes: dict[str, Path] = {}
    for country, name in (("NL", "NVWA"), ("KE", "KEPHIS")):
        node_dir = tmp_path / country.lower()
        run("node", "init", "--country", country, "--name", name, "--endpoint",
            f"https://127.0.0.1:{free_port()}", "--dir", node_dir)  # fmt: skip
        run("node", "configure", "--dir", node_dir, "--registry", registry_url,
            "--anchor", registry_dir / "maintainers" / "maintainers.json",
            "--api-port", str(free_port()))  # fmt: skip
        config = load_config(node_dir / "node.toml")
        # Refresh every second, so the test need not wait a minute for the new keys.
        (node_dir / "node.toml").write_text(
            dump_config(dataclasses.replace(config, refresh_seconds=1))
        )
        run("registry", "add", "--dir", registry_dir, node_dir / "enrolment-request.json")
        nodes[country] = node_dir
    run("registry", "publish", "--dir", registry_dir)
    registry = Server(
        "registry",
        ["registry", "serve", "--dir", str(registry_dir), "--port", str(registry_port)],
        tmp_path,
    )
    servers.append(registry)
    registry.wait_for(re.compile(r"^serving "))
    running = {}
    for country, node_dir in nodes.items():
        running[country] = Server(country, ["node", "serve", "--dir", str(node_dir)], tmp_path)
        servers.append(running[country])
    urls = {country: server.wait_for(READY) for country, server in running.items()}
    nl, ke = running["NL"], running["KE"]
    nl_pid = nl.process.pid

    # NL rotates while it serves; the registry records and publishes the rotation.
    rotated = run("node", "rotate-keys", "--dir", nodes["NL"])
    new_signing = re.search(r"new signing key id\s+(\S+)", rotated)
    new_encryption = re.search(r"new encryption key id\s+(\S+)", rotated)
    assert new_signing is not None and new_encryption is not None
    new_pin = re.search(r"new TLS pin\s+(\S+)", rotated)
    assert new_pin is not None
    old_pin = _presented_pin(urls["NL"]["exchange"], nodes["KE"])
    signing_file = nodes["NL"] / "keys" / "signing.key"
    old_signing = key_id(
        load_signing_key(signing_file.read_bytes(), "NL").public_key().public_bytes_raw()
    )
    # A one-minute overlap, the shortest the registry takes: NL uses its new keys and TLS
    # certificate from halfway through it, half a minute from now, which the test waits
    # out below. The first delivery takes a few seconds (two refreshes a second apart, one
    # delivery): ample time for it even on a slow day.
    run("registry", "rotate", nodes["NL"] / "rotation-request.json", "--overlap", "1m",
        "--dir", registry_dir)  # fmt: skip
    run("registry", "publish", "--dir", registry_dir)
    shown = run("registry", "show", "NL", "--dir", registry_dir)
    assert new_signing[1] in shown and "old keys valid until" in shown

    # NL's refresh lists keys it lacks: it loads them from node.toml, still the same process.
    _until(
        "NL did not load its new keys",
        lambda: "without a restart" in nl.stderr.read_text(errors="replace"),
        nl,
    )
    # KE's refresh brings NL's new encryption key (in use from halfway through the overlap).
    _until(
        "KE did not refresh its directory",
        lambda: new_encryption[1].encode() in (nodes["KE"] / "directory.json").read_bytes(),
        ke,
    )
    ke_token = load_config(nodes["KE"] / "node.toml").api_token
    status, sent = api(
        urls["KE"]["api"], ke_token, "/api/v1/certificates", certificate_between("KE", "NL")
    )
    assert status == 202, sent
    message: dict[str, str] = {}

    def settled() -> bool:
        nonlocal message
        _, message = api(urls["KE"]["api"], ke_token, f"/api/v1/certificates/{sent['id']}")
        return message["state"] in ("delivered", "failed")

    _until("KE's certificate did not settle", settled, nl, ke)
    assert (message["state"], message["route"], message["outcome"]) == (
        "delivered", "direct", "accepted",
    ), f"{message}\n{nl.output()}\n{ke.output()}"  # fmt: skip
    # The first half of the overlap: NL holds both keys but still signs with its old one
    # (and KE sealed to NL's old encryption key), since partners may not know the new ones.
    assert _receipt_key_id(nodes["KE"], sent["message_id"]) == old_signing
    nl_token = load_config(nodes["NL"] / "node.toml").api_token
    _, received = api(urls["NL"]["api"], nl_token, "/api/v1/certificates?direction=received")
    assert [m["message_id"] for m in received["certificates"]] == [sent["message_id"]]

    # Halfway through the overlap NL switches to its new keys and TLS certificate, as
    # server and as client, and both directions deliver (KE knows them from its refresh).
    _until(
        "NL did not switch to its new TLS certificate",
        lambda: "now presents its TLS certificate" in nl.stderr.read_text(errors="replace"),
        nl,
        wait=3 * WAIT,  # the switch comes half a minute after the rotation was recorded
    )
    assert _presented_pin(urls["NL"]["exchange"], nodes["KE"]) == new_pin[1] != old_pin
    for sender, receiver, token in (("KE", "NL", ke_token), ("NL", "KE", nl_token)):
        status, sent = api(
            urls[sender]["api"], token, "/api/v1/certificates",
            certificate_between(sender, receiver, number=f"{sender}-AFTER-SWITCH-1"),
        )  # fmt: skip
        assert status == 202, sent

        def delivered(sender: str = sender, token: str = token, id_: str = sent["id"]) -> bool:
            _, message = api(urls[sender]["api"], token, f"/api/v1/certificates/{id_}")
            return message["state"] == "delivered" and message["route"] == "direct"

        _until(f"{sender} -> {receiver} after the TLS switch was not delivered", delivered, nl, ke)
        if sender == "KE":  # answered with NL's new signing key
            assert _receipt_key_id(nodes["KE"], sent["message_id"]) == new_signing[1]

    assert nl.process.poll() is None and nl.process.pid == nl_pid  # never restarted
    for server in (nl, ke, registry):
        assert server.terminate() == 0, server.output()
    log = nl.stderr.read_text()
    assert "Traceback" not in log and "does not hold" not in log, log
