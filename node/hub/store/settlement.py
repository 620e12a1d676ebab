"""Settling envelopes: the recipient's acknowledgement, charged in the same transaction
when receivers pay.

Settling is an UPDATE guarded by the envelope's state, so it happens once; acknowledging
again with the same outcome is answered as before.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, Text, bindparam, insert, null, select, update

from node.hub.records import (
    PENDING,
    Acknowledgement,
    EnvelopeNotFoundError,
    EnvelopeSettledError,
    Outcome,
    TrackingState,
    UnknownNppoError,
    check_nppo,
    check_outcome,
)
from node.hub.schema import envelopes, events
from node.hub.store.audit import EVENT_COLUMNS, event_row
from node.hub.store.base import HubStoreBase, aware
from node.hub.store.ledger import account_row, charges, ledger_row, record, unknown
from node.hub.store.sql import binds, key_of, not_found, prefixed
from node.store.types import UtcDateTime

_SETTLED_BEFORE = select(
    envelopes.c.tracking_number, envelopes.c.recipient, envelopes.c.state, envelopes.c.message
).where(envelopes.c.tracking_number.in_(bindparam("keys", expanding=True)))


class SettlementStore(HubStoreBase):
    """Settles envelopes addressed to their caller, once."""

    @property
    def _charging(self) -> bool:
        """Whether a successful acknowledgement is charged (receivers pay)."""
        return self._settings.payer == "receiver"

    async def acknowledge(
        self,
        caller: str,
        tracking_number: str,
        now: datetime,
        outcome: Outcome = "Delivered",
        message: str | None = None,
    ) -> Acknowledgement:
        """Settle one envelope addressed to `caller`; see `acknowledge_many`."""
        (ack,) = await self.acknowledge_many(caller, [tracking_number], now, outcome, message)
        return ack

    async def acknowledge_many(
        self,
        caller: str,
        tracking_numbers: Sequence[str],
        now: datetime,
        outcome: Outcome = "Delivered",
        message: str | None = None,
    ) -> list[Acknowledgement]:
        """Settle envelopes addressed to `caller` with one outcome, all or none.

        The content is deleted; header and tracking stay. Acknowledging again with the
        outcome an envelope already has is answered as before (repeated=True), because
        a client whose response was lost must be able to retry; another outcome, or an
        expired envelope, is EnvelopeSettledError. When receivers pay, the charge for a
        successful delivery happens here and a refusal (InsufficientFundsError) leaves
        every envelope pending. Raises EnvelopeNotFoundError and InvalidValueError too.
        """
        check_nppo("caller", caller)
        state, text = check_outcome(outcome, message)
        aware(now)
        keys = [key_of(tn) for tn in tracking_numbers]
        unique = list(dict.fromkeys(keys))
        if not unique:
            return []
        work = functools.partial(self._acknowledge, caller, unique, state, text, now)
        if self._postgres and len(unique) == 1 and (outcome == "Failed" or not self._charging):
            # One statement settles and logs it, and what follows only reads: no BEGIN
            # and COMMIT needed, two round trips fewer.
            repeated = await self._read(work)
        else:
            repeated = await self._write(work)
        return [Acknowledgement(k, state, repeated=k in repeated) for k in keys]

    def _acknowledge(
        self,
        caller: str,
        unique: list[str],
        state: TrackingState,
        text: str | None,
        now: datetime,
        conn: Connection,
    ) -> set[str]:
        failed = state == "FailedDelivery"
        receiver_pays = self._charging and not failed
        row = None
        # Locking the caller's account first also orders concurrent batches, so two
        # of them settling overlapping envelopes queue instead of deadlocking.
        if receiver_pays or len(unique) > 1:
            row = account_row(conn, caller, also=None, lock=True, postgres=self._postgres)
            if receiver_pays and row is None:
                raise UnknownNppoError(unknown(caller))
        params = {
            "keys": unique,
            "caller": caller,
            "s_state": state,
            "s_message": text,
            "s_at": now,
        }
        if self._postgres and not receiver_pays:
            # Without a charge every event says the same: settled and logged in one trip.
            event = event_row(now, "acknowledged", None, caller, _ack_detail(state, text, {}, ""))
            params |= prefixed("v_", event)
            settled = list(conn.execute(_PG_SETTLE_AND_LOG[failed], params).scalars())
            logged = True
        else:
            settled = list(conn.execute(_SETTLE[failed], params).scalars())
            logged = False
        repeated = _already_settled(conn, caller, [k for k in unique if k not in settled], state)
        if settled and not logged:
            charged: dict[str, int] = {}
            account: dict[str, Any] | None = None
            lines: list[dict[str, Any]] = []
            if receiver_pays and row is not None:
                entries, account = charges(caller, row, now, settled)
                charged = {e.reference: -e.amount for e in entries}
                lines = [ledger_row(e) for e in entries]
            acknowledged = [
                event_row(now, "acknowledged", k, caller, _ack_detail(state, text, charged, k))
                for k in settled
            ]
            record(conn, account, lines, acknowledged, postgres=self._postgres)
        return repeated


def _settle(*, failed: bool) -> Any:
    """UPDATE settling the caller's pending envelopes among `keys` (RETURNING which)."""
    values: dict[str, Any] = {
        "state": bindparam("s_state", type_=String()),
        "message": bindparam("s_message", type_=Text()),
        "content": null(),
        "settled_at": bindparam("s_at", type_=UtcDateTime()),
        "push_claimed_until": null(),
    }
    if failed:
        values["dedup_key"] = null()  # the sender may send the same content again
    return (
        update(envelopes)
        .where(
            envelopes.c.tracking_number.in_(bindparam("keys", expanding=True)),
            envelopes.c.recipient == bindparam("caller", type_=String()),
            envelopes.c.state == PENDING,
        )
        .values(values)
        .returning(envelopes.c.tracking_number)
    )


def _pg_settle_and_log(*, failed: bool) -> Any:
    """PostgreSQL: settle the caller's pending envelopes and log each, in one round trip."""
    settled = _settle(failed=failed).cte("hub_settled")
    event = binds("v_", events, EVENT_COLUMNS)
    event["tracking_number"] = settled.c.tracking_number
    return (
        insert(events)
        .from_select(list(event), select(*event.values()).select_from(settled))
        .returning(events.c.tracking_number)
        .add_cte(settled)
    )


def _already_settled(conn: Connection, caller: str, keys: list[str], state: str) -> set[str]:
    """Which of `keys` (not settled just now) were settled so before; raise for the rest."""
    if not keys:
        return set()
    found = {r.tracking_number: r for r in conn.execute(_SETTLED_BEFORE, {"keys": keys})}
    for key in keys:
        row = found.get(key)
        if row is None or row.recipient != caller:
            raise EnvelopeNotFoundError(not_found(key))
        if row.state != state:
            raise EnvelopeSettledError(key, row.state, row.message)
    return set(keys)


def _ack_detail(
    state: str, message: str | None, charged: dict[str, int], key: str
) -> dict[str, Any]:
    detail: dict[str, Any] = {"state": state}
    if message:
        detail["message"] = message
    if key in charged:
        detail["charged"] = charged[key]
    return detail


# Built once: executing a prebuilt statement finds its compiled form in SQLAlchemy's cache.
_SETTLE = {failed: _settle(failed=failed) for failed in (False, True)}
_PG_SETTLE_AND_LOG = {failed: _pg_settle_and_log(failed=failed) for failed in (False, True)}
