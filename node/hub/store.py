"""The hub's durable store: SQLite (one process) or PostgreSQL (many), through `Database`.

Every operation is a synchronous function of a SQLAlchemy `Connection` that
`node.store.database.Database` runs in one transaction (or, for reads, outside one):
on SQLite on one dedicated thread, one hand-off per operation and one writer by
construction; on PostgreSQL with asyncpg, each statement an awaited round trip. The
statements are built once, with bound parameters, so SQLAlchemy compiles each of them
once; rows go in with executemany, not as multi-row VALUES built per call.

Every write that must not be lost, doubled or overdrawn is one transaction. On
PostgreSQL several hub processes share the database: a delivery locks its payer's
account row (SELECT ... FOR UPDATE) before it charges, so concurrent deliveries queue
per account and never take a balance past its overdraft; the envelope insert resolves
a repeated delivery with ON CONFLICT on the dedup key, so a retried DeliverEnvelope gets
the original tracking number and is charged once; settling an envelope is an UPDATE
guarded by its state, so it happens once; push work is claimed with leases under
FOR UPDATE SKIP LOCKED, so two processes never claim the same envelope. On SQLite the
one database thread queues the writers instead.

Raises the errors of `node.hub.records`; a database failure is `HubStoreError`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Insert,
    Row,
    String,
    Text,
    bindparam,
    insert,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from node.hub import accounts as rules
from node.hub.accounts import AccountPolicy, LedgerEntry, Refusal
from node.hub.records import (
    EXPIRED_MESSAGE,
    PENDING,
    Account,
    Acknowledgement,
    Delivery,
    DuplicateConflictError,
    Envelope,
    EnvelopeHeader,
    EnvelopeNotFoundError,
    EnvelopeSettledError,
    HubEvent,
    HubSettings,
    HubStoreError,
    InsufficientFundsError,
    InvalidValueError,
    Outcome,
    PushItem,
    Statement,
    TrackingState,
    UnknownNppoError,
    check_content,
    check_header,
    check_nppo,
    check_outcome,
    new_tracking_number,
    tracking_key,
)
from node.hub.schema import accounts, envelopes, events, ledger, push_endpoints
from node.store.database import Database, StoreError
from node.store.types import UtcDateTime

T = TypeVar("T")

_MIGRATIONS = Path(__file__).with_name("migrations")
_HEADER = (
    envelopes.c.tracking_number,
    envelopes.c.sender,
    envelopes.c.recipient,
    envelopes.c.certificate_type,
    envelopes.c.certificate_status,
    envelopes.c.certificate_number,
    envelopes.c.content_sha256,
    envelopes.c.content_size,
    envelopes.c.state,
    envelopes.c.message,
    envelopes.c.created_at,
    envelopes.c.settled_at,
)
_MAX_NOTE_CHARS = 1000
_MAX_URL_CHARS = 2000

# The statements every operation runs, built once: executing a prebuilt statement with
# parameters finds its compiled form in SQLAlchemy's cache.
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
_LEDGER_COLUMNS = tuple(c.name for c in ledger.c if c.name != "id")
_EVENT_COLUMNS = tuple(c.name for c in events.c if c.name != "id")
_INSERT_LEDGER = insert(ledger)
_INSERT_EVENT = insert(events)
_UPDATE_ACCOUNT = (
    update(accounts)
    .where(accounts.c.nppo == bindparam("a_nppo", type_=String()))
    .values(
        balance=bindparam("a_balance", type_=BigInteger()),
        period=bindparam("a_period", type_=String()),
        used=bindparam("a_used", type_=BigInteger()),
        updated_at=bindparam("a_at", type_=UtcDateTime()),
    )
)
_BY_TRACKING = envelopes.c.tracking_number == bindparam("key", type_=String())
_TRACKING = select(*_HEADER).where(_BY_TRACKING)
_PULL = select(*_HEADER, envelopes.c.content).where(_BY_TRACKING)
_BY_DEDUP = select(*_HEADER).where(envelopes.c.dedup_key == bindparam("dedup", type_=String()))
_SETTLED_BEFORE = select(
    envelopes.c.tracking_number, envelopes.c.recipient, envelopes.c.state, envelopes.c.message
).where(envelopes.c.tracking_number.in_(bindparam("keys", expanding=True)))


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


_SETTLE = {failed: _settle(failed=failed) for failed in (False, True)}


def _binds(prefix: str, table: Any, names: Sequence[str]) -> dict[str, Any]:
    return {n: bindparam(f"{prefix}{n}", type_=table.c[n].type) for n in names}


def _pg_deliver(*, charge: bool) -> Any:
    """PostgreSQL: a whole delivery after the account check, in one round trip.

    The envelope insert (nothing on a dedup conflict) and, only if it inserted, the
    account update, the ledger line and the event, as data-modifying CTEs; RETURNING
    the event's tracking number says whether the envelope is new.
    """
    new = (
        pg_insert(envelopes)
        .values(_binds("e_", envelopes, _ENVELOPE_COLUMNS))
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(envelopes.c.tracking_number)
        .cte("hub_new_envelope")
    )
    ctes = [new]
    if charge:
        inserted = select(new.c.tracking_number).exists()
        ctes.append(_UPDATE_ACCOUNT.where(inserted).cte("hub_charge"))
        line = _binds("l_", ledger, _LEDGER_COLUMNS)
        ctes.append(
            insert(ledger)
            .from_select(list(line), select(*line.values()).select_from(new))
            .cte("hub_charge_line")
        )
    event = _binds("v_", events, _EVENT_COLUMNS)
    event["tracking_number"] = new.c.tracking_number
    return (
        insert(events)
        .from_select(list(event), select(*event.values()).select_from(new))
        .returning(events.c.tracking_number)
        .add_cte(*ctes)
    )


def _pg_settle_and_log(*, failed: bool) -> Any:
    """PostgreSQL: settle the caller's pending envelopes and log each, in one round trip."""
    settled = _settle(failed=failed).cte("hub_settled")
    event = _binds("v_", events, _EVENT_COLUMNS)
    event["tracking_number"] = settled.c.tracking_number
    return (
        insert(events)
        .from_select(list(event), select(*event.values()).select_from(settled))
        .returning(events.c.tracking_number)
        .add_cte(settled)
    )


def _pg_record() -> Any:
    """PostgreSQL: an account update, one ledger line and one event in one round trip."""
    return (
        insert(events)
        .values(_binds("v_", events, _EVENT_COLUMNS))
        .add_cte(
            _UPDATE_ACCOUNT.cte("hub_account"),
            insert(ledger).values(_binds("l_", ledger, _LEDGER_COLUMNS)).cte("hub_line"),
        )
    )


_PG_DELIVER = {charge: _pg_deliver(charge=charge) for charge in (False, True)}
_PG_SETTLE_AND_LOG = {failed: _pg_settle_and_log(failed=failed) for failed in (False, True)}
_PG_RECORD = _pg_record()


class HubStore:
    """The hub's database. Open with `HubStore.open(url)`, then `await store.migrate()`."""

    def __init__(self, database: Database, settings: HubSettings) -> None:
        self._db = database
        self._settings = settings
        self._postgres = database.dialect == "postgresql"
        self._insert_envelope = self._insert_ignoring(envelopes, "dedup_key").returning(
            envelopes.c.id
        )
        self._insert_account = self._insert_ignoring(accounts, "nppo").returning(accounts.c.nppo)
        self._account_queries = {
            (also, lock): _account_query(also=also, lock=lock and self._postgres)
            for also in (False, True)
            for lock in (False, True)
        }
        # SQLite: writes queued while one transaction runs go together in the next.
        self._queued: list[tuple[Callable[[Connection], Any], asyncio.Future[_Outcome]]] = []
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, url: str, settings: HubSettings | None = None) -> HubStore:
        """A store on `url` (sqlite[+aiosqlite]:///path.db or postgresql+asyncpg://...)."""
        try:
            database = Database.open(url)
        except StoreError as e:
            raise HubStoreError(str(e)) from None
        return cls(database, settings or HubSettings())

    @property
    def _charging(self) -> bool:
        """Whether a successful acknowledgement is charged (receivers pay)."""
        return self._settings.payer == "receiver"

    @property
    def dialect(self) -> str:
        return self._db.dialect

    @property
    def settings(self) -> HubSettings:
        return self._settings

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        try:
            await self._db.migrate(_MIGRATIONS)
        except (DBAPIError, OSError) as e:
            raise HubStoreError(f"the hub's database failed: {_first_line(e)}") from e

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.shield(self._writer)
        await self._db.close()

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
        _aware(now)
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

    def _deliver(
        self, header: EnvelopeHeader, body: bytes, now: datetime, conn: Connection
    ) -> tuple[Delivery, EnvelopeHeader]:
        sender, recipient, tracking = header.sender, header.recipient, header.tracking_number
        dedup = f"{sender}>{recipient}:{header.content_sha256}"
        sender_pays = self._settings.payer == "sender"
        payer, other = (sender, recipient) if sender_pays else (recipient, sender)
        row = self._account_row(conn, payer, also=other, lock=sender_pays)
        if row is None:
            raise UnknownNppoError(_unknown(payer))
        if not row.also_known:
            raise UnknownNppoError(_unknown(other))
        detail: dict[str, object] = {"from": sender, "to": recipient, "size": len(body)}
        account: dict[str, Any] | None = None
        line: dict[str, Any] | None = None
        if sender_pays:
            try:
                (entry,), account = _charges(sender, row, now, [tracking])
            except InsufficientFundsError:
                # A repeated delivery is answered, not charged, even when the account
                # could not pay for it now.
                if (again := self._redelivered(conn, dedup, header, now)) is not None:
                    return again
                raise
            detail["charged"] = -entry.amount
            line = _ledger_row(entry)
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
        event = _event(now, "delivered", tracking, sender, detail)
        if self._postgres:
            params = _prefixed("e_", envelope) | _prefixed("v_", event)
            if account is not None and line is not None:
                params |= account | _prefixed("l_", line)
            stored = conn.execute(_PG_DELIVER[sender_pays], params).first()
        else:
            stored = conn.execute(self._insert_envelope, envelope).first()
            if stored is not None:
                self._record(conn, account, [line] if line else [], [event])
        if stored is None:
            again = self._redelivered(conn, dedup, header, now)
            assert again is not None  # the conflict was on this very dedup key
            return again
        return Delivery(tracking, duplicate=False), header

    async def import_headers(
        self, caller: str, now: datetime | None = None, *, limit: int | None = None
    ) -> list[EnvelopeHeader]:
        """Headers of the envelopes waiting for `caller`, oldest first (no content).

        `now` is accepted for the callers that pass their clock everywhere; listing
        changes nothing, so it is not used.
        """
        check_nppo("caller", caller)
        query = (
            select(*_HEADER)
            .where(envelopes.c.recipient == caller, envelopes.c.state == PENDING)
            .order_by(envelopes.c.id)
            .limit(limit)
        )
        return await self._read(lambda conn: [_header(r) for r in conn.execute(query)])

    async def under_delivery(
        self, caller: str, *, limit: int | None = None
    ) -> list[EnvelopeHeader]:
        """Headers of the envelopes `caller` sent that are still pending, oldest first."""
        check_nppo("caller", caller)
        query = (
            select(*_HEADER)
            .where(envelopes.c.sender == caller, envelopes.c.state == PENDING)
            .order_by(envelopes.c.id)
            .limit(limit)
        )
        return await self._read(lambda conn: [_header(r) for r in conn.execute(query)])

    async def pull(self, caller: str, tracking_number: str) -> Envelope:
        """One pending envelope addressed to `caller`, with its content; marks nothing.

        Raises EnvelopeNotFoundError (unknown, or not addressed to the caller) and
        EnvelopeSettledError (acknowledged or expired: the content is gone).
        """
        check_nppo("caller", caller)
        key = _key(tracking_number)
        row = await self._read(lambda conn: conn.execute(_PULL, {"key": key}).first())
        if row is None or row.recipient != caller:
            raise EnvelopeNotFoundError(_not_found(tracking_number))
        if row.state != PENDING or row.content is None:
            raise EnvelopeSettledError(key, row.state, row.message)
        return Envelope(_header(row), row.content)

    async def pull_all(self, caller: str, *, limit: int | None = None) -> list[Envelope]:
        """Every pending envelope addressed to `caller`, oldest first; marks nothing."""
        check_nppo("caller", caller)
        query = (
            select(*_HEADER, envelopes.c.content)
            .where(envelopes.c.recipient == caller, envelopes.c.state == PENDING)
            .order_by(envelopes.c.id)
            .limit(limit)
        )
        rows = await self._read(lambda conn: conn.execute(query).all())
        return [Envelope(_header(r), r.content) for r in rows if r.content is not None]

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
        _aware(now)
        keys = [_key(tn) for tn in tracking_numbers]
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
            row = self._account_row(conn, caller, also=None, lock=True)
            if receiver_pays and row is None:
                raise UnknownNppoError(_unknown(caller))
        params = {
            "keys": unique,
            "caller": caller,
            "s_state": state,
            "s_message": text,
            "s_at": now,
        }
        if self._postgres and not receiver_pays:
            # Without a charge every event says the same: settled and logged in one trip.
            event = _event(now, "acknowledged", None, caller, _ack_detail(state, text, {}, ""))
            params |= _prefixed("v_", event)
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
                entries, account = _charges(caller, row, now, settled)
                charged = {e.reference: -e.amount for e in entries}
                lines = [_ledger_row(e) for e in entries]
            acknowledged = [
                _event(now, "acknowledged", k, caller, _ack_detail(state, text, charged, k))
                for k in settled
            ]
            self._record(conn, account, lines, acknowledged)
        return repeated

    async def tracking(self, caller: str, tracking_number: str) -> EnvelopeHeader:
        """What became of an envelope `caller` sent (GetEnvelopeTrackingInfo).

        Raises EnvelopeNotFoundError for an unknown number and for another sender's.
        """
        check_nppo("caller", caller)
        key = _key(tracking_number)
        row = await self._read(lambda conn: conn.execute(_TRACKING, {"key": key}).first())
        if row is None or row.sender != caller:
            raise EnvelopeNotFoundError(_not_found(tracking_number))
        return _header(row)

    async def expire(self, now: datetime, max_age: timedelta) -> list[str]:
        """Fail the envelopes pending for longer than `max_age` and delete their content."""
        _aware(now)
        if max_age <= timedelta(0):
            raise ValueError("max_age must be positive")

        def work(conn: Connection) -> list[str]:
            rows = conn.execute(
                update(envelopes)
                .where(envelopes.c.state == PENDING, envelopes.c.created_at < now - max_age)
                .values(
                    state="FailedDelivery",
                    message=EXPIRED_MESSAGE,
                    content=None,
                    dedup_key=None,
                    settled_at=now,
                    push_claimed_until=None,
                )
                .returning(envelopes.c.tracking_number, envelopes.c.sender)
            ).all()
            if rows:
                conn.execute(
                    _INSERT_EVENT,
                    [_event(now, "expired", r.tracking_number, r.sender, {}) for r in rows],
                )
            return sorted(r.tracking_number for r in rows)

        return await self._write(work)

    async def set_push_endpoint(self, nppo: str, url: str | None, now: datetime) -> None:
        """Push `nppo`'s envelopes to `url` from now on; None: it pulls them instead."""
        check_nppo("nppo", nppo)
        _aware(now)
        if url is not None and (
            not isinstance(url, str)
            or not url.startswith(("https://", "http://"))
            or len(url) > _MAX_URL_CHARS
            or not url.isprintable()
        ):
            raise InvalidValueError("a push endpoint is an http(s) URL of reasonable length")

        def work(conn: Connection) -> None:
            conn.execute(push_endpoints.delete().where(push_endpoints.c.nppo == nppo))
            if url is not None:
                conn.execute(insert(push_endpoints).values(nppo=nppo, url=url, updated_at=now))
            conn.execute(_INSERT_EVENT, _event(now, "push_endpoint", None, nppo, {"url": url}))

        await self._write(work)

    async def claim_push(self, now: datetime, lease: timedelta, limit: int) -> list[PushItem]:
        """Claim up to `limit` pending envelopes whose recipient takes pushes, for `lease`.

        Other processes skip what is claimed until the lease runs out. The hub posts each
        to its URL and then calls `acknowledge`, or `push_failed` to try again later.
        """
        _aware(now)
        due = (
            select(envelopes.c.id)
            .where(
                envelopes.c.state == PENDING,
                envelopes.c.recipient.in_(select(push_endpoints.c.nppo)),
                or_(envelopes.c.push_claimed_until.is_(None), envelopes.c.push_claimed_until < now),
                or_(envelopes.c.push_next_at.is_(None), envelopes.c.push_next_at <= now),
            )
            .order_by(envelopes.c.id)
            .limit(limit)
        )
        if self._postgres:
            due = due.with_for_update(skip_locked=True, of=envelopes)
        until = now + lease

        def work(conn: Connection) -> tuple[Sequence[Row[Any]], dict[str, str]]:
            rows = conn.execute(
                update(envelopes)
                .where(envelopes.c.id.in_(due.scalar_subquery()))
                .values(push_claimed_until=until)
                .returning(*_HEADER, envelopes.c.content, envelopes.c.push_attempts)
            ).all()
            if not rows:
                return rows, {}
            urls = {
                r.nppo: r.url
                for r in conn.execute(
                    select(push_endpoints.c.nppo, push_endpoints.c.url).where(
                        push_endpoints.c.nppo.in_({r.recipient for r in rows})
                    )
                )
            }
            return rows, urls

        rows, urls = await self._write(work)
        items = [
            PushItem(Envelope(_header(r), r.content), urls[r.recipient], r.push_attempts, until)
            for r in rows
            if r.content is not None and r.recipient in urls
        ]
        return sorted(items, key=lambda item: item.envelope.header.created_at)

    async def push_failed(
        self, tracking_number: str, now: datetime, retry_at: datetime, error: str
    ) -> None:
        """A push did not get through: release the claim and try again at `retry_at`."""
        key = _key(tracking_number)
        _aware(now)
        _aware(retry_at)

        def work(conn: Connection) -> None:
            recipient = conn.execute(
                update(envelopes)
                .where(envelopes.c.tracking_number == key, envelopes.c.state == PENDING)
                .values(
                    push_claimed_until=None,
                    push_next_at=retry_at,
                    push_attempts=envelopes.c.push_attempts + 1,
                    push_error=error[:_MAX_NOTE_CHARS],
                )
                .returning(envelopes.c.recipient)
            ).scalar_one_or_none()
            if recipient is not None:
                detail = {"error": error[:_MAX_NOTE_CHARS], "retry_at": retry_at.isoformat()}
                conn.execute(_INSERT_EVENT, _event(now, "push_failed", key, recipient, detail))

        await self._write(work)

    async def set_policy(self, nppo: str, policy: AccountPolicy, now: datetime) -> Account:
        """Open `nppo`'s account with `policy` (balance 0), or change its policy."""
        check_nppo("nppo", nppo)
        _aware(now)
        if not isinstance(policy, AccountPolicy):
            raise InvalidValueError("the policy must be an AccountPolicy")
        text = rules.policy_to_json(policy)

        def work(conn: Connection) -> Row[Any]:
            conn.execute(self._insert_account, _account_values(nppo, policy, text, now))
            row = self._account_row(conn, nppo, also=None, lock=True)
            assert row is not None  # inserted just now, or there already
            rules.check_policy_change(rules.policy_from_json(row.policy), policy, row.balance)
            conn.execute(
                update(accounts)
                .where(accounts.c.nppo == nppo)
                .values(currency=policy.currency, policy=text, updated_at=now)
            )
            conn.execute(_INSERT_EVENT, _event(now, "policy", None, nppo, json.loads(text)))
            return row

        row = await self._write(work)
        return Account(nppo, policy, row.balance, row.period, row.used)

    async def open_account(self, nppo: str, policy: AccountPolicy, now: datetime) -> bool:
        """Open `nppo`'s account with `policy` unless it has one; True if opened now.

        Unlike `set_policy`, an existing account is left exactly as it is, so a hub-wide
        default can be applied on first use without racing the operator's own policy.
        """
        check_nppo("nppo", nppo)
        _aware(now)
        if not isinstance(policy, AccountPolicy):
            raise InvalidValueError("the policy must be an AccountPolicy")
        text = rules.policy_to_json(policy)

        def work(conn: Connection) -> bool:
            values = _account_values(nppo, policy, text, now)
            if conn.execute(self._insert_account, values).first() is None:
                return False
            detail = json.loads(text) | {"default": True}
            conn.execute(_INSERT_EVENT, _event(now, "policy", None, nppo, detail))
            return True

        return await self._write(work)

    async def credit(self, nppo: str, amount: int, now: datetime, note: str = "") -> LedgerEntry:
        """Add `amount` minor units (a payment received) to `nppo`'s balance."""
        check_nppo("nppo", nppo)
        _aware(now)
        if not isinstance(note, str) or len(note) > _MAX_NOTE_CHARS:
            raise InvalidValueError(f"a note is text of at most {_MAX_NOTE_CHARS} characters")

        def work(conn: Connection) -> LedgerEntry:
            row = self._account_row(conn, nppo, also=None, lock=True)
            if row is None:
                raise UnknownNppoError(_unknown(nppo))
            policy = rules.policy_from_json(row.policy)
            entry = rules.credit(policy, row.balance, amount, nppo=nppo, at=now, note=note)
            account = _account_update(nppo, entry.balance_after, row.period, row.used, now)
            event = _event(now, "credit", None, nppo, {"amount": amount})
            self._record(conn, account, [_ledger_row(entry)], [event])
            return entry

        return await self._write(work)

    async def account(self, nppo: str) -> Account:
        check_nppo("nppo", nppo)
        row = await self._read(
            functools.partial(self._account_row, nppo=nppo, also=None, lock=False)
        )
        if row is None:
            raise UnknownNppoError(_unknown(nppo))
        return Account(nppo, rules.policy_from_json(row.policy), row.balance, row.period, row.used)

    async def statement(self, nppo: str, since: datetime, until: datetime) -> Statement:
        """`nppo`'s ledger lines at or after `since` and before `until`, oldest first."""
        check_nppo("nppo", nppo)
        _aware(since)
        _aware(until)
        lines = select(ledger).where(ledger.c.nppo == nppo).order_by(ledger.c.id)
        before = (
            select(ledger.c.balance_after)
            .where(ledger.c.nppo == nppo, ledger.c.at < since)
            .order_by(ledger.c.id.desc())
            .limit(1)
        )

        def work(conn: Connection) -> tuple[Row[Any] | None, int, tuple[LedgerEntry, ...]]:
            account = self._account_row(conn, nppo, also=None, lock=False)
            if account is None:
                return None, 0, ()
            opening = conn.execute(before).scalar_one_or_none() or 0
            rows = conn.execute(lines.where(ledger.c.at >= since, ledger.c.at < until))
            return account, opening, tuple(_entry(r) for r in rows)

        account, opening, entries = await self._read(work)
        if account is None:
            raise UnknownNppoError(_unknown(nppo))
        closing = entries[-1].balance_after if entries else opening
        currency = rules.policy_from_json(account.policy).currency
        return Statement(nppo, currency, since, until, opening, closing, entries)

    async def events(
        self, *, tracking_number: str | None = None, nppo: str | None = None, limit: int = 1000
    ) -> list[HubEvent]:
        """The audit trail, oldest first, for one envelope or one NPPO (or everything)."""
        query = select(events).order_by(events.c.id).limit(limit)
        if tracking_number is not None:
            query = query.where(events.c.tracking_number == tracking_number)
        if nppo is not None:
            query = query.where(events.c.nppo == nppo)
        return await self._read(
            lambda conn: [
                HubEvent(r.at, r.kind, r.tracking_number, r.nppo, json.loads(r.detail))
                for r in conn.execute(query)
            ]
        )

    def _account_row(
        self, conn: Connection, nppo: str, *, also: str | None, lock: bool
    ) -> Row[Any] | None:
        """The account row (locked against concurrent charges on PostgreSQL if `lock`).

        `also_known` says whether `also` has an account too, in the same round trip; it
        is not locked, so deliveries A to B and B to A never wait on each other.
        """
        query = self._account_queries[(also is not None, lock)]
        return conn.execute(query, {"nppo": nppo, "also": also}).first()

    def _record(
        self,
        conn: Connection,
        account: dict[str, Any] | None,
        lines: list[dict[str, Any]],
        logged: list[dict[str, Any]],
    ) -> None:
        """Write an account's new balance, its ledger lines and the events.

        On PostgreSQL the common case (one line, one event) is one round trip; otherwise
        each table gets one executemany.
        """
        if self._postgres and account is not None and len(lines) == 1 and len(logged) == 1:
            params = account | _prefixed("l_", lines[0]) | _prefixed("v_", logged[0])
            conn.execute(_PG_RECORD, params)
            return
        if account is not None:
            conn.execute(_UPDATE_ACCOUNT, account)
        if lines:
            conn.execute(_INSERT_LEDGER, lines)
        if logged:
            conn.execute(_INSERT_EVENT, logged)

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
        conn.execute(_INSERT_EVENT, _event(now, "redelivered", row.tracking_number, row.sender, {}))
        return Delivery(row.tracking_number, duplicate=True), _header(row)

    def _insert_ignoring(self, table: Any, column: str) -> Insert:
        """INSERT that does nothing when `column`'s unique value is already there."""
        if self._postgres:
            return pg_insert(table).on_conflict_do_nothing(index_elements=[column])
        return sqlite_insert(table).on_conflict_do_nothing(index_elements=[column])

    async def _write(self, work: Callable[[Connection], T]) -> T:
        """`work` in a transaction, committed when this returns; raises what `work` raised.

        On SQLite the writes that queue up while one transaction runs are committed
        together in the next (group commit: one hand-off to the database thread and one
        fsync for all of them). On PostgreSQL each is a transaction of its own: one that
        locked several processes' accounts in whatever order its callers came could
        deadlock with another hub process.
        """
        if self._postgres:
            return await self._transaction(work)
        done: asyncio.Future[_Outcome] = asyncio.get_running_loop().create_future()
        self._queued.append((work, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_queued())
        # Shielded: a caller that gives up (a closed HTTP request) does not cancel the
        # transaction that carries other callers' writes too.
        ok, result = await asyncio.shield(done)
        if not ok:
            assert isinstance(result, BaseException)
            raise result
        return cast(T, result)

    async def _write_queued(self) -> None:
        """Commit everything queued, batch after batch, until the queue is empty."""
        while self._queued:
            batch, self._queued = self._queued, []
            if len(batch) > 1:
                try:
                    results = await self._db.write(
                        functools.partial(_all, [work for work, _ in batch])
                    )
                except Exception:
                    pass  # one of them refused or failed: each again alone, below
                else:
                    for (_, done), result in zip(batch, results, strict=True):
                        _resolve(done, (True, result))
                    continue
            for work, done in batch:
                try:
                    result = await self._transaction(work)
                except Exception as e:
                    _resolve(done, (False, e))
                else:
                    _resolve(done, (True, result))

    async def _transaction(self, work: Callable[[Connection], T]) -> T:
        """`work` in a transaction of its own."""
        try:
            return await self._db.write(work)
        except (DBAPIError, OSError) as e:
            raise HubStoreError(f"the hub's database failed: {_first_line(e)}") from e

    async def _read(self, work: Callable[[Connection], T]) -> T:
        """`work` outside a transaction: on PostgreSQL no BEGIN and ROLLBACK, two round
        trips fewer for a pull."""
        if self._postgres:
            work = functools.partial(_autocommit, work)
        try:
            return await self._db.read(work)
        except (DBAPIError, OSError) as e:
            raise HubStoreError(f"the hub's database failed: {_first_line(e)}") from e


_Outcome = tuple[bool, object]


def _all(works: list[Callable[[Connection], Any]], conn: Connection) -> list[Any]:
    """Every work in `works`, in order, in the one transaction of `conn`."""
    return [work(conn) for work in works]


def _resolve(done: asyncio.Future[_Outcome], outcome: _Outcome) -> None:
    if not done.done():
        done.set_result(outcome)


def _autocommit(work: Callable[[Connection], T], conn: Connection) -> T:
    return work(conn.execution_options(isolation_level="AUTOCOMMIT"))


def _charges(
    nppo: str, row: Row[Any], now: datetime, refs: list[str]
) -> tuple[list[LedgerEntry], dict[str, Any]]:
    """Charge one envelope per reference to the locked account `row`, all or none.

    Returns the ledger lines and the account's new values (`_UPDATE_ACCOUNT`'s
    parameters); raises InsufficientFundsError.
    """
    policy = rules.policy_from_json(row.policy)
    period, used = rules.usage(policy, row.period, row.used, now)
    balance = row.balance
    entries = []
    for ref in refs:
        charge = rules.charge_for_delivery(policy, balance, used)
        if isinstance(charge, Refusal):
            raise InsufficientFundsError(nppo, charge)
        entries.append(charge.entry(nppo, now, ref))
        balance, used = charge.balance_after, charge.used_after
    return entries, _account_update(nppo, balance, period, used, now)


def _account_update(
    nppo: str, balance: int, period: str, used: int, now: datetime
) -> dict[str, Any]:
    return {"a_nppo": nppo, "a_balance": balance, "a_period": period, "a_used": used, "a_at": now}


def _account_values(nppo: str, policy: AccountPolicy, text: str, now: datetime) -> dict[str, Any]:
    return {
        "nppo": nppo,
        "currency": policy.currency,
        "policy": text,
        "balance": 0,
        "period": rules.period_key(policy.period, now),
        "used": 0,
        "created_at": now,
        "updated_at": now,
    }


def _already_settled(conn: Connection, caller: str, keys: list[str], state: str) -> set[str]:
    """Which of `keys` (not settled just now) were settled so before; raise for the rest."""
    if not keys:
        return set()
    found = {r.tracking_number: r for r in conn.execute(_SETTLED_BEFORE, {"keys": keys})}
    for key in keys:
        row = found.get(key)
        if row is None or row.recipient != caller:
            raise EnvelopeNotFoundError(_not_found(key))
        if row.state != state:
            raise EnvelopeSettledError(key, row.state, row.message)
    return set(keys)


def _prefixed(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}{k}": v for k, v in values.items()}


def _account_query(*, also: bool, lock: bool) -> Any:
    columns: list[Any] = [accounts.c.policy, accounts.c.balance, accounts.c.period, accounts.c.used]
    if also:
        other = accounts.alias("other_account")
        known = select(other.c.nppo).where(other.c.nppo == bindparam("also")).exists()
        columns.append(known.label("also_known"))
    query = select(*columns).where(accounts.c.nppo == bindparam("nppo"))
    return query.with_for_update(of=accounts) if lock else query


def _header(row: Any) -> EnvelopeHeader:
    return EnvelopeHeader(
        tracking_number=row.tracking_number,
        sender=row.sender,
        recipient=row.recipient,
        certificate_type=row.certificate_type,
        certificate_status=row.certificate_status,
        certificate_number=row.certificate_number,
        content_sha256=row.content_sha256,
        content_size=row.content_size,
        state=row.state,
        message=row.message,
        created_at=row.created_at,
        settled_at=row.settled_at,
    )


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        row.nppo,
        row.at,
        row.kind,
        row.amount,
        row.currency,
        row.balance_after,
        row.reference,
        row.note,
    )


def _ledger_row(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "nppo": entry.nppo,
        "at": entry.at,
        "kind": entry.kind,
        "amount": entry.amount,
        "currency": entry.currency,
        "balance_after": entry.balance_after,
        "reference": entry.reference,
        "note": entry.note,
    }


def _event(
    now: datetime, kind: str, tracking: str | None, nppo: str | None, detail: dict[str, Any]
) -> dict[str, Any]:
    return {
        "at": now,
        "kind": kind,
        "tracking_number": tracking,
        "nppo": nppo,
        "detail": json.dumps(detail, sort_keys=True),
    }


def _ack_detail(
    state: str, message: str | None, charged: dict[str, int], key: str
) -> dict[str, Any]:
    detail: dict[str, Any] = {"state": state}
    if message:
        detail["message"] = message
    if key in charged:
        detail["charged"] = charged[key]
    return detail


def _key(tracking_number: str) -> str:
    key = tracking_key(tracking_number)
    if key is None:
        raise EnvelopeNotFoundError(_not_found(tracking_number))
    return key


def _not_found(tracking_number: object) -> str:
    shown = tracking_number if isinstance(tracking_number, str) else "?"
    return f"no envelope {shown[:40]!r} for this caller"


def _unknown(nppo: str) -> str:
    return f"{nppo} has no account at this hub"


def _aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the hub store; the clock gives aware UTC")


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
