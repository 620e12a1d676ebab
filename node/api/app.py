"""The node's HTTP API for the national certification system (token-authenticated).

Submit a certificate (ePhyto XML or the JSON model) to its importing country; list and
get sent and received certificates with their delivery state and event history;
download XML and PDF; withdraw (status 40) and replace; answer a received certificate.
Exactly what node/api/openapi.yaml describes: refusals are problem+json (RFC 9457,
node.api.problems), parameters are read strictly (node.api.params), and a refused
submission stores nothing.

This module holds the application: its middlewares and route table. The handlers live
by concern (node.api.submit, node.api.read, node.api.respond) and reach the context
through the request's application (node.api.context.CONTEXT).
"""

from __future__ import annotations

from aiohttp import web

from node.api.clients import CALLER, Clients, authorise
from node.api.context import (
    CONTEXT,
    JSON_TYPE,
    MAX_CERTIFICATE_BYTES,
    PREFIX,
    XML_TYPES,
    ApiContext,
)
from node.api.idempotency import idempotent
from node.api.params import ID_PATTERN
from node.api.problems import Handler, problem_middleware, problem_response
from node.api.read import (
    certificate_pdf,
    certificate_xml,
    event_feed,
    get_certificate,
    list_certificates,
    openapi_spec,
)
from node.api.respond import respond
from node.api.submit import replace, submit, withdraw
from node.errors import ConfigError

# What node.api.app has always offered, now kept in node.api.context.
__all__ = [
    "CLIENTS",
    "CONTEXT",
    "JSON_TYPE",
    "MAX_CERTIFICATE_BYTES",
    "PREFIX",
    "XML_TYPES",
    "ApiContext",
    "create_api_app",
]

CLIENTS = web.AppKey("clients", Clients)


def create_api_app(context: ApiContext) -> web.Application:
    """The API as the application a listener serves, every path under /api/v1.

    A root application of its own, never mounted in another: aiohttp takes the body
    limit (client_max_size) from the root application, whatever a sub-application says.
    """
    limit = context.max_body_bytes
    app = web.Application(client_max_size=limit, middlewares=[problem_middleware(limit), _auth])
    app[CONTEXT] = context
    app[CLIENTS] = Clients(context.api_token, context.clients_file)
    one = f"{PREFIX}/certificates/{{id:{ID_PATTERN}}}"
    app.router.add_get(f"{PREFIX}/openapi.yaml", openapi_spec)
    app.router.add_post(f"{PREFIX}/certificates", _idempotent(submit))
    app.router.add_get(f"{PREFIX}/certificates", list_certificates)
    app.router.add_get(one, get_certificate)
    app.router.add_get(f"{one}/xml", certificate_xml)
    app.router.add_get(f"{one}/pdf", certificate_pdf)
    app.router.add_post(f"{one}/withdraw", _idempotent(withdraw))
    app.router.add_post(f"{one}/replace", _idempotent(replace))
    app.router.add_post(f"{one}/response", _idempotent(respond))
    app.router.add_get(f"{PREFIX}/events", event_feed)
    return app


def _idempotent(handler: Handler) -> Handler:
    """A POST that creates a message takes an Idempotency-Key (node.api.idempotency)."""
    return idempotent(handler, lambda request: request.app[CONTEXT])


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    # The officer console (node.console) signs its users in with sessions of its own.
    if (
        request.path == f"{PREFIX}/openapi.yaml"
        or request.path.partition("/")[2].partition("/")[0] == "console"
    ):
        return await handler(request)
    try:
        client = authorise(request.app[CLIENTS], request)
    except ConfigError as e:
        response = problem_response(503, "API clients unreadable", str(e))
        response.headers["Retry-After"] = "60"
        return response
    CALLER.set(client)
    return await handler(request)
