"""What a running service (a node, a hub) needs to start and stop cleanly (shell).

Scheduled jobs and background runs are tracked so that stopping can let them finish
(a little while) before the store they write to closes; listeners are stopped before
that, by the exit stack that started them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

from aiohttp import web
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
    runner = web.AppRunner(app, access_log=access_logger if access_log else None)
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
