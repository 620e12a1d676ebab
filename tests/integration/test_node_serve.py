"""`ephyto node serve`, as operators run it: a registry and two nodes in real processes.

Real TLS on loopback, real SQLite, the real registry: NL submits through its API, the
outbox delivers to KE directly, KE stores it, and SIGTERM stops every process cleanly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.model import Country, Text
from node.certificate.xml_build import to_xml_bytes
from node.cli.cert import sample_model_bytes
from node.clock import SystemClock
from node.demo.network import free_port
from node.errors import ConfigError
from node.identity.config import load_config, parse_config
from node.service import Listening, run_node
from tests.cli.test_cert_cli import ephyto

READY = re.compile(
    r"^node (?P<cc>[A-Z]{2}) ready: exchange (?P<exchange>https://\S+), api (?P<api>http://\S+)$"
)
START_TIMEOUT = 30.0
DELIVERY_TIMEOUT = 30.0


class Server:
    """A server subprocess with its output in files; always killed by `close`."""

    def __init__(self, name: str, args: list[str], workdir: Path) -> None:
        self.name = name
        self.stdout = workdir / f"{name}.out"
        self.stderr = workdir / f"{name}.err"
        script = Path(sys.executable).parent / "ephyto"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "node.cli.main"]
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen([*command, *args], stdout=out, stderr=err, cwd=workdir)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = START_TIMEOUT) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.stdout.read_text(errors="replace").splitlines():
                if match := pattern.match(line):
                    return match
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not get ready: {self.output()}")

    def output(self) -> str:
        return (
            f"exit {self.process.poll()}\n--- stdout\n{self.stdout.read_text(errors='replace')}"
            f"\n--- stderr\n{self.stderr.read_text(errors='replace')}"
        )

    def terminate(self, timeout: float = 20.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def api(url: str, token: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url + path,
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/xml"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


_COUNTRY_NAMES = {"NL": "Netherlands", "KE": "Kenya"}


def certificate_between(exporter: str, importer: str, number: str | None = None) -> bytes:
    """The sample certificate as XML, from `exporter` to a consignee in `importer` (NL, KE),
    under the sample's number or `number` (a node answers the same certificate sent again
    with the message it already has)."""
    cert = certificate_from_json(sample_model_bytes("phyto"))
    if number is not None:
        cert = dataclasses.replace(cert, number=number)
    consignment = cert.consignment
    consignee = consignment.consignee
    assert consignee.address is not None
    consignment = dataclasses.replace(
        consignment,
        export_country=Country(id=exporter, names=(Text(_COUNTRY_NAMES[exporter]),)),
        import_country=Country(id=importer, names=(Text(_COUNTRY_NAMES[importer]),)),
        consignee=dataclasses.replace(
            consignee, address=dataclasses.replace(consignee.address, country_id=importer)
        ),
    )
    return to_xml_bytes(dataclasses.replace(cert, consignment=consignment))


def run(*args: str | Path) -> str:
    result = ephyto(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            server.close()


def test_two_nodes_exchange_a_certificate(tmp_path: Path, servers: list[Server]) -> None:
    registry_dir = tmp_path / "registry"
    run("registry", "init", "--dir", registry_dir)
    registry_port = free_port()
    registry_url = f"http://127.0.0.1:{registry_port}/directory.json"
    nodes: dict[str, Path] = {}
    for country, name in (("NL", "NVWA"), ("KE", "KEPHIS")):
        node_dir = tmp_path / country.lower()
        endpoint = f"https://127.0.0.1:{free_port()}"
        run("node", "init", "--country", country, "--name", name, "--endpoint", endpoint,
            "--dir", node_dir)  # fmt: skip
        run("node", "configure", "--dir", node_dir, "--registry", registry_url,
            "--anchor", registry_dir / "maintainers" / "maintainers.json",
            "--api-port", str(free_port()))  # fmt: skip
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
        server = Server(country, ["node", "serve", "--dir", str(node_dir)], tmp_path)
        servers.append(server)
        running[country] = server
    urls = {country: server.wait_for(READY) for country, server in running.items()}
    for country, match in urls.items():
        config = load_config(nodes[country] / "node.toml")
        assert match["cc"] == country
        assert match["exchange"] == f"https://127.0.0.1:{config.listen_port}"
        assert match["api"] == f"http://127.0.0.1:{config.api_address[1]}"

    nl_token = load_config(nodes["NL"] / "node.toml").api_token
    ke_token = load_config(nodes["KE"] / "node.toml").api_token
    status, sent = api(
        urls["NL"]["api"], nl_token, "/api/v1/certificates", certificate_between("NL", "KE")
    )
    assert status == 202, sent

    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        status, message = api(urls["NL"]["api"], nl_token, f"/api/v1/certificates/{sent['id']}")
        assert status == 200, message
        if message["state"] in ("delivered", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (message["state"], message["route"], message["outcome"]) == (
        "delivered", "direct", "accepted",
    ), f"{message}\n{running['NL'].output()}\n{running['KE'].output()}"  # fmt: skip

    status, received = api(urls["KE"]["api"], ke_token, "/api/v1/certificates?direction=received")
    assert status == 200
    assert [(m["message_id"], m["from"], m["outcome"]) for m in received["certificates"]] == [
        (sent["message_id"], "NL", "accepted")
    ]

    for server in (*running.values(), registry):
        assert server.terminate() == 0, server.output()
    for server in running.values():
        log = server.stderr.read_text()
        assert "Traceback" not in log, log
        assert load_config(nodes[server.name] / "node.toml").api_token not in log
        assert f"node {server.name} stopped" in log


@pytest.mark.asyncio
async def test_run_node_without_a_directory_serves_the_api_and_stops_clean(
    tmp_path: Path,
) -> None:
    registry_dir, node_dir = tmp_path / "registry", tmp_path / "n"
    run("registry", "init", "--dir", registry_dir)
    run("node", "init", "--country", "NL", "--name", "NVWA", "--endpoint",
        f"https://127.0.0.1:{free_port()}", "--dir", node_dir)  # fmt: skip
    run("node", "configure", "--dir", node_dir, "--registry",
        f"http://127.0.0.1:{free_port()}/directory.json",  # nobody listens there
        "--anchor", registry_dir / "maintainers" / "maintainers.json",
        "--api-port", str(free_port()))  # fmt: skip
    config = load_config(node_dir / "node.toml")
    threads_before = set(threading.enumerate())
    stop = asyncio.Event()
    ready: list[Listening] = []
    node = asyncio.create_task(
        run_node(
            config,
            clock=SystemClock(),
            stop=stop,
            ready=ready.append,
            outbox_interval=timedelta(seconds=0.2),
        )
    )
    for _ in range(200):
        if ready or node.done():
            break
        await asyncio.sleep(0.05)
    assert ready, node.result()
    status, sent = await asyncio.to_thread(
        api,
        ready[0].api_url,
        config.api_token,
        "/api/v1/certificates",
        certificate_between("NL", "KE"),
    )
    assert status == 202, sent  # accepted and held: no directory to route by yet
    await asyncio.sleep(0.5)
    _, message = await asyncio.to_thread(
        api, ready[0].api_url, config.api_token, f"/api/v1/certificates/{sent['id']}"
    )
    assert message["state"] == "queued"
    stop.set()
    await asyncio.wait_for(node, timeout=20)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    # The loop's default executor (asyncio_N, which this test uses too) is the loop's own.
    extra = set(threading.enumerate()) - threads_before
    assert [t for t in extra if not t.name.startswith("asyncio_")] == []
    with pytest.raises(OSError):  # the API listener is closed
        socket.create_connection(("127.0.0.1", config.api_address[1]), timeout=2).close()


def test_serve_without_registry_configured_says_what_to_do(tmp_path: Path) -> None:
    run("node", "init", "--country", "NL", "--name", "NVWA", "--dir", tmp_path / "n")
    result = ephyto("node", "serve", "--dir", tmp_path / "n")
    assert result.returncode == 2
    assert "registry.url: missing (run `ephyto node configure" in result.stderr
    assert "Traceback" not in result.stderr


def test_configure_refuses_a_bad_anchor_and_changes_nothing(tmp_path: Path) -> None:
    node_dir = tmp_path / "n"
    run("node", "init", "--country", "NL", "--name", "NVWA", "--dir", node_dir)
    before = (node_dir / "node.toml").read_bytes()
    bad = tmp_path / "anchor.json"
    bad.write_text('{"threshold": 2, "keys": []}')
    result = ephyto("node", "configure", "--dir", node_dir, "--registry",
                    "http://127.0.0.1:1/directory.json", "--anchor", bad)  # fmt: skip
    assert result.returncode == 2
    assert "not a maintainers trust anchor" in result.stderr
    assert (node_dir / "node.toml").read_bytes() == before
    assert not (node_dir / "maintainers.json").exists()


def test_old_config_without_anchor_or_api_still_loads(tmp_path: Path) -> None:
    text = f"""version = 1
country = "NL"
name = "NVWA"
api_token = "{"t" * 43}"
database_url = "sqlite+aiosqlite:///n.db"

[listen]
host = "127.0.0.1"
port = 9443

[keys]
signing = "keys/signing.key"
encryption = "keys/encryption.key"
tls_key = "keys/tls.key"
tls_certificate = "keys/tls.crt"

[registry]
maintainer_keys = []
"""
    config = parse_config(text, source="n.toml", directory=tmp_path)
    assert config.registry_anchor is None
    assert config.api_address == ("127.0.0.1", 9444)
    assert config.refresh_seconds == 60
    with pytest.raises(ConfigError, match=r"registry.anchor: '/etc/x' must be a path inside"):
        parse_config(text + 'anchor = "/etc/x"\n', source="n.toml", directory=tmp_path)
    with pytest.raises(ConfigError, match=r"api.port: 70000 is out of range"):
        parse_config(text + "[api]\nport = 70000\n", source="n.toml", directory=tmp_path)
