"""Retry timing and failure classification."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.outbox.policy import Backoff, Fallback, RouteChoice
from node.transport.client import classify_status

T0 = datetime(2026, 11, 28, tzinfo=UTC)


def test_bounds_grow_exponentially_then_cap() -> None:
    backoff = Backoff(base=timedelta(seconds=1), factor=2, cap=timedelta(seconds=60))
    assert [backoff.bound(n).total_seconds() for n in range(1, 9)] == [
        1,
        2,
        4,
        8,
        16,
        32,
        60,
        60,
    ]
    assert backoff.bound(10_000) == timedelta(seconds=60)


@given(attempts=st.integers(1, 200), seed=st.integers(0, 2**32))
def test_next_attempt_is_within_the_bound(attempts: int, seed: int) -> None:
    backoff = Backoff()
    when = backoff.next_attempt(attempts, T0, random.Random(seed))
    assert T0 <= when <= T0 + backoff.bound(attempts)


def test_jitter_spreads_retries() -> None:
    rng = random.Random(7)
    times = {Backoff().next_attempt(5, T0, rng) for _ in range(50)}
    assert len(times) == 50


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, "transient"),
        (503, "transient"),
        (500, "transient"),
        (408, "transient"),
        (400, "permanent"),
        (401, "permanent"),
        (403, "permanent"),
        (409, "permanent"),
        (413, "permanent"),
        (422, "permanent"),
    ],
)
def test_classify_status(status: int, kind: str) -> None:
    assert classify_status(status) == kind


# --- route: direct first, the hub as the fallback ---------------------------------------

FALLBACK = Fallback(attempts=3, after=timedelta(minutes=5))


def _choose(**kw: object) -> RouteChoice:
    args: dict[str, object] = {
        "has_endpoint": True,
        "has_hub": True,
        "failed_attempts": 0,
        "failing_for": timedelta(0),
    }
    args.update(kw)
    return FALLBACK.choose(**args)  # type: ignore[arg-type]


def test_direct_first() -> None:
    assert _choose().route == "direct"


def test_no_endpoint_goes_through_the_hub_or_waits_without_one() -> None:
    assert _choose(has_endpoint=False).route == "hub"
    choice = _choose(has_endpoint=False, has_hub=False)
    assert choice.route == "wait" and "no hub" in choice.reason


def test_the_hub_after_enough_failed_attempts() -> None:
    assert _choose(failed_attempts=2).route == "direct"
    choice = _choose(failed_attempts=3)
    assert choice.route == "hub" and "3 direct attempts failed" in choice.reason


def test_the_hub_after_failing_long_enough() -> None:
    assert _choose(failed_attempts=1, failing_for=timedelta(minutes=4)).route == "direct"
    assert _choose(failed_attempts=1, failing_for=timedelta(minutes=5)).route == "hub"
    # Waiting alone, with no failure yet (a queue that built up), is no reason.
    assert _choose(failed_attempts=0, failing_for=timedelta(hours=1)).route == "direct"


def test_without_a_hub_direct_is_retried_for_ever() -> None:
    choice = _choose(has_hub=False, failed_attempts=50, failing_for=timedelta(days=1))
    assert choice.route == "direct"


def test_a_partner_set_to_go_through_the_hub_does_while_there_is_one() -> None:
    via = Fallback(via_hub=frozenset({"FR"}))
    assert via.through_hub("FR") and not via.through_hub("NL")
    assert Fallback(via_hub=frozenset({"*"})).through_hub("NL")
    choice = _choose(by_setting=True)
    assert choice.route == "hub" and "via_hub" in choice.reason
    # Without a hub the setting cannot be honoured: direct, rather than waiting for ever.
    assert _choose(by_setting=True, has_hub=False).route == "direct"
