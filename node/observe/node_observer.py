"""A node's metrics, health and event log, wired over its store and directory (shell).

`start_node_observer` builds the node's metrics (node.observe.metrics), its event
tailer, and, when `[metrics] listen` is set, the listener; the node's service schedules
the tailer beside its other jobs (node/service.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography import x509

from node.clock import Clock
from node.directory import DirectoryError
from node.directory.refresh import DirectoryRefresher
from node.observe.gauges import (
    directory_samples,
    key_samples,
    outbox_samples,
    tls_certificate_samples,
)
from node.observe.health import Check
from node.observe.listener import ObserverUrls, serve_observer
from node.observe.metrics import NODE_COUNTERS, NODE_HISTOGRAMS, ProcessMetrics, Sample
from node.observe.settings import ListenAddress
from node.observe.tailer import Tailer, certificate_events
from node.store.metrics_queries import TailedEvent
from node.store.store import Store


@dataclass(frozen=True, slots=True)
class NodeObserver:
    """A node's metrics and event tailer, and where its listener answers (None: off)."""

    metrics: ProcessMetrics
    tailer: Tailer[TailedEvent]
    urls: ObserverUrls | None


@dataclass(frozen=True, slots=True)
class NodeSubject:
    """What the node's gauges and checks look at."""

    country: str
    store: Store
    refresher: DirectoryRefresher
    clock: Clock
    # The TLS certificate file presented now (it changes during a rotation).
    tls_certificate: Callable[[], Path]
    # Whether the node holds its signing and encryption keys.
    keys_loaded: Callable[[], bool]


async def start_node_observer(
    stack: AsyncExitStack, subject: NodeSubject, listen: ListenAddress | None
) -> NodeObserver:
    """The node's observer; its listener bound when `listen` is set (OSError if it
    cannot be). The tailer starts at the newest stored event."""
    metrics = ProcessMetrics(NODE_COUNTERS, NODE_HISTOGRAMS)
    tailer = certificate_events(subject.store, metrics)
    await tailer.start()
    urls = None
    if listen is not None:
        urls = await serve_observer(
            stack, listen, metrics,
            gauges=lambda: node_gauges(subject), checks=lambda: node_checks(subject),
        )  # fmt: skip
    return NodeObserver(metrics, tailer, urls)


async def node_gauges(subject: NodeSubject) -> list[Sample]:
    """The node's gauges now: outbox, directory and timestamp, keys, TLS certificate."""
    now = subject.clock.now()
    summary = await subject.store.outbox_summary()
    directory = subject.refresher.trusted.current
    timestamp = subject.refresher.timestamp.current
    try:
        own = None if directory is None else directory.nppo(subject.country)
    except DirectoryError:
        own = None
    certificate = await asyncio.to_thread(certificate_expiry, subject.tls_certificate())
    return [
        *outbox_samples(summary.depth, summary.oldest_created_at, now),
        *directory_samples(directory, timestamp, now),
        *key_samples(own, now),
        *tls_certificate_samples([certificate] if certificate is not None else [], now),
    ]


async def node_checks(subject: NodeSubject) -> Sequence[Check]:
    """Ready: the store takes a write, the keys are held, a fresh directory is trusted."""
    return [
        await store_check(subject.store),
        Check("keys", subject.keys_loaded(), "signing and encryption keys held"),
        directory_check(subject.refresher, subject.clock),
    ]


class WritableStore(Protocol):
    """What the readiness check needs of a node's or a hub's store."""

    @property
    def dialect(self) -> str: ...

    async def probe_writable(self) -> None: ...


async def store_check(store: WritableStore) -> Check:
    """Whether a write transaction can start and write now (rolled back at once)."""
    try:
        await store.probe_writable()
    except Exception as e:  # any failure means "not ready"; the detail says which
        return Check("store", False, f"cannot write to the store: {_line(e)}")
    return Check("store", True, f"writable ({store.dialect})")


def directory_check(refresher: DirectoryRefresher, clock: Clock) -> Check:
    """Whether a directory is trusted, unexpired and vouched for by a fresh timestamp."""
    try:
        directory = refresher.current(clock.now())
    except DirectoryError as e:
        return Check("directory", False, _line(e))
    return Check("directory", True, f"version {directory.version} trusted and fresh")


def certificate_expiry(path: Path) -> datetime | None:
    """When the certificate in `path` expires; None when it cannot be read (the
    readiness checks and the TLS layer say why, not the scrape)."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc
    except (OSError, ValueError):
        return None


def _line(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:300]
