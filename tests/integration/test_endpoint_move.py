"""An NPPO moves its node to another endpoint; its partners follow without a restart.

Real processes (node/demo/network.py): the registry, NL and US serve. US asks to move
(`node change-endpoint`), a maintainer records it (`registry set-endpoint`) and
publishes, and US restarts on its new port. NL learns the new endpoint from its
scheduled refresh alone and delivers there; its process is the same throughout.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.xml_build import to_xml_bytes
from node.cli.cert import sample_model_bytes
from node.demo.network import free_port_pair, network
from node.demo.scenario import routed
from node.identity.config import dump_config, load_config
from node.identity.enrolment import parse_endpoint
from tests.ephyto_cli import ok
from tests.integration.running_network import WAIT, delivered, refresh_every_second, trusted_nppos


def _listed_endpoint(directory: Path, country: str) -> str | None:
    nppos = trusted_nppos(directory)
    if nppos is None:
        return None
    entry = next(e for e in nppos if e["country"] == country)
    return str(entry["endpoint"])


def test_partners_follow_a_moved_endpoint_without_a_restart(tmp_path: Path) -> None:
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    with (
        (tmp_path / "demo.log").open("w") as log,
        network(tmp_path, log, ("NL", "US"), deferred=("NL", "US")) as net,
    ):
        for country in ("NL", "US"):
            refresh_every_second(net.nodes[country].directory)
            net.restart(country)
        nl_pid = net.pid("NL")
        us = net.nodes["US"]
        old = f"https://127.0.0.1:{us.exchange_port}"
        assert _listed_endpoint(net.nodes["NL"].directory, "US") == old

        # US moves: asks, the maintainer records and publishes, US restarts on the new port.
        port = free_port_pair()
        new = f"https://127.0.0.1:{port}"
        ok("node", "change-endpoint", "--endpoint", new, "--dir", us.directory)
        registry = tmp_path / "registry"
        ok("registry", "set-endpoint", us.directory / "endpoint-change-request.json",
            "--dir", registry)  # fmt: skip
        ok("registry", "publish", "--dir", registry, "--expires-in", "1d")
        net.kill("US")
        path = us.directory / "node.toml"
        config = load_config(path)
        config = dataclasses.replace(
            config, endpoint=parse_endpoint(new), listen_port=port, api_port=port + 1
        )
        path.write_text(dump_config(config), encoding="utf-8")
        us.exchange_port = port
        net.restart("US")

        deadline = time.monotonic() + WAIT
        while _listed_endpoint(net.nodes["NL"].directory, "US") != new:
            assert time.monotonic() < deadline, "NL never trusted the directory with the move"
            time.sleep(0.2)

        to_us = routed(phyto, exporter="NL", importer="US", number="NL-MOVED-0001")
        sent = net.api("NL", "POST", "/certificates", to_xml_bytes(to_us))
        body = delivered(net, "NL", sent["id"])
        assert (body["state"], body["outcome"], body["route"]) == (
            "delivered",
            "accepted",
            "direct",
        ), body
        received = net.api("US", "GET", "/certificates?direction=received")["certificates"]
        assert [m["number"] for m in received] == ["NL-MOVED-0001"]
        assert net.pid("NL") == nl_pid  # NL was never restarted
