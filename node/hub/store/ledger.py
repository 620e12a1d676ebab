"""The NPPOs' accounts and their ledger: policies, credits, balances, statements, and the
ledger writes that deliveries and acknowledgements make in their own transactions.

A charge locks its payer's account row first (SELECT ... FOR UPDATE on PostgreSQL), so
concurrent charges queue per account and never take a balance past its overdraft.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, Row, String, bindparam, insert, select, update

from node.hub import accounts as rules
from node.hub.accounts import AccountPolicy, LedgerEntry, Refusal
from node.hub.records import (
    Account,
    InsufficientFundsError,
    InvalidValueError,
    Statement,
    UnknownNppoError,
    check_nppo,
)
from node.hub.schema import accounts, events, ledger
from node.hub.store.audit import EVENT_COLUMNS, INSERT_EVENT, event_row
from node.hub.store.base import HubStoreBase, aware
from node.hub.store.sql import MAX_NOTE_CHARS, binds, insert_ignoring, prefixed
from node.store.types import UtcDateTime

LEDGER_COLUMNS = tuple(c.name for c in ledger.c if c.name != "id")
_INSERT_LEDGER = insert(ledger)
# Its parameters are `account_update`'s.
UPDATE_ACCOUNT = (
    update(accounts)
    .where(accounts.c.nppo == bindparam("a_nppo", type_=String()))
    .values(
        balance=bindparam("a_balance", type_=BigInteger()),
        period=bindparam("a_period", type_=String()),
        used=bindparam("a_used", type_=BigInteger()),
        updated_at=bindparam("a_at", type_=UtcDateTime()),
    )
)


class LedgerStore(HubStoreBase):
    """Opens accounts, sets their policies, credits them and reads them back."""

    async def set_policy(self, nppo: str, policy: AccountPolicy, now: datetime) -> Account:
        """Open `nppo`'s account with `policy` (balance 0), or change its policy."""
        check_nppo("nppo", nppo)
        aware(now)
        if not isinstance(policy, AccountPolicy):
            raise InvalidValueError("the policy must be an AccountPolicy")
        text = rules.policy_to_json(policy)

        def work(conn: Connection) -> Row[Any]:
            conn.execute(_INSERT_ACCOUNT[self._postgres], _account_values(nppo, policy, text, now))
            row = account_row(conn, nppo, also=None, lock=True, postgres=self._postgres)
            assert row is not None  # inserted just now, or there already
            rules.check_policy_change(rules.policy_from_json(row.policy), policy, row.balance)
            conn.execute(
                update(accounts)
                .where(accounts.c.nppo == nppo)
                .values(currency=policy.currency, policy=text, updated_at=now)
            )
            conn.execute(INSERT_EVENT, event_row(now, "policy", None, nppo, json.loads(text)))
            return row

        row = await self._write(work)
        return Account(nppo, policy, row.balance, row.period, row.used)

    async def open_account(self, nppo: str, policy: AccountPolicy, now: datetime) -> bool:
        """Open `nppo`'s account with `policy` unless it has one; True if opened now.

        Unlike `set_policy`, an existing account is left exactly as it is, so a hub-wide
        default can be applied on first use without racing the operator's own policy.
        """
        check_nppo("nppo", nppo)
        aware(now)
        if not isinstance(policy, AccountPolicy):
            raise InvalidValueError("the policy must be an AccountPolicy")
        text = rules.policy_to_json(policy)

        def work(conn: Connection) -> bool:
            values = _account_values(nppo, policy, text, now)
            if conn.execute(_INSERT_ACCOUNT[self._postgres], values).first() is None:
                return False
            detail = json.loads(text) | {"default": True}
            conn.execute(INSERT_EVENT, event_row(now, "policy", None, nppo, detail))
            return True

        return await self._write(work)

    async def credit(self, nppo: str, amount: int, now: datetime, note: str = "") -> LedgerEntry:
        """Add `amount` minor units (a payment received) to `nppo`'s balance."""
        check_nppo("nppo", nppo)
        aware(now)
        if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
            raise InvalidValueError(f"a note is text of at most {MAX_NOTE_CHARS} characters")

        def work(conn: Connection) -> LedgerEntry:
            row = account_row(conn, nppo, also=None, lock=True, postgres=self._postgres)
            if row is None:
                raise UnknownNppoError(unknown(nppo))
            policy = rules.policy_from_json(row.policy)
            entry = rules.credit(policy, row.balance, amount, nppo=nppo, at=now, note=note)
            account = account_update(nppo, entry.balance_after, row.period, row.used, now)
            event = event_row(now, "credit", None, nppo, {"amount": amount})
            record(conn, account, [ledger_row(entry)], [event], postgres=self._postgres)
            return entry

        return await self._write(work)

    async def account(self, nppo: str) -> Account:
        check_nppo("nppo", nppo)
        row = await self._read(
            functools.partial(
                account_row, nppo=nppo, also=None, lock=False, postgres=self._postgres
            )
        )
        if row is None:
            raise UnknownNppoError(unknown(nppo))
        return Account(nppo, rules.policy_from_json(row.policy), row.balance, row.period, row.used)

    async def statement(self, nppo: str, since: datetime, until: datetime) -> Statement:
        """`nppo`'s ledger lines at or after `since` and before `until`, oldest first."""
        check_nppo("nppo", nppo)
        aware(since)
        aware(until)
        lines = select(ledger).where(ledger.c.nppo == nppo).order_by(ledger.c.id)
        before = (
            select(ledger.c.balance_after)
            .where(ledger.c.nppo == nppo, ledger.c.at < since)
            .order_by(ledger.c.id.desc())
            .limit(1)
        )

        def work(conn: Connection) -> tuple[Row[Any] | None, int, tuple[LedgerEntry, ...]]:
            account = account_row(conn, nppo, also=None, lock=False, postgres=self._postgres)
            if account is None:
                return None, 0, ()
            opening = conn.execute(before).scalar_one_or_none() or 0
            rows = conn.execute(lines.where(ledger.c.at >= since, ledger.c.at < until))
            return account, opening, tuple(_entry(r) for r in rows)

        account, opening, entries = await self._read(work)
        if account is None:
            raise UnknownNppoError(unknown(nppo))
        closing = entries[-1].balance_after if entries else opening
        currency = rules.policy_from_json(account.policy).currency
        return Statement(nppo, currency, since, until, opening, closing, entries)


def account_row(
    conn: Connection, nppo: str, *, also: str | None, lock: bool, postgres: bool
) -> Row[Any] | None:
    """The account row (locked against concurrent charges on PostgreSQL if `lock`).

    `also_known` says whether `also` has an account too, in the same round trip; it
    is not locked, so deliveries A to B and B to A never wait on each other.
    """
    query = _ACCOUNT_QUERIES[(also is not None, lock and postgres)]
    return conn.execute(query, {"nppo": nppo, "also": also}).first()


def record(
    conn: Connection,
    account: dict[str, Any] | None,
    lines: list[dict[str, Any]],
    logged: list[dict[str, Any]],
    *,
    postgres: bool,
) -> None:
    """Write an account's new balance, its ledger lines and the events.

    On PostgreSQL the common case (one line, one event) is one round trip; otherwise
    each table gets one executemany.
    """
    if postgres and account is not None and len(lines) == 1 and len(logged) == 1:
        params = account | prefixed("l_", lines[0]) | prefixed("v_", logged[0])
        conn.execute(_PG_RECORD, params)
        return
    if account is not None:
        conn.execute(UPDATE_ACCOUNT, account)
    if lines:
        conn.execute(_INSERT_LEDGER, lines)
    if logged:
        conn.execute(INSERT_EVENT, logged)


def charges(
    nppo: str, row: Row[Any], now: datetime, refs: list[str]
) -> tuple[list[LedgerEntry], dict[str, Any]]:
    """Charge one envelope per reference to the locked account `row`, all or none.

    Returns the ledger lines and the account's new values (`UPDATE_ACCOUNT`'s
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
    return entries, account_update(nppo, balance, period, used, now)


def account_update(
    nppo: str, balance: int, period: str, used: int, now: datetime
) -> dict[str, Any]:
    """The parameters of `UPDATE_ACCOUNT`."""
    return {"a_nppo": nppo, "a_balance": balance, "a_period": period, "a_used": used, "a_at": now}


def ledger_row(entry: LedgerEntry) -> dict[str, Any]:
    """One ledger row, the parameters of an insert into the ledger."""
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


def unknown(nppo: str) -> str:
    return f"{nppo} has no account at this hub"


def _account_query(*, also: bool, lock: bool) -> Any:
    columns: list[Any] = [accounts.c.policy, accounts.c.balance, accounts.c.period, accounts.c.used]
    if also:
        other = accounts.alias("other_account")
        known = select(other.c.nppo).where(other.c.nppo == bindparam("also")).exists()
        columns.append(known.label("also_known"))
    query = select(*columns).where(accounts.c.nppo == bindparam("nppo"))
    return query.with_for_update(of=accounts) if lock else query


def _pg_record() -> Any:
    """PostgreSQL: an account update, one ledger line and one event in one round trip."""
    return (
        insert(events)
        .values(binds("v_", events, EVENT_COLUMNS))
        .add_cte(
            UPDATE_ACCOUNT.cte("hub_account"),
            insert(ledger).values(binds("l_", ledger, LEDGER_COLUMNS)).cte("hub_line"),
        )
    )


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


# Built once: executing a prebuilt statement finds its compiled form in SQLAlchemy's
# cache. Keyed by (whether `also` is asked, whether to lock) and by dialect.
_ACCOUNT_QUERIES = {
    (also, lock): _account_query(also=also, lock=lock)
    for also in (False, True)
    for lock in (False, True)
}
_INSERT_ACCOUNT = {
    postgres: insert_ignoring(accounts, "nppo", postgres=postgres).returning(accounts.c.nppo)
    for postgres in (False, True)
}
_PG_RECORD = _pg_record()
