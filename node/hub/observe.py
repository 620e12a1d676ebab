"""The hub's metrics, health and envelope log (shell), over its store and directory.

Like a node's (node.observe.node_observer): a tailer reads the hub's event trail from
its newest row at start and logs and counts each new one; the gauges (what is held by
state, the oldest content held, the NPPOs' balances, the directory's and the TLS
certificate's expiry) are read at scrape time; ready means the store takes a write and a
fresh directory is trusted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from node.clock import Clock
from node.directory.refresh import DirectoryRefresher
from node.hub.store import HubStore
from node.hub.store.metrics_queries import TailedHubEvent
from node.observe import names
from node.observe.formatting import FIELDS
from node.observe.gauges import directory_samples, tls_certificate_samples
from node.observe.health import Check
from node.observe.hub_lines import age_seconds, hub_counts, hub_log_fields, hub_log_message
from node.observe.listener import ObserverUrls, serve_observer
from node.observe.metrics import HUB_COUNTERS, ProcessMetrics, Sample
from node.observe.node_observer import certificate_expiry, directory_check, store_check
from node.observe.settings import ListenAddress
from node.observe.tailer import Tailer

log = logging.getLogger("node.hub.events")


@dataclass(frozen=True, slots=True)
class HubSubject:
    """What the hub's gauges and checks look at."""

    store: HubStore
    refresher: DirectoryRefresher
    clock: Clock
    tls_certificate: Path


def envelope_events(store: HubStore, metrics: ProcessMetrics) -> Tailer[TailedHubEvent]:
    """The hub's tailer: one log line and the counters per envelope event."""

    def handle(event: TailedHubEvent) -> None:
        fields = hub_log_fields(event.kind, event.tracking_number, event.nppo, event.detail)
        log.info(hub_log_message(event.kind), extra={FIELDS: fields})
        metrics.count(hub_counts(event.kind))

    return Tailer(store, handle)


@dataclass(frozen=True, slots=True)
class HubObserver:
    metrics: ProcessMetrics
    tailer: Tailer[TailedHubEvent]
    urls: ObserverUrls | None


async def start_hub_observer(
    stack: AsyncExitStack, subject: HubSubject, listen: ListenAddress | None
) -> HubObserver:
    """The hub's observer; its listener bound when `listen` is set (OSError if not)."""
    metrics = ProcessMetrics(HUB_COUNTERS)
    tailer = envelope_events(subject.store, metrics)
    await tailer.start()
    urls = None
    if listen is not None:
        urls = await serve_observer(
            stack, listen, metrics,
            gauges=lambda: hub_gauges(subject), checks=lambda: hub_checks(subject),
        )  # fmt: skip
    return HubObserver(metrics, tailer, urls)


async def hub_gauges(subject: HubSubject) -> list[Sample]:
    now = subject.clock.now()
    holdings, oldest = await subject.store.holdings()
    balances = await subject.store.balances()
    samples = [Sample(names.HUB_HELD, {names.STATE: h.state}, h.envelopes) for h in holdings]
    samples += [
        Sample(names.HUB_HELD_BYTES, {names.STATE: h.state}, h.content_bytes) for h in holdings
    ]
    samples.append(Sample(names.HUB_OLDEST_HELD, {}, age_seconds(oldest, now)))
    samples += [
        Sample(names.HUB_BALANCE, {names.NPPO: b.nppo, names.CURRENCY: b.currency}, b.balance)
        for b in balances
    ]
    samples += directory_samples(
        subject.refresher.trusted.current, subject.refresher.timestamp.current, now
    )
    expires = await asyncio.to_thread(certificate_expiry, subject.tls_certificate)
    samples += tls_certificate_samples([expires] if expires is not None else [], now)
    return samples


async def hub_checks(subject: HubSubject) -> Sequence[Check]:
    return [await store_check(subject.store), directory_check(subject.refresher, subject.clock)]
