"""The registry's metrics, health and action log (shell), for `ephyto registry serve`.

Every action on the registry (enrol, approve, publish, suspend, a timestamp signed by
`registry timestamp`...) is appended to its audit log (registry/audit.py), whichever
process took it: a maintainer's command, cron, or `serve` itself. So the serving
process tails that log from its end at start and writes one line per new action, and
counts it; the published directory's version and expiry and the timestamp's expiry are
read at scrape time. Ready means a directory is published and unexpired, the timestamp
(where one is signed) unexpired, and the registry's folder writable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from node.clock import Clock
from node.directory import DirectoryError
from node.directory.signing import parse_signed
from node.directory.timestamp import parse_timestamp
from node.observe import names
from node.observe.event_lines import Count
from node.observe.formatting import FIELDS
from node.observe.health import Check
from node.observe.listener import ObserverUrls, serve_observer
from node.observe.metrics import REGISTRY_COUNTERS, ProcessMetrics, Sample
from node.observe.settings import ListenAddress
from registry.audit import AUDIT_FILE
from registry.publication import CURRENT_FILE
from registry.timestamp import TIMESTAMP_FILE

log = logging.getLogger("registry.actions")

TAIL_SECONDS: Final = 2.0
_DETAIL_FIELDS: Final = ("country", "version", "name", "status", "request", "reason")
_MAX_TEXT_CHARS: Final = 200


@dataclass
class RegistryObserver:
    """The serving registry's metrics, and where its listener answers once started."""

    root: Path
    listen: ListenAddress
    clock: Clock
    metrics: ProcessMetrics = field(default_factory=lambda: ProcessMetrics(REGISTRY_COUNTERS))
    urls: ObserverUrls | None = None
    _offset: int = 0

    def start_tail(self) -> None:
        """From now on: the actions already logged are not told again."""
        try:
            self._offset = (self.root / AUDIT_FILE).stat().st_size
        except FileNotFoundError:
            self._offset = 0

    def tail_once(self) -> int:
        """Log and count every complete audit line appended since the last call."""
        try:
            with (self.root / AUDIT_FILE).open("rb") as audit:
                audit.seek(self._offset)
                data = audit.read()
        except FileNotFoundError:
            return 0
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits
        self._offset += len(complete)
        told = 0
        for line in complete.splitlines():
            entry = _entry(line)
            if entry is None:
                continue
            action = _text(entry.get("action")) or "unknown"
            log.info("registry action %s", action, extra={FIELDS: action_fields(entry)})
            self.metrics.count([Count(names.REGISTRY_ACTIONS, {names.ACTION: action})])
            told += 1
        return told

    async def gauges(self) -> list[Sample]:
        return await asyncio.to_thread(registry_samples, self.root, self.clock.now())

    async def checks(self) -> Sequence[Check]:
        return await asyncio.to_thread(registry_checks, self.root, self.clock.now())

    def context(
        self, ready: Callable[[ObserverUrls], None] | None = None
    ) -> Callable[[web.Application], AsyncIterator[None]]:
        """An aiohttp `cleanup_ctx` entry: the listener and the tailer while the app runs."""

        async def observing(_app: web.Application) -> AsyncIterator[None]:
            async with AsyncExitStack() as stack:
                self.start_tail()
                self.urls = await serve_observer(
                    stack, self.listen, self.metrics, gauges=self.gauges, checks=self.checks
                )
                if ready is not None:
                    ready(self.urls)
                task = asyncio.get_running_loop().create_task(self._tail_forever())
                try:
                    yield
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

        return observing

    async def _tail_forever(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.tail_once)
            except OSError as e:
                log.warning("cannot read the audit log: %s", e)
            await asyncio.sleep(TAIL_SECONDS)


def action_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """The line's fields: the action, who took it, and named parts of its details."""
    details = entry.get("details")
    details = details if isinstance(details, dict) else {}
    fields: dict[str, Any] = {
        "action": _text(entry.get("action")),
        "actor": _text(entry.get("actor")),
        "at": _text(entry.get("time")),
    }
    for key in _DETAIL_FIELDS:
        value = details.get(key)
        fields[key] = (
            value if isinstance(value, int) and not isinstance(value, bool) else _text(value)
        )
    return fields


def registry_samples(root: Path, now: datetime) -> list[Sample]:
    """The published version and time to expiry of the directory and the timestamp."""
    samples: list[Sample] = []
    directory = _published(root)
    if directory is not None:
        version, expires = directory
        samples.append(Sample(names.REGISTRY_VERSION, {}, float(version)))
        samples.append(Sample(names.REGISTRY_DIRECTORY_EXPIRY, {}, (expires - now).total_seconds()))
    timestamp = _timestamp_expiry(root)
    if timestamp is not None:
        samples.append(
            Sample(names.REGISTRY_TIMESTAMP_EXPIRY, {}, (timestamp - now).total_seconds())
        )
    return samples


def registry_checks(root: Path, now: datetime) -> list[Check]:
    """Published and unexpired; the timestamp, if any, unexpired; the folder writable."""
    directory = _published(root)
    if directory is None:
        published = Check("directory", False, "no directory is published (or it does not parse)")
    elif directory[1] <= now:
        published = Check("directory", False, f"version {directory[0]} expired")
    else:
        published = Check("directory", True, f"version {directory[0]} published")
    checks = [published]
    expires = _timestamp_expiry(root)
    if (root / TIMESTAMP_FILE).exists():
        fresh = expires is not None and expires > now
        checks.append(Check("timestamp", fresh, "unexpired" if fresh else "expired or damaged"))
    writable = os.access(root, os.W_OK)
    checks.append(Check("files", writable, f"{root} {'is' if writable else 'is not'} writable"))
    return checks


def _published(root: Path) -> tuple[int, datetime] | None:
    try:
        directory = parse_signed((root / CURRENT_FILE).read_bytes()).directory
    except (OSError, DirectoryError):
        return None
    return directory.version, directory.expires


def _timestamp_expiry(root: Path) -> datetime | None:
    try:
        return parse_timestamp((root / TIMESTAMP_FILE).read_bytes()).timestamp.expires
    except (OSError, DirectoryError):
        return None


def _entry(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _text(value: Any) -> str | None:
    return value[:_MAX_TEXT_CHARS] if isinstance(value, str) and value else None
