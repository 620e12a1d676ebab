"""Envelopes in and read: delivery (charged in the same transaction when senders pay),
the recipient's listing and pull, and the sender's tracking.

The envelope insert resolves a repeated delivery with ON CONFLICT on the dedup key, so
a retried DeliverEnvelope gets the original tracking number and is charged once.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, String, bindparam, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from node.hub.records import (
    PENDING,
    Delivery,
    DuplicateConflictError,
    Envelope,
    EnvelopeHeader,
    EnvelopeNotFoundError,
    EnvelopeSettledError,
    InsufficientFundsError,
    UnknownNppoError,
    check_content,
    check_header,
    check_nppo,
    new_tracking_number,
)
from node.hub.schema import envelopes, events, ledger
from node.hub.store.audit import EVENT_COLUMNS, INSERT_EVENT, event_row
from node.hub.store.base import HubStoreBase, aware
from node.hub.store.ledger import (
    LEDGER_COLUMNS,
    UPDATE_ACCOUNT,
    account_row,
    charges,
    ledger_row,
    record,
    unknown,
)
from node.hub.store.sql import (
    HEADER,
    binds,
    header_of,
    insert_ignoring,
    key_of,
    not_found,
    prefixed,
)

_ENVELOPE_COLUMNS = (
    "tracking_number",
    "sender",
    "recipient",
    "certificate_type",
    "certificate_status",
    "certificate_number",
    "content",
    "content_size",
    "content_sha256",
    "dedup_key",
    "state",
    "created_at",
    "push_attempts",
)
_BY_TRACKING = envelopes.c.tracking_number == bindparam("key", type_=String())
_TRACKING = select(*HEADER).where(_BY_TRACKING)
_PULL = select(*HEADER, envelopes.c.content).where(_BY_TRACKING)
_BY_DEDUP = select(*HEADER).where(envelopes.c.dedup_key == bindparam("dedup", type_=String()))


class EnvelopesStore(HubStoreBase):
    """Takes envelopes in and shows them to their recipient and their sender."""

    async def deliver(
        self,
        sender: str,
        recipient: str,
        certificate_type: int,
        certificate_status: int,
        certificate_number: str,
        content: bytes,
        now: datetime,
    ) -> Delivery:
        """Accept an envelope from `sender` (the authenticated caller) for `recipient`.

        The same content from the same sender to the same recipient, while not failed,
        is the same envelope: the original tracking number comes back with duplicate=True
        and nothing is charged again. When senders pay, the charge happens here, in the
        same transaction as the envelope; refused, nothing is stored.
        Raises InvalidValueError, UnknownNppoError, InsufficientFundsError,
        DuplicateConflictError (same content, other header fields).
        """
        delivery, _ = await self.deliver_tracked(
            sender,
            recipient,
            certificate_type,
            certificate_status,
            certificate_number,
            content,
            now,
        )
        return delivery

    async def deliver_tracked(
        self,
        sender: str,
        recipient: str,
        certificate_type: int,
        certificate_status: int,
        certificate_number: str,
        content: bytes,
        now: datetime,
    ) -> tuple[Delivery, EnvelopeHeader]:
        """`deliver`, with the envelope's header as `tracking` shows it to the sender
        right after (no second read)."""
        check_nppo("sender", sender)
        check_nppo("recipient", recipient)
        check_header(certificate_type, certificate_status, certificate_number)
        body = check_content(content, self._settings.max_content_bytes)
        aware(now)
        digest = hashlib.sha256(body).hexdigest()
        header = EnvelopeHeader(
            tracking_number=new_tracking_number(),
            sender=sender,
            recipient=recipient,
            certificate_type=certificate_type,
            certificate_status=certificate_status,
            certificate_number=certificate_number,
            content_sha256=digest,
            content_size=len(body),
            state=PENDING,
            message=None,
            created_at=now.astimezone(UTC),
            settled_at=None,
        )
        return await self._write(functools.partial(self._deliver, header, body, now))

    async def import_headers(
        self, caller: str, now: datetime | None = None, *, limit: int | None = None
    ) -> list[EnvelopeHeader]:
        """Headers of the envelopes waiting for `caller`, oldest first (no content).

        `now` is accepted for the callers that pass their clock everywhere; listing
        changes nothing, so it is not used.
        """
        check_nppo("caller", caller)
        query = (
            select(*HEADER)
            .where(envelopes.c.recipient == caller, envelopes.c.state == PENDING)
            .order_by(envelopes.c.id)
            .limit(limit)
        )
        return await self._read(lambda conn: [header_of(r) for r in conn.execute(query)])

    async def under_delivery(
        self, caller: str, *, limit: int | None = None
    ) -> list[EnvelopeHeader]:
        """Headers of the envelopes `caller` sent that are still pending, oldest first."""
        check_nppo("caller", caller)
        query = (
            select(*HEADER)
            .where(envelopes.c.sender == caller, envelopes.c.state == PENDING)
            .order_by(envelopes.c.id)
            .limit(limit)
        )
        return await self._read(lambda conn: [header_of(r) for r in conn.execute(query)])

    async def pull(self, caller: str, tracking_number: str) -> Envelope:
        """One pending envelope addressed to `caller`, with its content; marks nothing.

        Raises EnvelopeNotFoundError (unknown, or not addressed to the caller) and
        EnvelopeSettledError (acknowledged or expired: the content is gone).
        """
        check_nppo("caller", caller)
        key = key_of(tracking_number)
        row = await self._read(lambda conn: conn.execute(_PULL, {"key": key}).first())
        if row is None or row.recipient != caller:
            raise EnvelopeNotFoundError(not_found(tracking_number))
        if row.state != PENDING or row.content is None:
            raise EnvelopeSettledError(key, row.state, row.message)
        return Envelope(header_of(row), row.content)

    async def pull_all(self, caller: str, *, limit: int | None = None) -> list[Envelope]:
        """Every pending envelope addressed to `caller`, oldest first; marks nothing."""
        check_nppo("caller", caller)
        query = (
            select(*HEADER, envelopes.c.content)
            .where(envelopes.c.recipient == caller, envelopes.c.state == PENDING)
            .order_by(envelopes.c.id)
            .limit(limit)
        )
        rows = await self._read(lambda conn: conn.execute(query).all())
        return [Envelope(header_of(r), r.content) for r in rows if r.content is not None]

    async def tracking(self, caller: str, tracking_number: str) -> EnvelopeHeader:
        """What became of an envelope `caller` sent (GetEnvelopeTrackingInfo).

        Raises EnvelopeNotFoundError for an unknown number and for another sender's.
        """
        check_nppo("caller", caller)
        key = key_of(tracking_number)
        row = await self._read(lambda conn: conn.execute(_TRACKING, {"key": key}).first())
        if row is None or row.sender != caller:
            raise EnvelopeNotFoundError(not_found(tracking_number))
        return header_of(row)

    def _deliver(
        self, header: EnvelopeHeader, body: bytes, now: datetime, conn: Connection
    ) -> tuple[Delivery, EnvelopeHeader]:
        sender, recipient, tracking = header.sender, header.recipient, header.tracking_number
        dedup = f"{sender}>{recipient}:{header.content_sha256}"
        sender_pays = self._settings.payer == "sender"
        payer, other = (sender, recipient) if sender_pays else (recipient, sender)
        row = account_row(conn, payer, also=other, lock=sender_pays, postgres=self._postgres)
        if row is None:
            raise UnknownNppoError(unknown(payer))
        if not row.also_known:
            raise UnknownNppoError(unknown(other))
        detail: dict[str, object] = {"from": sender, "to": recipient, "size": len(body)}
        account: dict[str, Any] | None = None
        line: dict[str, Any] | None = None
        if sender_pays:
            try:
                (entry,), account = charges(sender, row, now, [tracking])
            except InsufficientFundsError:
                # A repeated delivery is answered, not charged, even when the account
                # could not pay for it now.
                if (again := self._redelivered(conn, dedup, header, now)) is not None:
                    return again
                raise
            detail["charged"] = -entry.amount
            line = ledger_row(entry)
        envelope = {
            "tracking_number": tracking,
            "sender": sender,
            "recipient": recipient,
            "certificate_type": header.certificate_type,
            "certificate_status": header.certificate_status,
            "certificate_number": header.certificate_number,
            "content": body,
            "content_size": len(body),
            "content_sha256": header.content_sha256,
            "dedup_key": dedup,
            "state": PENDING,
            "created_at": now,
            "push_attempts": 0,
        }
        event = event_row(now, "delivered", tracking, sender, detail)
        if self._postgres:
            params = prefixed("e_", envelope) | prefixed("v_", event)
            if account is not None and line is not None:
                params |= account | prefixed("l_", line)
            stored = conn.execute(_PG_DELIVER[sender_pays], params).first()
        else:
            stored = conn.execute(_SQLITE_INSERT_ENVELOPE, envelope).first()
            if stored is not None:
                record(conn, account, [line] if line else [], [event], postgres=False)
        if stored is None:
            again = self._redelivered(conn, dedup, header, now)
            assert again is not None  # the conflict was on this very dedup key
            return again
        return Delivery(tracking, duplicate=False), header

    def _redelivered(
        self, conn: Connection, dedup: str, header: EnvelopeHeader, now: datetime
    ) -> tuple[Delivery, EnvelopeHeader] | None:
        """The envelope stored before under `dedup`, logged as redelivered; None if none."""
        row = conn.execute(_BY_DEDUP, {"dedup": dedup}).first()
        if row is None:
            return None
        if (row.certificate_type, row.certificate_status, row.certificate_number) != (
            header.certificate_type,
            header.certificate_status,
            header.certificate_number,
        ):
            raise DuplicateConflictError(
                f"this content was delivered before as {row.tracking_number} with other "
                "certificate type, status or number"
            )
        conn.execute(
            INSERT_EVENT, event_row(now, "redelivered", row.tracking_number, row.sender, {})
        )
        return Delivery(row.tracking_number, duplicate=True), header_of(row)


def _pg_deliver(*, charge: bool) -> Any:
    """PostgreSQL: a whole delivery after the account check, in one round trip.

    The envelope insert (nothing on a dedup conflict) and, only if it inserted, the
    account update, the ledger line and the event, as data-modifying CTEs; RETURNING
    the event's tracking number says whether the envelope is new.
    """
    new = (
        pg_insert(envelopes)
        .values(binds("e_", envelopes, _ENVELOPE_COLUMNS))
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(envelopes.c.tracking_number)
        .cte("hub_new_envelope")
    )
    ctes = [new]
    if charge:
        inserted = select(new.c.tracking_number).exists()
        ctes.append(UPDATE_ACCOUNT.where(inserted).cte("hub_charge"))
        line = binds("l_", ledger, LEDGER_COLUMNS)
        ctes.append(
            insert(ledger)
            .from_select(list(line), select(*line.values()).select_from(new))
            .cte("hub_charge_line")
        )
    event = binds("v_", events, EVENT_COLUMNS)
    event["tracking_number"] = new.c.tracking_number
    return (
        insert(events)
        .from_select(list(event), select(*event.values()).select_from(new))
        .returning(events.c.tracking_number)
        .add_cte(*ctes)
    )


# Built once: executing a prebuilt statement finds its compiled form in SQLAlchemy's cache.
_PG_DELIVER = {charge: _pg_deliver(charge=charge) for charge in (False, True)}
_SQLITE_INSERT_ENVELOPE = insert_ignoring(envelopes, "dedup_key", postgres=False).returning(
    envelopes.c.id
)
