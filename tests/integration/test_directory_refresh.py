"""The node's directory refresh against a real HTTP server on loopback (the registry's app).

The server serves whatever file the test writes, so each test plays the registry, a
rolled-back mirror, a stale cache or an attacker by writing the bytes it wants served.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.clock import FixedClock, SystemClock
from node.crypto.ids import key_id
from node.demo.network import free_port
from node.directory import (
    ExpiredError,
    MaintainerSet,
    MalformedDirectory,
    NoTrustedDirectory,
    RollbackError,
    ThresholdNotMet,
    TooLarge,
    sign_directory,
)
from node.directory.refresh import (
    DirectoryRefresher,
    RegistryUnreachableError,
    load,
)
from registry.web import create_registry_app

NOW = datetime(2026, 3, 2, tzinfo=UTC)
Y26, Y27 = "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"
MAINTAINER = Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)
INTRUDER = Ed25519PrivateKey.from_private_bytes(bytes([8]) * 32)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _anchor_plain(key: Ed25519PrivateKey = MAINTAINER) -> dict[str, Any]:
    raw = key.public_key().public_bytes_raw()
    return {"threshold": 1, "keys": [{"name": "m", "keyid": key_id(raw), "public_key": _b64(raw)}]}


ANCHOR = MaintainerSet.from_plain(_anchor_plain())


def _nppo(country: str, seed: int) -> dict[str, Any]:
    signing = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32).public_key()
    raw, enc = signing.public_bytes_raw(), bytes([seed + 1]) * 32
    window = {"valid_from": Y26, "valid_until": Y27}
    return {
        "country": country,
        "name": f"NPPO of {country}",
        "status": "active",
        "endpoint": f"https://{country.lower()}.example:8443",
        "keys": [
            {"kind": "signing", "keyid": key_id(raw), "public_key": _b64(raw)} | window,
            {"kind": "encryption", "keyid": key_id(enc), "public_key": _b64(enc)} | window,
        ],
        "tls_pins": [{"pin": "sha256:" + f"{seed:02x}" * 32} | window],
        "schema_versions": ["D17A"],
    }


def directory(
    version: int,
    *,
    issued: datetime = NOW - timedelta(days=1),
    valid: timedelta = timedelta(days=7),
    signer: Ed25519PrivateKey = MAINTAINER,
) -> bytes:
    plain = {
        "format": 1,
        "version": version,
        "issued": issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expires": (issued + valid).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "maintainers": _anchor_plain(signer),
        "nppos": [_nppo("KE", 40), _nppo("NL", 50)][: 1 + version % 2],
        "hub": None,
        "code_lists": {"countries": "2024.1"},
    }
    return sign_directory(plain, [signer])


class Registry:
    """A loopback HTTP server serving `root/current.json`; records each response status."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.statuses: list[int] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/directory.json"
        self._runner: web.AppRunner | None = None

    def serve(self, data: bytes) -> None:
        (self.root / "current.json").write_bytes(data)

    async def start(self) -> None:
        app = create_registry_app(self.root)
        app.middlewares.append(self._record)
        app.router.add_get("/huge.json", _huge)  # chunked, no Content-Length
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self.statuses.append(exc.status)
            raise
        self.statuses.append(response.status)
        return response


async def _huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(64):
        await response.write(b"x" * 1024)
    return response


@pytest_asyncio.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    root = tmp_path / "registry"
    (root / "published").mkdir(parents=True)
    server = Registry(root)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def refresher(
    registry: Registry, tmp_path: Path, clock: FixedClock, **kw: Any
) -> DirectoryRefresher:
    cache = tmp_path / "directory.json"
    url = kw.pop("url", registry.url)
    return DirectoryRefresher(url, load(cache, ANCHOR), cache, clock, aiohttp.ClientSession, **kw)


@pytest.mark.asyncio
async def test_first_refresh_trusts_and_persists(
    registry: Registry, tmp_path: Path, clock: FixedClock
) -> None:
    registry.serve(directory(1))
    node = refresher(registry, tmp_path, clock)
    with pytest.raises(NoTrustedDirectory):
        node.current(clock.now())

    result = await node.refresh()

    assert result.outcome == "updated" and result.ok and result.version == 1
    assert "version 1 (expires 2026-03-08T00:00:00Z)" in result.message
    assert node.cache_path.read_bytes() == directory(1)
    assert node.current(clock.now()).nppo("NL").name == "NPPO of NL"
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed, not left


@pytest.mark.asyncio
async def test_an_unchanged_directory_costs_a_304(
    registry: Registry, tmp_path: Path, clock: FixedClock
) -> None:
    registry.serve(directory(1))
    node = refresher(registry, tmp_path, clock)
    await node.refresh()
    mtime = node.cache_path.stat().st_mtime_ns

    result = await node.refresh()

    assert result.outcome == "unchanged" and result.version == 1
    assert registry.statuses == [200, 304]
    assert node.cache_path.stat().st_mtime_ns == mtime


@pytest.mark.asyncio
async def test_a_new_version_replaces_the_cache(
    registry: Registry, tmp_path: Path, clock: FixedClock
) -> None:
    registry.serve(directory(1))
    node = refresher(registry, tmp_path, clock)
    await node.refresh()
    registry.serve(directory(2))

    result = await node.refresh()

    assert (result.outcome, result.version) == ("updated", 2)
    assert node.cache_path.read_bytes() == directory(2)


@pytest.mark.asyncio
async def test_registry_down_keeps_the_cached_copy(
    registry: Registry, tmp_path: Path, clock: FixedClock
) -> None:
    registry.serve(directory(1))
    node = refresher(registry, tmp_path, clock)
    await node.refresh()
    await registry.stop()

    result = await node.refresh()

    assert result.outcome == "unreachable" and not result.ok
    assert isinstance(result.error, RegistryUnreachableError)
    assert result.message.startswith("registry unreachable: ")
    assert "using cached version 1 (expires 2026-03-08T00:00:00Z)" in result.message
    assert node.cache_path.read_bytes() == directory(1)
    assert node.current(clock.now()).version == 1


@pytest.mark.asyncio
async def test_nothing_cached_and_registry_down_says_so(
    registry: Registry, tmp_path: Path, clock: FixedClock
) -> None:
    node = refresher(registry, tmp_path, clock)
    await registry.stop()

    result = await node.refresh()

    assert result.outcome == "unreachable" and result.version is None
    assert "nothing can be trusted until the registry answers" in result.message
    assert not node.cache_path.exists()
    with pytest.raises(NoTrustedDirectory, match="fetch one from the registry"):
        node.current(clock.now())


@pytest.mark.asyncio
async def test_an_http_error_is_reported_as_unreachable(
    registry: Registry, tmp_path: Path, clock: FixedClock
) -> None:
    node = refresher(registry, tmp_path, clock)  # nothing published: 404

    result = await node.refresh()

    assert result.outcome == "unreachable"
    assert "answered HTTP 404" in result.message


@pytest.mark.asyncio
async def test_a_rollback_is_refused_and_the_cache_kept(
    registry: Registry, tmp_path: Path, clock: FixedClock
) -> None:
    registry.serve(directory(2))
    node = refresher(registry, tmp_path, clock)
    await node.refresh()
    registry.serve(directory(1))  # an old, validly signed version: a replay

    result = await node.refresh()

    assert result.outcome == "refused" and isinstance(result.error, RollbackError)
    assert "version 1 is older than the trusted 2" in result.message
    assert "using cached version 2" in result.message
    assert node.cache_path.read_bytes() == directory(2)
    assert node.current(clock.now()).version == 2


@pytest.mark.asyncio
async def test_an_expired_copy_is_refused(
    registry: Registry, tmp_path: Path, clock: FixedClock
) -> None:
    registry.serve(directory(1))
    node = refresher(registry, tmp_path, clock)
    await node.refresh()
    registry.serve(directory(2, issued=NOW - timedelta(days=8)))  # expired yesterday

    result = await node.refresh()

    assert result.outcome == "refused" and isinstance(result.error, ExpiredError)
    assert "directory version 2 expired at 2026-03-01T00:00:00Z" in result.message
    assert node.cache_path.read_bytes() == directory(1)


@pytest.mark.asyncio
async def test_when_the_cached_copy_expires_current_refuses(
    registry: Registry, tmp_path: Path, clock: FixedClock
) -> None:
    registry.serve(directory(1))
    node = refresher(registry, tmp_path, clock)
    await node.refresh()
    await registry.stop()
    clock.advance(days=7)

    result = await node.refresh()

    assert "using cached version 1 (expired 2026-03-08T00:00:00Z)" in result.message
    with pytest.raises(ExpiredError, match="refresh it from the registry"):
        node.current(clock.now())


@pytest.mark.parametrize("attack", ["wrong key", "tampered signature", "tampered content"])
@pytest.mark.asyncio
async def test_a_badly_signed_copy_is_refused(
    registry: Registry, tmp_path: Path, clock: FixedClock, attack: str
) -> None:
    registry.serve(directory(1))
    node = refresher(registry, tmp_path, clock)
    await node.refresh()
    good = directory(2)
    if attack == "wrong key":
        bad = directory(2, signer=INTRUDER)
    elif attack == "tampered signature":
        sig_at = good.index(b'"sig":"') + 7
        bad = (
            good[:sig_at]
            + (b"B" if good[sig_at : sig_at + 1] == b"A" else b"A")
            + good[sig_at + 1 :]
        )
    else:
        bad = good.replace(b"NPPO of KE", b"NPPO of XX")
    registry.serve(bad)

    result = await node.refresh()

    assert result.outcome == "refused"
    assert isinstance(result.error, ThresholdNotMet | MalformedDirectory)
    assert "using cached version 1" in result.message
    assert node.cache_path.read_bytes() == directory(1)


@pytest.mark.asyncio
async def test_downloads_are_limited(registry: Registry, tmp_path: Path, clock: FixedClock) -> None:
    registry.serve(directory(1))
    small = refresher(registry, tmp_path, clock, max_bytes=512)
    result = await small.refresh()
    assert result.outcome == "refused" and isinstance(result.error, TooLarge)
    assert "more than the limit of 512" in result.message

    chunked_url = registry.url.replace("directory.json", "huge.json")
    streamed = refresher(registry, tmp_path, clock, max_bytes=4096, url=chunked_url)
    result = await streamed.refresh()
    assert result.outcome == "refused" and isinstance(result.error, TooLarge)
    assert not small.cache_path.exists()


@pytest.mark.asyncio
async def test_a_restart_works_from_the_cache_without_the_registry(
    registry: Registry, tmp_path: Path, clock: FixedClock
) -> None:
    registry.serve(directory(2))
    await refresher(registry, tmp_path, clock).refresh()
    await registry.stop()

    restarted = refresher(registry, tmp_path, clock)  # a new process: state from the file
    assert restarted.current(clock.now()).version == 2
    result = await restarted.refresh()
    assert result.outcome == "unreachable" and result.version == 2

    await registry.start()
    registry.serve(directory(1))  # the old version again, to a node that restarted
    result = await restarted.refresh()
    assert result.outcome == "refused" and isinstance(result.error, RollbackError)
    registry.serve(directory(2))
    result = await restarted.refresh()
    assert result.outcome == "unchanged"
    assert registry.statuses[-1] == 304  # If-None-Match derived from the cached bytes


def test_a_damaged_cache_is_refused_naming_the_file(tmp_path: Path) -> None:
    cache = tmp_path / "directory.json"
    cache.write_bytes(directory(1).replace(b"NPPO of KE", b"NPPO of XX"))
    with pytest.raises(ThresholdNotMet, match=r"directory.json is damaged .* move it aside"):
        load(cache, ANCHOR)


@pytest.mark.asyncio
async def test_the_scheduled_job_refreshes(registry: Registry, tmp_path: Path) -> None:
    # APScheduler runs jobs by the wall clock, so this test lives in real time.
    served = directory(1, issued=datetime.now(UTC).replace(microsecond=0))
    registry.serve(served)
    cache = tmp_path / "directory.json"
    node = DirectoryRefresher(
        registry.url, load(cache, ANCHOR), cache, SystemClock(), aiohttp.ClientSession
    )
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start()
    try:
        node.schedule(scheduler, timedelta(hours=1))
        for _ in range(250):
            if node.last is not None:
                break
            await asyncio.sleep(0.02)
    finally:
        scheduler.shutdown(wait=False)
    assert node.last is not None and node.last.outcome == "updated"
    assert cache.read_bytes() == served
