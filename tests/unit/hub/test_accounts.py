"""The hub's billing rules: prices, refusals, overdrafts, periods and the CSV statement."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.hub.accounts import (
    STATEMENT_COLUMNS,
    AccountPolicy,
    AccountsError,
    Charge,
    LedgerEntry,
    Plan,
    Prepaid,
    Refusal,
    Tier,
    charge_for_delivery,
    check_policy_change,
    credit,
    format_minor,
    period_key,
    policy_from_json,
    policy_to_json,
    price_of,
    statement_csv,
    usage,
)

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PREPAID = AccountPolicy("EUR", Prepaid(fee=50))
PLAN = AccountPolicy(
    "USD",
    Plan("monthly", included=1000, tiers=(Tier(up_to=5000, price=20), Tier(up_to=None, price=10))),
)


def test_prepaid_charges_the_fee_and_keeps_count() -> None:
    charge = charge_for_delivery(PREPAID, balance=120, used_this_period=7)
    assert charge == Charge(50, "EUR", 70, 8, "envelope fee 0.50")
    entry = charge.entry("NL", T0, "t-1")
    assert (entry.kind, entry.amount, entry.balance_after, entry.reference) == (
        "charge",
        -50,
        70,
        "t-1",
    )


def test_insufficient_balance_is_refused_with_a_reason() -> None:
    refusal = charge_for_delivery(PREPAID, balance=49, used_this_period=0)
    assert isinstance(refusal, Refusal)
    assert refusal.amount == 50 and refusal.available == 49
    assert "insufficient balance" in refusal.reason and "0.50 EUR" in refusal.reason


def test_an_overdraft_allows_going_below_zero_up_to_its_limit() -> None:
    policy = AccountPolicy("EUR", Prepaid(fee=50), overdraft=100)
    first = charge_for_delivery(policy, balance=0, used_this_period=0)
    assert isinstance(first, Charge) and first.balance_after == -50
    second = charge_for_delivery(policy, balance=-50, used_this_period=1)
    assert isinstance(second, Charge) and second.balance_after == -100
    assert isinstance(charge_for_delivery(policy, balance=-100, used_this_period=2), Refusal)


def test_plan_tiers_price_by_position_in_the_period() -> None:
    assert [price_of(PLAN, n) for n in (1, 1000, 1001, 5000, 5001, 10**9)] == [
        0,
        0,
        20,
        20,
        10,
        10,
    ]
    included = charge_for_delivery(PLAN, balance=0, used_this_period=999)
    assert isinstance(included, Charge) and included.amount == 0 and included.used_after == 1000
    assert "included" in included.note
    tiered = charge_for_delivery(PLAN, balance=0, used_this_period=1000)
    assert isinstance(tiered, Refusal)  # no balance and no overdraft for the 20


def test_a_capped_plan_refuses_past_its_last_tier() -> None:
    capped = AccountPolicy("EUR", Plan("annual", 10, (Tier(20, 0),)), overdraft=0)
    assert isinstance(charge_for_delivery(capped, 0, 19), Charge)
    refusal = charge_for_delivery(capped, 10**6, 20)
    assert isinstance(refusal, Refusal) and "used up" in refusal.reason and "year" in refusal.reason


def test_free_envelopes_go_through_even_past_the_overdraft() -> None:
    """An account in arrears still gets its included envelopes: they take nothing."""
    assert isinstance(charge_for_delivery(PLAN, balance=-(10**6), used_this_period=0), Charge)


def test_periods_are_calendar_utc_and_usage_resets() -> None:
    assert period_key("monthly", T0) == "2026-11"
    assert period_key("annual", T0) == "2026"
    assert usage(PLAN, "2026-11", 42, T0) == ("2026-11", 42)
    assert usage(PLAN, "2026-10", 42, T0) == ("2026-11", 0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: AccountPolicy("eur", Prepaid(1)),
        lambda: AccountPolicy("EURO", Prepaid(1)),
        lambda: AccountPolicy("EUR", Prepaid(-1)),
        lambda: AccountPolicy("EUR", Prepaid(1.5)),  # type: ignore[arg-type]
        lambda: AccountPolicy("EUR", Prepaid(True)),
        lambda: AccountPolicy("EUR", Prepaid(1), overdraft=-5),
        lambda: AccountPolicy("EUR", Prepaid(10**16)),
        lambda: Plan("weekly", 0, ()),  # type: ignore[arg-type]
        lambda: Plan("monthly", 100, (Tier(50, 1),)),
        lambda: Plan("monthly", 0, (Tier(None, 1), Tier(10, 1))),
        lambda: Plan("monthly", 0, (Tier(10, 1), Tier(10, 1))),
        lambda: Tier(0, 1),
    ],
)
def test_impossible_policies_are_refused(make: object) -> None:
    with pytest.raises(AccountsError):
        make()  # type: ignore[operator]


def test_credit_is_positive_and_bounded() -> None:
    entry = credit(PREPAID, 10, 990, nppo="NL", at=T0, note="wire 42")
    assert (entry.kind, entry.amount, entry.balance_after, entry.note) == (
        "credit",
        990,
        1000,
        "wire 42",
    )
    for bad in (0, -1, 10**16):
        with pytest.raises(AccountsError):
            credit(PREPAID, 0, bad, nppo="NL", at=T0, note="")
    with pytest.raises(AccountsError, match="largest"):
        credit(PREPAID, 2**62, 1, nppo="NL", at=T0, note="")


def test_changing_currency_needs_a_settled_balance() -> None:
    other = AccountPolicy("USD", Prepaid(50))
    check_policy_change(PREPAID, other, 0)
    check_policy_change(None, other, 500)
    with pytest.raises(AccountsError, match="settle it"):
        check_policy_change(PREPAID, other, 500)


@pytest.mark.parametrize("policy", [PREPAID, PLAN, AccountPolicy("JPY", Prepaid(3), 7)])
def test_policy_json_round_trips(policy: AccountPolicy) -> None:
    assert policy_from_json(policy_to_json(policy)) == policy


def test_unreadable_stored_policy_is_an_error() -> None:
    with pytest.raises(AccountsError, match="unreadable"):
        policy_from_json('{"currency": "EUR"}')


def test_minor_units_format_exactly() -> None:
    assert format_minor(1234, "EUR") == "12.34"
    assert format_minor(-5, "EUR") == "-0.05"
    assert format_minor(1234, "JPY") == "1234"
    assert format_minor(1234, "KWD") == "1.234"


def test_statement_csv_is_exact_and_defuses_formulas() -> None:
    entries = [
        LedgerEntry("NL", T0, "credit", 1000, "EUR", 1000, "", '=HYPERLINK("x")'),
        LedgerEntry("NL", T0, "charge", -50, "EUR", 950, "t-1", "envelope fee 0.50"),
    ]
    text = statement_csv(entries)
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == STATEMENT_COLUMNS
    assert rows[1] == [
        "2026-11-28T12:00:00Z",
        "NL",
        "credit",
        "",
        "EUR",
        "10.00",
        "10.00",
        "1000",
        "1000",
        '\'=HYPERLINK("x")',
    ]
    assert rows[2][5:9] == ["-0.50", "9.50", "-50", "950"]
    assert statement_csv([]) == ",".join(STATEMENT_COLUMNS) + "\r\n"


_policies = st.builds(
    AccountPolicy,
    currency=st.sampled_from(["EUR", "USD", "JPY"]),
    pricing=st.one_of(
        st.builds(Prepaid, fee=st.integers(0, 500)),
        st.builds(
            Plan,
            period=st.sampled_from(["monthly", "annual"]),
            included=st.integers(0, 5),
            tiers=st.just((Tier(8, 30), Tier(None, 7))),
        ),
    ),
    overdraft=st.integers(0, 1000),
)


@given(
    policy=_policies,
    opening=st.integers(0, 2000),
    operations=st.lists(st.one_of(st.none(), st.integers(1, 400)), max_size=60),
)
def test_balance_never_below_overdraft_and_ledger_sums_to_balance(
    policy: AccountPolicy, opening: int, operations: list[int | None]
) -> None:
    """Deliveries (None) and credits (n) in any order: the invariants of the ledger hold."""
    balance, used = 0, 0
    ledger = [credit(policy, balance, opening, nppo="NL", at=T0, note="")] if opening else []
    balance = opening
    for op in operations:
        if op is None:
            outcome = charge_for_delivery(policy, balance, used)
            if isinstance(outcome, Refusal):
                assert outcome.amount > outcome.available or "used up" in outcome.reason
                continue
            assert outcome.amount >= 0
            ledger.append(outcome.entry("NL", T0, "t"))
            balance, used = outcome.balance_after, outcome.used_after
        else:
            entry = credit(policy, balance, op, nppo="NL", at=T0, note="")
            ledger.append(entry)
            balance = entry.balance_after
        assert balance >= -policy.overdraft
        assert sum(e.amount for e in ledger) == balance
        assert not ledger or ledger[-1].balance_after == balance
