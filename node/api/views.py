"""What the API shows of stored messages: the JSON the OpenAPI description defines.

The store keeps what happened in the words of whoever said it; the API speaks one
vocabulary. The hub route stores the hub's tracking state as a message's outcome
(`Delivered`, as GetEnvelopeTrackingInfo said it) where the direct route stores the
signed receipt's (`accepted`); both are shown in the receipt's words here, on read, so
stored histories stay as they were written and no migration rewrites them.
"""

from __future__ import annotations

import re
from typing import Any

from node.certificate.findings import Finding
from node.certificate.lifecycle import Standing
from node.envelope.response import Decision, MalformedResponseError, Response
from node.store.store import Event, Lifecycle, Link, MessageSummary, StoredMessage

# The hub's tracking states that settle a message (node.outbox.hub_route), as the
# receipt would say it. DeliveredNotReadable: the partner took it but could not read it.
HUB_OUTCOMES = {
    "Delivered": "accepted",
    "DeliveredWithWarnings": "accepted-with-warnings",
    "DeliveredNotReadable": "rejected",
}
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def summary(message: StoredMessage | MessageSummary) -> dict[str, Any]:
    """The Summary schema."""
    return {
        "id": message.id,
        "direction": "sent" if message.direction == "out" else "received",
        "message_id": message.message_id,
        "from": message.sender,
        "to": message.recipient,
        "number": message.certificate_number,
        "type": message.certificate_type,
        "status": message.certificate_status,
        "state": message.state,
        "route": message.route,
        "outcome": outcome(message.outcome),
        "created_at": message.created_at.isoformat(),
        "settled_at": None if message.settled_at is None else message.settled_at.isoformat(),
    }


def lifecycle(found: Lifecycle) -> dict[str, Any]:
    """The Certificate's `lifecycle`, `withdraws` and `replaces` fields."""
    return {
        "lifecycle": {"status": found.status, "by": _link(found.by)},
        "withdraws": _link(found.withdraws),
        "replaces": _link(found.replaces),
    }


def standing(found: Lifecycle) -> Standing:
    """What the PDF stamps on a certificate: withdrawn, or replaced by which number."""
    if found.status == "replaced" and found.by is not None:
        return Standing("replaced", found.by.certificate_number)
    return Standing(found.status)


def _link(link: Link | None) -> dict[str, Any] | None:
    if link is None:
        return None
    return {
        "id": link.id,
        "certificate_number": link.certificate_number,
        "at": None if link.at is None else link.at.isoformat(),
        "reason": None if link.reason is None else _one_line(link.reason),
    }


def response(answer: Response, *, state: str) -> dict[str, Any]:
    """The Response schema: the importer's decision on a certificate, and its delivery."""
    return {
        "decision": answer.decision.value,
        "reason": (
            _one_line(answer.text) if answer.decision is Decision.REJECTED and answer.text else None
        ),
        "text": (
            _one_line(answer.text)
            if answer.decision is Decision.CORRECTION_REQUESTED and answer.text
            else None
        ),
        "at": answer.responded_at.isoformat(),
        "state": state,
    }


def response_event(answer: Response) -> dict[str, Any]:
    """The detail of a certificate's `responded` event."""
    return {"decision": answer.decision.value} | (
        {}
        if answer.text is None
        else {"reason" if answer.decision is Decision.REJECTED else "text": answer.text}
    )


def stored_response(message: StoredMessage) -> dict[str, Any] | None:
    """The Response schema of a stored response message (sent or received)."""
    try:
        answer = Response.from_bytes(message.payload)
    except MalformedResponseError:
        return None  # never stored unless it parsed: nothing to show rather than a 500
    return response(answer, state=message.state)


def outcome(stored: str | None) -> str | None:
    """A stored outcome in the receipt's words (`accepted`, `accepted-with-warnings`,
    `rejected`), whichever route it came by."""
    return None if stored is None else HUB_OUTCOMES.get(stored, stored)


def event(entry: Event) -> dict[str, Any]:
    """The Event schema; a hub's tracking state is shown as the outcome it means, and
    kept as `hub_state`. Text is shown on one line: a reason may come from a partner or a
    hub (a FailedDelivery's message) with line breaks of its own."""
    detail = {k: _one_line(v) if isinstance(v, str) else v for k, v in entry.detail.items()}
    hub_state = detail.get("outcome")
    if isinstance(hub_state, str) and hub_state in HUB_OUTCOMES:
        detail["outcome"] = HUB_OUTCOMES[hub_state]
        detail["hub_state"] = hub_state
    return {"at": entry.at.isoformat(), "kind": entry.kind, "detail": detail}


def failure_reason(message: StoredMessage, events: list[Event]) -> str | None:
    """Why a failed message failed for good (its failed event's error), on one line."""
    if message.state != "failed":
        return None
    errors = [e.detail.get("error") for e in events if e.kind == "failed"]
    return _one_line(errors[-1]) if errors and isinstance(errors[-1], str) else None


def _one_line(text: str) -> str:
    return _BREAKS.sub(" ", text)


def xml_finding(finding: Finding) -> dict[str, Any]:
    """A finding on XML the national system wrote: located by XPath and line."""
    return finding.to_dict()


def json_finding(finding: Finding, path: str) -> dict[str, Any]:
    """A finding on a JSON submission: located by the JSON path of the model it came
    from, since the XML it was found in is the node's, not the national system's."""
    return {
        "level": finding.level.value,
        "area": finding.area.value,
        "message": finding.message,
        "path": path,
    }
