"""Webhooks (shell): each API client with a webhook gets the event feed POSTed to it.

Every run reads api-clients.json (so a client added, changed or revoked counts at the
next run, without a restart) and, for each live client with a webhook and the `read`
scope whose backoff has run out, reads the feed after the client's cursor and POSTs up
to `BATCH` events in one request, `{"events": [...]}`, the same objects as
`GET /api/v1/events`. A 2xx answer moves the cursor past them; anything else (an error
status, a refused connection, a timeout) leaves the cursor where it was and backs off,
so the same events go again: each is delivered at least once, and a receiver drops
repeats by event id. One WARNING line per failed attempt, so one per backoff step.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from datetime import timedelta
from pathlib import Path

import aiohttp

from node.api.feed import cursor, item
from node.api.webhook_signature import ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from node.clock import Clock
from node.errors import ConfigError
from node.identity.api_clients import ApiClient, Webhook, read_clients
from node.outbox.policy import Backoff
from node.store.store import Store

log = logging.getLogger(__name__)

BATCH = 100
TIMEOUT = timedelta(seconds=10)
_ERROR_MAX = 500


class WebhookSender:
    """Delivers the feed to every client's webhook; `run_once` is the scheduled job."""

    def __init__(
        self,
        store: Store,
        clients_file: Path,
        session: aiohttp.ClientSession,
        *,
        clock: Clock,
        backoff: Backoff,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._clients_file = clients_file
        self._session = session
        self._clock = clock
        self._backoff = backoff
        self._rng = rng or random.Random()

    async def run_once(self) -> int:
        """One round over every webhook; the number of events delivered."""
        try:
            clients = read_clients(self._clients_file)
        except ConfigError as e:
            log.warning("webhooks: cannot read the API clients, none sent: %s", e)
            return 0
        due = [c for c in clients if c.webhook is not None and c.allows("read")]
        delivered = await asyncio.gather(*(self._deliver(c) for c in due))
        return sum(delivered)

    async def _deliver(self, client: ApiClient) -> int:
        """The next batch to `client`'s webhook, if due; the number of events delivered."""
        assert client.webhook is not None
        state = await self._store.webhook_state(client.name)
        now = self._clock.now()
        if state.next_attempt_at is not None and state.next_attempt_at > now:
            return 0
        found = await self._store.feed(after=state.cursor, limit=BATCH)
        if not found:
            return 0
        events = [item(e) for e in found]
        body = json.dumps({"events": events}, separators=(",", ":")).encode()
        error = await self._post(client.webhook, body, [str(e["id"]) for e in events])
        if error is None:
            await self._store.webhook_delivered(client.name, cursor=found[-1].id)
            return len(found)
        attempts = state.attempts + 1
        retry_at = self._backoff.next_attempt(attempts, now, self._rng)
        log.warning(
            "webhook of API client %s: %d event(s) from %s not delivered (attempt %d),"
            " next try in %d s: %s",
            client.name, len(found), cursor(found[0].id), attempts,
            (retry_at - now).total_seconds(), error,
        )  # fmt: skip
        await self._store.webhook_failed(
            client.name, attempts=attempts, next_attempt_at=retry_at, error=error[:_ERROR_MAX]
        )
        return 0

    async def _post(self, webhook: Webhook, body: bytes, ids: list[str]) -> str | None:
        """POST `body` signed; None once the receiver took it (2xx), else why not."""
        timestamp = int(self._clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            ID_HEADER: ",".join(ids),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(webhook.secret, timestamp, body),
        }
        try:
            async with self._session.post(
                webhook.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=TIMEOUT.total_seconds()),
                allow_redirects=False,
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"{webhook.url} answered {response.status}"
        except (aiohttp.ClientError, TimeoutError) as e:
            return f"{webhook.url}: {type(e).__name__}: {e}"
