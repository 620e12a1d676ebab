"""Repeated warnings, at most one a minute (pure decision, and its logging filter).

While the registry is down at a node's first start the node asks it every two seconds
and says so each time; an operator needs the first line and a count, not thirty lines a
minute. A warning is "the same" as another when it comes from the same logger with the
same message template (its arguments may differ: the time, an attempt number); a
template that is nothing but placeholders (`"%s"`) is told apart by its text instead.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from node.observe.formatting import key_values, record_fields

WINDOW_SECONDS: Final = 60.0
# So that a caller logging ever-new texts cannot grow the filter without bound.
MAX_KEYS: Final = 1024
_PLACEHOLDERS: Final = frozenset("%sdrif ")


@dataclass(frozen=True, slots=True)
class Seen:
    """A key's state: when it was last let through, and how many were held back since."""

    emitted_at: float
    suppressed: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """Let the record through (with the count held back before it), or not."""

    emit: bool
    suppressed: int
    seen: Seen


def decide(seen: Seen | None, now: float, window: float = WINDOW_SECONDS) -> Decision:
    """Whether a warning seen at `now` (seconds, monotonic) goes out, given its key's
    state; the count of those held back since the last one goes out with it."""
    if seen is None or now - seen.emitted_at >= window or now < seen.emitted_at:
        held = 0 if seen is None else seen.suppressed
        return Decision(True, held, Seen(now))
    return Decision(False, 0, Seen(seen.emitted_at, seen.suppressed + 1))


def limit_key(logger: str, template: str, rendered: str, fields: str = "") -> tuple[str, str, str]:
    """What makes two warnings the same: logger and template, or the text itself when
    the template says nothing on its own; and the fields a record carries (a refused TLS
    client's pin, say), which tell apart what one template says of different things."""
    if set(template) <= _PLACEHOLDERS:
        return logger, rendered, fields
    return logger, template, fields


def with_count(message: str, suppressed: int) -> str:
    """The message a let-through record carries after `suppressed` were held back."""
    return f"{message} ({suppressed} similar suppressed)" if suppressed else message


class RateLimitFilter(logging.Filter):
    """Lets a WARNING (or worse) through at most once per window per key; what it held
    back is counted on the next one let through. `clock` is injected for tests."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, window: float = WINDOW_SECONDS
    ) -> None:
        super().__init__()
        self._clock, self._window = clock, window
        self._seen: OrderedDict[tuple[str, str, str], Seen] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        rendered = record.getMessage()
        key = limit_key(record.name, str(record.msg), rendered, key_values(record_fields(record)))
        decision = decide(self._seen.get(key), self._clock(), self._window)
        self._seen[key] = decision.seen
        self._seen.move_to_end(key)
        while len(self._seen) > MAX_KEYS:
            self._seen.popitem(last=False)
        if decision.emit and decision.suppressed:
            # The rendered text, so that a later formatter does not format it again.
            record.msg, record.args = with_count(rendered, decision.suppressed), None
        return decision.emit
