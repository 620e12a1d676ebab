"""One NPPO, two node processes on one PostgreSQL store (issue 12, HA): both serve the API
and deliver (outbox claims with SKIP LOCKED), one runs the run-once jobs; SIGKILL one in
the middle of a stream and every certificate is still delivered once.

Real processes (`ephyto node serve`), real TLS, the real PostgreSQL, real SIGKILL. The
second process is NL's node directory copied (the same keys and token), listening on
other ports: what a second host would run.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.xml_build import to_xml_bytes
from node.cli.cert import sample_model_bytes
from node.demo.network import free_port, network
from node.demo.scenario import routed
from node.identity.config import dump_config, load_config
from tests.databases import postgres_database

COUNT = 40
KILL_AT = 15
WAIT = 120.0  # seconds: a bound on each wait, not a timing under test
READY = re.compile(r"node NL ready: exchange \S+, api (http://\S+?),")


@pytest_asyncio.fixture
async def pg_url() -> AsyncIterator[str]:
    async for url in postgres_database("ephyto_node_processes_test"):
        yield url


def _on_shared_store(directory: Path, url: str, *, ports: tuple[int, int] | None = None) -> None:
    """NL's node.toml on the PostgreSQL store, with a short claim lease (a killed
    process's claims are taken over within seconds), and other ports for a copy."""
    path = directory / "node.toml"
    config = dataclasses.replace(load_config(path), database_url=url, lease_seconds=5)
    if ports is not None:
        config = dataclasses.replace(config, listen_port=ports[0], api_port=ports[1])
    path.write_text(dump_config(config), encoding="utf-8")


def _api(base: str, token: str, method: str, path: str, body: bytes | None = None) -> Any:
    request = urllib.request.Request(
        base + path,
        data=body if body is not None else (b"" if method == "POST" else None),
        method=method,
        headers={"Authorization": f"Bearer {token}"}
        | ({"Content-Type": "application/xml"} if body is not None else {}),
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _ready_api(log: Path, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = READY.search(log.read_text(encoding="utf-8", errors="replace"))
        if found:
            return found.group(1) + "/api/v1"
        assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
        time.sleep(0.1)
    raise AssertionError(f"the second NL process never became ready:\n{log.read_text()}")


@pytest.mark.asyncio
async def test_two_node_processes_on_one_store_deliver_each_certificate_once(
    tmp_path: Path, pg_url: str
) -> None:
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    certs = [
        routed(phyto, exporter="NL", importer="KE", number=f"NL-HA-{i:03d}") for i in range(COUNT)
    ]
    with (
        (tmp_path / "demo.log").open("w") as log,
        network(tmp_path, log, ("NL", "KE"), ("--retry-cap", "2")) as net,
    ):
        nl = net.nodes["NL"]
        net.kill("NL")
        _on_shared_store(nl.directory, pg_url)
        net.restart("NL")
        second_dir = tmp_path / "nl-b"
        shutil.copytree(nl.directory, second_dir, ignore=shutil.ignore_patterns("node.db*"))
        _on_shared_store(second_dir, pg_url, ports=(free_port(), free_port()))
        second_log = tmp_path / "nl-b.log"
        with second_log.open("wb") as out:
            second = subprocess.Popen(
                [sys.executable, "-m", "node.cli.main", "node", "serve", "--dir",
                 str(second_dir), "--verbose"],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            second_api = _ready_api(second_log, second)
            token = load_config(second_dir / "node.toml").api_token
            apis = [(nl.api_url, nl.api_token), (second_api, token)]
            for i, cert in enumerate(certs):
                base, key = apis[i % 2] if i < KILL_AT else apis[1]
                _api(base, key, "POST", "/certificates", to_xml_bytes(cert))
                if i == KILL_AT:
                    net.kill("NL")  # the first process dies mid-stream, claims and all

            # The survivor delivers everything: its own, and the dead one's once their
            # lease ran out.
            deadline = time.monotonic() + WAIT
            while True:
                sent = _api(second_api, token, "GET", "/certificates?direction=sent&limit=1000")
                states = [m["state"] for m in sent["certificates"]]
                if states.count("delivered") == COUNT or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert len(states) == COUNT, "a submission was stored twice or lost"
            assert set(states) == {"delivered"}, sent
            received = net.api("KE", "GET", "/certificates?direction=received&limit=1000")
            numbers = sorted(m["number"] for m in received["certificates"])
            assert numbers == sorted(c.number for c in certs), "KE lost or doubled one"
            # The survivor takes over the run-once jobs (at its next check).
            deadline = time.monotonic() + WAIT
            while True:
                text = second_log.read_text(encoding="utf-8", errors="replace")
                if "node NL now runs the run-once jobs" in text or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert "node NL now runs the run-once jobs" in text, text[-3000:]
        finally:
            second.kill()
            second.wait()
