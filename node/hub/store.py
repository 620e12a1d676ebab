"""The hub's durable store: SQLAlchemy async over SQLite (one process) or PostgreSQL (many).

Every write that must not be lost, doubled or overdrawn is one transaction. On
PostgreSQL several hub processes share the database: a delivery locks its payer's
account row (SELECT ... FOR UPDATE) before it charges, so concurrent deliveries queue
per account and never take a balance past its overdraft; the envelope insert resolves
a repeated delivery with ON CONFLICT on the dedup key, so a retried DeliverEnvelope gets
the original tracking number and is charged once; settling an envelope is an UPDATE
guarded by its state, so it happens once; push work is claimed with leases under
FOR UPDATE SKIP LOCKED, so two processes never claim the same envelope. On SQLite one
in-process lock queues the writers instead.

Raises the errors of `node.hub.records`; a database failure is `HubStoreError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Insert, Row, bindparam, event, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

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
    UnknownNppoError,
    check_content,
    check_header,
    check_nppo,
    check_outcome,
    new_tracking_number,
    tracking_key,
)
from node.hub.schema import accounts, envelopes, events, ledger, push_endpoints
from node.store.database import redacted

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


class HubStore:
    """The hub's database. Open with `HubStore.open(url)`, then `await store.migrate()`."""

    def __init__(self, engine: AsyncEngine, settings: HubSettings) -> None:
        self._engine = engine
        self._settings = settings
        self._postgres = engine.dialect.name == "postgresql"
        # Reads run without BEGIN and ROLLBACK: two round trips fewer for a pull.
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        # The hottest statements are built once: building one costs more than its trip.
        self._insert_envelope = self._insert_ignoring(envelopes, "dedup_key").returning(
            envelopes.c.id
        )
        self._account_queries = {
            (also, lock): _account_query(also=also, lock=lock and self._postgres)
            for also in (False, True)
            for lock in (False, True)
        }
        # SQLite has one writer at a time, and its busy handler sleeps in steps of up to
        # 100 ms; queueing the writers here instead keeps a single-process hub fast.
        self._sqlite_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @classmethod
    def open(cls, url: str, settings: HubSettings | None = None) -> HubStore:
        """A store on `url` (sqlite+aiosqlite:///path.db or postgresql+asyncpg://...)."""
        try:
            engine = create_async_engine(url)
        except (SQLAlchemyError, ImportError, ValueError) as e:
            raise HubStoreError(f"cannot open database {redacted(url)}: {e}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return cls(engine, settings or HubSettings())

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @property
    def settings(self) -> HubSettings:
        return self._settings

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        async with self._begin() as conn:
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self._engine.dispose()

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
        check_nppo("sender", sender)
        check_nppo("recipient", recipient)
        check_header(certificate_type, certificate_status, certificate_number)
        body = check_content(content, self._settings.max_content_bytes)
        _aware(now)
        digest = hashlib.sha256(body).hexdigest()
        dedup = f"{sender}>{recipient}:{digest}"
        tracking = new_tracking_number()
        sender_pays = self._settings.payer == "sender"
        payer, other = (sender, recipient) if sender_pays else (recipient, sender)
        async with self._begin() as conn:
            row = await self._account_row(conn, payer, also=other, lock=sender_pays)
            if row is None:
                raise UnknownNppoError(_unknown(payer))
            if not row.also_known:
                raise UnknownNppoError(_unknown(other))
            stored = await conn.execute(
                self._insert_envelope,
                {
                    "tracking_number": tracking,
                    "sender": sender,
                    "recipient": recipient,
                    "certificate_type": certificate_type,
                    "certificate_status": certificate_status,
                    "certificate_number": certificate_number,
                    "content": body,
                    "content_size": len(body),
                    "content_sha256": digest,
                    "dedup_key": dedup,
                    "state": PENDING,
                    "created_at": now,
                    "push_attempts": 0,
                },
            )
            if stored.first() is None:
                return await self._redelivered(
                    conn, dedup, (certificate_type, certificate_status, certificate_number), now
                )
            detail: dict[str, object] = {"from": sender, "to": recipient, "size": len(body)}
            writes: list[Any] = []
            if sender_pays:
                (entry,), writes = self._charge(sender, row, now, [tracking])
                detail["charged"] = -entry.amount
            writes.append(insert(events).values(_event(now, "delivered", tracking, sender, detail)))
            await self._write_all(conn, writes)
        return Delivery(tracking, duplicate=False)

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
        async with self._read() as conn:
            return [_header(r) for r in await conn.execute(query)]

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
        async with self._read() as conn:
            return [_header(r) for r in await conn.execute(query)]

    async def pull(self, caller: str, tracking_number: str) -> Envelope:
        """One pending envelope addressed to `caller`, with its content; marks nothing.

        Raises EnvelopeNotFoundError (unknown, or not addressed to the caller) and
        EnvelopeSettledError (acknowledged or expired: the content is gone).
        """
        check_nppo("caller", caller)
        key = _key(tracking_number)
        async with self._read() as conn:
            row = (
                await conn.execute(
                    select(*_HEADER, envelopes.c.content).where(envelopes.c.tracking_number == key)
                )
            ).first()
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
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
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
        failed = state == "FailedDelivery"
        receiver_pays = self._settings.payer == "receiver" and not failed
        settle_values: dict[str, Any] = {
            "state": state,
            "message": text,
            "content": None,
            "settled_at": now,
            "push_claimed_until": None,
        }
        if failed:
            settle_values["dedup_key"] = None  # the sender may send the same content again
        async with self._begin() as conn:
            row = None
            # Locking the caller's account first also orders concurrent batches, so two
            # of them settling overlapping envelopes queue instead of deadlocking.
            if receiver_pays or len(unique) > 1:
                row = await self._account_row(conn, caller, also=None, lock=True)
                if receiver_pays and row is None:
                    raise UnknownNppoError(_unknown(caller))
            settled = {
                r.tracking_number: r.sender
                for r in await conn.execute(
                    update(envelopes)
                    .where(
                        envelopes.c.tracking_number.in_(unique),
                        envelopes.c.recipient == caller,
                        envelopes.c.state == PENDING,
                    )
                    .values(settle_values)
                    .returning(envelopes.c.tracking_number, envelopes.c.sender)
                )
            }
            repeated = await self._already_settled(
                conn, caller, [k for k in unique if k not in settled], state
            )
            if settled:
                charged: dict[str, int] = {}
                writes: list[Any] = []
                if receiver_pays and row is not None:
                    entries, writes = self._charge(caller, row, now, list(settled))
                    charged = {e.reference: -e.amount for e in entries}
                acknowledged = [
                    _event(now, "acknowledged", k, caller, _ack_detail(state, text, charged, k))
                    for k in settled
                ]
                await self._write_all(conn, [*writes, insert(events).values(acknowledged)])
        return [Acknowledgement(k, state, repeated=k in repeated) for k in keys]

    async def tracking(self, caller: str, tracking_number: str) -> EnvelopeHeader:
        """What became of an envelope `caller` sent (GetEnvelopeTrackingInfo).

        Raises EnvelopeNotFoundError for an unknown number and for another sender's.
        """
        check_nppo("caller", caller)
        key = _key(tracking_number)
        async with self._read() as conn:
            row = (
                await conn.execute(select(*_HEADER).where(envelopes.c.tracking_number == key))
            ).first()
        if row is None or row.sender != caller:
            raise EnvelopeNotFoundError(_not_found(tracking_number))
        return _header(row)

    async def expire(self, now: datetime, max_age: timedelta) -> list[str]:
        """Fail the envelopes pending for longer than `max_age` and delete their content."""
        _aware(now)
        if max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        async with self._begin() as conn:
            rows = (
                await conn.execute(
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
                )
            ).all()
            if rows:
                await conn.execute(
                    insert(events).values(
                        [_event(now, "expired", r.tracking_number, r.sender, {}) for r in rows]
                    )
                )
        return sorted(r.tracking_number for r in rows)

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
        async with self._begin() as conn:
            await conn.execute(push_endpoints.delete().where(push_endpoints.c.nppo == nppo))
            if url is not None:
                await conn.execute(
                    insert(push_endpoints).values(nppo=nppo, url=url, updated_at=now)
                )
            await conn.execute(
                insert(events).values(_event(now, "push_endpoint", None, nppo, {"url": url}))
            )

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
        async with self._begin() as conn:
            rows = (
                await conn.execute(
                    update(envelopes)
                    .where(envelopes.c.id.in_(due.scalar_subquery()))
                    .values(push_claimed_until=until)
                    .returning(*_HEADER, envelopes.c.content, envelopes.c.push_attempts)
                )
            ).all()
            if not rows:
                return []
            urls = {
                r.nppo: r.url
                for r in await conn.execute(
                    select(push_endpoints.c.nppo, push_endpoints.c.url).where(
                        push_endpoints.c.nppo.in_({r.recipient for r in rows})
                    )
                )
            }
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
        async with self._begin() as conn:
            result = await conn.execute(
                update(envelopes)
                .where(envelopes.c.tracking_number == key, envelopes.c.state == PENDING)
                .values(
                    push_claimed_until=None,
                    push_next_at=retry_at,
                    push_attempts=envelopes.c.push_attempts + 1,
                    push_error=error[:_MAX_NOTE_CHARS],
                )
                .returning(envelopes.c.recipient)
            )
            recipient = result.scalar_one_or_none()
            if recipient is not None:
                detail = {"error": error[:_MAX_NOTE_CHARS], "retry_at": retry_at.isoformat()}
                await conn.execute(
                    insert(events).values(_event(now, "push_failed", key, recipient, detail))
                )

    async def set_policy(self, nppo: str, policy: AccountPolicy, now: datetime) -> Account:
        """Open `nppo`'s account with `policy` (balance 0), or change its policy."""
        check_nppo("nppo", nppo)
        _aware(now)
        if not isinstance(policy, AccountPolicy):
            raise InvalidValueError("the policy must be an AccountPolicy")
        text = rules.policy_to_json(policy)
        async with self._begin() as conn:
            await conn.execute(
                self._insert_ignoring(accounts, "nppo").values(
                    nppo=nppo,
                    currency=policy.currency,
                    policy=text,
                    balance=0,
                    period=rules.period_key(policy.period, now),
                    used=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            row = await self._account_row(conn, nppo, also=None, lock=True)
            assert row is not None  # inserted just now, or there already
            rules.check_policy_change(rules.policy_from_json(row.policy), policy, row.balance)
            await conn.execute(
                update(accounts)
                .where(accounts.c.nppo == nppo)
                .values(currency=policy.currency, policy=text, updated_at=now)
            )
            await conn.execute(
                insert(events).values(_event(now, "policy", None, nppo, json.loads(text)))
            )
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
        async with self._begin() as conn:
            opened = await conn.execute(
                self._insert_ignoring(accounts, "nppo")
                .values(
                    nppo=nppo,
                    currency=policy.currency,
                    policy=text,
                    balance=0,
                    period=rules.period_key(policy.period, now),
                    used=0,
                    created_at=now,
                    updated_at=now,
                )
                .returning(accounts.c.nppo)
            )
            if opened.first() is None:
                return False
            detail = json.loads(text) | {"default": True}
            await conn.execute(insert(events).values(_event(now, "policy", None, nppo, detail)))
        return True

    async def credit(self, nppo: str, amount: int, now: datetime, note: str = "") -> LedgerEntry:
        """Add `amount` minor units (a payment received) to `nppo`'s balance."""
        check_nppo("nppo", nppo)
        _aware(now)
        if not isinstance(note, str) or len(note) > _MAX_NOTE_CHARS:
            raise InvalidValueError(f"a note is text of at most {_MAX_NOTE_CHARS} characters")
        async with self._begin() as conn:
            row = await self._account_row(conn, nppo, also=None, lock=True)
            if row is None:
                raise UnknownNppoError(_unknown(nppo))
            policy = rules.policy_from_json(row.policy)
            entry = rules.credit(policy, row.balance, amount, nppo=nppo, at=now, note=note)
            await self._write_all(
                conn,
                [
                    update(accounts)
                    .where(accounts.c.nppo == nppo)
                    .values(balance=entry.balance_after, updated_at=now),
                    insert(ledger).values(_ledger_row(entry)),
                    insert(events).values(_event(now, "credit", None, nppo, {"amount": amount})),
                ],
            )
        return entry

    async def account(self, nppo: str) -> Account:
        check_nppo("nppo", nppo)
        async with self._read() as conn:
            row = await self._account_row(conn, nppo, also=None, lock=False)
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
        async with self._read() as conn:
            account = await self._account_row(conn, nppo, also=None, lock=False)
            if account is None:
                raise UnknownNppoError(_unknown(nppo))
            opening = (await conn.execute(before)).scalar_one_or_none() or 0
            rows = await conn.execute(lines.where(ledger.c.at >= since, ledger.c.at < until))
            entries = tuple(_entry(r) for r in rows)
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
        async with self._read() as conn:
            return [
                HubEvent(r.at, r.kind, r.tracking_number, r.nppo, json.loads(r.detail))
                for r in await conn.execute(query)
            ]

    async def _account_row(
        self, conn: AsyncConnection, nppo: str, *, also: str | None, lock: bool
    ) -> Row[Any] | None:
        """The account row (locked against concurrent charges on PostgreSQL if `lock`).

        `also_known` says whether `also` has an account too, in the same round trip; it
        is not locked, so deliveries A to B and B to A never wait on each other.
        """
        query = self._account_queries[(also is not None, lock)]
        return (await conn.execute(query, {"nppo": nppo, "also": also})).first()

    def _charge(
        self, nppo: str, row: Row[Any], now: datetime, refs: list[str]
    ) -> tuple[list[LedgerEntry], list[Any]]:
        """Charge one envelope per reference to the locked account `row`, all or none.

        Returns the ledger lines and the statements that record them, for `_write_all`.
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
        return entries, [
            update(accounts)
            .where(accounts.c.nppo == nppo)
            .values(balance=balance, period=period, used=used, updated_at=now),
            insert(ledger).values([_ledger_row(e) for e in entries]),
        ]

    async def _write_all(self, conn: AsyncConnection, statements: Sequence[Any]) -> None:
        """Run independent writes; on PostgreSQL in one round trip, as CTEs of the last.

        The hub is bound by round trips more than by anything the database does, and a
        data-modifying CTE runs whether or not the main statement reads it.
        """
        if self._postgres and len(statements) > 1:
            *first, last = statements
            ctes = [statement.cte(f"hub_write_{i}") for i, statement in enumerate(first)]
            await conn.execute(last.add_cte(*ctes))
            return
        for statement in statements:
            await conn.execute(statement)

    async def _redelivered(
        self,
        conn: AsyncConnection,
        dedup: str,
        header: tuple[int, int, str],
        now: datetime,
    ) -> Delivery:
        row = (
            await conn.execute(
                select(
                    envelopes.c.tracking_number,
                    envelopes.c.sender,
                    envelopes.c.certificate_type,
                    envelopes.c.certificate_status,
                    envelopes.c.certificate_number,
                ).where(envelopes.c.dedup_key == dedup)
            )
        ).one()
        if (row.certificate_type, row.certificate_status, row.certificate_number) != header:
            raise DuplicateConflictError(
                f"this content was delivered before as {row.tracking_number} with other "
                "certificate type, status or number"
            )
        await conn.execute(
            insert(events).values(_event(now, "redelivered", row.tracking_number, row.sender, {}))
        )
        return Delivery(row.tracking_number, duplicate=True)

    async def _already_settled(
        self, conn: AsyncConnection, caller: str, keys: list[str], state: str
    ) -> set[str]:
        """Which of `keys` (not settled just now) were settled so before; raise for the rest."""
        if not keys:
            return set()
        rows = await conn.execute(
            select(
                envelopes.c.tracking_number,
                envelopes.c.recipient,
                envelopes.c.state,
                envelopes.c.message,
            ).where(envelopes.c.tracking_number.in_(keys))
        )
        found = {r.tracking_number: r for r in rows}
        for key in keys:
            row = found.get(key)
            if row is None or row.recipient != caller:
                raise EnvelopeNotFoundError(_not_found(key))
            if row.state != state:
                raise EnvelopeSettledError(key, row.state, row.message)
        return set(keys)

    def _insert_ignoring(self, table: Any, column: str) -> Insert:
        """INSERT that does nothing when `column`'s unique value is already there."""
        if self._postgres:
            return pg_insert(table).on_conflict_do_nothing(index_elements=[column])
        return sqlite_insert(table).on_conflict_do_nothing(index_elements=[column])

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (one at a time on SQLite, see __init__)."""
        try:
            if self._sqlite_writer is None:
                async with self._engine.begin() as conn:
                    yield conn
                return
            async with self._sqlite_writer, self._engine.begin() as conn:
                yield conn
        except (DBAPIError, OSError) as e:
            raise HubStoreError(f"the hub's database failed: {_first_line(e)}") from e

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._reader.connect() as conn:
                yield conn
        except (DBAPIError, OSError) as e:
            raise HubStoreError(f"the hub's database failed: {_first_line(e)}") from e


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


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; synchronous=FULL makes a committed
    # transaction survive power loss, which "nothing accepted is lost" needs.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
