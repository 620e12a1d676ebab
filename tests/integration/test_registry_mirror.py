"""A read-only mirror of the registry: plain static files, trusted for their signatures.

docs/protocol.md Part F: authenticity comes only from the maintainers' signatures, so a
plain static file server holding copies of the published files is as good as the registry
itself. The registry here is the real one (`ephyto registry ...`); the mirror is a folder
served by aiohttp's `web.static` or by Python's `http.server`, never the registry's app;
the node side is the real DirectoryRefresher. Each test copies the bytes it wants the
mirror to serve: a faithful copy, an old version (rollback) or a tampered one. The
registry signs a timestamp (docs/protocol.md, Part C "The timestamp"), mirrored beside the
directory like any other file; each test serves the timestamp of the state it plays.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from node.clock import SystemClock
from node.demo.network import free_port
from node.directory import (
    MaintainerSet,
    MalformedDirectory,
    MixAndMatch,
    RollbackError,
    ThresholdNotMet,
)
from node.directory.refresh import DirectoryRefresher, load
from registry.web import create_registry_app
from tests.ephyto_cli import ok


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real registry that published version 1 (NL) and then version 2 (NL and KE); the
    timestamp signed after each publish is kept as ../timestamps/<version>.json."""
    root = tmp_path_factory.mktemp("mirror")
    registry = root / "registry"
    ok("registry", "init", "--dir", registry)
    (root / "timestamps").mkdir()
    for version, (cc, name) in enumerate((("NL", "NVWA"), ("KE", "KEPHIS")), start=1):
        node = root / cc.lower()
        ok("node", "init", "--country", cc, "--name", name, "--dir", node,
            "--endpoint", f"https://{cc.lower()}.example:8443")  # fmt: skip
        ok("registry", "add", node / "enrolment-request.json", "--dir", registry)
        ok("registry", "publish", "--dir", registry, "--expires-in", "1d")
        shutil.copyfile(registry / "timestamp.json", root / "timestamps" / f"{version}.json")
    assert (registry / "published" / "2.json").read_bytes() == (
        registry / "current.json"
    ).read_bytes()
    return registry


def _anchor(registry: Path) -> MaintainerSet:
    plain = json.loads((registry / "maintainers" / "maintainers.json").read_text())
    return MaintainerSet.from_plain(plain)


def _version(registry: Path, version: int) -> bytes:
    return (registry / "published" / f"{version}.json").read_bytes()


def _timestamp(registry: Path, version: int) -> bytes:
    """The timestamp the registry signed right after publishing `version`."""
    return (registry.parent / "timestamps" / f"{version}.json").read_bytes()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _http_server(folder: Path) -> Iterator[str]:
    """Python's http.server on `folder`, in a thread; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@asynccontextmanager
async def _aiohttp_static(folder: Path) -> AsyncIterator[str]:
    """aiohttp's plain static file handler on `folder`; its base URL."""
    app = web.Application()
    app.router.add_static("/", folder)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def _mirror(kind: str, folder: Path) -> AsyncIterator[str]:
    if kind == "aiohttp static":
        async with _aiohttp_static(folder) as url:
            yield url
    else:
        with _http_server(folder) as url:
            yield url


@asynccontextmanager
async def _registry_app(registry: Path) -> AsyncIterator[str]:
    runner = web.AppRunner(create_registry_app(registry))
    await runner.setup()
    port = free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _refresher(url: str, registry: Path, cache: Path) -> DirectoryRefresher:
    return DirectoryRefresher(
        url, load(cache, _anchor(registry)), cache, SystemClock(), aiohttp.ClientSession
    )


MIRRORS = ["aiohttp static", "http.server"]


@pytest.mark.parametrize("kind", MIRRORS)
@pytest.mark.asyncio
async def test_a_static_mirror_is_as_good_as_the_registry(
    published: Path, tmp_path: Path, kind: str
) -> None:
    # The mirror's layout is the registry's (Part F paths), copied file by file.
    mirror = tmp_path / "mirror"
    (mirror / "directory").mkdir(parents=True)
    shutil.copyfile(published / "current.json", mirror / "directory.json")
    shutil.copyfile(published / "timestamp.json", mirror / "timestamp.json")
    for version in (1, 2):
        shutil.copyfile(published / "published" / f"{version}.json",
                        mirror / "directory" / f"{version}.json")  # fmt: skip

    async with _mirror(kind, mirror) as base, _registry_app(published) as origin:
        node = _refresher(f"{base}/directory.json", published, tmp_path / "node.json")
        result = await node.refresh()
        assert (result.outcome, result.version) == ("updated", 2), result.message
        assert node.cache_path.read_bytes() == _version(published, 2)
        directory = node.current(SystemClock().now())
        assert {n.country for n in directory.nppos} == {"NL", "KE"}

        # The same node asking the registry itself learns nothing new: the same bytes.
        node.url = f"{origin}/directory.json"
        again = await node.refresh()
        assert (again.outcome, again.version) == ("unchanged", 2), again.message

        # A node that starts from the registry accepts the mirror's copy as unchanged.
        other = _refresher(f"{origin}/directory.json", published, tmp_path / "other.json")
        assert (await other.refresh()).outcome == "updated"
        other.url = f"{base}/directory/2.json"
        assert (await other.refresh()).outcome == "unchanged"
        assert other.cache_path.read_bytes() == node.cache_path.read_bytes()


@pytest.mark.parametrize("kind", MIRRORS)
@pytest.mark.asyncio
async def test_a_mirror_cannot_roll_a_node_back(published: Path, tmp_path: Path, kind: str) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    served, stamp = mirror / "directory.json", mirror / "timestamp.json"
    served.write_bytes(_version(published, 1))
    stamp.write_bytes(_timestamp(published, 1))
    async with _mirror(kind, mirror) as base:
        node = _refresher(f"{base}/directory.json", published, tmp_path / "node.json")
        assert (await node.refresh()).version == 1
        served.write_bytes(_version(published, 2))
        stamp.write_bytes(_timestamp(published, 2))
        assert (await node.refresh()).version == 2

        # A stale or hostile mirror serves the old, validly signed version again.
        served.write_bytes(_version(published, 1))
        stamp.write_bytes(_timestamp(published, 1))
        result = await node.refresh()

        assert result.outcome == "refused" and isinstance(result.error, RollbackError)
        assert "is older than the trusted" in result.message
        assert node.cache_path.read_bytes() == _version(published, 2)
        assert node.current(SystemClock().now()).version == 2

        # With the new timestamp but the old directory: the timestamp says nothing is newer.
        stamp.write_bytes(_timestamp(published, 2))
        assert (await node.refresh()).outcome == "unchanged"

        # A restarted node that lost its timestamp file: not rolled back either.
        node.timestamp_path.unlink()
        restarted = _refresher(f"{base}/directory.json", published, tmp_path / "node.json")
        result = await restarted.refresh()
        assert (result.outcome, result.version) == ("unchanged", 2), result.message


@pytest.mark.parametrize("kind", MIRRORS)
@pytest.mark.parametrize("attack", ["tampered content", "tampered signature"])
@pytest.mark.asyncio
async def test_a_tampered_mirror_is_refused_and_the_trusted_copy_kept(
    published: Path, tmp_path: Path, kind: str, attack: str
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    served = mirror / "directory.json"
    served.write_bytes(_version(published, 1))
    (mirror / "timestamp.json").write_bytes(_timestamp(published, 1))
    async with _mirror(kind, mirror) as base:
        node = _refresher(f"{base}/directory.json", published, tmp_path / "node.json")
        assert (await node.refresh()).version == 1
        (mirror / "timestamp.json").write_bytes(_timestamp(published, 2))

        good = _version(published, 2)
        if attack == "tampered content":
            bad = good.replace(b"KEPHIS", b"KEPHIX")
        else:
            at = good.index(b'"sig":"') + len(b'"sig":"')
            bad = good[:at] + (b"B" if good[at : at + 1] == b"A" else b"A") + good[at + 1 :]
        assert bad != good
        served.write_bytes(bad)
        result = await node.refresh()

        assert result.outcome == "refused", result.message
        # The timestamp names version 2's hash: tampered bytes fail that before any parse.
        assert isinstance(result.error, MixAndMatch | ThresholdNotMet | MalformedDirectory)
        assert "using cached version 1" in result.message
        assert node.cache_path.read_bytes() == _version(published, 1)
        assert node.current(SystemClock().now()).version == 1

        # The mirror repaired, the node moves on.
        served.write_bytes(good)
        assert (await node.refresh()).version == 2
