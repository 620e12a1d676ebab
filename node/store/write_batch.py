"""What every group-committed write shares: the batch's results and events, and the
inserted message rows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from node.store.records import NewMessage
from node.store.schema import messages


@dataclass(slots=True)
class Batch:
    """Results by position in the batch, and the events to append at the end."""

    results: list[object]
    events: list[dict[str, Any]] = field(default_factory=list)

    def event(
        self,
        message: int,
        at: datetime,
        kind: str,
        detail: dict[str, Any],
        client: str | None = None,
    ) -> None:
        self.events.append(
            {
                "message": message,
                "at": at,
                "kind": kind,
                "detail": json.dumps(detail, sort_keys=True),
                "client": client,
            }
        )


def message_row(new: NewMessage, direction: str, state: str, now: datetime) -> dict[str, Any]:
    return {
        "direction": direction,
        "message_id": new.message_id,
        "sender": new.sender,
        "recipient": new.recipient,
        "certificate_number": new.certificate_number,
        "certificate_type": new.certificate_type,
        "certificate_status": new.certificate_status,
        "content_digest": new.content_digest,
        "payload": new.payload,
        "state": state,
        "outcome": None,
        "receipt": None,
        "created_at": now,
        "kind": new.kind,
        "answers": new.answers,
    }


def insert_messages(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows in one statement; their ids in the same order."""
    result = conn.execute(
        insert(messages).returning(messages.c.id, sort_by_parameter_order=True), rows
    )
    return [int(pk) for pk in result.scalars()]
