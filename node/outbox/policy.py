"""When to try a delivery again, and by which route.

Which failures are worth trying again at all is the delivery client's to say
(node.transport.client.classify_status): it turns a partner's answer into a transient
or a permanent error, and this policy times what follows.

Pure: the caller passes the time and a random source, so tests are exact and the
worker (shell) owns the clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter, per destination, capped.

    Full jitter (a uniform draw below the exponential bound) spreads the retries of
    many messages to one partner that comes back up, instead of a thundering herd.
    """

    base: timedelta = timedelta(seconds=1)
    factor: float = 2.0
    cap: timedelta = timedelta(minutes=10)

    def bound(self, attempts: int) -> timedelta:
        """The longest wait after `attempts` failed attempts (1 or more)."""
        exponent = min(max(attempts - 1, 0), 64)  # past the cap anyway; keeps floats finite
        seconds = self.base.total_seconds() * self.factor**exponent
        return timedelta(seconds=min(seconds, self.cap.total_seconds()))

    def next_attempt(self, attempts: int, now: datetime, rng: random.Random) -> datetime:
        """When to try again after `attempts` failed attempts."""
        return now + self.bound(attempts) * rng.random()


Route = Literal["direct", "hub", "wait"]


@dataclass(frozen=True, slots=True)
class RouteChoice:
    """Where the next attempt goes, and why (the reason goes into the message's events)."""

    route: Route
    reason: str


@dataclass(frozen=True, slots=True)
class Fallback:
    """Direct first; the hub once direct delivery has failed long enough.

    `attempts` failed direct attempts, or direct delivery failing for `after` since its
    first failed attempt (`failing_for`), whichever comes first, sends the message
    through the hub; time queued or held before that counts for nothing. A partner
    without a direct endpoint always goes through the hub, and so does one the node is
    set to reach through the hub (`via_hub`: country codes, or "*" for every partner)
    while a hub is there. Without a hub, the message waits for a partner without an
    endpoint and goes direct to one with.
    """

    attempts: int = 3
    after: timedelta = timedelta(minutes=5)
    via_hub: frozenset[str] = frozenset()

    def through_hub(self, partner: str) -> bool:
        """Whether the node is set to send to `partner` through the hub."""
        return "*" in self.via_hub or partner in self.via_hub

    def choose(
        self,
        *,
        has_endpoint: bool,
        has_hub: bool,
        failed_attempts: int,
        failing_for: timedelta,
        by_setting: bool = False,
    ) -> RouteChoice:
        """`by_setting`: the partner is one `through_hub` names."""
        if not has_endpoint:
            if has_hub:
                return RouteChoice("hub", "the partner has no direct endpoint")
            return RouteChoice("wait", "the partner has no direct endpoint and no hub is set")
        if not has_hub:
            return RouteChoice("direct", "no hub is set")
        if by_setting:
            return RouteChoice("hub", "the partner is reached through the hub ([hub] via_hub)")
        if failed_attempts >= self.attempts:
            return RouteChoice("hub", f"{failed_attempts} direct attempts failed")
        if failed_attempts > 0 and failing_for >= self.after:
            return RouteChoice("hub", f"direct delivery failing for {_seconds(failing_for)}")
        return RouteChoice("direct", "the partner has a direct endpoint")


def _seconds(span: timedelta) -> str:
    return f"{int(span.total_seconds())} s"
