"""A hub's envelope event as one log line and the counter it moves (pure).

The hub records its events in its own trail (node/hub/schema.py `hub_events`); the hub's
observer (node.hub.observe) reads each new one and hands it here. As for a node's
events, only named fields of the detail are shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from node.observe import names
from node.observe.event_lines import Count

MESSAGES: Final[Mapping[str, str]] = {
    "delivered": "envelope accepted",
    "redelivered": "envelope delivered again: answered with its tracking number",
    "acknowledged": "envelope acknowledged",
    "expired": "envelope expired unacknowledged",
    "push_failed": "envelope push failed, will retry",
    "push_endpoint": "push endpoint set",
    "policy": "account policy set",
    "credit": "account credited",
}
_MAX_TEXT_CHARS: Final = 300


def hub_log_message(kind: str) -> str:
    return MESSAGES.get(kind, f"hub event {kind}")


def hub_log_fields(
    kind: str, tracking_number: str | None, nppo: str | None, detail: Mapping[str, Any]
) -> dict[str, Any]:
    """The line's fields: the envelope, who, and what the detail says of it."""
    return {
        "event": kind,
        "tracking_number": tracking_number,
        "nppo": nppo,
        "from": _text(detail.get("from")),
        "to": _text(detail.get("to")),
        "bytes": detail.get("size") if isinstance(detail.get("size"), int) else None,
        "state": _text(detail.get("state")),
        "reason": _text(detail.get("error")) or _text(detail.get("message")),
    }


def hub_counts(kind: str) -> list[Count]:
    return [Count(names.HUB_ENVELOPES, {names.KIND: kind})]


def age_seconds(oldest: datetime | None, now: datetime) -> float:
    """Seconds since `oldest` (0 when there is nothing)."""
    return 0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0)


def _text(value: Any) -> str | None:
    return value[:_MAX_TEXT_CHARS] if isinstance(value, str) and value else None
