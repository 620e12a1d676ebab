"""Push work: the NPPOs' push endpoints, and claiming pending envelopes to push.

Push work is claimed with leases under FOR UPDATE SKIP LOCKED, so two hub processes
never claim the same envelope; `node.hub.push` posts what is claimed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, insert, or_, select, update

from node.hub.records import PENDING, Envelope, InvalidValueError, PushItem, check_nppo
from node.hub.schema import envelopes, push_endpoints
from node.hub.store.audit import INSERT_EVENT, event_row
from node.hub.store.base import HubStoreBase, aware
from node.hub.store.sql import HEADER, MAX_NOTE_CHARS, header_of, key_of

_MAX_URL_CHARS = 2000


class PushClaimsStore(HubStoreBase):
    """Keeps push endpoints, and claims and releases the envelopes to push."""

    async def set_push_endpoint(self, nppo: str, url: str | None, now: datetime) -> None:
        """Push `nppo`'s envelopes to `url` from now on; None: it pulls them instead."""
        check_nppo("nppo", nppo)
        aware(now)
        if url is not None and (
            not isinstance(url, str)
            or not url.startswith(("https://", "http://"))
            or len(url) > _MAX_URL_CHARS
            or not url.isprintable()
        ):
            raise InvalidValueError("a push endpoint is an http(s) URL of reasonable length")

        def work(conn: Connection) -> None:
            conn.execute(push_endpoints.delete().where(push_endpoints.c.nppo == nppo))
            if url is not None:
                conn.execute(insert(push_endpoints).values(nppo=nppo, url=url, updated_at=now))
            conn.execute(INSERT_EVENT, event_row(now, "push_endpoint", None, nppo, {"url": url}))

        await self._write(work)

    async def claim_push(self, now: datetime, lease: timedelta, limit: int) -> list[PushItem]:
        """Claim up to `limit` pending envelopes whose recipient takes pushes, for `lease`.

        Other processes skip what is claimed until the lease runs out. The hub posts each
        to its URL and then calls `acknowledge`, or `push_failed` to try again later.
        """
        aware(now)
        due = (
            select(envelopes.c.id)
            .where(
                envelopes.c.state == PENDING,
                envelopes.c.recipient.in_(select(push_endpoints.c.nppo)),
                or_(envelopes.c.push_claimed_until.is_(None), envelopes.c.push_claimed_until < now),
                or_(envelopes.c.push_next_at.is_(None), envelopes.c.push_next_at <= now),
            )
            .order_by(envelopes.c.id)
            .limit(limit)
        )
        if self._postgres:
            due = due.with_for_update(skip_locked=True, of=envelopes)
        until = now + lease

        def work(conn: Connection) -> tuple[Sequence[Row[Any]], dict[str, str]]:
            rows = conn.execute(
                update(envelopes)
                .where(envelopes.c.id.in_(due.scalar_subquery()))
                .values(push_claimed_until=until)
                .returning(*HEADER, envelopes.c.content, envelopes.c.push_attempts)
            ).all()
            if not rows:
                return rows, {}
            urls = {
                r.nppo: r.url
                for r in conn.execute(
                    select(push_endpoints.c.nppo, push_endpoints.c.url).where(
                        push_endpoints.c.nppo.in_({r.recipient for r in rows})
                    )
                )
            }
            return rows, urls

        rows, urls = await self._write(work)
        items = [
            PushItem(Envelope(header_of(r), r.content), urls[r.recipient], r.push_attempts, until)
            for r in rows
            if r.content is not None and r.recipient in urls
        ]
        return sorted(items, key=lambda item: item.envelope.header.created_at)

    async def push_failed(
        self, tracking_number: str, now: datetime, retry_at: datetime, error: str
    ) -> None:
        """A push did not get through: release the claim and try again at `retry_at`."""
        key = key_of(tracking_number)
        aware(now)
        aware(retry_at)

        def work(conn: Connection) -> None:
            recipient = conn.execute(
                update(envelopes)
                .where(envelopes.c.tracking_number == key, envelopes.c.state == PENDING)
                .values(
                    push_claimed_until=None,
                    push_next_at=retry_at,
                    push_attempts=envelopes.c.push_attempts + 1,
                    push_error=error[:MAX_NOTE_CHARS],
                )
                .returning(envelopes.c.recipient)
            ).scalar_one_or_none()
            if recipient is not None:
                detail = {"error": error[:MAX_NOTE_CHARS], "retry_at": retry_at.isoformat()}
                conn.execute(INSERT_EVENT, event_row(now, "push_failed", key, recipient, detail))

        await self._write(work)
