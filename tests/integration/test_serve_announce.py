"""Running nodes announce themselves by mDNS; `ephyto discover` checks them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.demo.network import network
from tests.cli.test_cert_cli import ephyto
from tests.integration.test_discovery import _loopback_multicast_problem


def test_served_nodes_are_discovered_and_match_the_directory(tmp_path: Path) -> None:
    if problem := _loopback_multicast_problem():
        pytest.skip(f"{problem} (try `ip link set lo multicast on`)")
    with (
        (tmp_path / "demo.log").open("w") as log,
        network(tmp_path, log, ("NL", "KE"), serve_args=("--announce", "127.0.0.1")) as net,
    ):
        result = ephyto(
            "discover",
            "--interface",
            "127.0.0.1",
            "--timeout",
            "3",
            "--json",
            "--config",
            net.nodes["NL"].directory / "node.toml",
        )
        assert result.returncode == 0, result.stderr
        seen = {row["country"]: row for row in json.loads(result.stdout)}
        assert {"NL", "KE"} <= set(seen)
        for country in ("NL", "KE"):
            assert seen[country]["directory"] == "matches directory", seen[country]
            assert seen[country]["port"] == net.nodes[country].exchange_port
