"""The API's reading routes: list and get certificates, their XML and PDF, the event
feed and the OpenAPI description."""

from __future__ import annotations

import asyncio
from importlib import resources

from aiohttp import web

from node.api import views
from node.api.context import CONTEXT, certificate_message, stored_certificate
from node.api.feed import feed
from node.api.params import choice_query, int_query, message_id


async def list_certificates(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    direction = choice_query(request, "direction", {"sent": "out", "received": "in"}, "sent")
    limit = int_query(request, "limit", 100, 1, 1000)
    offset = int_query(request, "offset", 0, 0, 10**9)
    found = await context.store.summaries(direction, limit=limit, offset=offset)  # type: ignore[arg-type]
    return web.json_response({"certificates": [views.summary(m) for m in found]})


async def get_certificate(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    message = await context.store.message(message_id(request))
    events = await context.store.events(message.id)
    lifecycle = await context.store.lifecycle(message.id)
    answered = await context.store.response_to(message.id)
    return web.json_response(
        views.summary(message)
        | views.lifecycle(lifecycle)
        | {"response": None if answered is None else views.stored_response(answered)}
        | {"reason": views.failure_reason(message, events)}
        | {"events": [views.event(e) for e in events]}
    )


async def certificate_xml(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    message = await certificate_message(context, request)
    return web.Response(body=message.payload, content_type="application/xml")


async def certificate_pdf(request: web.Request) -> web.Response:
    from node.render.pdf import render_pdf  # fonts are heavy: load on first use

    context = request.app[CONTEXT]
    message = await certificate_message(context, request)
    cert = stored_certificate(message)
    standing = views.standing(await context.store.lifecycle(message.id))
    # Rendering takes a second or more: keep the event loop (and the exchange) moving.
    pdf = await asyncio.get_running_loop().run_in_executor(None, render_pdf, cert, standing)
    return web.Response(body=pdf, content_type="application/pdf")


async def event_feed(request: web.Request) -> web.Response:
    return await feed(request.app[CONTEXT].store, request)


async def openapi_spec(request: web.Request) -> web.Response:
    spec = (resources.files("node.api") / "openapi.yaml").read_bytes()
    return web.Response(body=spec, content_type="application/yaml")
