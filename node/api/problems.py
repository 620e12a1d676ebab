"""The API's refusals as problem+json (RFC 9457): the one place its HTTP statuses live.

Handlers raise `ProblemError` or the node's own errors; `problem_middleware` answers
every refusal, aiohttp's own too (no such path, a method the path does not take, a body
over the limit, a body that breaks off), in the same form. Anything else is a bug, and
propagates to aiohttp, which logs it with its traceback and answers 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from node.errors import InputError
from node.store.store import NotFoundError, StoreError

PROBLEM_MEDIA_TYPE = "application/problem+json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ProblemError(Exception):
    """A refusal to answer as problem+json."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def bad_request(detail: str) -> ProblemError:
    """400: the request itself (a parameter, the framing of its body) is wrong."""
    return ProblemError(400, "Bad request", detail)


def not_found(detail: str) -> ProblemError:
    return ProblemError(404, "Not found", detail)


def too_large(limit: int) -> ProblemError:
    """413, naming the limit that really applies."""
    return ProblemError(413, "Too large", f"the body is over the {limit}-byte limit")


def problem_middleware(body_limit: int) -> Middleware:
    """The middleware that answers every refusal; `body_limit` is the one 413 names."""

    @web.middleware
    async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ProblemError as e:
            return problem_response(e.status, e.title, e.detail, **e.extra)
        except NotFoundError as e:
            return problem_response(404, "Not found", str(e))
        except InputError as e:
            return problem_response(422, "Unprocessable certificate", str(e))
        except StoreError as e:
            response = problem_response(503, "Store unavailable", str(e))
            response.headers["Retry-After"] = "60"
            return response
        except web.HTTPRequestEntityTooLarge:
            error = too_large(body_limit)
            return problem_response(error.status, error.title, error.detail)
        except web.HTTPNotFound:
            return problem_response(404, "Not found", f"there is nothing at {request.path}")
        except web.HTTPMethodNotAllowed as e:
            response = problem_response(
                405,
                "Method not allowed",
                f"{request.path} does not take {request.method} (it takes {e.headers['Allow']})",
            )
            response.headers["Allow"] = e.headers["Allow"]
            return response
        except web.RequestPayloadError:
            # The body broke off or its framing (chunks, Content-Encoding) is wrong.
            return problem_response(400, "Bad request", "the request body is malformed")

    return problems


def problem_response(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    """The RFC 9457 answer."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return web.json_response(body, status=status, content_type=PROBLEM_MEDIA_TYPE)
