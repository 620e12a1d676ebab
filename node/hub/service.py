"""The running hub (shell): store, directory refresh, the SOAP listener, push, expiry.

Wired like a node (node.service): the directory is refreshed from the registry on a
schedule and cached; the listener speaks TLS only with clients whose certificate the
current directory lists for an active NPPO (the hub's own is left out), and looks each
caller up by pin. Without a trusted directory the hub still starts, lets nobody in, and
asks the registry every few seconds. Its code lists follow the registry's as a node's do
(node.directory.codelist_fetch): `<hub dir>/codelists/` over the bundled lists at start, newer
ones fetched after each refresh and swapped into the validator and the look-ups at
once. Everything started is stopped again, in reverse order, before `run_hub` returns.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

from node.certificate.validate import Validator
from node.clock import Clock
from node.codelists.lists import CodeLists
from node.directory import Directory, DirectoryError, MaintainerSet
from node.directory.codelist_fetch import CODELISTS_DIR, CodeListUpdater, installed_lists
from node.directory.refresh import DirectoryRefresher, load
from node.errors import ConfigError
from node.hub.codelists import CodeListAnswers
from node.hub.config import CONFIG_FILE, HubConfig
from node.hub.observe import HubSubject, start_hub_observer
from node.hub.push import HubPusher
from node.hub.records import HubSettings
from node.hub.store import HubStore
from node.hub.web import HubContext, create_hub_app
from node.leadership import HUB_LEADER_KEY, Leadership
from node.serving import Tasks, bound_port, serve, shutdown_scheduler, url_host
from node.transport.client import DeliveryClient
from node.web.tls import server_ssl_context

log = logging.getLogger(__name__)

DIRECTORY_CACHE = "directory.json"
EXPIRE_INTERVAL = timedelta(minutes=5)
PUSH_INTERVAL = timedelta(seconds=5)
# How often a hub process sharing its store checks which of them runs expiry.
LEADERSHIP_INTERVAL = timedelta(seconds=5)
BOOTSTRAP_INTERVAL = timedelta(seconds=2)


@dataclass(frozen=True, slots=True)
class HubListening:
    """Where the hub listens once bound (for the ready line)."""

    name: str
    url: str
    # `/metrics` and `/health/ready` of the hub's own listener; None without `[metrics]`.
    metrics_url: str | None = None
    ready_url: str | None = None


class _Kick:
    """Start a push run after a delivery, unless one is already starting: a burst of
    deliveries makes one run, not one each (a run pushes everything due)."""

    def __init__(self, start: Callable[[], None]) -> None:
        self._start = start
        self._pending = False

    def __call__(self) -> None:
        if self._pending:
            return
        self._pending = True
        asyncio.get_running_loop().call_soon(self._run)

    def _run(self) -> None:
        self._pending = False
        self._start()


def hub_client_certificates(directory: Directory, now: datetime) -> tuple[bytes, ...]:
    """The TLS client certificates the hub lets in: active NPPOs', never the hub's own."""
    own = {p.certificate for p in directory.hub.tls_pins} if directory.hub else set()
    return tuple(c for c in directory.tls_certificates(now) if c not in own)


def code_list_swap(validator: Validator, answers: CodeListAnswers) -> Callable[[CodeLists], None]:
    """What CodeListUpdater calls with newer lists: the validator (ValidatePhytoXML,
    ValidateAndDeliverEnvelope) and the look-ups (GetPackageTypes, ...) both use them
    from then on. Each takes them as one reference swap: no lock on the request path."""

    def use_codelists(lists: CodeLists) -> None:
        validator.use_codelists(lists)
        answers.use_codelists(lists)

    return use_codelists


def read_hub_anchor(config: HubConfig) -> MaintainerSet:
    """The maintainers' trust anchor `hub.toml` names; ConfigError saying what to do."""
    source = config.directory / CONFIG_FILE
    if config.registry_url is None or config.registry_anchor is None:
        missing = "url" if config.registry_url is None else "anchor"
        raise ConfigError(
            f"{source}: registry.{missing}: missing"
            " (run `ephyto hub configure --registry URL --anchor FILE`)"
        )
    path = config.path(config.registry_anchor)
    try:
        return MaintainerSet.from_plain(json.loads(path.read_bytes()))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the trust anchor: {e.strerror or e}") from None
    except (ValueError, DirectoryError) as e:
        raise ConfigError(f"{path}: not a maintainers trust anchor: {e}") from None


async def run_hub(
    config: HubConfig,
    *,
    clock: Clock,
    stop: asyncio.Event,
    ready: Callable[[HubListening], None] | None = None,
    refresh_interval: timedelta | None = None,
    expire_interval: timedelta = EXPIRE_INTERVAL,
    push_interval: timedelta = PUSH_INTERVAL,
) -> None:
    """Serve the hub until `stop` is set, then shut everything down.

    Raises ConfigError (no registry configured, a malformed file in `codelists/`),
    DirectoryError (a damaged cache), StoreDamagedError, HubStoreError, or OSError (a
    port in use, unreadable TLS files) before serving.
    """
    anchor = read_hub_anchor(config)
    assert config.registry_url is not None  # read_hub_anchor refuses a config without
    interval = refresh_interval or timedelta(seconds=config.refresh_seconds)
    async with AsyncExitStack() as stack:
        store = HubStore.open(
            config.store_url(),
            HubSettings(payer=config.payer, max_content_bytes=config.max_content_bytes),
        )
        stack.push_async_callback(store.close)
        await store.check()  # a damaged SQLite file is refused before anything is served
        await store.ensure_schema(config.directory)  # new: created; older or newer: refused
        log.info("hub store ready (%s)", store.dialect)
        # Hub processes sharing one PostgreSQL store all serve and push (push claims keep
        # each envelope to one of them); expiry and the event log run in one of them.
        leadership = Leadership(config.store_url(), HUB_LEADER_KEY, what=f"hub {config.name}")
        stack.push_async_callback(leadership.close)

        cache = config.path(DIRECTORY_CACHE)
        refresher = DirectoryRefresher(
            config.registry_url, load(cache, anchor), cache, clock, aiohttp.ClientSession
        )
        await refresher.refresh()  # logs its own line; never raises for the network
        # The code lists: bundled, then the newer ones fetched from the registry before.
        validator = Validator.default(codelists=installed_lists(config.path(CODELISTS_DIR)))
        answers = CodeListAnswers(validator.codelists)
        code_lists = CodeListUpdater(
            config.registry_url, config.path(CODELISTS_DIR), validator.codelists,
            aiohttp.ClientSession, code_list_swap(validator, answers),
        )  # fmt: skip

        async def refresh() -> None:
            await refresher.refresh()
            await code_lists.update(refresher.trusted.current)  # logs; never raises

        await code_lists.update(refresher.trusted.current)  # lists published while down

        def directory() -> Directory:
            return refresher.current(clock.now())

        def trusted_client_certs() -> Iterable[bytes]:
            now = clock.now()
            try:
                return hub_client_certificates(refresher.current(now), now)
            except DirectoryError:
                return ()  # no usable directory: nobody gets in (fail closed)

        # Unwinding runs last-in first-out: the scheduler pauses, the listener stops, the
        # job runs still busy end, then the scheduler and the store close.
        scheduler = AsyncIOScheduler()
        stack.push_async_callback(shutdown_scheduler, scheduler)
        tasks = Tasks("push, expiry or directory run(s)")
        stack.push_async_callback(tasks.finish)
        client = await stack.enter_async_context(
            DeliveryClient(
                tls_certificate=config.path(config.tls_certificate),
                tls_key=config.path(config.tls_key),
            )
        )
        pusher = HubPusher(store, client, directory, clock)

        async def push_now() -> None:
            try:
                await pusher.run_once()
            except Exception:
                # Nobody awaits a kick: say it here; the scheduled run tries again.
                log.exception("push after a delivery failed")

        pushing = _Kick(lambda: tasks.track(asyncio.ensure_future(push_now())))
        app = create_hub_app(
            HubContext(
                name=config.name,
                store=store,
                directory=directory,
                clock=clock,
                default_policy=config.default_policy,
                validator=validator,
                code_lists=answers,
                delivered=pushing,
            )
        )
        ssl_context = server_ssl_context(
            config.path(config.tls_certificate),
            config.path(config.tls_key),
            trusted_client_certs=trusted_client_certs,
        )
        runner = await serve(
            stack, app, config.listen_host, config.listen_port,
            ssl_context=ssl_context, access_log=True,
        )  # fmt: skip

        async def expire() -> None:
            expired = await store.expire(clock.now(), config.expire_after)
            if expired:
                log.info("expired %d undelivered envelope(s)", len(expired))

        async def bootstrap() -> None:
            if refresher.trusted.current is None:
                await refresh()
            if refresher.trusted.current is not None:
                scheduler.remove_job("directory-bootstrap")

        tasks.every(scheduler, refresh, interval, "directory-refresh")
        tasks.every(scheduler, leadership.only(expire), expire_interval, "expire")
        tasks.every(scheduler, pusher.run_once, push_interval, "push")
        # One log line and the counter per envelope event (node.hub.observe).
        observer = await start_hub_observer(
            stack,
            HubSubject(store, refresher, clock, config.path(config.tls_certificate)),
            config.metrics_listen,
        )
        tasks.every(
            scheduler,
            # A process that is not leading keeps its cursor at the newest event, so that
            # on taking over it logs from then on, not again what the old leader logged.
            leadership.only(observer.tailer.run_once, meanwhile=observer.tailer.start),
            push_interval,
            "event-log",
        )
        if refresher.trusted.current is None:
            tasks.every(scheduler, bootstrap, BOOTSTRAP_INTERVAL, "directory-bootstrap")
        await leadership.check()
        tasks.every(scheduler, leadership.check, LEADERSHIP_INTERVAL, "leadership")
        scheduler.start()
        stack.callback(scheduler.pause)

        listening = HubListening(
            config.name,
            f"https://{url_host(config.listen_host)}:{bound_port(runner)}",
            metrics_url=None if observer.urls is None else observer.urls.metrics,
            ready_url=None if observer.urls is None else observer.urls.ready,
        )
        log.info(
            "hub %s ready at %s, metrics %s", config.name, listening.url,
            listening.metrics_url or "off ([metrics] listen is not set)",
        )  # fmt: skip
        if ready is not None:
            ready(listening)
        await stop.wait()
        log.info("hub %s stopping", config.name)
    log.info("hub %s stopped", config.name)
