"""Read-only queries for the hub's logs, metrics and health (node.hub.observe), and its
store's writability probe: the events after a cursor, what the hub holds by state, the
oldest content held, the accounts' balances, and whether a write can start now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, case, func, insert, select

from node.hub.schema import accounts, envelopes, events, push_endpoints
from node.hub.store.base import HubStoreBase
from node.store.observing import event_detail, probe_writable

# The row the probe inserts and rolls back: no NPPO has this code.
_PROBE_NPPO = "??"
_PROBE_TIME = datetime(2000, 1, 1, tzinfo=UTC)  # never committed: any time will do


@dataclass(frozen=True, slots=True)
class TailedHubEvent:
    """One row of the hub's event trail, with its id."""

    id: int
    at: datetime
    kind: str
    tracking_number: str | None
    nppo: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Holding:
    """Envelopes of one state the hub still has a row of, and the content it holds."""

    state: str
    envelopes: int
    content_bytes: int


@dataclass(frozen=True, slots=True)
class Balance:
    nppo: str
    currency: str
    balance: int


class MetricsQueriesStore(HubStoreBase):
    """What the hub's observer reads, and its probe; nothing here changes the store."""

    async def last_event_id(self) -> int:
        """The newest event's id (0 when there is none)."""
        return await self._read(
            lambda conn: int(conn.execute(select(func.max(events.c.id))).scalar() or 0)
        )

    async def events_after(self, after: int, *, limit: int) -> list[TailedHubEvent]:
        """Up to `limit` events with an id greater than `after`, oldest first."""
        query = select(events).where(events.c.id > after).order_by(events.c.id).limit(limit)
        return await self._read(
            lambda conn: [
                TailedHubEvent(
                    r.id, r.at, r.kind, r.tracking_number, r.nppo, event_detail(r.detail)
                )
                for r in conn.execute(query)
            ]
        )

    async def holdings(self) -> tuple[list[Holding], datetime | None]:
        """Envelopes and content bytes held by state, and the oldest envelope whose content
        is still held (None when none is)."""

        def read(conn: Connection) -> tuple[list[Holding], datetime | None]:
            held = envelopes.c.content.is_not(None)
            rows = conn.execute(
                select(
                    envelopes.c.state,
                    func.count(),
                    func.coalesce(func.sum(case((held, envelopes.c.content_size), else_=0)), 0),
                ).group_by(envelopes.c.state)
            )
            oldest = conn.execute(select(func.min(envelopes.c.created_at)).where(held)).scalar()
            return [Holding(r[0], int(r[1]), int(r[2])) for r in rows], oldest

        return await self._read(read)

    async def balances(self) -> list[Balance]:
        """Every account's balance, by NPPO."""
        query = select(accounts.c.nppo, accounts.c.currency, accounts.c.balance).order_by(
            accounts.c.nppo
        )
        return await self._read(
            lambda conn: [Balance(r.nppo, r.currency, int(r.balance)) for r in conn.execute(query)]
        )

    async def probe_writable(self) -> None:
        """Start a write transaction, write one row, roll it back: raises what the
        database raises when it cannot be written now."""
        await probe_writable(
            self._db,
            insert(push_endpoints).values(nppo=_PROBE_NPPO, url="", updated_at=_PROBE_TIME),
        )
