"""The hub's HTTP face: `POST /hub/DeliveryService` (SOAP 1.1) and `GET /health`.

Serve it over `node.web.tls.server_ssl_context`, which lets in only TLS clients whose
certificate the directory lists. Per request: who the caller is (its certificate's pin,
looked up in the directory) comes first, so an unknown client gets a fault and nothing is
read; then the body, read up to the limit; then the SOAP request, the relay, the answer.
Every refusal is a SOAP 1.1 Fault with the WSDL's HubWebException detail, HTTP 500, one
line saying why. Parsing, rendering and validation run off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiohttp import web
from cryptography import x509

from node.certificate.validate import Report, Validator
from node.clock import Clock
from node.directory import Directory, DirectoryError, NppoNotActive
from node.errors import InputError
from node.hub import records
from node.hub.accounts import AccountPolicy
from node.hub.codelists import CodeListAnswers
from node.hub.relay import HubRelay
from node.hub.store import HubStore
from node.ippc import (
    CONTENT_TYPE,
    SERVICE_PATH,
    SOAP_LIMITS,
    FaultCode,
    SoapError,
    TrackingState,
    parse_request,
    render_fault,
    render_response,
)
from node.web.tls import PeerIdentityError, peer_certificate, tls_client

HEALTH_PATH = "/health"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HubContext:
    """What the hub's endpoint works with; `directory` raises when none is usable."""

    name: str
    store: HubStore
    directory: Callable[[], Directory]
    clock: Clock
    default_policy: AccountPolicy | None
    validator: Validator | None = None  # None: Validator.default()
    # The look-ups' answers; None: from the validator's lists. A running hub passes its
    # own, so that newer lists from the registry reach both (node.hub.service).
    code_lists: CodeListAnswers | None = None
    max_body_bytes: int = SOAP_LIMITS.max_bytes
    # Called after an envelope is taken in, so push mode posts it at once.
    delivered: Callable[[], None] = lambda: None


_CONTEXT = web.AppKey("hub_context", HubContext)
_RELAY = web.AppKey("hub_relay", HubRelay)
_SOAP_POOL = web.AppKey("hub_soap_pool", ThreadPoolExecutor)


def create_hub_app(context: HubContext) -> web.Application:
    """The hub's application; the caller serves it over mutual TLS."""
    # aiohttp's own cap is only a backstop: the handler refuses oversized bodies itself,
    # as a fault, before this is reached.
    app = web.Application(client_max_size=context.max_body_bytes + 1)
    app[_CONTEXT] = context
    app.cleanup_ctx.append(_pools)
    app.router.add_post(SERVICE_PATH, post_service)
    app.router.add_get(HEALTH_PATH, get_health)
    return app


async def post_service(request: web.Request) -> web.Response:
    """One SOAP request: its response, or a Fault (HTTP 500)."""
    context = request.app[_CONTEXT]
    try:
        body = await _serve(request, context)
    except Exception as e:  # every refusal, and every bug, is a fault: never a traceback
        code, reason = fault_for(e)
        if code is FaultCode.SERVER:
            log.error("hub fault: %s", reason, exc_info=not isinstance(e, records.HubError))
        else:
            log.info("refused: %s", reason)
        return web.Response(
            status=500, body=render_fault(code, reason), headers={"Content-Type": CONTENT_TYPE}
        )
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def get_health(request: web.Request) -> web.Response:
    """Liveness for NPPOs' probes: any client the TLS layer let in may ask."""
    return web.json_response({"hub": request.app[_CONTEXT].name, "status": "ok"})


def fault_for(error: BaseException) -> tuple[FaultCode, str]:
    """The fault code and the one-line reason to answer `error` with."""
    match error:
        case SoapError():
            return error.fault_code, error.reason
        case PeerIdentityError():
            return FaultCode.CLIENT, f"unknown NPPO: {error}"
        case NppoNotActive():
            return FaultCode.CLIENT, f"refused: {error}"
        case DirectoryError():
            # No directory trusted yet, or it expired: the hub cannot tell who is who.
            return FaultCode.SERVER, f"the hub has no usable directory now ({error}): retry later"
        case records.EnvelopeNotFoundError():
            # The word a client looks for; the same for unknown and for not the caller's.
            return FaultCode.CLIENT, f"{TrackingState.ENVELOPE_NOT_EXISTS.value}: {error}"
        case records.InsufficientFundsError():
            return FaultCode.CLIENT, f"refused, nothing stored: {error}"
        case records.HubStoreError():
            return FaultCode.SERVER, "the hub's database failed: retry later"
        case InputError():
            return FaultCode.CLIENT, str(error)
    return FaultCode.SERVER, f"internal error ({type(error).__name__}): retry later"


class _BodyTooLargeError(InputError):
    """The request body is over the limit: refused without reading the rest."""


async def _serve(request: web.Request, context: HubContext) -> bytes:
    directory = context.directory()
    caller = tls_client(directory, _client_certificate(request), context.clock.now())
    body = await _read_limited(request, context.max_body_bytes)
    loop = asyncio.get_running_loop()
    soap_pool = request.app[_SOAP_POOL]
    soap_request = await loop.run_in_executor(soap_pool, parse_request, body)
    response = await request.app[_RELAY].handle(caller, directory, soap_request)
    return await loop.run_in_executor(soap_pool, render_response, response)


async def _read_limited(request: web.Request, limit: int) -> bytes:
    # Refused from the announced length, unread; without one, reading stops at the limit.
    if (request.content_length or 0) > limit:
        raise _BodyTooLargeError(
            f"the request is {request.content_length} bytes, over the {limit}-byte limit"
        )
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise _BodyTooLargeError(f"the request is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _client_certificate(request: web.Request) -> x509.Certificate:
    transport = request.transport
    return peer_certificate(None if transport is None else transport.get_extra_info("ssl_object"))


async def _pools(app: web.Application) -> AsyncIterator[None]:
    # Large SOAP bodies take CPU time to parse and render: threads keep the loop serving
    # other NPPOs meanwhile. Validation gets one thread of its own, because a compiled
    # lxml schema is not promised to be safe for concurrent use.
    context = app[_CONTEXT]
    soap = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hub-soap")
    validation = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-validate")
    validator = context.validator or Validator.default()
    loop = asyncio.get_running_loop()

    async def validate(data: bytes) -> Report:
        return await loop.run_in_executor(validation, validator.validate, data)

    app[_SOAP_POOL] = soap
    app[_RELAY] = HubRelay(
        context.store,
        clock=context.clock,
        validate=validate,
        code_lists=context.code_lists or CodeListAnswers(validator.codelists),
        default_policy=context.default_policy,
        delivered=context.delivered,
    )
    try:
        yield
    finally:
        soap.shutdown(wait=True)
        validation.shutdown(wait=True)
