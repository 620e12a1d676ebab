"""When to try a delivery again, and which failures are worth trying again at all.

Pure: the caller passes the time and a random source, so tests are exact and the
worker (shell) owns the clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

FailureKind = Literal["transient", "permanent"]

# HTTP statuses a partner may answer that mean "later": the request itself was fine.
_TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


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


def classify_status(status: int) -> FailureKind:
    """A partner's HTTP answer other than success: worth retrying, or not."""
    return "transient" if status in _TRANSIENT_STATUSES else "permanent"
