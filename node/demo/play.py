"""The demo's exchange, played on a running network: what goes when, and what is said.

Each step goes as soon as what it needs is there, and every wait watches the deliveries
already under way, so each is told as it settles: the certificates that do not involve
the partner that is down go at once, beside the one sent to it; that partner starts as
soon as the direct attempt to it has failed (the fallback is decided by then); what goes
to or from it follows once it is ready.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from node.demo.deliveries import DELIVERY_TIMEOUT, POLL_SECONDS, Deliveries, Row
from node.demo.errors import DemoError
from node.demo.network import Network
from node.demo.scenario import LATE, first_step, hub_steps, split, steps


def play(net: Network, say: Callable[[str], None]) -> list[Row]:
    """Send the demo's certificates and wait until each has settled; the rows in the
    scenario's order (the first to the late partner, the others, then the hub's)."""
    deliveries = Deliveries(net, lambda row: say(settled_line(row)))
    rest = [*steps(), *hub_steps()]
    now, later = split(rest, LATE)
    first = net.send([first_step()])
    sender, message, label = first[0]
    sent_now = net.send(now)
    deliveries.add(first + sent_now)

    def direct_attempt_failed() -> bool:
        # The API's event kinds: the first attempt records the schema version it chose,
        # then goes direct (the partner has an endpoint); a retry after that is its
        # failure, and with the demo's fallback_attempts = 1 the next attempt takes the
        # hub whether the partner is up by then or not.
        kinds = [event["kind"] for event in net.message(sender, message)["events"]]
        return "schema-version" in kinds and "retry" in kinds[kinds.index("schema-version") :]

    _until(direct_attempt_failed, deliveries, f"the direct attempt of {label} to fail")
    say(f"{label}: the direct attempt failed, {LATE} is down; starting {LATE}")
    net.restart(LATE, wait=False)
    _until(
        lambda: net.message(sender, message)["route"] == "hub",
        deliveries,
        f"{label} to go through the hub",
    )
    say(f"{label} went to the hub")
    _until(lambda: net.is_ready(LATE), deliveries, f"node {LATE} to start")
    sent_later = net.send(later)
    deliveries.add(sent_later)
    while not deliveries.poll():  # each message gives up on its own after a while
        time.sleep(POLL_SECONDS)
    sent = dict(zip(map(id, now), sent_now, strict=True))
    sent |= dict(zip(map(id, later), sent_later, strict=True))
    return deliveries.rows(first + [sent[id(step)] for step in rest])


def settled_line(row: Row) -> str:
    """One line for a delivery that has just settled."""
    latency = "-" if row.latency_ms is None else f"{row.latency_ms:.0f} ms"
    return (
        f"settled: {row.certificate}: {row.sender} -> {row.recipient}, {row.route},"
        f" {row.status}, {latency}"
    )


def _until(condition: Callable[[], bool], deliveries: Deliveries, what: str) -> None:
    """Wait for `condition`, watching the deliveries meanwhile; DemoError after a while."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise DemoError(f"waited {DELIVERY_TIMEOUT:.0f} s for {what}")
        deliveries.poll()
        time.sleep(POLL_SECONDS)
