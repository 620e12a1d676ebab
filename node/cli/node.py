"""`ephyto node ...`: create this node's identity, configure its registry, run it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node.cli import api_clients, backup, hsm_import, init_discover, migrate, protect_keys
from node.cli.config_flags import (
    ANCHOR_FILE,
    add_node_flags,
    apply_node,
    flags_given,
    registry_flags,
    with_registry,
    write_configured,
)
from node.clock import SystemClock
from node.commandline import dir_argument, run_until_signalled
from node.errors import InputError
from node.identity.config import CONFIG_FILE, dump_config, load_config, parse_config
from node.identity.country import check_assigned_country
from node.identity.enrolment import format_time
from node.identity.store import init_node, request_endpoint_change, rotate_keys

DEFAULT_DIR = Path("ephyto-node")


def add_parser(commands: Any) -> None:
    node = commands.add_parser(
        "node",
        help="create this node's identity (keys, config, enrolment request)",
        description="Manage this node's identity.",
    )
    sub = node.add_subparsers(dest="node_command", metavar="ACTION", required=True)

    init = sub.add_parser(
        "init",
        help="create keys, config and an enrolment request",
        description="Create the node's keys (Ed25519 signing, X25519 encryption, ECDSA P-256 "
        "TLS with a self-signed certificate), its config (node.toml) and "
        "enrolment-request.json, which proves possession of each key. Private keys and "
        "the config are written with mode 0600. An existing identity is never overwritten.",
    )
    init.add_argument(
        "--country",
        required=True,
        metavar="CC",
        help="the NPPO's country: an officially assigned ISO 3166-1 alpha-2 code, e.g. NL",
    )
    init.add_argument(
        "--test-country",
        action="store_true",
        help="also accept a user-assigned code (AA, QM-QZ, XA-XZ, ZZ), for a test network",
    )
    init.add_argument("--name", required=True, metavar="NAME", help="the NPPO's name")
    init.add_argument(
        "--endpoint",
        metavar="https://HOST:PORT",
        help="the node's direct HTTPS endpoint; without one the node is reachable only "
        "through the hub",
    )
    init.add_argument(
        "--dir",
        type=Path,
        default=Path("ephyto-node"),
        metavar="DIR",
        dest="directory",
        help="where to create the identity (default: ./ephyto-node)",
    )
    init_discover.add_arguments(init)
    init.set_defaults(func=_init)

    configure = sub.add_parser(
        "configure",
        help="set the registry URL and the maintainers' trust anchor, and other settings",
        description="Point the node at its registry: the URL of the signed directory "
        "(normally ending in /directory.json) and the maintainers' trust anchor (the "
        "registry's maintainers/maintainers.json, checked with the maintainer by another "
        f"channel). The anchor is copied into the node directory as {ANCHOR_FILE}. The "
        "other flags change one setting of node.toml each, with or without --registry; "
        "a bad value changes nothing.",
    )
    configure.add_argument(
        "--registry",
        metavar="URL",
        help="the URL of the registry's directory.json (required unless --discover)",
    )
    configure.add_argument(
        "--anchor",
        type=Path,
        metavar="FILE",
        help="the maintainers' JSON file (required unless --discover)",
    )
    init_discover.add_arguments(configure)
    configure.add_argument(
        "--api-port",
        type=int,
        metavar="PORT",
        help="port of the national-system API (default: the exchange port + 1)",
    )
    configure.add_argument(
        "--retry-cap",
        type=int,
        metavar="SECONDS",
        help="longest wait between delivery attempts to a partner that is down (default 600)",
    )
    add_node_flags(configure)
    dir_argument(configure, DEFAULT_DIR, "node")
    configure.set_defaults(func=_configure)

    rotate = sub.add_parser(
        "rotate-keys",
        help="make new signing, encryption and TLS keys and a rotation request for the registry",
        description="Create the node's next Ed25519 signing, X25519 encryption and ECDSA "
        "P-256 TLS keys (with the TLS key's self-signed certificate) next to the current ones "
        "(mode 0600, never overwriting a file) and rotation-request.json, signed by the "
        "CURRENT signing key; the new keys are valid for two years. The node keeps using its "
        "current keys; once the registry publishes the new ones it decrypts with either, "
        "and from halfway through the overlap it signs with the new key and presents its "
        "new TLS certificate (so that partners have time to refresh). node.toml gains "
        "[keys] next_signing, next_encryption, next_tls_key, next_tls_certificate. A running "
        "node loads them at the directory refresh that lists them (no restart). With "
        "--finish, once the node's directory no longer lists the old "
        "keys as valid (the overlap is over): the next keys become the current ones, the old "
        "private keys are kept in keys/retired/, and another rotation can start.",
    )
    dir_argument(rotate, DEFAULT_DIR, "node")
    rotate.add_argument(
        "--finish",
        action="store_true",
        help="after the overlap: make the next keys the current ones (refused, changing "
        "nothing, while the directory still lists the old keys as valid)",
    )
    rotate.set_defaults(func=_rotate_keys)

    change = sub.add_parser(
        "change-endpoint",
        help="ask the registry to move this node's direct endpoint, or to list it hub-only",
        description="Write endpoint-change-request.json, signed by the node's current "
        "signing key, for the registry maintainer (`ephyto registry set-endpoint`). The TLS "
        "key and pin stay: partners pin the key, not the host name. Until the registry "
        "publishes the change, partners keep using the endpoint listed now, so keep it "
        "answering until then.",
    )
    where = change.add_mutually_exclusive_group(required=True)
    where.add_argument("--endpoint", metavar="https://HOST:PORT", help="the new direct endpoint")
    where.add_argument(
        "--hub-only",
        action="store_true",
        help="no direct endpoint: partners reach this node only through the hub",
    )
    dir_argument(change, DEFAULT_DIR, "node")
    change.set_defaults(func=_change_endpoint)

    serve = sub.add_parser(
        "serve",
        help="run the node: exchange (mutual TLS) and API listeners, outbox, directory refresh",
        description="Run the node until SIGINT or SIGTERM: the exchange endpoint over mutual "
        "TLS on [listen], the national-system API over plain HTTP on [api] (keep it on "
        "loopback or behind a TLS reverse proxy), the outbox and the directory refresh. "
        "Prints one line once both listeners are up; logs go to stderr.",
    )
    dir_argument(serve, DEFAULT_DIR, "node")
    serve.add_argument("-v", "--verbose", action="store_true", help="log debugging detail as well")
    serve.add_argument(
        "--announce",
        action="append",
        nargs="?",
        const="",
        metavar="IP",
        help="announce this node by mDNS (_ephyto._tcp) on IP (repeatable; no IP: all IPv4 "
        "interfaces); discovery never grants trust, the directory does",
    )
    serve.add_argument(
        "--accept-empty-store",
        action="store_true",
        help="start even though the store is empty while this node has exchanged before "
        "(store-state.json): its history and replay protection are gone; for a deliberate "
        "fresh start only, after trying to restore the store from a backup",
    )
    serve.set_defaults(func=_serve)
    api_clients.add_parser(sub, DEFAULT_DIR)
    backup.add_parser(sub, DEFAULT_DIR)
    migrate.add_node_parser(sub, DEFAULT_DIR)
    protect_keys.add_parser(sub, DEFAULT_DIR)
    hsm_import.add_parser(sub, DEFAULT_DIR)


def _init(args: argparse.Namespace) -> int:
    discover_fingerprint = init_discover.check_arguments(args)  # before anything is created
    check_assigned_country(args.country, test_network=args.test_country)
    result = init_node(
        args.directory,
        country=args.country,
        name=args.name,
        endpoint=args.endpoint,
        now=datetime.now(UTC),
    )
    # Paths and public identifiers only: private key material is never printed.
    print(f"created node identity in {result.directory}")
    print(f"  config           {result.config} (mode 0600: holds the API token)")
    for path in result.private_keys:
        print(f"  private key      {path} (mode 0600)")
    print(f"  TLS certificate  {result.certificate}")
    print(f"  enrolment        {result.request}")
    print(f"signing key id     {result.signing_key_id}")
    print(f"encryption key id  {result.encryption_key_id}")
    print(f"TLS pin            {result.tls_pin}")
    print(
        f"next: send {result.request} to the registry maintainer, and confirm the "
        "signing key id to them by another channel (phone, signed letter)"
    )
    if args.discover:
        return init_discover.discover_and_configure(args, discover_fingerprint, _configure_with)
    return 0


def _rotate_keys(args: argparse.Namespace) -> int:
    if args.finish:
        return _finish_rotation(args.directory)
    result = rotate_keys(args.directory, now=datetime.now(UTC))
    for path in result.private_keys:
        print(f"  private key      {path} (mode 0600)")
    print(f"  rotation         {result.request}")
    print(f"new signing key id     {result.signing_key_id}")
    print(f"new encryption key id  {result.encryption_key_id}")
    print(f"new TLS pin            {result.tls_pin}")
    print(f"new keys valid until   {format_time(result.valid_until)}")
    print(
        f"next: send {result.request} to the registry maintainer (`ephyto registry rotate`);"
        " the node keeps using its current keys until halfway through the overlap the"
        " registry sets"
    )
    return 0


def _change_endpoint(args: argparse.Namespace) -> int:
    endpoint = None if args.hub_only else args.endpoint
    path = request_endpoint_change(args.directory, endpoint, now=datetime.now(UTC))
    print(f"  endpoint change  {path}")
    print(f"  new endpoint     {endpoint or 'none: hub only'}")
    print(
        f"next: send {path} to the registry maintainer (`ephyto registry set-endpoint`);"
        " partners use the new endpoint once the registry publishes it"
    )
    return 0


def _finish_rotation(node_dir: Path) -> int:
    from node.directory import DirectoryError
    from node.directory.refresh import load
    from node.identity.next_keys import RotationFinishError, finish_rotation
    from node.service import DIRECTORY_CACHE, read_anchor

    now = datetime.now(UTC)
    config = load_config(node_dir / CONFIG_FILE)
    # The node's own trusted copy decides, as it decides for the running node: the
    # registry's word reaches the node only through a verified directory.
    try:
        directory = load(config.path(DIRECTORY_CACHE), read_anchor(config)).usable(now)
    except DirectoryError as e:
        raise RotationFinishError(
            f"{e}: start the node (`ephyto node serve`) so it refreshes its directory, then"
            " run --finish again; nothing changed"
        ) from None
    result = finish_rotation(node_dir, directory, now=now)
    print(f"finished the key rotation of {config.country} (directory version {directory.version})")
    print(f"current signing key id     {result.signing_key_id}")
    print(f"current encryption key id  {result.encryption_key_id}")
    if result.tls_pin is not None:
        print(f"current TLS pin            {result.tls_pin}")
    for path in result.retired:
        if path.suffix == ".crt":
            print(f"  old certificate kept     {path} (mode 0644)")
        else:
            print(f"  old private key kept     {path} (mode 0600)")
    # A running node holds its keys in memory, but reads its TLS files: it follows the
    # moved files at its next directory refresh (node.identity.next_keys.reload_tls).
    tls = " and finds its TLS files in their new place at its next directory refresh"
    print(
        f"a running node goes on with the keys it holds{tls if result.tls_pin else ''};"
        " a later `ephyto node rotate-keys` can start the next rotation"
    )
    return 0


def _configure_with(options: Sequence[str]) -> int:
    """`ephyto node configure OPTIONS`, parsed by the `node` command's own parser."""
    parser = argparse.ArgumentParser(prog="ephyto")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return _configure(parser.parse_args(["node", "configure", *options]))


def _configure(args: argparse.Namespace) -> int:
    digits = init_discover.check_arguments(args)
    settings = flags_given(args, node=True)
    if args.discover:
        if args.registry is not None or args.anchor is not None:
            raise InputError(
                "--discover finds the registry and its anchor: drop --registry and --anchor"
            )
        if settings:
            raise InputError(f"{settings[0]}: give it to a `configure` of its own, not --discover")
        load_config(args.directory / CONFIG_FILE)  # an identity to configure, before browsing
        return init_discover.discover_and_configure(args, digits, _configure_with)
    others = settings or args.api_port is not None or args.retry_cap is not None
    if not (registry_flags(args) or others):
        raise InputError(
            "give --registry URL and --anchor FILE, or --discover, or a setting to change"
        )
    path = args.directory / CONFIG_FILE
    config = load_config(path)
    if args.api_port is not None and not 0 < args.api_port < 65536:
        raise InputError(f"--api-port {args.api_port} is not a port (1-65535)")
    if args.retry_cap is not None and args.retry_cap < 1:
        raise InputError(f"--retry-cap {args.retry_cap}: must be 1 second or more")
    config = replace(
        config,
        api_port=config.api_port if args.api_port is None else args.api_port,
        retry_cap_seconds=config.retry_cap_seconds if args.retry_cap is None else args.retry_cap,
    )
    config, anchor = with_registry(apply_node(config, args), args)
    text = dump_config(config)
    parse_config(text, source=str(path), directory=args.directory)  # what is written loads
    write_configured(args.directory, path, text, anchor, args.registry)
    host, port = config.api_address
    print(f"  exchange      {config.listen_host}:{config.listen_port} (mutual TLS)")
    print(f"  api           {host}:{port} (plain HTTP: keep it on loopback)")
    if config.metrics_listen is not None:
        print(f"  metrics       {config.metrics_listen}")
    if anchor is not None:
        print(
            "check the maintainer key ids with the registry by another channel; then run "
            f"`ephyto node serve --dir {args.directory}`"
        )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from node.service import Listening, run_node  # aiohttp and APScheduler: load on use

    config = load_config(args.directory / CONFIG_FILE)

    def ready(listening: Listening) -> None:
        print(
            f"node {listening.country} ready: exchange {listening.exchange_url},"
            f" api {listening.api_url}",
            flush=True,
        )
        if listening.metrics_url is not None:  # a line of its own: scripts read the one above
            print(f"node {listening.country} metrics: {listening.metrics_url},"
                  f" ready {listening.ready_url}", flush=True)  # fmt: skip

    announce = None if args.announce is None else [ip for ip in args.announce if ip]
    return run_until_signalled(
        lambda stop: run_node(
            config,
            clock=SystemClock(),
            stop=stop,
            ready=ready,
            announce_on=announce,
            accept_empty_store=args.accept_empty_store,
        ),
        verbose=args.verbose,
        log_format=config.log_format,
    )
