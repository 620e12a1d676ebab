"""Retry timing and failure classification."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.outbox.policy import Backoff, classify_status

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
