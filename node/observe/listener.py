"""The metrics and health listener of one process (shell): plain HTTP on a port of its
own, never the exchange endpoint nor the API port.

- `GET /metrics`: Prometheus' text exposition of the process's own registry, its
  gauges gathered at that moment;
- `GET /health/live`: 200 while the event loop answers;
- `GET /health/ready`: 200 with the checks as JSON when every one passes, 503 with the
  failing ones otherwise (node.observe.health).

It carries no credential and shows no secret, but it does show partners and volumes:
keep it on loopback, or on a network only the monitoring system reaches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from node.observe.health import Check, readiness
from node.observe.metrics import ProcessMetrics, Sample
from node.observe.settings import ListenAddress
from node.serving import bound_port, serve, url_host

log = logging.getLogger(__name__)

METRICS_PATH: Final = "/metrics"
LIVE_PATH: Final = "/health/live"
READY_PATH: Final = "/health/ready"
# A scrape or a readiness probe that waits longer than this is answered without it.
ANSWER_TIMEOUT_SECONDS: Final = 10.0

Gauges = Callable[[], Awaitable[Sequence[Sample]]]
Checks = Callable[[], Awaitable[Sequence[Check]]]


@dataclass(frozen=True, slots=True)
class ObserverUrls:
    """Where a bound listener answers (for the ready line and the demo)."""

    metrics: str
    ready: str


async def serve_observer(
    stack: AsyncExitStack,
    listen: ListenAddress,
    metrics: ProcessMetrics,
    *,
    gauges: Gauges,
    checks: Checks,
) -> ObserverUrls:
    """Listen on `listen` until `stack` unwinds; the URLs it answers at (port 0: the one
    the system chose). Raises OSError when the address cannot be bound."""
    app = create_observer_app(metrics, gauges=gauges, checks=checks)
    runner = await serve(stack, app, listen.host, listen.port, ssl_context=None, access_log=False)
    base = f"http://{url_host(listen.host)}:{bound_port(runner)}"
    return ObserverUrls(metrics=base + METRICS_PATH, ready=base + READY_PATH)


def create_observer_app(
    metrics: ProcessMetrics, *, gauges: Gauges, checks: Checks
) -> web.Application:
    """The listener's application (GET only; anything else is 404 or 405)."""
    handlers = _Handlers(metrics, gauges, checks)
    app = web.Application(client_max_size=1024)
    app.router.add_get(METRICS_PATH, handlers.metrics, allow_head=False)
    app.router.add_get(LIVE_PATH, handlers.live, allow_head=False)
    app.router.add_get(READY_PATH, handlers.ready, allow_head=False)
    return app


class _Handlers:
    def __init__(self, metrics: ProcessMetrics, gauges: Gauges, checks: Checks) -> None:
        self._metrics, self._gauges, self._checks = metrics, gauges, checks

    async def metrics(self, _request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT_SECONDS):
                samples = await self._gauges()
        except Exception as e:  # the counters are still worth a scrape
            log.warning("metrics: the gauges could not be gathered: %s", _one_line(e))
            samples = ()
        body = self._metrics.exposition(samples)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def live(self, _request: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def ready(self, _request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT_SECONDS):
                checks = list(await self._checks())
        except Exception as e:
            checks = [Check("checks", False, f"the checks did not complete: {_one_line(e)}")]
        verdict = readiness(checks)
        return web.json_response(verdict.to_plain(), status=verdict.status)


def _one_line(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}"[:300]
