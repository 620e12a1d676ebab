"""The run's timers, compressed (node/study/timers.py): exact for simulate, what real
processes can be configured with for emulate."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest

from node.errors import InputError
from node.identity.config import DEFAULT_HUB_POLL_SECONDS, DEFAULT_REFRESH_SECONDS
from node.outbox.policy import Backoff
from node.study.scenario import Scenario, parse_scenario
from node.study.timers import (
    MAX_COMPRESS,
    OUTBOX_TICK_SECONDS,
    PRODUCT_BACKOFF_BASE_SECONDS,
    TIMESTAMP_EVERY_SECONDS,
    TIMESTAMP_VALIDITY_SECONDS,
    Timers,
    check_compress,
    emulated,
    simulated,
)

# Every timer the scenario can set, set to something other than its default.
TUNED = parse_scenario(
    b"""name = "tuned"
period_days = 2
countries = [
  { code = "FR", region = "europe", node = true },
  { code = "DE", region = "europe", node = true },
]
[hub]
pull_interval_seconds = 700
[node]
retry_cap_seconds = 900
fallback_attempts = 4
fallback_seconds = 450
backoff_base_seconds = 5
backoff_factor = 3
[trade]
seed = 1
certificates_per_year = 1000
"""
)

COMPRESSIONS = (1.0, 2.0, 7.5, 480.0, 3_000.0, 57_600.0, 100_000.0, MAX_COMPRESS)
# The timers that are durations on the run's clock (the others are a factor, a count and
# the outbox's tick, which is never compressed).
DURATIONS = (
    "pull_interval",
    "node_poll",
    "refresh",
    "retry_base",
    "retry_cap",
    "fallback_after",
    "timestamp_validity",
    "timestamp_every",
)


def test_the_scenario_sets_what_the_test_relies_on() -> None:
    policy = TUNED.node_policy
    assert TUNED.pull_interval_seconds == 700
    assert (policy.retry_cap_seconds, policy.fallback_attempts) == (900, 4)
    assert (policy.fallback_seconds, policy.backoff_base_seconds) == (450, 5.0)
    assert policy.backoff_factor == 3.0
    assert {f.name for f in fields(Timers)} >= set(DURATIONS)


@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_simulated_divides_every_timer_exactly(compress: float) -> None:
    timers = simulated(TUNED, compress)
    assert timers.compress == compress
    assert timers.pull_interval == 700 / compress
    assert timers.node_poll == DEFAULT_HUB_POLL_SECONDS / compress
    assert timers.refresh == DEFAULT_REFRESH_SECONDS / compress
    assert timers.retry_base == 5 / compress
    assert timers.retry_cap == 900 / compress
    assert timers.fallback_after == 450 / compress
    assert timers.timestamp_validity == TIMESTAMP_VALIDITY_SECONDS / compress
    assert timers.timestamp_every == TIMESTAMP_EVERY_SECONDS / compress
    # Not durations the scenario sets: never divided.
    assert timers.retry_factor == 3.0
    assert timers.fallback_attempts == 4
    assert timers.outbox_tick == OUTBOX_TICK_SECONDS


def test_simulated_uncompressed_is_the_scenario_itself() -> None:
    timers = simulated(TUNED)
    assert timers.compress == 1.0
    assert (timers.pull_interval, timers.retry_cap, timers.fallback_after) == (700, 900, 450)
    assert timers.to_json()["pull_interval"] == 700


@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_emulated_durations_are_whole_seconds_of_at_least_one(compress: float) -> None:
    exact = simulated(TUNED, compress)
    timers = emulated(TUNED, compress)
    assert timers.compress == compress
    for name in DURATIONS:
        value = getattr(timers, name)
        assert isinstance(value, float), name
        assert value == int(value) and value >= 1, (name, value)
    # Rounded, not truncated or inflated: at most half a second from the exact value
    # wherever that is at least one (the backoff base and the re-signing aside: below).
    for name in ("pull_interval", "node_poll", "refresh", "retry_cap", "fallback_after"):
        wanted = getattr(exact, name)
        value = getattr(timers, name)
        assert value == 1.0 if wanted < 1 else abs(value - wanted) <= 0.5, (name, value, wanted)


@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_emulated_keeps_the_products_backoff_whatever_the_scenario_says(
    compress: float,
) -> None:
    timers = emulated(TUNED, compress)
    assert timers.retry_base == PRODUCT_BACKOFF_BASE_SECONDS == Backoff().base.total_seconds()
    assert PRODUCT_BACKOFF_BASE_SECONDS == 1.0
    assert timers.retry_factor == Backoff().factor
    assert timers.fallback_attempts == 4
    assert timers.outbox_tick == OUTBOX_TICK_SECONDS


@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_emulated_registry_re_signs_at_least_twice_per_validity(compress: float) -> None:
    # `registry serve` refuses a schedule that lets its timestamp lapse
    # (registry/timestamp.py check_schedule): every second at least, twice a validity.
    timers = emulated(TUNED, compress)
    assert timers.timestamp_every >= 1
    assert timers.timestamp_every <= timers.timestamp_validity // 2
    exact = simulated(TUNED, compress)
    if exact.timestamp_validity >= 2:
        assert abs(timers.timestamp_validity - exact.timestamp_validity) <= 0.5
    if exact.timestamp_every >= 1 and exact.timestamp_every * 2 <= exact.timestamp_validity - 1:
        assert abs(timers.timestamp_every - exact.timestamp_every) <= 0.5


def test_emulated_at_the_default_compression() -> None:
    # A day in three minutes: the registry's day-long timestamp valid 180 s, re-signed
    # every 7.5 s (rounded); the node's timers all at their floor of one second.
    timers = emulated(TUNED, 480.0)
    assert (timers.timestamp_validity, timers.timestamp_every) == (180.0, 8.0)
    assert timers.pull_interval == 1.0  # 700 / 480 = 1.46
    assert (timers.node_poll, timers.refresh, timers.retry_cap) == (1.0, 1.0, 2.0)
    assert timers.fallback_after == 1.0  # 450 / 480


def test_emulated_uncompressed_is_the_scenario_itself_save_the_backoff_base() -> None:
    timers = emulated(TUNED, 1.0)
    assert (timers.pull_interval, timers.retry_cap, timers.fallback_after) == (700, 900, 450)
    assert (timers.timestamp_validity, timers.timestamp_every) == (86_400, 3_600)
    assert timers.retry_base == 1.0  # the scenario's 5 s is not a node.toml setting


@pytest.mark.parametrize("compress", [1.0, 1.5, 480.0, MAX_COMPRESS])
def test_check_compress_accepts_one_to_the_maximum(compress: float) -> None:
    assert check_compress(compress) == compress


@pytest.mark.parametrize(
    "compress", [0.0, 0.5, 0.999, -1.0, -math.inf, math.nan, math.inf, MAX_COMPRESS * 1.001]
)
def test_check_compress_refuses_outside_one_to_the_maximum(compress: float) -> None:
    with pytest.raises(InputError, match="--compress"):
        check_compress(compress)
    with pytest.raises(InputError, match="--compress"):
        simulated(TUNED, compress)
    with pytest.raises(InputError, match="--compress"):
        emulated(TUNED, compress)


def test_timers_for_one_scenario_differ_from_anothers() -> None:
    # The defaults where the scenario sets nothing: simulated reads the scenario.
    plain: Scenario = parse_scenario(
        b'name = "plain"\ncountries = [{ code = "FR", region = "europe" },'
        b' { code = "DE", region = "europe" }]\n[trade]\nseed = 1\ncertificates_per_year = 10\n'
    )
    assert simulated(plain).pull_interval == plain.pull_interval_seconds != 700
    assert simulated(plain).retry_base == Backoff().base.total_seconds()
