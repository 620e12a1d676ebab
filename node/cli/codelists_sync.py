"""`ephyto codelists sync --from-hub`: the IPPC lists from the node's hub, as new versions.

Shell: the node's hub client (node.transport.hub_client) asks every look-up; the pure
node.codelists.hub_lists turns the answers into lists; the changed ones are written, one
`<name>.json` each, into the folder the node and our hub load at start. All or nothing:
a look-up that fails or answers what cannot be a list writes no list at all.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from node.clock import SystemClock
from node.codelists.directory import load_directory
from node.codelists.hub_lists import HUB_LOOKUPS, HubLookup, Synced, languages, synced_lists
from node.codelists.lists import bundled
from node.directory import Directory
from node.errors import ConfigError, InputError
from node.fileio import write_atomic
from node.identity.config import CONFIG_FILE, NodeConfig, load_config

DEFAULT_NODE_DIR = Path("ephyto-node")


def add_parser(sub: Any) -> None:
    """Add `sync` to `ephyto codelists`."""
    sync = sub.add_parser(
        "sync",
        help="fetch the IPPC lists (treatment types, statements, ...) from the hub",
        description="Ask the node's hub (node.toml's [hub] url, the IPPC Hub; else the hub "
        "the directory lists) for every harmonised list it serves (GetTreatmentTypes, "
        "GetConditions, GetStatements, GetProductDescriptions, GetIntendedUses, "
        "GetAdditionalDeclarations, GetPesticides, GetMeanOfTransports, GetUnitMeasures, "
        "GetPackageTypes), in every language, and write each list that changed as a new "
        "version dated today (YYYY.MM.DD) into DIR. Nothing is written when a look-up fails "
        "or answers malformed data. The node loads NODE_DIR/codelists at start (a hub, "
        "HUB_DIR/codelists); `ephyto registry codelists import DIR` publishes the lists to "
        "every node.",
    )
    sync.add_argument(
        "--from-hub",
        action="store_true",
        required=True,
        help="from the node's hub (the only source there is)",
    )
    sync.add_argument(
        "--node-dir",
        type=Path,
        default=DEFAULT_NODE_DIR,
        metavar="NODE_DIR",
        help=f"the node whose hub and TLS identity are used (default: ./{DEFAULT_NODE_DIR})",
    )
    sync.add_argument(
        "--dir",
        "--out",
        dest="out",
        type=Path,
        metavar="DIR",
        help="where to write the lists (default: NODE_DIR/codelists, the folder the node "
        "loads at start)",
    )
    sync.set_defaults(func=_sync)


def _sync(args: argparse.Namespace) -> int:
    # Imported here: `ephyto --help` should not pay for the network stack.
    from node.directory.codelist_fetch import CODELISTS_DIR

    config = load_config(args.node_dir / CONFIG_FILE)
    out: Path = args.out if args.out is not None else config.path(CODELISTS_DIR)
    installed = load_directory(out, bundled()) if out.is_dir() else bundled()
    hub, answers = asyncio.run(_ask_hub(config))
    try:
        results = synced_lists(
            answers, hub=hub, day=SystemClock().now().date(), installed=installed
        )
    except InputError as exc:
        raise InputError(f"the hub's answer is refused: {exc}; no list written") from None
    written = [r for r in results if r.changed and r.code_list is not None]
    if written:
        out.mkdir(mode=0o755, parents=True, exist_ok=True)
    for result in written:
        assert result.code_list is not None
        write_atomic(out / f"{result.lookup.name}.json", result.code_list.to_json_bytes(), 0o644)
    _report(results, hub, out)
    return 0


async def _ask_hub(config: NodeConfig) -> tuple[str, dict[HubLookup, Sequence[Any]]]:
    """The hub's URL and its answer to every look-up; InputError naming one that failed."""
    from node.transport.hub_client import HubError, node_hub_client

    answers: dict[HubLookup, Sequence[Any]] = {}
    async with node_hub_client(config, _directory(config), SystemClock()) as client:
        for lookup in HUB_LOOKUPS:
            try:
                answers[lookup] = (await client.call(lookup.request(), lookup.response)).entries
            except HubError as exc:
                raise InputError(f"{lookup.operation}: {exc}; no list written") from None
        return client.url, answers


def _directory(config: NodeConfig) -> Callable[[], Directory]:
    """The node's trusted copy of the directory, which names our hub and its TLS pins (not
    needed for a hub named in node.toml)."""
    from node.directory.refresh import load
    from node.service import DIRECTORY_CACHE, read_anchor

    clock = SystemClock()
    if config.hub_url is not None:

        def unused() -> Directory:
            raise ConfigError("node.toml names the hub: the directory is not asked")

        return unused
    trusted = load(config.path(DIRECTORY_CACHE), read_anchor(config))
    if trusted.current is None:
        raise ConfigError(
            f"{config.directory}: the node has no directory yet, so no hub: start it (`ephyto"
            " node serve`) so it fetches one, or name the IPPC Hub in node.toml's [hub]"
        )
    return lambda: trusted.usable(clock.now())


def _report(results: list[Synced], hub: str, out: Path) -> None:
    print(f"code lists from {hub}:")
    for result in results:
        name, code_list = result.lookup.name, result.code_list
        if code_list is None:
            print(f"  {name:<24}{'-':<14}{'':>12}  the hub holds none: not written")
            continue
        what = f"written to {out / f'{name}.json'}" if result.changed else "unchanged"
        codes = f"{len(code_list.codes)} codes"
        print(
            f"  {name:<24}{code_list.version:<14}{codes:>12}"
            f"  {', '.join(languages(code_list))}  {what}"
        )
    if any(r.changed for r in results):
        print(
            "the node uses them from its next start (if DIR is its codelists folder);"
            f" `ephyto registry codelists import {out}` publishes them to every node"
        )
