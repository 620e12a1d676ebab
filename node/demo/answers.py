"""What follows the deliveries, through the nodes' APIs: the importer answers a
certificate and its exporter sees the answer; a withdrawal is linked to its original on
the importing side."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from node.demo.deliveries import DELIVERY_TIMEOUT, POLL_SECONDS, Row
from node.demo.errors import DemoError
from node.demo.network import Network
from node.demo.scenario import ANSWER, WITHDRAWN, Answer


def follow_up(net: Network, rows: list[Row], say: Callable[[str], None]) -> list[Row]:
    """Answer the demo's certificate and read the withdrawn one's link on its importer,
    each once what it needs was delivered; the rows with what was seen added."""
    by_label = {row.certificate: row for row in rows}
    found: dict[str, Row] = {}
    answered = by_label.get(ANSWER.number)
    if answered is not None and _delivered(answered):
        seen = respond(net, ANSWER)
        say(response_line(ANSWER.number, seen))
        found[ANSWER.number] = replace(answered, response=seen)
    exporter, number = WITHDRAWN
    original, withdrawal = by_label.get(number), by_label.get(f"{number} (withdrawal)")
    if original and withdrawal and _delivered(original) and _delivered(withdrawal):
        link = linked(net, exporter, number)
        say(linked_line(number, link))
        found[number] = replace(original, linked=link)
    return [found.get(row.certificate, row) for row in rows]


def respond(net: Network, answer: Answer) -> dict[str, Any]:
    """Answer on the importer's API, then wait until the exporter's API shows it."""
    sent = net.sent_id(answer.exporter, answer.number)
    copy = _received_copy(net, answer.importer, answer.exporter, answer.number)
    began = time.monotonic()
    path = f"/certificates/{copy['id']}/response"
    net.api_json(answer.importer, "POST", path, answer.body())
    while (shown := net.message(answer.exporter, sent)["response"]) is None:
        mine = net.api(answer.importer, "GET", f"/certificates/{copy['id']}")["response"]
        if mine is not None and mine["state"] == "failed":
            raise DemoError(f"{answer.importer}'s response to {answer.number} failed")
        if time.monotonic() - began > DELIVERY_TIMEOUT:
            raise DemoError(
                f"waited {DELIVERY_TIMEOUT:.0f} s for {answer.exporter} to show "
                f"{answer.importer}'s response to {answer.number}"
            )
        time.sleep(POLL_SECONDS)
    return {
        "from": answer.importer,
        "to": answer.exporter,
        "decision": shown["decision"],
        "reason": shown["reason"],
        "text": shown["text"],
        "at": shown["at"],
        "latency_ms": round((time.monotonic() - began) * 1000, 1),
    }


def linked(net: Network, exporter: str, number: str) -> dict[str, Any]:
    """The importer's copy of a withdrawn certificate: its lifecycle, and what it names."""
    importer = net.message(exporter, net.sent_id(exporter, number))["to"]
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    # Delivered means stored on the importer; the link is written with the withdrawal,
    # so this loop is only a bound, not a wait for something slow.
    while (copy := _received_copy(net, importer, exporter, number))["lifecycle"]["by"] is None:
        if time.monotonic() > deadline:
            raise DemoError(f"{importer}'s copy of {number} shows no withdrawal")
        time.sleep(POLL_SECONDS)
    lifecycle = copy["lifecycle"]
    by = lifecycle["by"]
    status = net.api(importer, "GET", f"/certificates/{by['id']}")["status"]
    return {
        "on": importer,
        "certificate": copy["id"],
        "status": lifecycle["status"],
        "by": {
            "id": by["id"],
            "certificate_number": by["certificate_number"],
            "status": status,
            "at": by["at"],
            "reason": by["reason"],
        },
    }


def response_line(number: str, seen: dict[str, Any]) -> str:
    """One line for the importer's answer, once its exporter shows it."""
    said = seen["reason"] or seen["text"]
    quoted = f' ("{said}")' if said else ""
    return (
        f"response: {seen['from']} -> {seen['to']} on {number}: {seen['decision']}{quoted}"
        f" in {seen['latency_ms']:.0f} ms"
    )


def linked_line(number: str, link: dict[str, Any]) -> str:
    """One line for a withdrawal linked to its original on the importing side."""
    by = link["by"]
    return (
        f"linked: {link['on']}'s copy of {number} shows {link['status']} by "
        f"{by['certificate_number']} (status {by['status']}), {link['on']}'s message {by['id']}"
    )


def _delivered(row: Row) -> bool:
    return row.status.startswith("delivered")


def _received_copy(net: Network, importer: str, exporter: str, number: str) -> dict[str, Any]:
    """The importer's copy of a certificate (not a withdrawal of it) as its API shows it."""
    listed = net.api(importer, "GET", "/certificates?direction=received&limit=1000")
    for summary in listed["certificates"]:
        if summary["number"] == number and summary["from"] == exporter:
            body: dict[str, Any] = net.api(importer, "GET", f"/certificates/{summary['id']}")
            if body["withdraws"] is None:
                return body
    raise DemoError(f"{importer} has not received {number} from {exporter}")
