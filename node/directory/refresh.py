"""Keeping the trusted directory fresh: fetch, check, persist (the shell around `trust`).

The HTTP client is passed in as a session factory (`aiohttp.ClientSession` fits the
protocols below), so this module imports no network library: node/directory stays free of
them (tests/unit/test_architecture.py). The ETag is the quoted SHA-256 hex of the
document (docs/protocol.md, Part F), so If-None-Match is derived from the cached bytes and
works across restarts. Every outcome is a RefreshResult with one line for the operator;
a refused or missing copy never replaces the cache, and the node keeps using what it has.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from node.clock import Clock
from node.directory.errors import DirectoryError, FrozenRegistry, RotationGap, TooLarge
from node.directory.fields import _shown
from node.directory.freshness import (
    ExpiryWarned,
    directory_expiry_warning,
    expiry_warning_due,
    fresh_directory,
)
from node.directory.model import Directory, MaintainerSet
from node.directory.signing import DEFAULT_MAX_BYTES, parse_signed
from node.directory.timestamp import MAX_BYTES as TIMESTAMP_MAX_BYTES
from node.directory.timestamp import CheckedTimestamp, TrustedTimestamp, require_match
from node.directory.trust import TrustedDirectory
from node.errors import EphytoError
from node.fileio import write_atomic

log = logging.getLogger(__name__)

Outcome = Literal["updated", "unchanged", "unreachable", "refused"]
DEFAULT_TIMEOUT = timedelta(seconds=30)
# Versions fetched at most to follow a maintainer rotation the node missed.
MAX_CHAIN = 1000


class RegistryUnreachableError(EphytoError):
    """The registry did not answer with a document (network error, timeout, HTTP status)."""


class CacheWriteError(EphytoError):
    """A directory was trusted but its cache file could not be written: check the disk."""


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What one refresh did; `message` is the one line to show or log."""

    outcome: Outcome
    message: str
    version: int | None  # the version trusted afterwards, None when none is
    expires: datetime | None
    error: EphytoError | None = None  # why, for "unreachable" and "refused"

    @property
    def ok(self) -> bool:
        return self.outcome in ("updated", "unchanged")


class ResponseBody(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


class HttpResponse(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> ResponseBody: ...


class HttpSession(Protocol):
    def get(
        self, url: str, *, headers: Mapping[str, str]
    ) -> AbstractAsyncContextManager[HttpResponse]: ...


SessionFactory = Callable[[], AbstractAsyncContextManager[HttpSession]]


class Scheduler(Protocol):
    def add_job(self, func: Callable[[], Any], trigger: str, **kwargs: Any) -> Any: ...


def load(
    cache_path: Path,
    anchor: MaintainerSet,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    grace: timedelta = timedelta(0),
) -> TrustedDirectory:
    """Trust the persisted copy at `cache_path`, or only `anchor` when there is none.

    Raises DirectoryError naming the file when the copy is damaged (not validly signed by
    its own maintainers): never silently fall back from a copy that was once trusted.
    """
    try:
        data = cache_path.read_bytes()
    except FileNotFoundError:
        return TrustedDirectory(anchor, max_bytes=max_bytes, grace=grace)
    try:
        return TrustedDirectory(anchor, data, max_bytes=max_bytes, grace=grace)
    except DirectoryError as exc:
        raise type(exc)(
            f"the cached directory {cache_path} is damaged ({exc}): move it aside to start"
            " again from the trust anchor"
        ) from None


def timestamp_path(cache_path: Path) -> Path:
    """Where the trusted timestamp is kept: beside the cache, `<name>.timestamp.json`."""
    return cache_path.with_name(f"{cache_path.stem}.timestamp.json")


def load_timestamp(path: Path, directory: Directory | None) -> TrustedTimestamp:
    """The persisted timestamp at `path` if the trusted `directory`'s timestamp keys signed
    it and it names no newer directory, else none (and the next refresh fetches one).

    Unlike the directory's, a copy that does not verify is dropped, not fatal: it happens
    normally after the timestamp keys rotate (TUF drops it too), and losing it weakens
    nothing the directory's own rollback rule does not still hold.
    """
    keys = None if directory is None else directory.timestamp_keys
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return TrustedTimestamp()
    if keys is None:
        return TrustedTimestamp()
    try:
        trusted = TrustedTimestamp(data, keys)
    except DirectoryError as exc:
        log.info("not using the persisted timestamp %s: %s", path, exc)
        return TrustedTimestamp()
    named = trusted.current.directory.version if trusted.current is not None else 0
    if directory is not None and named > directory.version:
        # Only an earlier release kept a timestamp whose directory it refused (issue 12);
        # kept, a version far ahead would lock out the registry's real timestamps.
        log.info(
            "not using the persisted timestamp %s: it names directory version %d, newer than"
            " the trusted %d",
            path,
            named,
            directory.version,
        )
        return TrustedTimestamp()
    return trusted


class DirectoryRefresher:
    """Fetches the directory from `url`, trusts it by the rules, persists it to `cache_path`."""

    def __init__(
        self,
        url: str,
        trusted: TrustedDirectory,
        cache_path: Path,
        clock: Clock,
        session_factory: SessionFactory,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: timedelta = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url
        self.trusted = trusted
        self.cache_path = cache_path
        self.last: RefreshResult | None = None
        self._clock = clock
        self._session_factory = session_factory
        self._max_bytes = max_bytes
        self._timeout = timeout.total_seconds()
        self._lock = asyncio.Lock()
        # The registry's signed timestamp, persisted beside the cache (Part C "The
        # timestamp"); consulted while the trusted directory declares timestamp keys.
        self.timestamp_path = timestamp_path(cache_path)
        self.timestamp = load_timestamp(self.timestamp_path, trusted.current)
        self._expiry_warned: ExpiryWarned | None = None

    def current(self, now: datetime) -> Directory:
        """The directory to decide with now: unexpired, and with a timestamp role vouched
        for by an unexpired timestamp (node/directory/freshness.py); NoTrustedDirectory,
        ExpiredError or FrozenRegistry otherwise."""
        return fresh_directory(self.trusted, self.timestamp, now)

    async def refresh(self) -> RefreshResult:
        """Fetch once and apply; never raises for the registry's or the network's faults.

        Raises CacheWriteError only when a trusted copy could not be persisted.
        """
        async with self._lock:  # a scheduled and a manual refresh must not interleave
            result = await self._refresh_checked()
        self.last = result
        level = logging.INFO if result.ok else logging.WARNING
        log.log(level, "%s", result.message)
        self._warn_if_expiring()
        return result

    def _warn_if_expiring(self) -> None:
        # Rate-limited (freshness.expiry_warning_due): hourly refreshes must not repeat it
        # every hour, yet the operator hears it daily and as each stage is crossed.
        directory, now = self.trusted.current, self._clock.now()
        if directory is None:
            return
        mark = expiry_warning_due(self._expiry_warned, directory, now)
        message = directory_expiry_warning(directory, now)
        if mark is not None and message is not None:
            self._expiry_warned = mark
            log.warning("%s", message)

    def schedule(self, scheduler: Scheduler, interval: timedelta) -> Any:
        """Add an APScheduler (3.x) job refreshing every `interval`, first run now."""
        return scheduler.add_job(
            self._job,
            "interval",
            seconds=interval.total_seconds(),
            next_run_time=self._clock.now(),
            id=f"directory-refresh:{self.url}",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )

    async def _job(self) -> None:
        await self.refresh()

    async def _refresh(self) -> RefreshResult:
        before = self.trusted.trusted_bytes
        try:
            status, data = await self._fetch(before)
        except TooLarge as exc:
            return self._result("refused", f"refused the directory from {self.url}: {exc}", exc)
        except RegistryUnreachableError as exc:
            return self._result("unreachable", f"registry unreachable: {exc}", exc)
        if status == 304:
            return self._result("unchanged", "the registry has nothing newer")
        now = self._clock.now()
        try:
            try:
                self.trusted.update(data, now)
            except RotationGap:
                await self._update_across_rotation(data, now)
        except DirectoryError as exc:
            return self._result("refused", f"refused the directory from {self.url}: {exc}", exc)
        after = self.trusted.trusted_bytes
        if after is None or after == before:
            return self._result("unchanged", "the registry has nothing newer")
        _persist(self.cache_path, after, "directory")
        return self._result("updated", "trusted a new directory")

    async def _fetch(
        self,
        cached: bytes | None,
        *,
        url: str | None = None,
        max_bytes: int | None = None,
        what: str = "directory",
    ) -> tuple[int, bytes]:
        # `url`, `max_bytes`, `what`: the timestamp's (Part F) instead of the directory's.
        limit = self._max_bytes if max_bytes is None else max_bytes
        return await fetch(
            self._session_factory,
            self.url if url is None else url,
            timeout=self._timeout,
            limit=limit,
            too_large=refuse_over(limit, what),
            cached=cached,
        )

    async def _update_across_rotation(self, data: bytes, now: datetime) -> None:
        """Trust `data` through the versions between the trusted one and it, fetched from
        the registry's `directory/<version>.json` (Part F) and applied as one chain (Part C,
        rotation chain): a node that missed a maintainer rotation is not stuck for good.
        Raises DirectoryError (RotationGap when a version cannot be fetched)."""
        target = parse_signed(data, max_bytes=self._max_bytes).directory.version
        trusted = self.trusted.current
        first = 1 if trusted is None else trusted.version + 1
        if target - first > MAX_CHAIN:
            raise RotationGap(
                f"version {target} rotates the maintainers and {target - first} versions lie"
                f" between, more than {MAX_CHAIN}: start again from a new trust anchor"
            )
        chain: list[bytes] = []
        for version in range(first, target):
            url = version_url(self.url, version)
            try:
                chain.append((await self._fetch(None, url=url))[1])
            # Unreachable or too large alike: the rotation cannot be followed from here.
            except EphytoError as exc:
                raise RotationGap(
                    f"version {target} rotates the maintainers; version {version}, needed to"
                    f" follow the rotation, could not be fetched from {url}: {exc}"
                ) from exc
        self.trusted.update_chain([*chain, data], now)

    # --- the timestamp (docs/protocol.md, Part C "The timestamp" and Part F) -------------

    @property
    def timestamp_url(self) -> str:
        """`timestamp.json` beside the directory URL (or beside `directory/`, for a node
        pointed at `directory/<n>.json`)."""
        return f"{_registry_base(self.url)}/timestamp.json"

    def _timestamp_keys(self) -> MaintainerSet | None:
        # An expired directory no longer vouches for its timestamp keys: fetch the
        # directory itself, as on a first start, and judge the timestamp by the new one.
        directory = self.trusted.current
        if directory is None or self.trusted.is_expired(self._clock.now()):
            return None
        return directory.timestamp_keys

    async def _refresh_checked(self) -> RefreshResult:
        """The timestamp first when the trusted directory declares timestamp keys; else the
        directory, then at once its timestamp if the new directory declares keys."""
        if self._timestamp_keys() is not None:
            return await self._refresh_by_timestamp()
        result = await self._refresh()
        if result.outcome != "updated" or self._timestamp_keys() is None:
            return result
        checked = await self._refresh_by_timestamp()
        return result if checked.outcome == "unchanged" else checked

    async def _refresh_by_timestamp(self) -> RefreshResult:
        directory = self.trusted.current
        assert directory is not None  # _timestamp_keys() said so
        url, before = self.timestamp_url, self.timestamp.trusted_bytes
        try:
            status, data = await self._fetch(
                before, url=url, max_bytes=TIMESTAMP_MAX_BYTES, what="timestamp"
            )
        except TooLarge as exc:
            return self._result("refused", f"refused the timestamp from {url}: {exc}", exc)
        except RegistryUnreachableError as exc:
            return self._result("unreachable", f"registry unreachable: {exc}", exc)
        now = self._clock.now()
        checked = None
        try:
            if status == 304:  # the one trusted: still it must not have expired (freeze)
                timestamp = self.timestamp.require_fresh(now)
            else:
                checked = self.timestamp.check(data, directory, now)
                timestamp = checked.timestamp
        except DirectoryError as exc:
            return self._result("refused", f"refused the timestamp from {url}: {exc}", exc)
        ref = timestamp.directory
        fresh = f"timestamp version {timestamp.version} expires {_shown(timestamp.expires)}"
        if ref.version <= directory.version:
            self._accept_timestamp(checked, before)  # it vouches for the directory held
            return self._result("unchanged", f"the registry has nothing newer ({fresh})")
        # Exactly the bytes the timestamp names, and no more than it says (endless data).
        limit = min(ref.length, self._max_bytes)
        try:
            _, data = await self._fetch(None, max_bytes=limit)
            require_match(timestamp, data, max_bytes=self._max_bytes)
            try:
                self.trusted.update(data, now)
            except RotationGap:
                await self._update_across_rotation(data, now)
        except RegistryUnreachableError as exc:
            return self._result("unreachable", f"registry unreachable: {exc}", exc)
        except DirectoryError as exc:
            what = f"refused the directory from {self.url} (named by {fresh})"
            return self._result("refused", f"{what}: {exc}", exc)
        trusted = self.trusted.trusted_bytes
        assert trusted is not None
        _persist(self.cache_path, trusted, "directory")
        # Only now: a timestamp naming a directory the node refused is never trusted nor
        # persisted, so it cannot lock out the registry's next real timestamps (a version
        # far ahead from a misused online key would, until the clock caught up).
        self._accept_timestamp(checked, before)
        return self._result("updated", "trusted a new directory")  # as without a timestamp

    def _accept_timestamp(self, checked: CheckedTimestamp | None, before: bytes | None) -> None:
        """Trust `checked` (None: the 304 of the one trusted) and persist it if it is new."""
        if checked is not None:
            self.timestamp.accept(checked)
        if (after := self.timestamp.trusted_bytes) is not None and after != before:
            _persist(self.timestamp_path, after, "timestamp")

    def _timestamp_lapsed(self, now: datetime) -> bool:
        try:
            self.current(now)
        except FrozenRegistry:
            return True
        except DirectoryError:
            pass  # expired or absent: said by the state itself
        return False

    def _result(
        self, outcome: Outcome, what: str, error: EphytoError | None = None
    ) -> RefreshResult:
        directory, now = self.trusted.current, self._clock.now()
        if directory is None:
            state = "no directory is trusted yet"
        else:
            verb = "expired" if self.trusted.is_expired(now) else "expires"
            state = f"version {directory.version} ({verb} {_shown(directory.expires)})"
        if outcome == "updated" or outcome == "unchanged":
            message = f"{what}: using {state}"
        elif directory is None:
            message = f"{what}; {state}: nothing can be trusted until the registry answers"
        elif not self.trusted.is_expired(now) and self._timestamp_lapsed(now):
            message = f"{what}; holding cached {state}, not used until a fresh timestamp arrives"
        else:
            message = f"{what}; using cached {state}"
        return RefreshResult(
            outcome=outcome,
            message=message,
            version=None if directory is None else directory.version,
            expires=None if directory is None else directory.expires,
            error=error,
        )


def version_url(url: str, version: int) -> str:
    """Where the registry at `url` serves `version`: `directory/<version>.json` beside
    `directory.json` (Part F), or beside a `directory/<n>.json` the node was pointed at."""
    return f"{_registry_base(url)}/directory/{version}.json"


def _registry_base(url: str) -> str:
    """The folder the registry serves directory.json, timestamp.json and directory/ from:
    the directory URL without its last segment, or without `directory/<n>.json`."""
    base, _, name = url.rpartition("/")
    if base.endswith("/directory") and name.removesuffix(".json").isdecimal():
        return base.removesuffix("/directory")
    return base


async def fetch(
    session_factory: SessionFactory,
    url: str,
    *,
    timeout: float,
    limit: int,
    too_large: Callable[[int, bool], EphytoError],
    cached: bytes | None = None,
) -> tuple[int, bytes]:
    """GET `url`: (304, b"") when the server still has `cached` (by its SHA-256 ETag), else
    (200, the body). RegistryUnreachableError for any other answer or failure;
    `too_large(size, at_least)` when the body is, or announces, more than `limit` bytes.

    Shared by the directory, the timestamp, the code lists (node/directory/codelist_fetch.py) and
    `init --discover`, so every fetch from a registry is bounded the same way.
    """
    headers = {"Accept": "application/json"}
    if cached is not None:
        headers["If-None-Match"] = f'"{hashlib.sha256(cached).hexdigest()}"'
    try:
        async with asyncio.timeout(timeout):
            async with (
                session_factory() as session,
                session.get(url, headers=headers) as response,
            ):
                if response.status == 304 and cached is not None:
                    return 304, b""
                if response.status != 200:
                    raise RegistryUnreachableError(f"{url} answered HTTP {response.status}")
                length = response.headers.get("Content-Length", "")
                if length.isdecimal() and int(length) > limit:
                    raise too_large(int(length), False)
                return 200, await _read_limited(response.content, limit, too_large)
    except (EphytoError, asyncio.CancelledError):
        raise
    except TimeoutError:
        raise RegistryUnreachableError(f"{url} did not answer within {timeout:g} s") from None
    # The client library is injected, so its errors are not known here by name: any
    # failure to get the bytes means "unreachable", and the cached copy stays.
    except Exception as exc:
        raise RegistryUnreachableError(f"{url}: {type(exc).__name__}: {exc}".rstrip(": ")) from exc


async def _read_limited(
    body: ResponseBody, limit: int, too_large: Callable[[int, bool], EphytoError]
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await body.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            # Stop reading: a hostile or broken server must not fill the node's memory.
            raise too_large(size, True)
        chunks.append(chunk)
    return b"".join(chunks)


def refuse_over(limit: int, what: str = "directory") -> Callable[[int, bool], TooLarge]:
    """`fetch`'s `too_large` for a document of the registry: TooLarge naming `what`."""
    return lambda size, at_least: TooLarge(_too_large(size, limit, at_least=at_least, what=what))


def _too_large(
    size: int, max_bytes: int, *, at_least: bool = False, what: str = "directory"
) -> str:
    more = "at least " if at_least else ""
    return f"{what} is {more}{size} bytes, more than the limit of {max_bytes}"


def _persist(path: Path, data: bytes, what: str) -> None:
    # A crash leaves the old copy or the new one, never a torn file: the cache is what a
    # restarting node trusts.
    try:
        write_atomic(path, data, 0o644)
    except OSError as exc:
        raise CacheWriteError(f"trusted a new {what} but could not write {path}: {exc}") from exc
