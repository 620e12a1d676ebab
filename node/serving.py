"""What a running service (a node, a hub) needs to start and stop cleanly (shell).

Scheduled jobs and background runs are tracked so that stopping can let them finish
(a little while) before the store they write to closes; listeners are stopped before
that, by the exit stack that started them. A listener answers a request it cannot even
parse as HTTP (a bad chunk size, a bad request line) with a short 400 of its own and one
log line, never with aiohttp's default: the request echoed back (up to 64 KiB of it)
and an ERROR traceback for what is only a broken client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.log import access_logger
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

STOP_GRACE = timedelta(seconds=5)


class Tasks:
    """Job runs and background runs, so that stopping can wait for them."""

    def __init__(self, what: str) -> None:
        self._what = what  # for the log line: "outbox or directory run(s)"
        self._running: set[asyncio.Task[Any]] = set()

    def track(self, task: asyncio.Task[Any]) -> None:
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def job(self, func: Callable[[], Awaitable[Any]]) -> Callable[[], Coroutine[Any, Any, None]]:
        """`func` as a scheduler job whose runs are tracked."""

        async def run() -> None:
            task = asyncio.current_task()
            if task is not None:
                self.track(task)
            await func()

        return run

    def every(
        self,
        scheduler: AsyncIOScheduler,
        func: Callable[[], Awaitable[Any]],
        interval: timedelta,
        name: str,
        **options: Any,
    ) -> None:
        """Run `func` every `interval`, never two runs at once, tracked."""
        scheduler.add_job(
            self.job(func), "interval", seconds=interval.total_seconds(), id=name,
            max_instances=1, coalesce=True, **options,
        )  # fmt: skip

    async def finish(self) -> None:
        """Wait a little for what runs, then cancel the rest and wait for it to end."""
        if not self._running:
            return
        _, pending = await asyncio.wait(set(self._running), timeout=STOP_GRACE.total_seconds())
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled %d %s still busy at stop", len(pending), self._what)
            await asyncio.wait(pending)


async def shutdown_scheduler(scheduler: AsyncIOScheduler) -> None:
    # Paused first and its runs awaited by Tasks.finish: APScheduler's own shutdown
    # would cancel them at once.
    if scheduler.running:
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback


# How long, after answering a request whose body it did not read (a 413 from the
# Content-Length), the server goes on reading and discarding that body so the client sees
# the answer rather than a reset. aiohttp's 10 s let each refused oversize upload hold its
# connection, and a stopping node, for 10 s; 2 s covers a client on a slow link.
LINGER_SECONDS = 2.0


async def serve(
    stack: AsyncExitStack,
    app: web.Application,
    host: str,
    port: int,
    *,
    ssl_context: Any,
    access_log: bool,
) -> web.AppRunner:
    """Listen with `app` until `stack` unwinds."""
    runner = _AppRunner(
        app, access_log=access_logger if access_log else None, lingering_time=LINGER_SECONDS
    )
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The TCP port a listener got (the one asked for, or the one port 0 gave)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the listener is bound to no TCP address")


def url_host(host: str) -> str:
    """`host` as it goes into a URL (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_QUOTED = re.compile(r"""\s*(?:bytearray\()?b?['"]""")
_MALFORMED = json.dumps(
    {
        "type": "about:blank",
        "title": "Bad request",
        "status": 400,
        "detail": "the request is not well-formed HTTP/1.1",
    }
).encode()


class _RequestHandler(web.RequestHandler):
    """aiohttp's connection handler, but a request it cannot parse is answered here."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)  # a bug: a traceback
        # aiohttp's own answer carries the parser's message, which quotes the request
        # (up to 64 KiB of it); a client that breaks HTTP is routine, not an error here.
        log.info("refused a malformed HTTP request from %s: %s", request.remote, _first_line(exc))
        if request.writer.output_size > 0:
            raise ConnectionError("a response was sent already: the connection is closed")
        response = web.Response(
            status=400, body=_MALFORMED, content_type="application/problem+json"
        )
        response.force_close()
        return response


def _first_line(exc: HttpProcessingError) -> str:
    """The parser's complaint, without the request bytes it quotes (after its first line,
    or in quotes within it)."""
    line = str(exc.message).strip().split("\n", 1)[0]
    line = _QUOTED.split(line, maxsplit=1)[0]
    line = _UNPRINTABLE.sub(" ", line).strip(" :.")
    return f"{type(exc).__name__}: {line[:100] or 'unreadable'}"


class _Server(web.Server):
    """aiohttp's server, with connections handled by _RequestHandler."""

    def __call__(self) -> web.RequestHandler:
        return _RequestHandler(self, loop=self._loop, **self._kwargs)


class _AppRunner(web.AppRunner):
    """An AppRunner whose server is a _Server. aiohttp offers no option for its answer
    to an unparsable request (aio-libs/aiohttp#3287), so the server it makes is made
    again as ours, with everything it was given."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return _Server(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **made._kwargs,
        )
