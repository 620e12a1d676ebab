"""`ephyto registry`: init, enrol, publish, show and serve, run as a maintainer runs them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from node.clock import SystemClock
from node.demo.network import free_port
from node.directory import MaintainerSet, TrustedDirectory
from node.directory.refresh import DirectoryRefresher
from tests.cli.test_cert_cli import ephyto


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A registry with NL and KE enrolled and version 1 published; node dirs beside it."""
    root = tmp_path_factory.mktemp("registry")
    paths = {"registry": root / "registry"}
    result = ephyto("registry", "init", "--dir", paths["registry"])
    assert result.returncode == 0, result.stderr
    assert "trust anchor" in result.stdout
    for cc, name, extra in (
        ("NL", "NVWA", ["--endpoint", "https://node.nl.example:8443"]),
        ("KE", "KEPHIS", []),
    ):
        paths[cc] = root / cc.lower()
        init = ephyto("node", "init", "--country", cc, "--name", name, "--dir", paths[cc], *extra)
        assert init.returncode == 0, init.stderr
        add = ephyto(
            "registry", "add", paths[cc] / "enrolment-request.json", "--dir", root / "registry"
        )
        assert add.returncode == 0, add.stderr
        assert f"enrolled {cc} ({name})" in add.stdout
        assert _line(init.stdout, "signing key id") in add.stdout  # to confirm by phone
        assert _line(init.stdout, "TLS pin") in add.stdout
    result = ephyto("registry", "publish", "--dir", paths["registry"])
    assert result.returncode == 0, result.stderr
    assert "published directory version 1" in result.stdout
    return paths


def _line(output: str, label: str) -> str:
    line = next(x for x in output.splitlines() if x.startswith(label))
    return line.split()[-1]


def _anchor(registry: Path) -> MaintainerSet:
    return MaintainerSet.from_plain(
        json.loads((registry / "maintainers/maintainers.json").read_bytes())
    )


def test_registry_commands_have_help() -> None:
    for command in ([], ["init"], ["add"], ["publish"], ["serve"], ["show"]):
        result = ephyto("registry", *command, "--help")
        assert result.returncode == 0 and "usage: ephyto registry" in result.stdout


def test_the_registry_layout(world: dict[str, Path]) -> None:
    reg = world["registry"]
    (key,) = (reg / "maintainers").glob("*.key")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((reg / "maintainers").stat().st_mode) == 0o700
    assert sorted(p.name for p in (reg / "nppos").iterdir()) == ["KE.json", "NL.json"]
    # The requests are kept exactly as received.
    assert (reg / "nppos/NL.json").read_bytes() == (
        world["NL"] / "enrolment-request.json"
    ).read_bytes()
    newest = max(int(p.stem) for p in (reg / "published").glob("*.json"))
    assert (reg / "current.json").read_bytes() == (reg / f"published/{newest}.json").read_bytes()
    actions = [json.loads(line)["action"] for line in (reg / "audit.log").read_text().splitlines()]
    assert actions[:4] == ["init", "enrol", "enrol", "publish"]


def test_the_published_directory_is_trusted_by_the_anchor(world: dict[str, Path]) -> None:
    reg = world["registry"]
    trusted = TrustedDirectory(_anchor(reg))
    directory = trusted.update((reg / "published/1.json").read_bytes(), datetime.now(UTC))
    assert directory.version == 1
    assert [n.country for n in directory.nppos] == ["KE", "NL"]
    nl, ke = directory.nppo("NL"), directory.nppo("KE")
    assert (nl.endpoint, ke.endpoint) == ("https://node.nl.example:8443", None)
    assert ke.tls_pins  # the hub knows a hub-only NPPO by its pin
    assert dict(directory.code_lists)  # the bundled code-list versions
    assert (directory.expires - directory.issued).days == 90  # the default (issue 12)


def test_show_prints_the_trust_anchor_and_what_is_published(world: dict[str, Path]) -> None:
    result = ephyto("registry", "show", "--dir", world["registry"])
    assert result.returncode == 0, result.stderr
    anchor = _anchor(world["registry"])
    assert anchor.keys[0].key_id in result.stdout
    assert "threshold 1 of 1" in result.stdout
    assert "enrolled NPPOs: 2" in result.stdout
    assert "published: version" in result.stdout


def test_a_tampered_request_is_refused_and_nothing_enrolled(
    world: dict[str, Path], tmp_path: Path
) -> None:
    assert (
        ephyto(
            "node", "init", "--country", "US", "--name", "APHIS", "--dir", tmp_path / "us"
        ).returncode
        == 0
    )
    request = (tmp_path / "us/enrolment-request.json").read_bytes()
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(request.replace(b'"name":"APHIS"', b'"name":"APHIZ"'))
    audit = (world["registry"] / "audit.log").read_bytes()

    result = ephyto("registry", "add", tampered, "--dir", world["registry"])

    assert result.returncode == 2
    assert result.stderr.startswith("ephyto: error: ") and len(result.stderr.splitlines()) == 1
    assert "proof" in result.stderr
    assert not (world["registry"] / "nppos/US.json").exists()
    assert (world["registry"] / "audit.log").read_bytes() == audit


def test_a_country_is_enrolled_once(world: dict[str, Path], tmp_path: Path) -> None:
    same = ephyto(
        "registry", "add", world["NL"] / "enrolment-request.json", "--dir", world["registry"]
    )
    assert same.returncode == 2
    assert "NL is already enrolled with this very request" in same.stderr

    assert (
        ephyto(
            "node", "init", "--country", "NL", "--name", "Impostor", "--dir", tmp_path / "nl2"
        ).returncode
        == 0
    )
    other = ephyto(
        "registry", "add", tmp_path / "nl2/enrolment-request.json", "--dir", world["registry"]
    )
    assert other.returncode == 2
    assert "NL is already enrolled with other keys" in other.stderr
    assert "Traceback" not in other.stderr
    assert (world["registry"] / "nppos/NL.json").read_bytes() == (
        world["NL"] / "enrolment-request.json"
    ).read_bytes()


def test_commands_refuse_a_directory_without_a_registry(tmp_path: Path) -> None:
    result = ephyto("registry", "publish", "--dir", tmp_path)
    assert result.returncode == 2
    assert "holds no registry" in result.stderr and "ephyto registry init" in result.stderr
    again = ephyto("registry", "init", "--dir", tmp_path / "r")
    assert again.returncode == 0
    twice = ephyto("registry", "init", "--dir", tmp_path / "r")
    assert twice.returncode == 2 and "already exists" in twice.stderr


@pytest.fixture
def server(world: dict[str, Path]) -> Iterator[str]:
    """`ephyto registry serve` in a real subprocess on a free loopback port; its base URL."""
    port = free_port()
    script = Path(sys.executable).parent / "ephyto"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "node.cli.main"]
    process = subprocess.Popen(
        [*command, "registry", "serve", "--dir", str(world["registry"]), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[1].decode()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the registry did not start listening"
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        assert process.returncode is not None


@pytest.mark.asyncio
async def test_serve_with_etags_and_publish_without_restart(
    world: dict[str, Path], server: str
) -> None:
    reg = world["registry"]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server}/directory.json") as response:
            assert response.status == 200
            body = await response.read()
            etag = response.headers["ETag"]
            assert response.headers["Cache-Control"] == "no-cache"
            assert response.content_type == "application/json"
        assert body == (reg / "current.json").read_bytes()
        assert etag == f'"{hashlib.sha256(body).hexdigest()}"'

        async with session.get(
            f"{server}/directory.json", headers={"If-None-Match": etag}
        ) as response:
            assert response.status == 304
            assert response.headers["ETag"] == etag
            assert await response.read() == b""

        published = await asyncio.to_thread(
            ephyto, "registry", "publish", "--dir", reg, "--expires-in", "2d"
        )
        assert published.returncode == 0, published.stderr
        new_version = int(published.stdout.split("published directory version ")[1].split()[0])

        async with session.get(
            f"{server}/directory.json", headers={"If-None-Match": etag}
        ) as response:
            assert response.status == 200
            new_body = await response.read()
            assert response.headers["ETag"] != etag
        assert new_body == (reg / f"published/{new_version}.json").read_bytes()

        async with session.get(f"{server}/directory/1.json") as response:
            assert response.status == 200
            assert await response.read() == (reg / "published/1.json").read_bytes()
        for missing in ("999", "0", "01", "x"):
            async with session.get(f"{server}/directory/{missing}.json") as response:
                assert response.status == 404


@pytest.mark.asyncio
async def test_a_node_refreshes_from_the_served_registry(
    world: dict[str, Path], server: str, tmp_path: Path
) -> None:
    cache = tmp_path / "directory.json"
    node = DirectoryRefresher(
        f"{server}/directory.json",
        TrustedDirectory(_anchor(world["registry"])),
        cache,
        SystemClock(),
        aiohttp.ClientSession,
    )
    first = await node.refresh()
    assert first.outcome == "updated", first.message
    assert cache.read_bytes() == (world["registry"] / "current.json").read_bytes()
    assert (await node.refresh()).outcome == "unchanged"
