"""The hub's billing rules as values (pure): what an envelope costs, and when to refuse.

Money is an integer of minor units (cents) with an ISO 4217 code beside it, never a
float. Every account has a balance; a charge is a debit that may take it below zero
only as far as the policy's overdraft allows (an overdraft of 0 means refuse). Prepaid
accounts pay a flat fee per envelope; plan accounts get a number of envelopes included
per calendar period (UTC) and pay per envelope by volume tier beyond that. Who pays,
sender or receiver, is one setting for the whole hub, not part of a policy.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from node.errors import InputError

Period = Literal["monthly", "annual"]
Payer = Literal["sender", "receiver"]
LedgerKind = Literal["credit", "charge"]

PAYERS: tuple[Payer, ...] = ("sender", "receiver")
MAX_AMOUNT = 10**15
"""The largest fee, price, credit or overdraft: far past any real one, far inside BIGINT."""
MAX_BALANCE = 2**62
"""A balance stays within this (either sign), so no sum in the database can overflow."""


class AccountsError(InputError):
    """A policy, an amount or a currency that cannot be right: fix it and try again."""


@dataclass(frozen=True, slots=True)
class Prepaid:
    """A flat `fee` (minor units) for every envelope, debited from the balance."""

    fee: int

    def __post_init__(self) -> None:
        _amount("fee", self.fee)


@dataclass(frozen=True, slots=True)
class Tier:
    """`price` per envelope up to the `up_to`-th envelope of the period (None: no end)."""

    up_to: int | None
    price: int

    def __post_init__(self) -> None:
        _amount("tier price", self.price)
        if self.up_to is not None and (_not_int(self.up_to) or self.up_to < 1):
            raise AccountsError(f"a tier must end at a positive envelope count, not {self.up_to!r}")


@dataclass(frozen=True, slots=True)
class Plan:
    """`included` envelopes per period at no charge, then `tiers` in ascending order.

    Past the last tier when it has an end, envelopes are refused: a cap on the volume.
    """

    period: Period
    included: int
    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        if self.period not in ("monthly", "annual"):
            raise AccountsError(f"a plan's period is monthly or annual, not {self.period!r}")
        if _not_int(self.included) or not 0 <= self.included <= MAX_AMOUNT:
            raise AccountsError(f"included envelopes must be a count >= 0, not {self.included!r}")
        floor = self.included
        for i, tier in enumerate(self.tiers):
            if not isinstance(tier, Tier):
                raise AccountsError(f"tier {i + 1} is not a Tier")
            if tier.up_to is None and i != len(self.tiers) - 1:
                raise AccountsError("only the last tier may be open-ended")
            if tier.up_to is not None and tier.up_to <= floor:
                raise AccountsError(
                    f"tier {i + 1} ends at envelope {tier.up_to}, not after {floor}: "
                    "tiers must ascend past the included envelopes"
                )
            floor = tier.up_to or floor


@dataclass(frozen=True, slots=True)
class AccountPolicy:
    """How one NPPO is billed: its currency, its pricing, and how far below zero it may go."""

    currency: str
    pricing: Prepaid | Plan
    overdraft: int = 0

    def __post_init__(self) -> None:
        _currency(self.currency)
        if not isinstance(self.pricing, Prepaid | Plan):
            raise AccountsError("pricing is Prepaid or Plan")
        _amount("overdraft", self.overdraft)

    @property
    def period(self) -> Period:
        """The period usage is counted over (a prepaid account's usage is counted monthly)."""
        return self.pricing.period if isinstance(self.pricing, Plan) else "monthly"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One line of an account's ledger: `amount` is signed (credits +, charges -)."""

    nppo: str
    at: datetime
    kind: LedgerKind
    amount: int
    currency: str
    balance_after: int
    reference: str
    note: str


@dataclass(frozen=True, slots=True)
class Charge:
    """A charge that may go ahead: `amount` (>= 0) is debited, leaving `balance_after`."""

    amount: int
    currency: str
    balance_after: int
    used_after: int
    note: str

    def entry(self, nppo: str, at: datetime, reference: str) -> LedgerEntry:
        """The ledger line for this charge, `reference` being the envelope's tracking number."""
        return LedgerEntry(
            nppo,
            at,
            "charge",
            -self.amount,
            self.currency,
            self.balance_after,
            reference,
            self.note,
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """A charge that may not go ahead, and why (one line an operator can act on)."""

    reason: str
    amount: int
    available: int


def charge_for_delivery(
    policy: AccountPolicy, balance: int, used_this_period: int
) -> Charge | Refusal:
    """What one more envelope costs this account, or why it is refused.

    `used_this_period` counts the envelopes already charged in the current period (see
    `usage`). A free envelope (included in a plan, or a zero fee) always goes ahead, even
    for an account already past its overdraft: it takes nothing from the balance.
    """
    nth = used_this_period + 1
    price = price_of(policy, nth)
    if price is None:
        return Refusal(
            f"the plan's volume for this {_PERIOD_NOUN[policy.period]} is used up "
            f"({used_this_period} envelopes)",
            amount=0,
            available=balance + policy.overdraft,
        )
    available = balance + policy.overdraft
    if price > 0 and price > available:
        return Refusal(
            f"insufficient balance: the envelope costs {format_minor(price, policy.currency)} "
            f"{policy.currency}, the balance is {format_minor(balance, policy.currency)} with "
            f"an overdraft of {format_minor(policy.overdraft, policy.currency)}",
            amount=price,
            available=available,
        )
    return Charge(price, policy.currency, balance - price, nth, _charge_note(policy, nth, price))


def price_of(policy: AccountPolicy, nth: int) -> int | None:
    """The price of the `nth` envelope (1-based) of a period; None past a plan's last tier."""
    pricing = policy.pricing
    if isinstance(pricing, Prepaid):
        return pricing.fee
    if nth <= pricing.included:
        return 0
    for tier in pricing.tiers:
        if tier.up_to is None or nth <= tier.up_to:
            return tier.price
    return None


def credit(
    policy: AccountPolicy, balance: int, amount: int, *, nppo: str, at: datetime, note: str
) -> LedgerEntry:
    """The ledger line that credits `amount` (> 0 minor units) to the account."""
    _amount("credit", amount)
    if amount == 0:
        raise AccountsError("a credit must be more than zero")
    if balance + amount > MAX_BALANCE:
        raise AccountsError("the credit would take the balance past the largest one kept")
    return LedgerEntry(nppo, at, "credit", amount, policy.currency, balance + amount, "", note)


def period_key(period: Period, at: datetime) -> str:
    """The calendar period (UTC) `at` falls in: "2026-11" monthly, "2026" annual."""
    if at.tzinfo is None:
        raise ValueError("period_key needs an aware datetime")
    return f"{at.year:04d}-{at.month:02d}" if period == "monthly" else f"{at.year:04d}"


def usage(policy: AccountPolicy, period: str, used: int, at: datetime) -> tuple[str, int]:
    """The current period and the envelopes used in it, given what the account last kept."""
    current = period_key(policy.period, at)
    return (current, used) if current == period else (current, 0)


def check_policy_change(old: AccountPolicy | None, new: AccountPolicy, balance: int) -> None:
    """Refuse a new policy that would silently reinterpret the balance in another currency."""
    if old is not None and balance != 0 and old.currency != new.currency:
        raise AccountsError(
            f"the balance is {format_minor(balance, old.currency)} {old.currency}: settle it "
            f"to zero before changing the account's currency to {new.currency}"
        )


def policy_to_json(policy: AccountPolicy) -> str:
    """The policy as canonical JSON, for the database."""
    pricing = policy.pricing
    body: dict[str, Any]
    if isinstance(pricing, Prepaid):
        body = {"kind": "prepaid", "fee": pricing.fee}
    else:
        body = {
            "kind": "plan",
            "period": pricing.period,
            "included": pricing.included,
            "tiers": [{"up_to": t.up_to, "price": t.price} for t in pricing.tiers],
        }
    document = {"currency": policy.currency, "overdraft": policy.overdraft, "pricing": body}
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


@lru_cache(maxsize=1024)
def policy_from_json(text: str) -> AccountPolicy:
    """The policy `policy_to_json` wrote (cached: every delivery reads its payer's policy)."""
    try:
        document = json.loads(text)
        body = document["pricing"]
        pricing: Prepaid | Plan
        if body["kind"] == "prepaid":
            pricing = Prepaid(body["fee"])
        elif body["kind"] == "plan":
            tiers = tuple(Tier(t["up_to"], t["price"]) for t in body["tiers"])
            pricing = Plan(body["period"], body["included"], tiers)
        else:
            raise AccountsError(f"unknown pricing kind {body['kind']!r}")
        return AccountPolicy(document["currency"], pricing, document["overdraft"])
    except (ValueError, KeyError, TypeError) as e:
        raise AccountsError(f"the stored account policy is unreadable: {e}") from None


STATEMENT_COLUMNS = (
    "at",
    "nppo",
    "kind",
    "reference",
    "currency",
    "amount",
    "balance",
    "amount_minor",
    "balance_minor",
    "note",
)


def statement_csv(entries: Iterable[LedgerEntry]) -> str:
    """Ledger lines as CSV (RFC 4180, header first): amounts in major and in minor units."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(STATEMENT_COLUMNS)
    for e in entries:
        writer.writerow(
            (
                e.at.isoformat().replace("+00:00", "Z"),
                _cell(e.nppo),
                e.kind,
                _cell(e.reference),
                e.currency,
                format_minor(e.amount, e.currency),
                format_minor(e.balance_after, e.currency),
                str(e.amount),
                str(e.balance_after),
                _cell(e.note),
            )
        )
    return out.getvalue()


def format_minor(amount: int, currency: str) -> str:
    """Minor units as a decimal in major units, exactly: 1234 EUR is "12.34", -5 is "-0.05"."""
    digits = _MINOR_DIGITS.get(currency, 2)
    if digits == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10**digits)
    return f"{sign}{major}.{minor:0{digits}d}"


def parse_major(text: str, currency: str) -> int:
    """A decimal in major units as minor units, exactly: "12.34" EUR is 1234; AccountsError.

    The inverse of `format_minor` for amounts >= 0; more decimals than the currency's
    minor unit has are refused rather than rounded.
    """
    _currency(currency)
    digits = _MINOR_DIGITS.get(currency, 2)
    match = _DECIMAL.fullmatch(text.strip())
    if match is None or len(match[2] or "") > digits:
        places = f"at most {digits} decimals" if digits else "no decimals"
        raise AccountsError(f"{text!r} is not an amount in {currency} ({places}, like 12.50)")
    fraction = (match[2] or "").ljust(digits, "0") or "0"
    scale: int = 10**digits
    amount = int(match[1]) * scale + int(fraction)
    _amount("amount", amount)
    return amount


# ISO 4217 currencies whose minor unit is not the hundredth.
_MINOR_DIGITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip
_PERIOD_NOUN = {"monthly": "month", "annual": "year"}
_CURRENCY = re.compile(r"[A-Z]{3}")
_DECIMAL = re.compile(r"([0-9]{1,16})(?:\.([0-9]{1,3}))?")
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _charge_note(policy: AccountPolicy, nth: int, price: int) -> str:
    pricing = policy.pricing
    if isinstance(pricing, Prepaid):
        return f"envelope fee {format_minor(price, policy.currency)}"
    if nth <= pricing.included:
        return f"envelope {nth} of the {_PERIOD_NOUN[pricing.period]}, included in the plan"
    return (
        f"envelope {nth} of the {_PERIOD_NOUN[pricing.period]} "
        f"at {format_minor(price, policy.currency)}"
    )


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def _not_int(value: object) -> bool:
    # bool is an int to Python; a True fee is a mistake, not one cent.
    return not isinstance(value, int) or isinstance(value, bool)


def _amount(what: str, value: int) -> None:
    if _not_int(value):
        raise AccountsError(f"{what} must be an integer of minor units, not {value!r}")
    if not 0 <= value <= MAX_AMOUNT:
        raise AccountsError(f"{what} must be between 0 and {MAX_AMOUNT} minor units, not {value}")


def _currency(code: str) -> None:
    if not isinstance(code, str) or not _CURRENCY.fullmatch(code):
        raise AccountsError(f"a currency is an ISO 4217 code like EUR, not {code!r}")
