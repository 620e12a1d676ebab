"""The `Idempotency-Key` request header, for every POST that creates a message.

A national system that lost an answer (a timeout, a node killed mid-request) sends the
request again with the same key and gets the answer it missed, with the same id, not a
second certificate. Wrap a route's handler in `idempotent` and pass `key_of(request)` to
the store's `submit_once`: the key is kept in the transaction that stores the message
(node.store.writes), so a committed certificate always has its key. The same key with
another request (method, path or body) is refused 422; keys are kept for KEY_TTL.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from node.api.clients import CALLER
from node.api.problems import Handler, ProblemError, bad_request, too_large
from node.clock import Clock
from node.identity.api_clients import LEGACY_CLIENT
from node.store.store import Answer, KeyReuseError, Store
from node.store.writes import KEY_TTL

HEADER = "Idempotency-Key"
# 1..255 printable ASCII characters, as the description says; not beginning or ending
# with a space, which HTTP strips (a key of spaces would arrive empty).
_KEY = re.compile(r"(?=.{1,255}\Z)[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Keyed:
    """A request's key, who sent it, and the fingerprint of what it asked."""

    client: str
    key: str
    fingerprint: str


_KEYED = web.RequestKey("idempotency", Keyed)


class Keeper(Protocol):
    """What the key needs of the API's context (node.api.app.ApiContext)."""

    @property
    def store(self) -> Store: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def max_body_bytes(self) -> int: ...


def idempotent(handler: Handler, context: Callable[[web.Request], Keeper]) -> Handler:
    """`handler` behind the key: a key seen before gets its kept answer, and the handler
    runs only for a new key (or none)."""

    async def keyed(request: web.Request) -> web.StreamResponse:
        keeper = context(request)
        limit = keeper.max_body_bytes
        raw = request.headers.getall(HEADER, [])
        if not raw:
            return await handler(request)
        if len(raw) > 1 or _KEY.fullmatch(raw[0]) is None:
            raise bad_request(f"{HEADER} must be one header of 1 to 255 printable ASCII characters")
        if (request.content_length or 0) > limit:
            raise too_large(limit)
        body = await request.read()
        digest = hashlib.sha256(f"{request.method} {request.path_qs}\n".encode() + body)
        # Keys are each client's own: two clients never get each other's answers.
        caller = CALLER.get()
        client = LEGACY_CLIENT if caller is None else caller.name
        key = Keyed(client, raw[0], "sha256:" + digest.hexdigest())
        kept = await keeper.store.kept_answer(key.client, key.key, now=keeper.clock.now())
        if kept is not None:
            fingerprint, answer = kept
            if fingerprint != key.fingerprint:
                raise reuse(KeyReuseError(_reused(key.key)))
            return replay(answer)
        request[_KEYED] = key
        return await handler(request)

    return keyed


def key_of(request: web.Request) -> Keyed | None:
    """The key of a request that passed `idempotent`, if it carried one."""
    return request.get(_KEYED)


def replay(answer: Answer) -> web.Response:
    """The kept answer, as first given."""
    response = web.Response(status=answer.status, text=answer.body, content_type="application/json")
    if answer.location is not None:
        response.headers["Location"] = answer.location
    return response


def reuse(error: KeyReuseError) -> ProblemError:
    """422: the key was already used for another request."""
    return ProblemError(422, "Idempotency-Key reused", str(error))


def _reused(key: str) -> str:
    return (
        f"the {HEADER} {key!r} was used for another request (another method, path or body)"
        f" in the last {int(KEY_TTL.total_seconds()) // 3600} hours; use a new key for a"
        " new request"
    )
