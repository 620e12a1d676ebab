"""The timers a run's parties run with, compressed or not (pure).

A scenario's clock may be compressed (issue 14: "a 24-hour outage in 24 s") by scaling
its timers, never its measured costs: with `compress` F, every time the scenario sets
(arrivals, outages, the hub pull interval, the node's retry and fallback settings, its
hub poll and directory refresh, the registry timestamp's validity) is divided by F,
while the network's delays and the parties' service times stay what they are.

`simulate` divides exactly. `emulate` runs the real node, whose settings are whole
seconds of at least one (node.toml) and whose backoff base and outbox tick are not
settings at all; `emulated` says what the processes actually run with, and the
simulation that is compared with an emulation runs with those same values, so the two
engines model one and the same configuration.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Final

from node.errors import InputError
from node.identity.config import DEFAULT_HUB_POLL_SECONDS, DEFAULT_REFRESH_SECONDS
from node.outbox.policy import Backoff
from node.study.scenario import Scenario

# The registry's timestamp is valid a day (registry/timestamp.py DEFAULT_VALIDITY): a
# node stops making trust decisions that long after the registry stops (ADR 0011).
TIMESTAMP_VALIDITY_SECONDS: Final = 86_400.0
# `registry serve` re-signs it every hour (registry/timestamp.py DEFAULT_EVERY).
TIMESTAMP_EVERY_SECONDS: Final = 3_600.0
# How often a node's outbox worker looks for retries that are due (node/service.py
# OUTBOX_INTERVAL, 2 s): a submission is sent at once, a retry at the first tick after
# its backoff. Not a setting, so never compressed.
OUTBOX_TICK_SECONDS: Final = 2.0
# The product's backoff base (node.outbox.policy.Backoff): not a node.toml setting.
PRODUCT_BACKOFF_BASE_SECONDS: Final = Backoff().base.total_seconds()
MAX_COMPRESS: Final = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Timers:
    """Seconds on the run's clock (compressed when the run is)."""

    compress: float
    pull_interval: float  # a country without a node pulls from the hub this often
    node_poll: float  # a node polls the hub this often ([hub] poll_seconds)
    refresh: float  # a node refreshes its directory this often ([registry] refresh_seconds)
    retry_base: float
    retry_factor: float
    retry_cap: float
    fallback_attempts: int
    fallback_after: float
    timestamp_validity: float
    timestamp_every: float  # the registry re-signs its timestamp this often
    outbox_tick: float

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


def check_compress(compress: float) -> float:
    if not math.isfinite(compress) or not 1.0 <= compress <= MAX_COMPRESS:
        raise InputError(f"--compress: {compress!r}; between 1 and {MAX_COMPRESS:,.0f}")
    return compress


def simulated(scenario: Scenario, compress: float = 1.0) -> Timers:
    """The scenario's timers divided by `compress`, exactly."""
    check_compress(compress)
    policy = scenario.node_policy
    return Timers(
        compress=compress,
        pull_interval=scenario.pull_interval_seconds / compress,
        node_poll=DEFAULT_HUB_POLL_SECONDS / compress,
        refresh=DEFAULT_REFRESH_SECONDS / compress,
        retry_base=policy.backoff_base_seconds / compress,
        retry_factor=policy.backoff_factor,
        retry_cap=policy.retry_cap_seconds / compress,
        fallback_attempts=policy.fallback_attempts,
        fallback_after=policy.fallback_seconds / compress,
        timestamp_validity=TIMESTAMP_VALIDITY_SECONDS / compress,
        timestamp_every=TIMESTAMP_EVERY_SECONDS / compress,
        outbox_tick=OUTBOX_TICK_SECONDS,
    )


def emulated(scenario: Scenario, compress: float) -> Timers:
    """What real processes run with for this compression: node.toml takes whole seconds
    of at least one, and the backoff base is the product's own."""
    exact = simulated(scenario, compress)
    # `registry publish --expires-in` takes whole seconds too; two at least, so that
    # re-signing every second (the least `registry serve` takes) is twice per validity.
    validity = max(whole_seconds(exact.timestamp_validity), 2.0)
    return Timers(
        compress=compress,
        pull_interval=whole_seconds(exact.pull_interval),
        node_poll=whole_seconds(exact.node_poll),
        refresh=whole_seconds(exact.refresh),
        retry_base=PRODUCT_BACKOFF_BASE_SECONDS,
        retry_factor=Backoff().factor,
        retry_cap=whole_seconds(exact.retry_cap),
        fallback_attempts=exact.fallback_attempts,
        fallback_after=whole_seconds(exact.fallback_after),
        timestamp_validity=validity,
        # At least twice within the validity, as `registry serve` insists.
        timestamp_every=min(whole_seconds(exact.timestamp_every), validity // 2),
        outbox_tick=OUTBOX_TICK_SECONDS,
    )


def whole_seconds(seconds: float) -> float:
    """A node.toml duration: rounded to whole seconds, at least one."""
    return float(max(1, round(seconds)))
