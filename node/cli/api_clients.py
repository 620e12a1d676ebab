"""`ephyto node api-client add|list|revoke`: the named clients of the national-system API."""

from __future__ import annotations

import argparse
from typing import Any

from node.clock import SystemClock
from node.commandline import dir_argument
from node.identity.api_clients import SCOPES, add_client, read_clients, revoke_client
from node.identity.config import CONFIG_FILE, NodeConfig, load_config


def add_parser(sub: Any, default_dir: Any) -> None:
    """The `api-client` action of `ephyto node`."""
    clients = sub.add_parser(
        "api-client",
        help="add, list or revoke the national-system API's named clients",
        description="Each client of the API has a name, its own token and scopes: submit "
        "(submit, withdraw, replace), read (every GET), respond, admin (everything). The "
        "token is printed once by `add`; the node keeps only its SHA-256, in "
        "api-clients.json beside node.toml (mode 0600). A running node takes a change at "
        "its next request, without a restart. node.toml's api_token stays valid as the "
        "client `national-system` with every scope.",
    )
    actions = clients.add_subparsers(dest="client_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a client and print its token once")
    add.add_argument("name", metavar="NAME", help="a-z, 0-9, '.', '_', '-'; up to 64")
    add.add_argument(
        "--scope", action="append", choices=SCOPES, required=True, dest="scopes",
        help="a scope the client gets (repeat for more)",
    )  # fmt: skip
    dir_argument(add, default_dir, "node")
    add.set_defaults(func=_add)
    listing = actions.add_parser("list", help="the clients: names, scopes, created, revoked")
    dir_argument(listing, default_dir, "node")
    listing.set_defaults(func=_list)
    revoke = actions.add_parser("revoke", help="refuse a client's token from now on")
    revoke.add_argument("name", metavar="NAME")
    dir_argument(revoke, default_dir, "node")
    revoke.set_defaults(func=_revoke)


def _config(args: argparse.Namespace) -> NodeConfig:
    return load_config(args.directory / CONFIG_FILE)


def _add(args: argparse.Namespace) -> int:
    path = _config(args).api_clients_file
    token = add_client(path, args.name, args.scopes, now=SystemClock().now())
    print(f"added API client {args.name} ({', '.join(sorted(set(args.scopes)))})")
    print(f"token (shown once, keep it secret): {token}")
    return 0


def _list(args: argparse.Namespace) -> int:
    clients = read_clients(_config(args).api_clients_file)
    if not clients:
        print("no named API clients (node.toml's api_token is the client national-system)")
    for c in clients:
        revoked = "" if c.revoked is None else f"  revoked {c.revoked.isoformat()}"
        scopes = ",".join(sorted(c.scopes))
        print(f"{c.name}  {scopes}  created {c.created.isoformat()}{revoked}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    revoked = revoke_client(_config(args).api_clients_file, args.name, now=SystemClock().now())
    assert revoked.revoked is not None
    print(f"revoked API client {revoked.name} at {revoked.revoked.isoformat()}")
    return 0
