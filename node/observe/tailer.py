"""One log line and the counters for each certificate event (shell).

The store records every certificate event in its `events` table, in commit order
(node.store.feed says why none is ever skipped). The tailer starts at the newest event
when the node starts and reads what follows on a schedule, so the write paths stay as
they are: the outbox, the exchange endpoint and the API each record their event once,
and logs and metrics follow from it. What happened while the node was down is in the
API's event feed, not repeated in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, Generic, Protocol, TypeVar

from node.observe.event_lines import CertificateEvent, counts, log_fields, log_message
from node.observe.formatting import FIELDS
from node.observe.metrics import ProcessMetrics
from node.store.metrics_queries import TailedEvent

log = logging.getLogger("node.events")

BATCH: Final = 500


class Stored(Protocol):
    """An event row: its id orders the trail."""

    @property
    def id(self) -> int: ...


E = TypeVar("E", bound=Stored)


class EventSource(Protocol[E]):
    async def last_event_id(self) -> int: ...

    async def events_after(self, after: int, *, limit: int) -> list[E]: ...


class Tailer(Generic[E]):
    """Reads the events after its cursor and hands each to `handle` (log and count it),
    for a node's certificate events and a hub's envelope events alike."""

    def __init__(self, store: EventSource[E], handle: Callable[[E], None]) -> None:
        self._store, self._handle = store, handle
        self._cursor: int | None = None

    async def start(self) -> None:
        """From now on: the events already stored are not handled again."""
        self._cursor = await self._store.last_event_id()

    async def run_once(self) -> int:
        """Handle every event stored since the last run; how many there were."""
        if self._cursor is None:
            await self.start()
        assert self._cursor is not None
        seen = 0
        while True:
            batch = await self._store.events_after(self._cursor, limit=BATCH)
            for stored in batch:
                self._handle(stored)
                self._cursor = stored.id
            seen += len(batch)
            if len(batch) < BATCH:
                return seen


def certificate_events(
    store: EventSource[TailedEvent], metrics: ProcessMetrics
) -> Tailer[TailedEvent]:
    """The node's tailer: one log line and the counters per certificate event."""

    def handle(tailed: TailedEvent) -> None:
        event = certificate_event(tailed)
        log.info(log_message(event), extra={FIELDS: log_fields(event)})
        metrics.count(counts(event))

    return Tailer(store, handle)


def certificate_event(tailed: TailedEvent) -> CertificateEvent:
    """The stored event as the log and the counters see it."""
    return CertificateEvent(
        id=tailed.id,
        at=tailed.at,
        kind=tailed.kind,
        direction=tailed.direction,
        message_kind=tailed.message_kind,
        certificate_number=tailed.certificate_number,
        message_id=tailed.message_id,
        partner=tailed.recipient if tailed.direction == "out" else tailed.sender,
        route=tailed.route,
        created_at=tailed.created_at,
        detail=tailed.detail,
    )
