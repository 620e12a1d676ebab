"""SIGKILL the sender during a burst of submissions; the national system retries each
with its Idempotency-Key: the sender stores each certificate once and the importer
receives each once (issue 11).

Real processes (`ephyto node serve`), real TLS, real SQLite files, real SIGKILL.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.xml_build import to_xml_bytes
from node.cli.cert import sample_model_bytes
from node.demo.network import Network, network
from node.demo.scenario import routed

COUNT = 16


def _submit(net: Network, number: str, xml: bytes) -> tuple[int, int] | None:
    """(status, id) of one keyed submission; None when the node did not answer."""
    node = net.nodes["NL"]
    request = urllib.request.Request(
        node.api_url + "/certificates",
        data=xml,
        method="POST",
        headers={
            "Authorization": f"Bearer {node.api_token}",
            "Content-Type": "application/xml",
            "Idempotency-Key": f"submit-{number}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, int(json.loads(response.read())["id"])
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{number}: {e.code} {e.read()[:300]!r}") from None
    except OSError:
        return None  # killed mid-request: the client saw a disconnect


def test_a_burst_retried_with_its_keys_after_a_sigkill_is_stored_once(tmp_path: Path) -> None:
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    certs = {
        f"NL-ONCE-{i:03d}": to_xml_bytes(
            routed(phyto, exporter="NL", importer="KE", number=f"NL-ONCE-{i:03d}")
        )
        for i in range(COUNT)
    }
    with (
        (tmp_path / "demo.log").open("w") as log,
        network(tmp_path, log, ("NL", "KE"), ("--retry-cap", "2")) as net,
        ThreadPoolExecutor(max_workers=COUNT) as pool,
    ):
        burst = {n: pool.submit(_submit, net, n, xml) for n, xml in certs.items()}
        # Kill once some answers are in and others are still in flight: the burst is
        # under way whatever the machine's speed.
        while sum(f.done() for f in burst.values()) < 3 and not all(
            f.done() for f in burst.values()
        ):
            time.sleep(0.01)
        net.kill("NL")
        first = {n: f.result() for n, f in burst.items()}
        net.restart("NL")
        # The client retries every submission with its key, answered or not.
        again = {n: pool.submit(_submit, net, n, xml) for n, xml in certs.items()}
        retried = {n: f.result() for n, f in again.items()}
        for number, answer in retried.items():
            assert answer is not None, number
            earlier = first[number]
            if earlier is not None:
                assert answer == earlier, (number, earlier, answer)  # the original answer
        assert len({message for _, message in retried.values()}) == COUNT

        deadline = time.monotonic() + 120
        while True:
            sent = net.api("NL", "GET", "/certificates?direction=sent&limit=1000")
            states = [m["state"] for m in sent["certificates"]]
            if states.count("delivered") == COUNT or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert sorted(m["number"] for m in sent["certificates"]) == sorted(certs)
        assert set(states) == {"delivered"}, sent
        received = net.api("KE", "GET", "/certificates?direction=received&limit=1000")
        assert sorted(m["number"] for m in received["certificates"]) == sorted(certs)
