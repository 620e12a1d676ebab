"""Refusals as problem+json (RFC 9457): the one place the exchange's HTTP statuses live.

Handlers raise the node's own errors; `problem_middleware` translates them once, here, at
the boundary. The `type` URI names the problem for a program (docs/protocol.md, Part E);
`detail` is the error's one-line message for a person, and never holds key material.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from node.directory import DirectoryError, KeyNotValid, NppoNotActive, UntrustedPeer
from node.envelope.binding import DocumentMismatchError
from node.envelope.errors import (
    BadSignatureError,
    DecryptionFailedError,
    DigestMismatchError,
    MalformedError,
    NotAuthenticError,
    TooLargeError,
    UnsupportedVersionError,
    WrongRecipientError,
)
from node.errors import EphytoError, InputError
from node.store.store import ReplayError, StoreError
from node.web.tls import PeerIdentityError, SenderMismatchError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://ephyto.org/problems/"

log = logging.getLogger(__name__)


class UnsupportedMediaTypeError(InputError):
    """The request body is not of the media type the endpoint takes."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One kind of refusal: its HTTP status, its `type` slug and its fixed title."""

    status: int
    slug: str
    title: str

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug


# Most specific first: the first class an error is an instance of decides.
PROBLEMS: tuple[tuple[type[Exception], Problem], ...] = (
    (TooLargeError, Problem(413, "envelope-too-large", "Envelope too large")),
    (UnsupportedVersionError, Problem(400, "unsupported-version", "Unsupported format version")),
    (MalformedError, Problem(400, "malformed-envelope", "Malformed envelope")),
    (UnsupportedMediaTypeError, Problem(415, "unsupported-media-type", "Unsupported media type")),
    (SenderMismatchError, Problem(403, "sender-mismatch", "Sender is not the TLS client")),
    (PeerIdentityError, Problem(403, "unknown-tls-client", "Unknown TLS client")),
    (NppoNotActive, Problem(403, "sender-not-active", "Sender NPPO is not active")),
    (KeyNotValid, Problem(401, "sender-key-not-valid", "Sender key outside its validity")),
    (BadSignatureError, Problem(401, "bad-signature", "Signature does not verify")),
    # UnknownKeyError (ours) and the directory's UnknownNppo / UnknownKey from the resolver.
    (NotAuthenticError, Problem(401, "unknown-sender-key", "Unknown sender key")),
    (UntrustedPeer, Problem(401, "unknown-sender-key", "Unknown sender key")),
    (WrongRecipientError, Problem(421, "wrong-recipient", "Envelope is for another node")),
    (DecryptionFailedError, Problem(422, "decryption-failed", "Ciphertext does not decrypt")),
    (DigestMismatchError, Problem(422, "digest-mismatch", "Content digest mismatch")),
    # Well-formed and authentic, but the header contradicts the document it carries.
    (DocumentMismatchError, Problem(422, "document-mismatch", "Header does not match document")),
    (ReplayError, Problem(409, "replayed-message-id", "Message id reused with other content")),
    # Not the sender's fault, and over once the registry or the database is back: the
    # sender's outbox treats 503 as "try again later".
    (DirectoryError, Problem(503, "directory-unavailable", "No usable directory")),
    (StoreError, Problem(503, "store-unavailable", "Store unavailable")),
)

# aiohttp's own refusals (body over client_max_size, unknown path, wrong method).
_HTTP_PROBLEMS = {
    404: Problem(404, "not-found", "Not found"),
    405: Problem(405, "method-not-allowed", "Method not allowed"),
    413: PROBLEMS[0][1],
}


def problem_for(error: Exception) -> Problem | None:
    """The problem an error of the node is answered with; None if it is not a refusal."""
    return next((p for cls, p in PROBLEMS if isinstance(error, cls)), None)


def problem_response(problem: Problem, detail: str) -> web.Response:
    """The RFC 9457 answer: status, `application/problem+json`, the four members."""
    body = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": detail,
    }
    response = web.Response(
        status=problem.status,
        body=json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8"),
        content_type=PROBLEM_MEDIA_TYPE,
    )
    if problem.status == 503:
        response.headers["Retry-After"] = "60"
    return response


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every refusal as problem+json; anything else propagates (a 500)."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        problem = _HTTP_PROBLEMS.get(e.status)
        if problem is None:
            raise
        return _refused(request, problem, e.text or problem.title)
    except EphytoError as e:
        problem = problem_for(e)
        if problem is None:
            raise
        return _refused(request, problem, str(e))


def _refused(request: web.Request, problem: Problem, detail: str) -> web.Response:
    # Refusals are routine (a partner's bug, a stale directory); one line each, at info.
    log.info(
        "refused %s %s from %s: %s %s",
        request.method,
        request.path,
        request.remote,
        problem.status,
        detail,
    )
    return problem_response(problem, detail)
