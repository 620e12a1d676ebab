"""`ephyto node api-client add|list|revoke|webhook`: the named clients of the national-system
API, and their webhooks."""

from __future__ import annotations

import argparse
from typing import Any

from node.clock import SystemClock
from node.commandline import dir_argument
from node.identity.api_clients import (
    SCOPES,
    add_client,
    add_webhook_client,
    read_clients,
    revoke_client,
    set_webhook,
)
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
        "client `national-system` with every scope. A client with the read scope may have "
        "a webhook: the node POSTs the event feed to it, signed with a secret printed once.",
    )
    actions = clients.add_subparsers(dest="client_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a client and print its token once")
    add.add_argument("name", metavar="NAME", help="a-z, 0-9, '.', '_', '-'; up to 64")
    add.add_argument(
        "--scope", action="append", choices=SCOPES, required=True, dest="scopes",
        help="a scope the client gets (repeat for more)",
    )  # fmt: skip
    add.add_argument(
        "--webhook", metavar="URL",
        help="POST the event feed to URL (needs the read scope); prints its secret once",
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
    hook = actions.add_parser(
        "webhook", help="give a client a webhook (or a new URL) and print its new secret once"
    )
    hook.add_argument("name", metavar="NAME")
    hook.add_argument("url", metavar="URL", help="https:// (or http://) URL the events go to")
    dir_argument(hook, default_dir, "node")
    hook.set_defaults(func=_webhook)


def _config(args: argparse.Namespace) -> NodeConfig:
    return load_config(args.directory / CONFIG_FILE)


def _add(args: argparse.Namespace) -> int:
    path = _config(args).api_clients_file
    now = SystemClock().now()
    if args.webhook is None:
        token, secret = add_client(path, args.name, args.scopes, now=now), None
    else:
        token, secret = add_webhook_client(path, args.name, args.scopes, args.webhook, now=now)
    print(f"added API client {args.name} ({', '.join(sorted(set(args.scopes)))})")
    print(f"token (shown once, keep it secret): {token}")
    if secret is not None:
        print(f"webhook {args.webhook}")
        print(f"webhook secret (shown once, keep it secret): {secret}")
    return 0


def _webhook(args: argparse.Namespace) -> int:
    secret = set_webhook(_config(args).api_clients_file, args.name, args.url)
    print(f"webhook of API client {args.name}: {args.url}")
    print(f"webhook secret (shown once, keep it secret): {secret}")
    return 0


def _list(args: argparse.Namespace) -> int:
    clients = read_clients(_config(args).api_clients_file)
    if not clients:
        print("no named API clients (node.toml's api_token is the client national-system)")
    for c in clients:
        revoked = "" if c.revoked is None else f"  revoked {c.revoked.isoformat()}"
        scopes = ",".join(sorted(c.scopes))
        hook = "" if c.webhook is None else f"  webhook {c.webhook.url}"
        print(f"{c.name}  {scopes}  created {c.created.isoformat()}{revoked}{hook}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    revoked = revoke_client(_config(args).api_clients_file, args.name, now=SystemClock().now())
    assert revoked.revoked is not None
    print(f"revoked API client {revoked.name} at {revoked.revoked.isoformat()}")
    return 0
