"""The importing country answers, end to end between two real node processes over mutual
TLS (node/demo/network.py): NL sends a certificate to KE, KE rejects it through its API,
and NL's API shows the response on its certificate, with its event."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.xml_build import to_xml_bytes
from node.cli.cert import sample_model_bytes
from node.demo.network import Network, network
from node.demo.scenario import routed
from tests.integration.running_network import WAIT, delivered


def _post_json(net: Network, country: str, path: str, body: dict[str, str]) -> Any:
    node = net.nodes[country]
    request = urllib.request.Request(
        node.api_url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {node.api_token}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        assert response.headers["Location"].startswith("/api/v1/certificates/")
        return json.loads(response.read())


def _until(check: Any) -> Any:
    deadline = time.monotonic() + WAIT
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_the_importer_rejects_and_the_exporter_sees_it(tmp_path: Path) -> None:
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    with (tmp_path / "demo.log").open("w") as log, network(tmp_path, log, ("NL", "KE")) as net:
        cert = routed(phyto, exporter="NL", importer="KE", number="NL-RESP-0001")
        sent = net.api("NL", "POST", "/certificates", to_xml_bytes(cert))
        assert delivered(net, "NL", sent["id"])["state"] == "delivered"
        (received,) = net.api("KE", "GET", "/certificates?direction=received")["certificates"]

        answer = _post_json(
            net,
            "KE",
            f"/certificates/{received['id']}/response",
            {"decision": "rejected", "reason": "live pests found at inspection"},
        )
        assert answer["response"]["decision"] == "rejected"

        def shown() -> Any:
            body = net.api("NL", "GET", f"/certificates/{sent['id']}")
            return body if body["response"] is not None else None

        exporter_view = _until(shown)
        assert exporter_view is not None, "NL never received KE's response"
        assert exporter_view["response"] == {
            "decision": "rejected",
            "reason": "live pests found at inspection",
            "text": None,
            "at": answer["response"]["at"],
            "state": "received",
        }
        responded = [e for e in exporter_view["events"] if e["kind"] == "responded"]
        assert len(responded) == 1 and responded[0]["detail"]["from"] == "KE"

        def settled() -> Any:
            body = net.api("KE", "GET", f"/certificates/{received['id']}")
            return body if body["response"]["state"] == "delivered" else None

        assert _until(settled) is not None, "KE's response was never settled"
        feed = net.api("NL", "GET", "/events")["events"]
        assert any(e["kind"] == "responded" and e["certificate"] == sent["id"] for e in feed)
