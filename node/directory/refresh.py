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
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from node.clock import Clock
from node.directory.errors import DirectoryError, TooLarge
from node.directory.fields import _shown
from node.directory.model import Directory, MaintainerSet
from node.directory.signing import DEFAULT_MAX_BYTES
from node.directory.trust import TrustedDirectory
from node.errors import EphytoError

log = logging.getLogger(__name__)

Outcome = Literal["updated", "unchanged", "unreachable", "refused"]
DEFAULT_TIMEOUT = timedelta(seconds=30)


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

    def current(self, now: datetime) -> Directory:
        """The directory to decide with now; NoTrustedDirectory or ExpiredError otherwise."""
        return self.trusted.usable(now)

    async def refresh(self) -> RefreshResult:
        """Fetch once and apply; never raises for the registry's or the network's faults.

        Raises CacheWriteError only when a trusted copy could not be persisted.
        """
        async with self._lock:  # a scheduled and a manual refresh must not interleave
            result = await self._refresh()
        self.last = result
        level = logging.INFO if result.ok else logging.WARNING
        log.log(level, "%s", result.message)
        return result

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
            self.trusted.update(data, now)
        except DirectoryError as exc:
            return self._result("refused", f"refused the directory from {self.url}: {exc}", exc)
        after = self.trusted.trusted_bytes
        if after is None or after == before:
            return self._result("unchanged", "the registry has nothing newer")
        try:
            _write_atomic(self.cache_path, after)
        except OSError as exc:
            raise CacheWriteError(
                f"trusted a new directory but could not write {self.cache_path}: {exc}"
            ) from exc
        return self._result("updated", "trusted a new directory")

    async def _fetch(self, cached: bytes | None) -> tuple[int, bytes]:
        headers = {"Accept": "application/json"}
        if cached is not None:
            headers["If-None-Match"] = f'"{hashlib.sha256(cached).hexdigest()}"'
        try:
            async with asyncio.timeout(self._timeout):
                async with (
                    self._session_factory() as session,
                    session.get(self.url, headers=headers) as response,
                ):
                    if response.status == 304 and cached is not None:
                        return 304, b""
                    if response.status != 200:
                        raise RegistryUnreachableError(
                            f"{self.url} answered HTTP {response.status}"
                        )
                    length = response.headers.get("Content-Length", "")
                    if length.isdecimal() and int(length) > self._max_bytes:
                        raise TooLarge(_too_large(int(length), self._max_bytes))
                    return 200, await _read_limited(response.content, self._max_bytes)
        except (EphytoError, asyncio.CancelledError):
            raise
        except TimeoutError:
            raise RegistryUnreachableError(
                f"{self.url} did not answer within {self._timeout:g} s"
            ) from None
        # The client library is injected, so its errors are not known here by name: any
        # failure to get the bytes means "unreachable", and the cached copy stays.
        except Exception as exc:
            raise RegistryUnreachableError(
                f"{self.url}: {type(exc).__name__}: {exc}".rstrip(": ")
            ) from exc

    def _result(
        self, outcome: Outcome, what: str, error: EphytoError | None = None
    ) -> RefreshResult:
        directory = self.trusted.current
        if directory is None:
            state = "no directory is trusted yet"
        else:
            verb = "expired" if self.trusted.is_expired(self._clock.now()) else "expires"
            state = f"version {directory.version} ({verb} {_shown(directory.expires)})"
        if outcome == "updated" or outcome == "unchanged":
            message = f"{what}: using {state}"
        elif directory is None:
            message = f"{what}; {state}: nothing can be trusted until the registry answers"
        else:
            message = f"{what}; using cached {state}"
        return RefreshResult(
            outcome=outcome,
            message=message,
            version=None if directory is None else directory.version,
            expires=None if directory is None else directory.expires,
            error=error,
        )


async def _read_limited(body: ResponseBody, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await body.read(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            # Stop reading: a hostile or broken server must not fill the node's memory.
            raise TooLarge(_too_large(size, max_bytes, at_least=True))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, max_bytes: int, *, at_least: bool = False) -> str:
    more = "at least " if at_least else ""
    return f"directory is {more}{size} bytes, more than the limit of {max_bytes}"


def _write_atomic(path: Path, data: bytes) -> None:
    # A crash leaves the old copy or the new one, never a torn file: the cache is what a
    # restarting node trusts.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
