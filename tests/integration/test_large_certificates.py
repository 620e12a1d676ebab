"""A certificate with attachments up to the API's limit goes end to end, on both routes.

Real processes, as operators run them: a registry, a hub (`ephyto hub serve`) and three
nodes (`ephyto node serve`). NL's national system submits two certificates of almost
5 MiB each (a scanned document attached) through NL's API: one to KE, which has a
direct endpoint, and one to CL, which is reached through the hub only (CL pulls). Each
arrives byte for byte. And a body over the limit is refused by the running node with a
413 that names the limit it really applies.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from node.api.app import MAX_CERTIFICATE_BYTES
from node.certificate.jsonmodel import certificate_from_json
from node.certificate.model import Attachment, Certificate, ReferencedDocument
from node.certificate.xml_build import to_xml_bytes
from node.cli.cert import sample_model_bytes
from node.demo.network import Network, network
from node.demo.scenario import routed
from node.envelope.envelope import EnvelopeHeader, seal
from node.hub.config import DEFAULT_MAX_CONTENT_BYTES
from node.runtime import DEFAULT_MAX_ENVELOPE_BYTES

WAIT = 120.0  # a bound on each wait, not a timing under test


def _near_the_limit(cert: Certificate) -> Certificate:
    """`cert` with a scan attached that brings its XML to within 4 KiB of the limit."""

    def attached(size: int) -> Certificate:
        scan = Attachment(os.urandom(size), "application/pdf", "scan.pdf")
        reference = ReferencedDocument(type_code="916", id="SCAN-1", attachments=(scan,))
        return replace(cert, references=(*cert.references, reference))

    room = MAX_CERTIFICATE_BYTES - len(to_xml_bytes(attached(0))) - 4096
    return attached(3 * (room // 4))


def _request(net: Network, country: str, method: str, path: str, body: bytes | None) -> Any:
    node = net.nodes[country]
    request = urllib.request.Request(
        node.api_url + path,
        data=body,
        method=method,
        headers={"Authorization": f"Bearer {node.api_token}", "Content-Type": "application/xml"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        data = response.read()
        return json.loads(data) if response.headers.get_content_type().endswith("json") else data


def _settled(net: Network, message: int) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while True:
        body: dict[str, Any] = _request(net, "NL", "GET", f"/certificates/{message}", None)
        if body["state"] in ("delivered", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def _received(net: Network, country: str, number: str) -> bytes:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        listing = _request(net, country, "GET", "/certificates?direction=received", None)
        found = [c for c in listing["certificates"] if c["number"] == number]
        if found:
            xml: bytes = _request(net, country, "GET", f"/certificates/{found[0]['id']}/xml", None)
            return xml
        time.sleep(0.2)
    raise AssertionError(f"{country} did not receive {number} within {WAIT:.0f} s")


def test_the_largest_certificate_fits_both_routes() -> None:
    # Sealed, the largest certificate the API takes fits what a hub takes as Content by
    # default and what a node takes as an envelope.
    sealed = seal(
        header=EnvelopeHeader(
            message_id="00000000-0000-4000-8000-000000000000",
            from_country="NL",
            to_country="KE",
            certificate_type="851",
            certificate_status="70",
            certificate_number="NL-" + "9" * 120,
            created=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        payload=os.urandom(MAX_CERTIFICATE_BYTES),
        sender_signing_key=Ed25519PrivateKey.generate(),
        recipient_public_key=X25519PrivateKey.generate().public_key(),
    )
    assert len(sealed) <= DEFAULT_MAX_CONTENT_BYTES <= DEFAULT_MAX_ENVELOPE_BYTES


def test_certificates_with_attachments_up_to_the_limit_arrive_on_both_routes(
    tmp_path: Path,
) -> None:
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    direct = _near_the_limit(routed(phyto, exporter="NL", importer="KE", number="NL-BIG-DIRECT"))
    hub = _near_the_limit(routed(phyto, exporter="NL", importer="CL", number="NL-BIG-HUB"))
    with (
        (tmp_path / "demo.log").open("w") as log,
        network(tmp_path, log, ("NL", "KE"), hub=True, hub_only=("CL",)) as net,
    ):
        sent = {}
        for cert in (direct, hub):
            xml = to_xml_bytes(cert)
            assert MAX_CERTIFICATE_BYTES - 8192 < len(xml) <= MAX_CERTIFICATE_BYTES
            sent[cert.number] = (xml, _request(net, "NL", "POST", "/certificates", xml)["id"])
        for number, route, partner in (
            ("NL-BIG-DIRECT", "direct", "KE"),
            ("NL-BIG-HUB", "hub", "CL"),
        ):
            xml, message = sent[number]
            settled = _settled(net, message)
            assert (settled["state"], settled["route"]) == ("delivered", route), settled
            assert settled["outcome"] == "accepted", settled
            assert _received(net, partner, number) == xml

        try:
            _request(net, "NL", "POST", "/certificates", b" " * (MAX_CERTIFICATE_BYTES + 1))
        except urllib.error.HTTPError as e:
            assert e.code == 413
            problem = json.loads(e.read())
            assert problem["detail"] == f"the body is over the {MAX_CERTIFICATE_BYTES}-byte limit"
        else:
            raise AssertionError("a body over the limit was taken")
