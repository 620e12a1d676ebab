"""More than one `ephyto hub serve` process for one hub, and NPPOs driving them by hand.

The demo network (node.demo.network) makes the registry, the hub and the NPPOs' identities
with the operator's commands; here the hub directory is copied and the copy listens on
another port (its hub.toml differs in the listen port only), so both processes are the
same hub: same name, same TLS key (the pins the directory lists fit both), same database.
An NPPO speaks to either with the real `HubClient`, its own TLS key, and the hub's pins
from the directory as the NPPO's node trusts it (fetched from the registry, checked
against the maintainers' anchor).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import aiohttp

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.xml_build import to_xml_bytes
from node.cli.cert import sample_model_bytes
from node.clock import SystemClock
from node.demo.network import Network, free_port
from node.demo.scenario import routed
from node.directory import Directory
from node.directory.refresh import DirectoryRefresher, load
from node.envelope.envelope import EnvelopeHeader as SealedHeader
from node.envelope.envelope import seal
from node.hub.config import CONFIG_FILE, dump_hub_config, load_hub_config
from node.identity.config import NodeConfig, load_config
from node.identity.keys import load_encryption_key, load_signing_key
from node.ippc import SERVICE_PATH, Envelope, EnvelopeHeader
from node.service import read_anchor
from node.transport.hub_client import HubClient, node_hub_client


def hub_service_url(net: Network) -> str:
    """The SOAP endpoint of the network's own hub process."""
    return net.hub_url + SERVICE_PATH


def serve_hub_copy(net: Network, name: str) -> str:
    """Copy the network's hub directory to `name`, move its listener to a free port, serve
    it; the copy's SOAP endpoint. The network stops the process with the others."""
    copy = net.workdir / name
    shutil.copytree(net.workdir / "hub", copy, ignore=shutil.ignore_patterns("*.db*"))
    path = copy / CONFIG_FILE
    original = load_hub_config(path)
    port = free_port()
    path.write_text(dump_hub_config(replace(original, listen_port=port)), encoding="utf-8")
    changed = load_hub_config(path)
    assert changed == replace(original, listen_port=port, directory=changed.directory)
    net.serve_hub(copy)
    return f"https://127.0.0.1:{port}{SERVICE_PATH}"


def node_config(net: Network, country: str) -> NodeConfig:
    return load_config(net.nodes[country].directory / "node.toml")


async def trusted_directory(net: Network, country: str) -> Callable[[], Directory]:
    """The directory as `country`'s node trusts it: from the registry, checked against the
    node's trust anchor, cached in the node's directory."""
    config = node_config(net, country)
    assert config.registry_url is not None
    cache = config.path("directory.json")
    clock = SystemClock()
    refresher = DirectoryRefresher(
        config.registry_url, load(cache, read_anchor(config)), cache, clock, aiohttp.ClientSession
    )
    outcome = await refresher.refresh()
    assert outcome.ok, f"{country} could not get the directory: {outcome.message}"
    return lambda: refresher.current(clock.now())


def hub_client(
    net: Network, country: str, url: str, directory: Callable[[], Directory]
) -> HubClient:
    """`country`'s client for the hub process at `url`, trusting the directory's hub pins."""
    return node_hub_client(node_config(net, country), directory, SystemClock(), url=url)


def sealed_envelopes(
    net: Network, sender: str, receiver: str, count: int, prefix: str
) -> list[Envelope]:
    """`count` distinct certificates from `sender` to `receiver`, each sealed as a node
    seals for the hub route (node.outbox.hub_route), as DeliverEnvelope envelopes."""
    sending, receiving = node_config(net, sender), node_config(net, receiver)
    signing = load_signing_key(
        sending.path(sending.keys.signing).read_bytes(), str(sending.keys.signing)
    )
    recipient = load_encryption_key(
        receiving.path(receiving.keys.encryption).read_bytes(), str(receiving.keys.encryption)
    ).public_key()
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    created = datetime.now(UTC).replace(microsecond=0)
    envelopes = []
    for i in range(count):
        number = f"{prefix}-{i:04d}"
        xml = to_xml_bytes(routed(phyto, exporter=sender, importer=receiver, number=number))
        sealed = seal(
            header=SealedHeader(
                message_id=str(uuid.uuid4()),
                from_country=sender,
                to_country=receiver,
                certificate_type="851",
                certificate_status="70",
                certificate_number=number,
                created=created,
            ),
            payload=xml,
            sender_signing_key=signing,
            recipient_public_key=recipient,
        )
        header = EnvelopeHeader(
            from_=sender,
            to=receiver,
            certificate_type=851,
            certificate_status=70,
            nppo_certificate_number=number,
        )
        envelopes.append(Envelope.of(header, sealed.decode("ascii")))
    return envelopes
