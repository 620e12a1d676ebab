"""`ephyto node migrate` and `ephyto hub migrate`: bring a store's schema to the revision this
version's code needs, as an explicit step of an upgrade (a service refuses to start on a
store at another revision; docs/operations.md, "Upgrading and rolling back")."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from node.commandline import dir_argument
from node.store.database import Migrated

DESCRIPTION = (
    "Bring the {what}'s store to the newest schema revision this version knows, and say "
    "from which revision to which. Take a backup first: going back to the version before "
    "means restoring it. A store migrated by a newer version is refused, changing nothing. "
    "Stop the {what} first when it runs on PostgreSQL with several processes."
)


def add_node_parser(sub: Any, default_dir: Path) -> None:
    """The `migrate` action of `ephyto node`."""
    parser = sub.add_parser(
        "migrate",
        help="bring the node's store to this version's schema (after a backup)",
        description=DESCRIPTION.format(what="node"),
    )
    dir_argument(parser, default_dir, "node")
    parser.set_defaults(func=_migrate_node)


def add_hub_parser(sub: Any, default_dir: Path) -> None:
    """The `migrate` action of `ephyto hub`."""
    parser = sub.add_parser(
        "migrate",
        help="bring the hub's store to this version's schema (after a backup)",
        description=DESCRIPTION.format(what="hub"),
    )
    dir_argument(parser, default_dir, "hub")
    parser.set_defaults(func=_migrate_hub)


def _migrate_node(args: argparse.Namespace) -> int:
    from node.identity.config import CONFIG_FILE, load_config
    from node.store.store import Store  # SQLAlchemy and Alembic: load on use

    config = load_config(args.directory / CONFIG_FILE)

    async def run() -> tuple[str, Migrated]:
        store = Store.open(config.store_url())
        try:
            await store.check()  # a damaged SQLite file: refused, left as it is
            return store.name, await store.migrate()
        finally:
            await store.close()

    return _report(*asyncio.run(run()))


def _migrate_hub(args: argparse.Namespace) -> int:
    from node.hub.config import CONFIG_FILE, load_hub_config
    from node.hub.store import HubStore  # SQLAlchemy and Alembic: load on use

    config = load_hub_config(args.directory / CONFIG_FILE)

    async def run() -> tuple[str, Migrated]:
        store = HubStore.open(config.store_url())
        try:
            await store.check()
            return store.name, await store.migrate()
        finally:
            await store.close()

    return _report(*asyncio.run(run()))


def _report(name: str, migrated: Migrated) -> int:
    if migrated.before is None:
        print(f"created the store at {name} at schema revision {migrated.after}")
    elif migrated.before == migrated.after:
        print(
            f"the store at {name} is at schema revision {migrated.after} already, the newest"
            " this version knows: nothing to do"
        )
    else:
        print(
            f"migrated the store at {name} from schema revision {migrated.before}"
            f" to {migrated.after}"
        )
    return 0
