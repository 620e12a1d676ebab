"""`ephyto doctor` against a real node: identities from `init_node`, a registry that enrols
and publishes with its own code and serves over HTTP on loopback, the node configured by
`ephyto node configure` and its cache filled by the node's own DirectoryRefresher, and
partners (US, the hub) as real mutual-TLS endpoints on loopback.

NL is the node under test; US is a partner with an endpoint, KE one without (never
connected to), and the hub is listed. DE has an identity but is not enrolled. The
registry published version 1 ten days ago (expired since) and version 2 now.
"""

from __future__ import annotations

import socket
import stat
from collections.abc import AsyncIterator, Iterable
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from node.cli.main import main
from node.clock import SystemClock
from node.codelists.lists import bundled
from node.directory import Directory, TrustedDirectory
from node.directory.refresh import DirectoryRefresher, load
from node.doctor.checks import (
    Finding,
    cached_directory,
    certificate_validity,
    clock_skew,
    worst,
)
from node.doctor.run import diagnose
from node.hub.setup import init_hub
from node.identity.config import load_config
from node.identity.keys import load_certificate
from node.identity.store import init_node
from node.service import DIRECTORY_CACHE, read_anchor
from node.web.tls import server_ssl_context
from registry.state import RegistryState
from registry.web import create_registry_app

# TLS checks certificate validity against the real clock: the tests' time is real.
T0 = datetime.now(UTC).replace(microsecond=0)
PAST = T0 - timedelta(days=10)
NETWORK = ("registry", "clock", "hub")


def _bound() -> socket.socket:
    """A loopback port that refuses connections until a server listens on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _url(sock: socket.socket, scheme: str = "https") -> str:
    return f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"


@dataclass
class World:
    root: Path
    registry: RegistryState
    nodes: dict[str, Path]  # country -> node directory (DE: not enrolled)
    socks: dict[str, socket.socket]  # endpoints: US, NL, the hub, the registry
    hub_dir: Path
    directory: Directory  # version 2, as published
    runners: list[web.AppRunner] = field(default_factory=list)

    def tls_files(self, who: str) -> tuple[Path, Path]:
        if who == "hub":
            return self.hub_dir / "keys/tls.crt", self.hub_dir / "keys/tls.key"
        config = load_config(self.nodes[who] / "node.toml")
        return config.path(config.keys.tls_certificate), config.path(config.keys.tls_key)

    async def serve(self, where: str, *, as_who: str | None = None) -> None:
        """A mutual-TLS endpoint on `where`'s socket, with `as_who`'s key (default: its own)
        and the directory's certificates as the clients it lets in."""
        certificate, key = self.tls_files(as_who or where)

        async def health(request: web.Request) -> web.Response:
            return web.json_response({"country": where, "status": "ok"})

        def clients() -> Iterable[bytes]:
            return self.directory.tls_certificates(datetime.now(UTC))

        app = web.Application()
        app.router.add_get("/ephyto/v1/health", health)
        runner = web.AppRunner(app)
        await runner.setup()
        context = server_ssl_context(certificate, key, trusted_client_certs=clients)
        await web.SockSite(runner, self.socks[where], ssl_context=context).start()
        self.runners.append(runner)

    async def serve_partners(self) -> None:
        await self.serve("US")
        await self.serve("hub")


async def _refresh(node_dir: Path) -> None:
    """Fill the node's cache as the running node does."""
    config = load_config(node_dir / "node.toml")
    assert config.registry_url is not None
    cache = config.path(DIRECTORY_CACHE)
    refresher = DirectoryRefresher(
        config.registry_url,
        load(cache, read_anchor(config)),
        cache,
        SystemClock(),
        aiohttp.ClientSession,
    )
    result = await refresher.refresh()
    assert result.ok, result.message


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    registry = RegistryState.init(
        tmp_path / "registry", maintainer="m", threshold=1, now=PAST, actor="test"
    )
    socks = {name: _bound() for name in ("NL", "US", "hub", "registry")}
    nodes: dict[str, Path] = {}
    for country in ("NL", "US", "KE", "DE"):
        sock = socks.get(country)
        made = init_node(
            tmp_path / country.lower(),
            country=country,
            name=f"NPPO {country}",
            endpoint=None if sock is None else _url(sock),
            now=PAST,
        )
        nodes[country] = made.directory
        if country != "DE":
            registry.enrol(made.request.read_bytes(), T0, "test")
    hub = init_hub(tmp_path / "hub", name="Test Hub", endpoint=_url(socks["hub"]), now=PAST)
    registry.set_hub(hub.request.read_bytes(), T0, "test")
    versions = bundled().versions()
    registry.publish(PAST, "test", code_lists=versions, validity=timedelta(days=7))
    directory, _ = registry.publish(T0, "test", code_lists=versions)
    made_world = World(tmp_path, registry, nodes, socks, hub.directory, directory)

    runner = web.AppRunner(create_registry_app(registry.root))
    await runner.setup()
    await web.SockSite(runner, socks["registry"]).start()
    made_world.runners.append(runner)
    anchor = registry.root / "maintainers/maintainers.json"
    url = _url(socks["registry"], "http") + "/directory.json"
    for country in ("NL", "DE"):
        with redirect_stdout(StringIO()):
            code = main(
                ["node", "configure", "--dir", str(nodes[country]), "--registry", url,
                 "--anchor", str(anchor)]
            )  # fmt: skip
        assert code == 0
        await _refresh(nodes[country])
    try:
        yield made_world
    finally:
        for served in reversed(made_world.runners):
            await served.cleanup()
        for sock in socks.values():
            sock.close()


async def _doctor(node_dir: Path, *, offline: bool = False) -> list[Finding]:
    return await diagnose(node_dir, clock=SystemClock(), offline=offline, timeout=5.0)


def _by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def _problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == "problem"]


# --- the whole node ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_healthy_node_has_no_problem(world: World) -> None:
    await world.serve_partners()

    findings = await _doctor(world.nodes["NL"])

    assert _problems(findings) == []
    assert worst(findings) == "ok", [f for f in findings if f.status != "ok"]
    checks = _by_check(findings)
    for check in (
        "config", "trust anchor", "signing key", "encryption key", "TLS key",
        "TLS certificate", "directory", "listed", "endpoint", "signing key id",
        "encryption key id", "TLS pin", "registry", "clock", "partner US", "hub",
    ):  # fmt: skip
        assert check in checks, check
    assert "version 2" in checks["directory"].detail
    assert "names directory version 2" in checks["timestamp"].detail  # fresh
    assert "partner KE" not in checks  # no endpoint: reached through the hub only
    assert "partner NL" not in checks  # not itself
    assert all(f.action is None for f in findings)


@pytest.mark.asyncio
async def test_an_expired_cached_directory_is_a_problem_saying_what_to_do(world: World) -> None:
    await world.serve_partners()
    version_1 = world.registry.version_bytes(1)
    assert version_1 is not None
    (world.nodes["NL"] / DIRECTORY_CACHE).write_bytes(version_1)

    checks = _by_check(await _doctor(world.nodes["NL"]))

    directory = checks["directory"]
    assert directory.status == "problem"
    assert "version 1 expired" in directory.detail
    assert directory.action is not None and "registry" in directory.action
    # The registry has something newer, which the running node would fetch.
    assert checks["registry"].status == "warning"
    assert "version 2" in checks["registry"].detail


@pytest.mark.asyncio
async def test_a_key_file_readable_by_others_is_a_warning(world: World) -> None:
    key = world.nodes["NL"] / "keys/signing.key"
    key.chmod(0o644)

    findings = await _doctor(world.nodes["NL"], offline=True)

    signing = _by_check(findings)["signing key"]
    assert signing.status == "warning"
    assert "0644" in signing.detail
    assert signing.action == f"chmod 600 {key}"
    assert worst(findings) == "warning"  # a warning alone: exit 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o644  # the doctor changes nothing


@pytest.mark.asyncio
async def test_a_node_missing_from_the_directory_is_a_problem(world: World) -> None:
    await world.serve_partners()

    findings = await _doctor(world.nodes["DE"])

    checks = _by_check(findings)
    listed = checks["listed"]
    assert listed.status == "problem"
    assert "DE is not in directory version 2" in listed.detail
    assert listed.action is not None and "enrol" in listed.action
    # And the partners, who know it not, refuse its certificate.
    assert checks["partner US"].status == "problem"
    assert checks["hub"].status == "problem"


@pytest.mark.asyncio
async def test_a_partner_answering_with_another_key_is_a_problem_naming_it(world: World) -> None:
    await world.serve("US", as_who="DE")  # something else answers at US's address
    await world.serve("hub")

    findings = await _doctor(world.nodes["NL"])

    assert [f.check for f in _problems(findings)] == ["partner US"]
    us = _by_check(findings)["partner US"]
    assert "does not list for US (NPPO US)" in us.detail
    assert us.action is not None and "US (NPPO US)" in us.action
    assert _by_check(findings)["hub"].status == "ok"


@pytest.mark.asyncio
async def test_an_unreachable_partner_is_a_problem(world: World) -> None:
    await world.serve("hub")  # US is down: its port refuses connections

    findings = await _doctor(world.nodes["NL"])

    assert [f.check for f in _problems(findings)] == ["partner US"]
    us = _by_check(findings)["partner US"]
    assert "unreachable" in us.detail
    assert us.action is not None and "firewall" in us.action


@pytest.mark.asyncio
async def test_offline_skips_the_network_checks(world: World) -> None:
    # Nothing is served but the registry; offline, nobody is asked.
    findings = await _doctor(world.nodes["NL"], offline=True)

    assert _problems(findings) == []
    assert not [f for f in findings if f.check in NETWORK or f.check.startswith("partner")]


@pytest.mark.asyncio
async def test_a_damaged_cache_and_a_missing_key_are_problems(world: World) -> None:
    cache = world.nodes["NL"] / DIRECTORY_CACHE
    cache.write_bytes(cache.read_bytes().replace(b'"NPPO US"', b'"NPPO UZ"'))
    (world.nodes["NL"] / "keys/encryption.key").unlink()

    checks = _by_check(await _doctor(world.nodes["NL"], offline=True))

    assert checks["directory"].status == "problem"
    assert "move" in (checks["directory"].action or "")
    assert checks["encryption key"].status == "problem"
    assert "missing" in checks["encryption key"].detail


# --- the pure checks, at their thresholds --------------------------------------------------


def test_clock_skew_thresholds() -> None:
    local = T0
    assert clock_skew(local - timedelta(seconds=30), local).status == "ok"
    assert clock_skew(local - timedelta(seconds=31), local).status == "warning"
    assert clock_skew(local + timedelta(minutes=5), local).status == "warning"
    late = clock_skew(local + timedelta(minutes=5, seconds=1), local)
    assert late.status == "problem" and "behind" in late.detail
    assert late.action is not None and "NTP" in late.action
    assert clock_skew(None, local).status == "warning"


def test_certificate_validity_warns_within_30_days(tmp_path: Path) -> None:
    made = init_node(
        tmp_path / "nl", country="NL", name="NVWA", endpoint=None, now=T0,
        validity=timedelta(days=40),
    )  # fmt: skip
    certificate = load_certificate(made.certificate.read_bytes(), "tls.crt")
    assert certificate_validity("tls.crt", certificate, None, T0).status == "ok"
    soon = certificate_validity("tls.crt", certificate, None, T0 + timedelta(days=11))
    assert soon.status == "warning" and "29 days" in soon.detail
    late = certificate_validity("tls.crt", certificate, None, T0 + timedelta(days=40))
    assert late.status == "problem" and "expired" in late.detail


@pytest.mark.asyncio
async def test_directory_expiry_warns_within_a_day(world: World) -> None:
    directory, anchor = world.directory, world.registry.maintainers
    expires = directory.expires
    assert cached_directory("d.json", directory, None, anchor, T0).status == "ok"
    soon = cached_directory("d.json", directory, None, anchor, expires - timedelta(hours=2))
    assert soon.status == "warning" and "2 hours" in soon.detail
    assert cached_directory("d.json", directory, None, anchor, expires).status == "problem"
    missing = cached_directory("d.json", None, None, anchor, T0)
    assert missing.status == "problem" and "ephyto node serve" in (missing.action or "")


@pytest.mark.asyncio
async def test_the_cache_is_version_2_trusted_from_the_anchor(world: World) -> None:
    # The world's own premise: NL's cache is version 2, trusted from the anchor.
    cache = (world.nodes["NL"] / DIRECTORY_CACHE).read_bytes()
    trusted = TrustedDirectory(world.registry.maintainers)
    assert trusted.update(cache, T0).version == 2
