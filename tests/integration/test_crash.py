"""SIGKILL the sender or the receiver at any moment: nothing lost, nothing stored twice.

Real processes (`ephyto node serve`), real TLS, real SQLite files, real SIGKILL.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.xml_build import to_xml_bytes
from node.cli.cert import sample_model_bytes
from node.demo.network import Network, network
from node.demo.scenario import routed

COUNT = 30


def _wait_all_delivered(
    net: Network, expected: int, timeout: float = 120
) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        sent = net.api("NL", "GET", "/certificates?direction=sent&limit=1000")["certificates"]
        if (
            sum(1 for m in sent if m["state"] == "delivered") == expected
            or time.monotonic() > deadline
        ):
            return list(sent)
        time.sleep(0.2)


def test_sigkill_of_sender_and_receiver_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    certs = [
        routed(phyto, exporter="NL", importer="KE", number=f"NL-CRASH-{i:03d}")
        for i in range(COUNT)
    ]
    rng = random.Random(2026)
    with (
        (tmp_path / "demo.log").open("w") as log,
        network(
            # A short retry cap: the test waits for a partner's return in seconds, not minutes.
            tmp_path,
            log,
            ("NL", "KE"),
            ("--retry-cap", "2"),
        ) as net,
    ):
        for i, cert in enumerate(certs):
            net.api("NL", "POST", "/certificates", to_xml_bytes(cert))
            if i == 6:
                # The receiver dies while the sender is delivering.
                time.sleep(rng.uniform(0, 0.3))
                net.kill("KE")
            elif i == 12:
                net.restart("KE")
            elif i in (18, 25):
                # The sender dies with messages queued, claimed, or in flight.
                time.sleep(rng.uniform(0, 0.3))
                net.kill("NL")
                net.restart("NL")
        # And the receiver once more, at a random moment while the tail drains.
        time.sleep(rng.uniform(0, 0.5))
        net.kill("KE")
        net.restart("KE")

        sent = _wait_all_delivered(net, COUNT)
        assert len(sent) == COUNT, "the sender stored a submission twice or lost one"
        assert {m["state"] for m in sent} == {"delivered"}, sent
        assert {m["outcome"] for m in sent} == {"accepted"}
        received = net.api("KE", "GET", "/certificates?direction=received&limit=1000")
        numbers = sorted(m["number"] for m in received["certificates"])
        assert numbers == sorted(c.number for c in certs), "the receiver lost or doubled one"
