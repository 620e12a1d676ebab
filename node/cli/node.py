"""`ephyto node ...`: create and inspect this node's identity."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node.identity.store import init_node


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
        "--country", required=True, metavar="CC", help="ISO 3166-1 alpha-2 code, e.g. NL"
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
    init.set_defaults(func=_init)


def _init(args: argparse.Namespace) -> int:
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
    return 0
