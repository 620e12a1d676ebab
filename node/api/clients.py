"""Who is calling the API, and whether the call is theirs to make.

A bearer token names a client: node.toml's `api_token` (the client `national-system`,
with every scope) or one of the named clients of api-clients.json
(node.identity.api_clients), which a running node reads again whenever the file
changes, so a client added or revoked with `ephyto node api-client` counts from the
next request on, without a restart. Each route needs a scope: `read` for a GET,
`respond` for answering a received certificate, `submit` for any other POST; `admin`
has them all. No valid token: 401; a token without the scope: 403 naming it.
"""

from __future__ import annotations

import hmac
import logging
import os
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from node.api.problems import ProblemError
from node.identity.api_clients import LEGACY_CLIENT, ApiClient, read_clients, token_digest

log = logging.getLogger(__name__)

# The client of the request being handled: set by the auth middleware, in the task
# that runs the handler, and read where a handler writes events (node.api.app).
CALLER: ContextVar[ApiClient | None] = ContextVar("api_caller", default=None)

_FileKey = tuple[int, int, int]


class Clients:
    """The tokens the API takes: node.toml's own, and api-clients.json's as it is now."""

    def __init__(self, api_token: str, path: Path | None) -> None:
        self._legacy = api_token.encode()
        self._legacy_client = ApiClient(
            LEGACY_CLIENT,
            frozenset({"admin"}),
            token_digest(api_token),
            datetime(1970, 1, 1, tzinfo=UTC),
        )
        self._path = path
        self._seen: _FileKey | None = None
        self._named: tuple[ApiClient, ...] = ()

    def identify(self, token: str) -> ApiClient | None:
        """The client `token` names, revoked or not; None if none.

        ConfigError if api-clients.json is there but unreadable: refusing every named
        client then is safer than serving with a copy that may predate a revocation.
        """
        # Constant-time: a token is a client's only credential.
        if hmac.compare_digest(token.encode(), self._legacy):
            return self._legacy_client
        digest = token_digest(token).encode()
        found = None
        for client in self._current():
            if hmac.compare_digest(digest, client.token_sha256.encode()):
                found = client
        return found

    def _current(self) -> tuple[ApiClient, ...]:
        if self._path is None:
            return ()
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            self._seen, self._named = None, ()
            return ()
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if key != self._seen:
            # Replaced atomically by the command (a new inode), so a read never sees
            # half a file; an edit by hand that breaks it raises until it is fixed.
            self._named = read_clients(self._path)
            self._seen = key
            log.info("API clients: %d named client(s) from %s", len(self._named), self._path)
        return self._named


def needed_scope(request: web.Request) -> str | None:
    """The scope a request's route needs; None for a path or method that matches no
    route (its 404 or 405 is the answer, whoever asks)."""
    if request.match_info.http_exception is not None:
        return None
    if request.method in ("GET", "HEAD"):
        return "read"
    if request.method == "POST" and request.path.endswith("/response"):
        return "respond"
    return "submit"


def authorise(clients: Clients, request: web.Request) -> ApiClient:
    """The calling client, allowed to make this call; ProblemError 401 or 403 if not,
    ConfigError if api-clients.json is unreadable."""
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
    # A header is read with surrogate escapes; no token of ours has any.
    client = clients.identify(token) if token and token.isascii() else None
    if client is None or client.revoked is not None:
        raise ProblemError(401, "Unauthorized", "a valid 'Authorization: Bearer <token>' is needed")
    scope = needed_scope(request)
    if scope is not None and not client.allows(scope):
        raise ProblemError(
            403,
            "Forbidden",
            f"API client {client.name!r} does not have the {scope!r} scope this call needs"
            f" (it has: {', '.join(sorted(client.scopes))})",
            scope=scope,
        )
    return client
