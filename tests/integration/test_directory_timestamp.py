"""The registry's signed timestamp against a real HTTP server on loopback (the registry's app),
one test per TUF attack that applies: rollback, freeze, arbitrary key, threshold not met,
mix-and-match and endless data (docs/protocol.md, Part C "The timestamp" and Part F).

The server serves whatever files the test writes (current.json, timestamp.json), so each
test plays the registry, a stale mirror or an attacker. The last tests run the real
registry (`RegistryState`, its timestamp key and re-signing) end to end.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.clock import FixedClock, SystemClock
from node.crypto.ids import key_id
from node.demo.network import free_port
from node.directory import (
    ExpiredError,
    FrozenRegistry,
    MaintainerSet,
    MixAndMatch,
    RollbackError,
    ThresholdNotMet,
    TooLarge,
    sign_directory,
)
from node.directory.refresh import DirectoryRefresher, load
from node.directory.timestamp import DirectoryRef, Timestamp, parse_timestamp, sign_timestamp
from registry.state import RegistryState
from registry.timestamp import (
    TIMESTAMP_DIR,
    TIMESTAMP_FILE,
    create_key,
    resign,
    resign_context,
    timestamp_keys,
)
from registry.web import create_registry_app
from tests.timestamp_keys import INTRUDER, MAINTAINER, NOW, ONLINE, SECOND, key_set, time_text

ANCHOR = MaintainerSet.from_plain(key_set([MAINTAINER]))


def directory(version: int, *, keys: dict[str, Any] | None = None, name: str = "KE") -> bytes:
    """Version `version`, valid from a day before NOW for a week, declaring timestamp keys."""
    raw = bytes([40 + version]) * 32
    nppo = {
        "country": name,
        "name": f"NPPO of {name} v{version}",
        "status": "active",
        "endpoint": None,
        "keys": [
            {
                "kind": "signing",
                "keyid": key_id(raw),
                "public_key": base64.b64encode(raw).decode(),
                "valid_from": "2026-01-01T00:00:00Z",
                "valid_until": "2027-01-01T00:00:00Z",
            }
        ],
        "tls_pins": [],
        "schema_versions": ["D17A"],
    }
    plain = {
        "format": 1,
        "version": version,
        "issued": time_text(NOW - timedelta(days=1)),
        "expires": time_text(NOW + timedelta(days=6)),
        "maintainers": key_set([MAINTAINER]),
        "nppos": [nppo],
        "hub": None,
        "code_lists": {},
        "timestamp_keys": key_set([ONLINE]) if keys is None else keys,
    }
    return sign_directory(plain, [MAINTAINER])


def timestamp(
    version: int,
    named: bytes,
    named_version: int,
    *,
    expires: datetime = NOW + timedelta(days=1),
    keys: list[Ed25519PrivateKey] | None = None,
) -> bytes:
    ref = DirectoryRef.of(named_version, named)
    return sign_timestamp(
        Timestamp(version, NOW - timedelta(hours=1), expires, ref), keys or [ONLINE]
    )


class Registry:
    """The registry's app on loopback, serving `root`; records the paths asked for, and lets a
    test replace the answer for a path (an attacker's server)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths: list[str] = []
        self.override: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {}
        self.sent: dict[str, int] = {}  # bytes an overriding handler managed to write
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._runner: web.AppRunner | None = None

    def serve(self, directory_bytes: bytes | None = None, stamp: bytes | None = None) -> None:
        if directory_bytes is not None:
            (self.root / "current.json").write_bytes(directory_bytes)
        if stamp is not None:
            (self.root / TIMESTAMP_FILE).write_bytes(stamp)

    async def start(self) -> None:
        app = create_registry_app(self.root)
        app.middlewares.append(self._intercept)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _intercept(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.paths.append(request.path)
        if request.path in self.override:
            return await self.override[request.path](request)
        return await handler(request)

    def endless(self, path: str) -> None:
        """Serve `path` as a body that never ends (chunked, no Content-Length)."""

        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            self.sent[path] = 0
            try:
                for _ in range(100_000):  # 6.4 GB if nobody stops reading
                    await response.write(b" " * 65536)
                    self.sent[path] += 65536
            except (ConnectionError, asyncio.CancelledError):
                pass
            return response

        self.override[path] = handler


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


def node(registry: Registry, tmp_path: Path, clock: FixedClock) -> DirectoryRefresher:
    cache = tmp_path / "directory.json"
    return DirectoryRefresher(
        f"{registry.base}/directory.json", load(cache, ANCHOR), cache, clock, aiohttp.ClientSession
    )


async def _bootstrapped(
    registry: Registry, tmp_path: Path, clock: FixedClock
) -> DirectoryRefresher:
    v1 = directory(1)
    registry.serve(v1, timestamp(10, v1, 1))
    refresher = node(registry, tmp_path, clock)
    result = await refresher.refresh()
    assert (result.outcome, result.version) == ("updated", 1), result.message
    registry.paths.clear()
    return refresher


@pytest.mark.asyncio
async def test_first_start_trusts_the_directory_then_its_timestamp(
    registry: Registry, tmp_path: Path
) -> None:
    refresher = await _bootstrapped(registry, tmp_path, FixedClock(NOW))
    assert refresher.timestamp_path == tmp_path / "directory.timestamp.json"
    assert refresher.timestamp_path.read_bytes() == timestamp(10, directory(1), 1)
    assert refresher.timestamp.current is not None and refresher.timestamp.current.version == 10

    # Nothing new: one conditional request for the timestamp, the directory not fetched.
    result = await refresher.refresh()
    assert result.outcome == "unchanged", result.message
    assert "timestamp version 10 expires 2026-03-03T00:00:00Z" in result.message
    assert registry.paths == ["/timestamp.json"]


@pytest.mark.asyncio
async def test_a_new_version_is_fetched_because_the_timestamp_names_it(
    registry: Registry, tmp_path: Path
) -> None:
    refresher = await _bootstrapped(registry, tmp_path, FixedClock(NOW))
    v2 = directory(2)
    registry.serve(v2, timestamp(11, v2, 2))

    result = await refresher.refresh()

    assert (result.outcome, result.version) == ("updated", 2), result.message
    assert registry.paths == ["/timestamp.json", "/directory.json"]
    assert refresher.cache_path.read_bytes() == v2
    assert refresher.timestamp_path.read_bytes() == timestamp(11, v2, 2)


@pytest.mark.asyncio
async def test_rollback_an_old_timestamp_or_an_old_directory_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    clock = FixedClock(NOW)
    refresher = await _bootstrapped(registry, tmp_path, clock)
    v1, v2 = directory(1), directory(2)
    registry.serve(v2, timestamp(11, v2, 2))
    assert (await refresher.refresh()).version == 2

    # An old timestamp (still valid, validly signed) is refused.
    registry.serve(v1, timestamp(10, v1, 1))
    result = await refresher.refresh()
    assert result.outcome == "refused" and isinstance(result.error, RollbackError)
    assert "timestamp version 10 is older than the trusted 11" in result.message

    # A new timestamp naming the old directory: refused before any directory is fetched.
    registry.paths.clear()
    registry.serve(v1, timestamp(12, v1, 1))
    result = await refresher.refresh()
    assert isinstance(result.error, RollbackError), result.message
    assert "names directory version 1, older than the trusted 2" in result.message
    assert registry.paths == ["/timestamp.json"]

    # After a restart the persisted timestamp still guards the version.
    registry.serve(v1, timestamp(10, v1, 1))
    restarted = node(registry, tmp_path, clock)
    assert restarted.timestamp.current is not None
    assert restarted.timestamp.current.version == 11
    result = await restarted.refresh()
    assert isinstance(result.error, RollbackError), result.message
    assert restarted.current(clock.now()).version == 2


@pytest.mark.asyncio
async def test_freeze_a_registry_serving_an_expired_timestamp_is_noticed(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FixedClock(NOW)
    refresher = await _bootstrapped(registry, tmp_path, clock)
    clock.advance(days=1)  # the registry (or someone in between) keeps serving timestamp 10

    with caplog.at_level(logging.WARNING, logger="node.directory.refresh"):
        result = await refresher.refresh()

    assert result.outcome == "refused" and isinstance(result.error, FrozenRegistry)
    assert "the registry's timestamp (version 10) expired at 2026-03-03T00:00:00Z" in (
        result.message
    )
    assert "frozen or held back" in result.message
    assert (
        "holding cached version 1 (expires 2026-03-08T00:00:00Z), not used until a fresh"
        " timestamp arrives" in result.message
    )
    assert any(r.levelno == logging.WARNING and "expired" in r.message for r in caplog.records)
    # A 304 for the expired copy is no excuse either.
    assert registry.paths[-1] == "/timestamp.json"
    # Freshness comes from the timestamp (issue 12): no trust decision on the directory,
    # though its own expiry is days away; past that, it is expired as well.
    with pytest.raises(FrozenRegistry, match="until a fresh timestamp arrives"):
        refresher.current(clock.now())
    clock.advance(days=5)
    with pytest.raises(ExpiredError):
        refresher.current(clock.now())

    # The registry resumes signing: the node moves on.
    clock = FixedClock(NOW)
    refresher = node(registry, tmp_path, clock)
    clock.advance(hours=25)
    registry.serve(stamp=timestamp(13, directory(1), 1, expires=NOW + timedelta(days=2)))
    assert (await refresher.refresh()).outcome == "unchanged"


@pytest.mark.asyncio
async def test_arbitrary_key_a_timestamp_the_directory_does_not_vouch_for_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    refresher = await _bootstrapped(registry, tmp_path, FixedClock(NOW))
    v2 = directory(2)
    for forger in (INTRUDER, MAINTAINER):  # even a maintainer key is not the online key
        registry.paths.clear()
        registry.serve(v2, timestamp(11, v2, 2, keys=[forger]))
        result = await refresher.refresh()
        assert result.outcome == "refused" and isinstance(result.error, ThresholdNotMet)
        assert "0 valid signatures" in result.message
        assert registry.paths == ["/timestamp.json"]  # the directory was never fetched
    assert refresher.timestamp.current is not None
    assert refresher.timestamp.current.version == 10


@pytest.mark.asyncio
async def test_threshold_not_met_one_of_two_timestamp_keys_is_not_enough(
    registry: Registry, tmp_path: Path
) -> None:
    v1 = directory(1, keys=key_set([ONLINE, SECOND], threshold=2))
    registry.serve(v1, timestamp(10, v1, 1, keys=[ONLINE]))
    refresher = node(registry, tmp_path, FixedClock(NOW))

    result = await refresher.refresh()

    # The directory itself was trusted (the maintainers signed it); its timestamp was not.
    assert result.outcome == "refused" and isinstance(result.error, ThresholdNotMet)
    assert "1 valid signatures by the directory's timestamp keys, 2 needed" in result.message
    assert refresher.timestamp.current is None
    registry.serve(stamp=timestamp(10, v1, 1, keys=[ONLINE, SECOND]))
    assert (await refresher.refresh()).outcome == "unchanged"


@pytest.mark.asyncio
async def test_mix_and_match_a_directory_other_than_the_one_named_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    clock = FixedClock(NOW)
    refresher = await _bootstrapped(registry, tmp_path, clock)
    v2, other_v2 = directory(2), directory(2, name="NL")  # both validly signed
    registry.serve(other_v2, timestamp(11, v2, 2))

    result = await refresher.refresh()

    assert result.outcome == "refused" and isinstance(result.error, MixAndMatch)
    assert "is not the one timestamp version 11 names" in result.message
    assert refresher.current(clock.now()).version == 1
    assert refresher.cache_path.read_bytes() == directory(1)
    # The timestamp named a directory the node refused, so it is not kept (issue 12); the
    # right directory is then accepted with it.
    registry.serve(v2)
    result = await refresher.refresh()
    assert (result.outcome, result.version) == ("updated", 2), result.message


@pytest.mark.asyncio
async def test_endless_data_reading_stops_at_the_length_the_timestamp_names(
    registry: Registry, tmp_path: Path
) -> None:
    refresher = await _bootstrapped(registry, tmp_path, FixedClock(NOW))
    v2 = directory(2)
    registry.serve(v2, timestamp(11, v2, 2))
    registry.endless("/directory.json")

    result = await refresher.refresh()

    assert result.outcome == "refused" and isinstance(result.error, TooLarge)
    assert f"more than the limit of {len(v2)}" in result.message
    await asyncio.sleep(0.2)
    assert registry.sent["/directory.json"] < 64 * 65536  # the node hung up early
    assert refresher.cache_path.read_bytes() == directory(1)


@pytest.mark.asyncio
async def test_endless_data_an_endless_timestamp_is_cut_at_its_own_limit(
    registry: Registry, tmp_path: Path
) -> None:
    refresher = await _bootstrapped(registry, tmp_path, FixedClock(NOW))
    registry.endless("/timestamp.json")

    result = await refresher.refresh()

    assert result.outcome == "refused" and isinstance(result.error, TooLarge)
    assert "timestamp is at least" in result.message and "limit of 16384" in result.message
    await asyncio.sleep(0.2)
    assert registry.sent["/timestamp.json"] < 64 * 65536


@pytest.mark.asyncio
async def test_a_missing_timestamp_is_unreachable_not_a_pass(
    registry: Registry, tmp_path: Path
) -> None:
    refresher = await _bootstrapped(registry, tmp_path, FixedClock(NOW))
    (registry.root / TIMESTAMP_FILE).unlink()
    v2 = directory(2)
    registry.serve(v2)

    result = await refresher.refresh()

    assert result.outcome == "unreachable" and "timestamp.json answered HTTP 404" in result.message
    assert registry.paths == ["/timestamp.json"]  # no way around the timestamp


@pytest.mark.asyncio
async def test_a_directory_without_timestamp_keys_needs_no_timestamp(
    registry: Registry, tmp_path: Path
) -> None:
    plain = json.loads(directory(1))["signed"]
    del plain["timestamp_keys"]
    registry.serve(sign_directory(plain, [MAINTAINER]))
    refresher = node(registry, tmp_path, FixedClock(NOW))
    assert (await refresher.refresh()).outcome == "updated"
    assert (await refresher.refresh()).outcome == "unchanged"
    assert "/timestamp.json" not in registry.paths


# --- the real registry -----------------------------------------------------------------------


def _real_node(registry: Registry, state: RegistryState, tmp_path: Path) -> DirectoryRefresher:
    cache = tmp_path / "node.json"
    return DirectoryRefresher(
        f"{registry.base}/directory.json",
        load(cache, state.maintainers),
        cache,
        SystemClock(),
        aiohttp.ClientSession,
    )


@pytest.mark.asyncio
async def test_the_registry_signs_a_timestamp_at_each_publish_and_re_sign(
    registry: Registry, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    state = RegistryState.init(registry.root, maintainer="m", threshold=1, now=now, actor="t")
    key_file = next((registry.root / TIMESTAMP_DIR).glob("*.key"))
    assert key_file.stat().st_mode & 0o777 == 0o600
    directory_1, data = state.publish(now, "t", code_lists={})
    assert directory_1.timestamp_keys == timestamp_keys(registry.root)
    stamp = parse_timestamp((registry.root / TIMESTAMP_FILE).read_bytes()).timestamp
    assert stamp.directory == DirectoryRef.of(1, data)

    refresher = _real_node(registry, state, tmp_path)
    assert (await refresher.refresh()).outcome == "updated"
    audit_before = len(state.audit_lines())

    signed = resign(registry.root, now + timedelta(seconds=1))
    assert signed is not None and signed[0].version > stamp.version
    result = await refresher.refresh()
    assert result.outcome == "unchanged" and f"timestamp version {signed[0].version}" in (
        result.message
    )
    assert len(state.audit_lines()) == audit_before  # re-signs are not audited

    state.publish(now + timedelta(seconds=2), "t", code_lists={})
    assert (await refresher.refresh()).version == 2
    actions = [e["action"] for e in state.audit_entries()]
    assert actions == ["init", "publish", "publish"]
    assert state.audit_entries()[0]["details"]["timestamp_key"] == key_file.stem


@pytest.mark.asyncio
async def test_a_registry_made_before_timestamps_publishes_without_then_adds_a_key(
    registry: Registry, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    state = RegistryState.init(registry.root, maintainer="m", threshold=1, now=now, actor="t")
    for path in (registry.root / TIMESTAMP_DIR).iterdir():
        path.unlink()
    (registry.root / TIMESTAMP_DIR).rmdir()  # as an older release left it

    directory_1, _ = state.publish(now, "t", code_lists={})
    assert directory_1.timestamp_keys is None
    assert not (registry.root / TIMESTAMP_FILE).exists()
    refresher = _real_node(registry, state, tmp_path)
    assert (await refresher.refresh()).outcome == "updated"

    kid = create_key(registry.root)  # `ephyto registry timestamp --new-key`
    directory_2, _ = state.publish(now + timedelta(seconds=1), "t", code_lists={})
    assert directory_2.timestamp_keys is not None
    assert directory_2.timestamp_keys.keys[0].key_id == kid
    result = await refresher.refresh()
    assert (result.outcome, result.version) == ("updated", 2), result.message
    assert refresher.timestamp.current is not None  # checked at once, not next time


@pytest.mark.asyncio
async def test_a_new_timestamp_key_takes_over_without_refusals(
    registry: Registry, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    state = RegistryState.init(registry.root, maintainer="m", threshold=1, now=now, actor="t")
    state.publish(now, "t", code_lists={})
    refresher = _real_node(registry, state, tmp_path)
    assert (await refresher.refresh()).outcome == "updated"

    create_key(registry.root)  # the old key leaked: a new one, listed by the next publish
    resign(registry.root, now + timedelta(seconds=1))  # signed by both keys held
    assert (await refresher.refresh()).outcome == "unchanged"
    state.publish(now + timedelta(seconds=2), "t", code_lists={})
    assert (await refresher.refresh()).version == 2
    old = next(
        p
        for p in (registry.root / TIMESTAMP_DIR).glob("*.key")
        if p.stem != timestamp_keys(registry.root).keys[0].key_id  # type: ignore[union-attr]
    )
    old.unlink()  # retired once no directory listing it is in use
    resign(registry.root, now + timedelta(seconds=3))
    assert (await refresher.refresh()).outcome == "unchanged"


@pytest.mark.asyncio
async def test_serve_re_signs_the_timestamp_periodically(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    root = tmp_path / "registry"
    state = RegistryState.init(root, maintainer="m", threshold=1, now=now, actor="t")
    state.publish(now, "t", code_lists={})
    first = parse_timestamp((root / TIMESTAMP_FILE).read_bytes()).timestamp.version

    app = create_registry_app(root)
    app.cleanup_ctx.append(resign_context(root, timedelta(seconds=1), timedelta(minutes=1)))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        for _ in range(50):
            await asyncio.sleep(0.1)
            version = parse_timestamp((root / TIMESTAMP_FILE).read_bytes()).timestamp.version
            if version >= first + 2:
                break
        assert version >= first + 2
    finally:
        await runner.cleanup()


def test_the_timestamp_command_re_signs_and_adds_a_key(tmp_path: Path) -> None:
    from tests.cli.test_cert_cli import ephyto

    reg = tmp_path / "registry"
    assert ephyto("registry", "init", "--dir", reg).returncode == 0
    unpublished = ephyto("registry", "timestamp", "--dir", reg)
    assert unpublished.returncode != 0 and "publish" in unpublished.stderr
    assert ephyto("registry", "publish", "--dir", reg).returncode == 0
    before = parse_timestamp((reg / TIMESTAMP_FILE).read_bytes()).timestamp

    result = ephyto("registry", "timestamp", "--dir", reg, "--expires-in", "12h")

    assert result.returncode == 0, result.stderr
    after = parse_timestamp((reg / TIMESTAMP_FILE).read_bytes()).timestamp
    assert after.version > before.version and after.expires - after.issued == timedelta(hours=12)
    assert f"signed timestamp version {after.version}" in result.stdout
    assert "directory  version 1" in result.stdout

    rotated = ephyto("registry", "timestamp", "--dir", reg, "--new-key")
    assert rotated.returncode == 0, rotated.stderr
    assert "created timestamp key" in rotated.stdout and "publish" in rotated.stdout
    assert len(list((reg / TIMESTAMP_DIR).glob("*.key"))) == 2
    assert len(json.loads((reg / TIMESTAMP_FILE).read_bytes())["signatures"]) == 2
    log = ephyto("registry", "log", "--dir", reg, "--json").stdout.splitlines()
    assert [json.loads(line)["action"] for line in log] == ["init", "publish", "timestamp-key"]

    lapsing = ephyto(
        "registry", "serve", "--dir", reg, "--timestamp-every", "1d",
        "--timestamp-expires-in", "1d",
    )  # fmt: skip
    assert lapsing.returncode != 0 and "lets them lapse" in lapsing.stderr
