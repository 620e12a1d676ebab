"""The demo's messages once sent: watched together until each settles, and their rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

DELIVERY_TIMEOUT = 90.0
# How often to look again at a log, a port or a message: short, since every wait of the
# demo is someone watching it; each look is a file read or a loopback request.
POLL_SECONDS = 0.1


class SenderApis(Protocol):
    """The senders' national-system APIs (a `Network`)."""

    def api(self, country: str, method: str, path: str, xml: bytes | None = None) -> Any: ...

    def message(self, sender: str, message: int) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Row:
    """One message of the demo, as the table and --json show it."""

    certificate: str
    sender: str
    recipient: str
    route: str
    status: str
    latency_ms: float | None
    # What followed on the certificate, for --json: the importer's answer as its exporter
    # shows it, and the importer's copy's lifecycle once a withdrawal links to it.
    response: dict[str, Any] | None = None
    linked: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "certificate": self.certificate,
            "from": self.sender,
            "to": self.recipient,
            "route": self.route,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "response": self.response,
            "linked": self.linked,
        }


class Deliveries:
    """Sent messages not yet settled, looked at together, so each is seen to settle when it
    does rather than after the ones sent before it."""

    def __init__(self, net: SenderApis, settled: Callable[[Row], None] | None = None) -> None:
        self._net = net
        self._settled = settled
        # (sender, message id) -> (label, when to give up on it)
        self._pending: dict[tuple[str, int], tuple[str, float]] = {}
        self._rows: dict[tuple[str, int], Row] = {}

    def add(self, started: list[tuple[str, int, str]]) -> None:
        """Watch these sent messages (as `Network.send` returns them)."""
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        for sender, message, label in started:
            self._pending[(sender, message)] = (label, deadline)

    def poll(self) -> bool:
        """Look once at what is pending, one request per sender; True once nothing is."""
        for sender in {sender for sender, _ in self._pending}:
            listed = self._net.api(sender, "GET", "/certificates?direction=sent&limit=1000")
            bodies = {body["id"]: body for body in listed["certificates"]}
            for (who, message), (label, deadline) in list(self._pending.items()):
                if who != sender:
                    continue
                body = bodies.get(message) or self._net.message(sender, message)
                if body["state"] in ("delivered", "failed") or time.monotonic() > deadline:
                    del self._pending[(who, message)]
                    row = self._rows[(who, message)] = _row(body, label)
                    if self._settled is not None:
                        self._settled(row)
        return not self._pending

    def rows(self, started: list[tuple[str, int, str]]) -> list[Row]:
        """The rows of these settled messages, in this order."""
        return [self._rows[(sender, message)] for sender, message, _ in started]


def _row(body: dict[str, Any], label: str) -> Row:
    latency = None
    if body["settled_at"]:
        spent = datetime.fromisoformat(body["settled_at"]) - datetime.fromisoformat(
            body["created_at"]
        )
        latency = round(spent.total_seconds() * 1000, 1)
    state = body["state"] if body["state"] != "queued" else "not delivered (timed out)"
    if body["outcome"] and state == "delivered":
        state = f"delivered ({body['outcome']})"
    return Row(label, body["from"], body["to"], body["route"] or "-", state, latency)
