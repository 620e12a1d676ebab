"""Inbound messages: stored once, with their receipt and lifecycle links."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from node.store import writes
from node.store.base import StoreBase
from node.store.links import Supersedes
from node.store.records import NewMessage, Received


class ReceivingStore(StoreBase):
    """`receive`: a new message stored with its receipt, a repeat answered again."""

    async def receive(
        self,
        new: NewMessage,
        *,
        now: datetime,
        make_receipt: Callable[[], tuple[str, bytes]],
        supersedes: Supersedes | None = None,
        responded: dict[str, Any] | None = None,
        route: str | None = None,
    ) -> Received:
        """Store an inbound message once; a repeat gets the original receipt back.

        `make_receipt` returns (outcome, signed receipt bytes); it runs only for a new
        message. The same id from the same sender with other content is a ReplayError.
        `supersedes`: what the message withdraws or replaces, linked in the same
        transaction (node.store.links). `responded`: for a response (`new.kind`), the
        detail of the `responded` event written on the certificate it answers
        (`new.answers`), in the same transaction. `route`: how it came ("direct" or
        "hub"), kept in the message's `route`.
        """
        received = await self._write(
            writes.Receive(new, now, make_receipt, supersedes, responded, route)
        )
        assert isinstance(received, Received)
        return received
