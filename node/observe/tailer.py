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
from typing import Final, Protocol

from node.observe.event_lines import CertificateEvent, counts, log_fields, log_message
from node.observe.formatting import FIELDS
from node.observe.metrics import ProcessMetrics
from node.store.metrics_queries import TailedEvent

log = logging.getLogger("node.events")

BATCH: Final = 500


class EventSource(Protocol):
    async def last_event_id(self) -> int: ...

    async def events_after(self, after: int, *, limit: int) -> list[TailedEvent]: ...


class EventTailer:
    """Reads the events after its cursor, logs each and counts it."""

    def __init__(self, store: EventSource, metrics: ProcessMetrics) -> None:
        self._store, self._metrics = store, metrics
        self._cursor: int | None = None

    async def start(self) -> None:
        """From now on: the events already stored are not logged again."""
        self._cursor = await self._store.last_event_id()

    async def run_once(self) -> int:
        """Log and count every event stored since the last run; how many there were."""
        if self._cursor is None:
            await self.start()
        assert self._cursor is not None
        seen = 0
        while True:
            batch = await self._store.events_after(self._cursor, limit=BATCH)
            for tailed in batch:
                event = certificate_event(tailed)
                log.info(log_message(event), extra={FIELDS: log_fields(event)})
                self._metrics.count(counts(event))
                self._cursor = tailed.id
            seen += len(batch)
            if len(batch) < BATCH:
                return seen


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
