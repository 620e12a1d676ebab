"""A certificate event as one log line and as the counters it moves (pure).

The node's store records every certificate event (node/store/schema.py `events`); the
tailer (node.observe.tailer) reads each new one with its message and hands it here. Only
named fields of an event's detail are shown: the detail may quote a partner's text, and
nothing else of it is needed to follow a certificate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from node.observe import names
from node.observe.reasons import reason_class

# What each kind says in the log (the message template; the fields follow it).
MESSAGES: Final[Mapping[str, str]] = {
    "submitted": "certificate submitted",
    "schema-version": "certificate schema version chosen",
    "delivered": "certificate delivered",
    "relayed": "certificate sent through the hub",
    "retry": "certificate delivery failed, will retry",
    "failed": "certificate delivery failed for good",
    "no-direct-endpoint": "certificate waits: no direct endpoint",
    "response-held": "response held: only a hub could carry it",
    "received": "certificate received",
    "duplicate": "certificate received again and dropped",
    "withdraws": "certificate withdraws an earlier one",
    "replaces": "certificate replaces an earlier one",
    "withdrawn": "certificate withdrawn",
    "replaced": "certificate replaced",
    "responded": "certificate answered by the importing NPPO",
    "lifecycle": "certificate lifecycle recorded",
}
# A receipt that refuses the certificate: the log says "refused" for these.
_REFUSED_OUTCOMES: Final = frozenset({"rejected"})
_MAX_REASON_CHARS: Final = 300
_DELIVERY_KINDS: Final = frozenset({"delivered", "failed"})


@dataclass(frozen=True, slots=True)
class CertificateEvent:
    """One stored event with what the log line needs of its message."""

    id: int
    at: datetime
    kind: str
    direction: str  # "out" or "in"
    message_kind: str  # "certificate" or "response"
    certificate_number: str
    message_id: str
    partner: str  # the other NPPO: the recipient of what we send, the sender of the rest
    route: str | None  # "direct" or "hub" once known
    created_at: datetime
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Count:
    """One counter increment (or a histogram observation, with `value`)."""

    metric: str
    labels: Mapping[str, str]
    value: float = 1.0


def log_message(event: CertificateEvent) -> str:
    """The line's message: what happened, in words."""
    if event.kind == "received" and event.detail.get("outcome") in _REFUSED_OUTCOMES:
        text = "certificate received and refused"
    else:
        text = MESSAGES.get(event.kind, f"certificate event {event.kind}")
    return text.replace("certificate", "response", 1) if event.message_kind == "response" else text


def log_fields(event: CertificateEvent) -> dict[str, Any]:
    """The line's fields, in a fixed order (None: left out)."""
    return {
        "event": event.kind,
        "certificate": event.certificate_number,
        "message_id": event.message_id,
        "partner": event.partner,
        "direction": event.direction,
        "route": event_route(event),
        "outcome": _text(event.detail.get("outcome")),
        "reason": reason(event),
    }


def event_route(event: CertificateEvent) -> str | None:
    """The route an event concerns: the detail's, "hub" for a hand-over, the message's for
    a delivery's outcome; None for the rest (the message's route is read when the event
    is logged, and a submission's is not known yet when it happens)."""
    route = event.detail.get("route")
    if isinstance(route, str) and route:
        return route
    if event.kind == "relayed":
        return "hub"
    return event.route if event.kind in _DELIVERY_KINDS else None


def reason(event: CertificateEvent) -> str | None:
    """Why: a failure's or retry's error, a hold's reason, the relay's why (shortened)."""
    for key in ("error", "reason", "why"):
        value = event.detail.get(key)
        if isinstance(value, str) and value:
            return value[:_MAX_REASON_CHARS]
    return None


def counts(event: CertificateEvent) -> list[Count]:
    """The counters one event moves."""
    moved = [Count(names.EVENTS, {names.KIND: event.kind})]
    route = event_route(event) or "direct"
    why = reason(event) or ""
    if event.kind == "delivered":
        moved.append(Count(names.SENT, {names.ROUTE: route, names.PARTNER: event.partner}))
        latency = max((event.at - event.created_at).total_seconds(), 0.0)
        moved.append(Count(names.LATENCY, {names.ROUTE: route}, latency))
    elif event.kind == "received":
        outcome = _text(event.detail.get("outcome")) or "unknown"
        moved.append(Count(names.RECEIVED, {names.PARTNER: event.partner, names.OUTCOME: outcome}))
    elif event.kind == "failed":
        failed_route = "hub" if event.route == "hub" or "hub" in why.lower() else route
        moved.append(
            Count(
                names.FAILED,
                {
                    names.ROUTE: failed_route,
                    names.PARTNER: event.partner,
                    names.REASON: reason_class(why),
                },
            )
        )
    elif event.kind == "duplicate":
        moved.append(Count(names.DUPLICATES, {names.PARTNER: event.partner}))
    elif event.kind == "retry":
        moved.append(
            Count(names.RETRIES, {names.PARTNER: event.partner, names.REASON: reason_class(why)})
        )
    return moved


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
