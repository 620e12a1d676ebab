"""Helpers for tests that run the demo network's real processes (node/demo/network.py)
and change it while it runs: nodes that refresh the directory every second, what a node
trusts now, and waiting for a certificate to be delivered."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from node.demo.network import Network
from node.identity.config import dump_config, load_config
from node.service import DIRECTORY_CACHE

WAIT = 90.0  # seconds: a bound on each wait, not a timing under test


def refresh_every_second(directory: Path) -> None:
    """Make the node in `directory` refresh its directory every second (from its next start)."""
    path = directory / "node.toml"
    config = dataclasses.replace(load_config(path), refresh_seconds=1)
    path.write_text(dump_config(config), encoding="utf-8")


def trusted_nppos(directory: Path) -> list[dict[str, Any]] | None:
    """The NPPO entries of the node's persisted (trusted) copy of the directory; None
    while it has none it can read."""
    try:
        plain = json.loads((directory / DIRECTORY_CACHE).read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    nppos: list[dict[str, Any]] = plain["signed"]["nppos"]
    return nppos


def delivered(net: Network, sender: str, message: int) -> dict[str, object]:
    """The sender's view of `message` once delivered or failed (or when WAIT runs out)."""
    deadline = time.monotonic() + WAIT
    while True:
        body: dict[str, object] = net.api(sender, "GET", f"/certificates/{message}")
        if body["state"] in ("delivered", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.1)
