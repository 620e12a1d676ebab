"""A newly published country exchanges with the running nodes, none of them restarted.

Real processes (node/demo/network.py): the registry and NL and KE serve; then US is
initialised, enrolled (`registry add`), published and started. NL and KE learn of US from
their scheduled directory refresh (every second here) alone, and certificates flow both
ways between NL and US.
"""

from __future__ import annotations

import time
from pathlib import Path

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.xml_build import to_xml_bytes
from node.cli.cert import sample_model_bytes
from node.demo.network import NodeHandle, free_port_pair, network
from node.demo.scenario import NAMES, routed
from node.identity.config import load_config
from tests.integration.running_network import WAIT, delivered, refresh_every_second, trusted_nppos


def _countries_known(directory: Path) -> set[str]:
    """The countries in the node's persisted (trusted) copy of the directory."""
    return {entry["country"] for entry in trusted_nppos(directory) or []}


def _wait_until_known(directory: Path, country: str) -> None:
    deadline = time.monotonic() + WAIT
    while country not in _countries_known(directory):
        assert time.monotonic() < deadline, f"{directory.name} never trusted a copy with {country}"
        time.sleep(0.2)


def test_a_newly_published_country_exchanges_without_any_restart(tmp_path: Path) -> None:
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    with (
        (tmp_path / "demo.log").open("w") as log,
        # Deferred: started below, once their refresh is set to every second.
        network(tmp_path, log, ("NL", "KE"), deferred=("NL", "KE")) as net,
    ):
        for country in ("NL", "KE"):
            refresh_every_second(net.nodes[country].directory)
            net.restart(country)
        pids = {country: net.pid(country) for country in ("NL", "KE")}
        assert _countries_known(net.nodes["NL"].directory) == {"NL", "KE"}

        # Onboarding US while NL and KE keep running.
        registry = tmp_path / "registry"
        us = NodeHandle("US", tmp_path / "US", free_port_pair())
        net._ephyto("node", "init", "--country", "US", "--name", NAMES["US"],
                    "--endpoint", f"https://127.0.0.1:{us.exchange_port}",
                    "--dir", us.directory)  # fmt: skip
        net._ephyto("registry", "add", us.directory / "enrolment-request.json", "--dir", registry)
        net._ephyto("registry", "publish", "--dir", registry, "--expires-in", "1d")
        net._ephyto("node", "configure", "--dir", us.directory, "--registry", net.registry_url,
                    "--anchor", registry / "maintainers" / "maintainers.json")  # fmt: skip
        refresh_every_second(us.directory)
        us.api_token = load_config(us.directory / "node.toml").api_token
        net.nodes["US"] = us
        net.restart("US")  # its first start

        for country in ("NL", "KE"):
            _wait_until_known(net.nodes[country].directory, "US")

        to_us = routed(phyto, exporter="NL", importer="US", number="NL-ONBOARD-0001")
        sent = net.api("NL", "POST", "/certificates", to_xml_bytes(to_us))
        to_nl = routed(phyto, exporter="US", importer="NL", number="US-ONBOARD-0001")
        back = net.api("US", "POST", "/certificates", to_xml_bytes(to_nl))

        nl_to_us = delivered(net, "NL", sent["id"])
        us_to_nl = delivered(net, "US", back["id"])
        assert (nl_to_us["state"], nl_to_us["outcome"]) == ("delivered", "accepted"), nl_to_us
        assert (us_to_nl["state"], us_to_nl["outcome"]) == ("delivered", "accepted"), us_to_nl
        assert nl_to_us["route"] == us_to_nl["route"] == "direct"

        received_us = net.api("US", "GET", "/certificates?direction=received")["certificates"]
        assert [m["number"] for m in received_us] == ["NL-ONBOARD-0001"]
        received_nl = net.api("NL", "GET", "/certificates?direction=received")["certificates"]
        assert [m["number"] for m in received_nl] == ["US-ONBOARD-0001"]

        # Nobody was restarted: the same processes as before US was published.
        assert {country: net.pid(country) for country in ("NL", "KE")} == pids
        for country in ("NL", "KE"):
            assert not (tmp_path / f"node-{country}-2.log").exists()
            log_text = (tmp_path / f"node-{country}-1.log").read_text(errors="replace")
            assert "trusted a new directory: using version 2" in log_text, log_text
