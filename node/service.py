"""The running node (shell): store, directory, exchange and API listeners, outbox, scheduler.

`run_node` wires the tested parts together and owns their lifetimes: everything it
starts it stops again, in reverse order, before it returns, so no task, thread,
connection or socket outlives it. Two listeners:

- the exchange (`/ephyto/v1/...`) over mutual TLS, on `[listen]`: the TLS layer lets in
  only clients whose certificate the current directory lists;
- the national-system API (`/api/v1/...`) over plain HTTP, on `[api]` (loopback by
  default): its only credential is the bearer token, so it must stay on loopback or go
  behind a TLS reverse proxy.

Without any trusted directory (first start, registry down) the node still starts: the
API accepts submissions, the outbox holds them, the exchange refuses every peer, and the
registry is asked again every few seconds until a directory is trusted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

from node import __version__
from node.api.app import ApiContext, create_api_app
from node.api.door import Door
from node.api.webhooks import WebhookSender
from node.certificate.validate import Validator
from node.clock import Clock
from node.console.app import mount_console, session_key
from node.console.context import ConsoleContext
from node.console.users import users_path
from node.directory import Directory, DirectoryError, MaintainerSet
from node.directory.codelist_fetch import CODELISTS_DIR, CodeListUpdater, installed_lists
from node.directory.refresh import DirectoryRefresher, load
from node.errors import ConfigError
from node.identity.config import CONFIG_FILE, NodeConfig
from node.identity.next_keys import reload_keys, reload_tls
from node.inbox.puller import HubPuller
from node.leadership import NODE_LEADER_KEY, Leadership
from node.observe.node_observer import NodeSubject, start_node_observer
from node.outbox.policy import Backoff, Fallback
from node.outbox.worker import OutboxWorker
from node.runtime import NodeRuntime, ValidationThread
from node.serving import Tasks, bound_port, serve, shutdown_scheduler, url_host
from node.store.guard import STORE_STATE_FILE, StoreGuard
from node.store.store import Store
from node.transport.client import DeliveryClient
from node.transport.hub_client import HubError, node_hub_client
from node.web.exchange import create_exchange_app
from node.web.tls import presenting_server_ssl_context

log = logging.getLogger(__name__)

DIRECTORY_CACHE = "directory.json"
OUTBOX_INTERVAL = timedelta(seconds=2)
# How often a process sharing its store checks which of them runs the run-once jobs.
LEADERSHIP_INTERVAL = timedelta(seconds=5)
# While no directory is trusted at all, ask the registry this often instead of hourly.
BOOTSTRAP_INTERVAL = timedelta(seconds=2)
# On stop, a job or a delivery still running gets this long before it is cancelled (the
# outbox is crash-safe: a cancelled delivery is retried after its lease).


@dataclass(frozen=True, slots=True)
class Listening:
    """Where the node listens, once both listeners are bound (for the ready line)."""

    country: str
    exchange_url: str  # or a note that there is none
    api_url: str
    # `/metrics` and `/health/ready` of the node's own listener; None without `[metrics]`.
    metrics_url: str | None = None
    ready_url: str | None = None


def read_anchor(config: NodeConfig) -> MaintainerSet:
    """The maintainers' trust anchor the config names; ConfigError saying what to do."""
    if config.registry_anchor is None:
        raise ConfigError(
            f"{config.directory / 'node.toml'}: registry.anchor: missing"
            " (run `ephyto node configure --registry URL --anchor FILE`)"
        )
    path = config.path(config.registry_anchor)
    try:
        return MaintainerSet.from_plain(json.loads(path.read_bytes()))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the trust anchor: {e.strerror or e}") from None
    except (ValueError, DirectoryError) as e:  # JSONDecodeError is a ValueError
        raise ConfigError(f"{path}: not a maintainers trust anchor: {e}") from None


async def run_node(
    config: NodeConfig,
    *,
    clock: Clock,
    stop: asyncio.Event,
    ready: Callable[[Listening], None] | None = None,
    outbox_interval: timedelta = OUTBOX_INTERVAL,
    refresh_interval: timedelta | None = None,
    announce_on: Sequence[str] | None = None,
    accept_empty_store: bool = False,
) -> None:
    """Serve the node until `stop` is set, then shut everything down.

    Raises ConfigError (no registry URL or anchor, bad key files), DirectoryError (a
    damaged directory cache), StoreError (StoreDamagedError; EmptyStoreError for an
    empty store of a node that has exchanged, unless `accept_empty_store`), or OSError
    (a port in use, unreadable TLS files) before anything is served; nothing started is
    left running.
    """
    if config.registry_url is None:
        raise ConfigError(
            f"{config.directory / 'node.toml'}: registry.url: missing"
            " (run `ephyto node configure --registry URL --anchor FILE`)"
        )
    anchor = read_anchor(config)
    interval = refresh_interval or timedelta(seconds=config.refresh_seconds)
    async with AsyncExitStack() as stack:
        store = Store.open(config.store_url())
        stack.push_async_callback(store.close)
        guard = StoreGuard(config.path(STORE_STATE_FILE), clock)
        await guard.check(store, accept_empty=accept_empty_store)  # damaged or lost: refused
        await store.ensure_schema(config.directory)  # new: created; older or newer: refused
        await guard.follow(stack, store)
        # Which process runs the run-once jobs, when several share a PostgreSQL store.
        leadership = Leadership(config.store_url(), NODE_LEADER_KEY, what=f"node {config.country}")
        stack.push_async_callback(leadership.close)
        if leadership.shared:
            # Other processes may hold claims now: ours, from before a crash, run out
            # after their lease ([outbox] lease_seconds) and are claimed again then.
            log.info("store ready (%s, may be shared by several processes)", store.dialect)
        else:
            released = await store.release_claims()
            log.info("store ready (%s); %d unfinished deliveries resumed", store.dialect, released)

        cache = config.path(DIRECTORY_CACHE)
        refresher = DirectoryRefresher(
            config.registry_url, load(cache, anchor), cache, clock, aiohttp.ClientSession
        )
        await refresher.refresh()  # logs its own one line; never raises for the network

        def directory() -> Directory:
            return refresher.current(clock.now())

        def trusted_client_certs() -> Iterable[bytes]:
            now = clock.now()
            try:
                return refresher.current(now).tls_certificates(now)
            except DirectoryError:
                return ()  # no usable directory: no peer gets in (fail closed)

        # The code lists: bundled, then the newer ones fetched from the registry before.
        validator = Validator.default(codelists=installed_lists(config.path(CODELISTS_DIR)))
        runtime = NodeRuntime.from_config(
            config,
            directory=directory,
            store=store,
            clock=clock,
            trusted_client_certs=trusted_client_certs,
            validator=validator,
        )
        code_lists = CodeListUpdater(
            config.registry_url, config.path(CODELISTS_DIR), validator.codelists,
            aiohttp.ClientSession, validator.use_codelists,
        )  # fmt: skip
        config_path = config.directory / CONFIG_FILE
        assert runtime.keyring is not None and runtime.tls is not None  # from_config sets them
        keyring, tls = runtime.keyring, runtime.tls

        def reload_keys_if_listed() -> None:
            # After `rotate-keys` on a running node: once the directory lists the new keys,
            # read them from node.toml here, off the request path (which reads no files).
            # The TLS certificate presented, as server and as client, is chosen here too:
            # it changes halfway through the overlap (node.identity.tls_choice).
            now = clock.now()
            try:
                listed = refresher.current(now)
            except DirectoryError:
                return
            reload_keys(keyring, config_path, config.country, listed, now)
            reload_tls(tls, config_path, config.country, listed, now)

        async def refresh() -> None:
            await refresher.refresh()
            reload_keys_if_listed()
            await code_lists.update(refresher.trusted.current)  # logs; never raises

        reload_keys_if_listed()  # the directory may list keys node.toml gained while down
        await code_lists.update(refresher.trusted.current)  # lists published while down

        def hub_listed(listed: Directory) -> bool:
            return config.hub_url is not None or listed.hub is not None

        client = await stack.enter_async_context(DeliveryClient(presented=tls))
        hub = await stack.enter_async_context(
            node_hub_client(config, directory, clock, presented=tls)
        )
        worker = OutboxWorker(
            store,
            client,
            directory,
            country=config.country,
            signing_key=runtime.current_signing_key,
            clock=clock,
            backoff=Backoff(cap=timedelta(seconds=config.retry_cap_seconds)),
            hub=hub,
            hub_listed=hub_listed,
            fallback=Fallback(
                attempts=config.fallback_attempts,
                after=timedelta(seconds=config.fallback_seconds),
                via_hub=frozenset(config.via_hub),
            ),
            hub_recheck=timedelta(seconds=config.hub_poll_seconds),
            lease=timedelta(seconds=config.lease_seconds),
        )
        validation = ValidationThread(runtime.validator)
        stack.callback(validation.close)
        puller = HubPuller(runtime, hub, validation)
        # Unwinding runs last-in first-out: the scheduler pauses, the listeners stop, the
        # runs still busy end, then the scheduler, the client and the store close.
        scheduler = AsyncIOScheduler()
        stack.push_async_callback(shutdown_scheduler, scheduler)
        tasks = Tasks("outbox or directory run(s)")
        stack.push_async_callback(tasks.finish)

        ssl_context = presenting_server_ssl_context(tls, trusted_client_certs=trusted_client_certs)
        # A node without an endpoint is reached through the hub only: nobody may connect
        # to it, so it opens no exchange listener (and holds no port for one).
        exchange = None
        if config.endpoint is not None:
            exchange = await serve(
                stack, create_exchange_app(runtime, validation), config.listen_host,
                config.listen_port, ssl_context=ssl_context, access_log=True,
            )  # fmt: skip
        # One log line and the counters per certificate event (node.observe.tailer); the
        # console counts its sign-ins and refusals there too.
        observer = await start_node_observer(
            stack,
            NodeSubject(
                config.country, store, refresher, clock,
                tls_certificate=lambda: tls().certificate,
                keys_loaded=lambda: bool(keyring.held.signing and keyring.held.encryption),
            ),
            config.metrics_listen,
        )  # fmt: skip
        # The API is its listener's root application: a root's body limit is the one
        # aiohttp applies (a mounted sub-application's would be silently ignored).
        api_context = ApiContext(
            country=config.country,
            api_token=config.api_token,
            clients_file=config.api_clients_file,  # named clients, re-read as they change
            store=store,
            validator=runtime.validator,
            clock=clock,
            kick=lambda: tasks.track(worker.kick()),
            # Refuse at the door what could never go (node.api.door).
            # Only a hub named in node.toml may know countries outside the directory.
            door=Door(directory, refresh, lambda _: config.hub_url is not None),
        )
        api_app = create_api_app(api_context)
        api_host, api_port = config.api_address
        # The officer console under /console on the same listener (node.console.app).
        mount_console(
            api_app,
            ConsoleContext(
                api=api_context,
                users_file=users_path(config.directory),
                session_key=session_key(config.directory),
                issuer_name=config.name,
                # A cookie marked Secure is not sent back over plain HTTP: mark it unless
                # the console is on loopback, where a TLS proxy in front is not needed.
                secure_cookie=not _loopback(api_host),
                metrics=observer.metrics,
            ),
        )
        api = await serve(stack, api_app, api_host, api_port, ssl_context=None, access_log=False)

        tasks.every(scheduler, worker.run_once, outbox_interval, "outbox")
        tasks.every(
            scheduler,
            # A process that is not leading keeps its cursor at the newest event, so that
            # on taking over it logs from then on, not again what the old leader logged.
            leadership.only(observer.tailer.run_once, meanwhile=observer.tailer.start),
            outbox_interval,
            "event-log",
        )
        # Each API client's webhook gets the event feed (node.api.webhooks), as often.
        webhook_session = await stack.enter_async_context(aiohttp.ClientSession())
        webhooks = WebhookSender(
            store, config.api_clients_file, webhook_session, clock=clock,
            backoff=Backoff(cap=timedelta(seconds=config.retry_cap_seconds)),
        )  # fmt: skip
        tasks.every(scheduler, leadership.only(webhooks.run_once), outbox_interval, "webhooks")
        tasks.every(
            scheduler, leadership.only(_pulling(puller, directory, config)),
            timedelta(seconds=config.hub_poll_seconds), "hub-pull",
            next_run_time=datetime.now(UTC),  # at start too: what waited while we were down
        )  # fmt: skip
        tasks.every(scheduler, refresh, interval, "directory-refresh")

        def bootstrapped() -> bool:
            # A directory, and (for a registry with a timestamp role) its timestamp: a
            # directory trusted without one is no use (node.directory.freshness).
            listed = refresher.trusted.current
            return listed is not None and (
                listed.timestamp_keys is None or refresher.timestamp.current is not None
            )

        if not bootstrapped():

            async def bootstrap() -> None:
                if not bootstrapped():
                    await refresh()
                if bootstrapped():
                    scheduler.remove_job("directory-bootstrap")

            tasks.every(scheduler, bootstrap, BOOTSTRAP_INTERVAL, "directory-bootstrap")
        # Taken (or confirmed) before the jobs start and every few seconds after, so a
        # process takes over the run-once jobs soon after the one running them dies.
        await leadership.check()
        tasks.every(scheduler, leadership.check, LEADERSHIP_INTERVAL, "leadership")
        scheduler.start()
        stack.callback(scheduler.pause)

        listening = Listening(
            country=config.country,
            exchange_url="none (through the hub only)"
            if exchange is None
            else f"https://{url_host(config.listen_host)}:{bound_port(exchange)}",
            api_url=f"http://{url_host(api_host)}:{bound_port(api)}",
            metrics_url=None if observer.urls is None else observer.urls.metrics,
            ready_url=None if observer.urls is None else observer.urls.ready,
        )
        log.info(
            "node %s ready: exchange %s, api %s, metrics %s",
            config.country, listening.exchange_url, listening.api_url,
            listening.metrics_url or "off ([metrics] listen is not set)",
        )  # fmt: skip
        if announce_on is not None and exchange is not None:
            await _announce(stack, config, runtime, bound_port(exchange), announce_on)
        elif announce_on is not None:
            log.warning("not announced by mDNS: this node has no endpoint to announce")
        if ready is not None:
            ready(listening)
        await stop.wait()
        log.info("node %s stopping", config.country)
    log.info("node %s stopped", config.country)


async def _announce(
    stack: AsyncExitStack,
    config: NodeConfig,
    runtime: NodeRuntime,
    port: int,
    interfaces: Sequence[str],
) -> None:
    """Announce this node by mDNS on `interfaces` (all IPv4 ones when empty).

    Announcing grants nothing: a peer uses the endpoint only if the announced pin is in
    the signed directory, and pins the connection to the directory's pins anyway.
    """
    from node.transport.discovery import Announcement, Announcer

    assert runtime.tls is not None  # from_config sets it
    host = interfaces[0] if interfaces else config.listen_host
    announcement = Announcement(
        country=config.country,
        name=config.name,
        host="127.0.0.1" if host in ("0.0.0.0", "localhost") else host,
        port=port,
        # The pin presented at start: the announcement is made once, and a peer checks
        # whatever it announces against the directory's pins anyway.
        tls_pin=runtime.tls.presented.pin,
        signing_key_id=runtime.signing_key_id,
        version=__version__,
    )
    announcer = Announcer(announcement, interfaces=list(interfaces) or None)
    await announcer.async_register()
    stack.push_async_callback(announcer.async_close)
    log.info("announced by mDNS as %s", announcer.instance_name)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _pulling(
    puller: HubPuller, directory: Callable[[], Directory], config: NodeConfig
) -> Callable[[], Awaitable[None]]:
    """The pull job: quiet while there is no hub to pull from, one line when it fails."""

    async def pull() -> None:
        try:
            if config.hub_url is None and directory().hub is None:
                return
        except DirectoryError:
            return
        try:
            taken = await puller.run_once()
        except HubError as e:
            log.warning("hub inbox: cannot pull now: %s", e)
            return
        if taken:
            log.info("hub inbox: %d envelope(s) taken from the hub", taken)

    return pull
