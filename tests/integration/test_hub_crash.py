"""SIGKILL the hub while it relays: nothing lost, nothing doubled, nothing failed.

Real processes (`ephyto hub serve`, `ephyto node serve`), real mutual TLS, the hub's real
SQLite file, real SIGKILL. NL sends to CL, which has no endpoint of its own: every
certificate goes NL -> hub -> CL (CL pulls), and NL settles each by tracking it at the hub.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.xml_build import to_xml_bytes
from node.cli.cert import sample_model_bytes
from node.demo.network import Network, network
from node.demo.scenario import routed
from node.hub.config import CONFIG_FILE, load_hub_config
from node.hub.store import HubStore

COUNT = 30
WAIT = 60.0


def _received(net: Network) -> list[str]:
    body = net.api("CL", "GET", "/certificates?direction=received&limit=1000")
    return [m["number"] for m in body["certificates"]]


def _wait_until(what: str, done: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


def _sent(net: Network) -> list[dict[str, object]]:
    return list(net.api("NL", "GET", "/certificates?direction=sent&limit=1000")["certificates"])


async def _pending_at_hub(hub_dir: Path) -> list[str]:
    """Tracking numbers of envelopes the hub still holds for CL (read from its database)."""
    store = HubStore.open(load_hub_config(hub_dir / CONFIG_FILE).database_url)
    try:
        return [h.tracking_number for h in await store.import_headers("CL")]
    finally:
        await store.close()


def test_sigkill_of_the_hub_mid_relay_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    certs = [
        routed(phyto, exporter="NL", importer="CL", number=f"NL-HUBCRASH-{i:03d}")
        for i in range(COUNT)
    ]
    rng = random.Random(2027)
    with (
        (tmp_path / "demo.log").open("w") as log,
        network(
            # A short retry cap: NL tries the hub again within seconds once it is back.
            tmp_path,
            log,
            ("NL",),
            ("--retry-cap", "2"),
            hub=True,
            hub_only=("CL",),
        ) as net,
    ):
        for i, cert in enumerate(certs):
            net.api("NL", "POST", "/certificates", to_xml_bytes(cert))
            if i == 9:
                # Some have gone all the way through the hub; the rest is queued at NL,
                # held at the hub, or being pulled by CL when the hub dies.
                _wait_until("CL pulls a first certificate", lambda: len(_received(net)) > 0)
                time.sleep(rng.uniform(0, 0.3))
                net.kill_hub()
            elif i == 19:
                # Those in between were submitted while the hub was down.
                net.restart_hub()
        # And once more at a random moment while the tail is relayed and pulled.
        time.sleep(rng.uniform(0, 1.0))
        net.kill_hub()
        net.restart_hub()

        _wait_until(
            "every certificate delivered",
            lambda: [m["state"] for m in _sent(net)] == ["delivered"] * COUNT,
        )
        sent = _sent(net)
        assert len(sent) == COUNT, "the sender stored a submission twice or lost one"
        assert {m["state"] for m in sent} == {"delivered"}, sent
        assert {m["route"] for m in sent} == {"hub"}, sent
        received = _received(net)
        assert sorted(received) == sorted(c.number for c in certs), (
            "the receiver lost or doubled one"
        )
        # CL acknowledged everything it took: nothing is left waiting at the hub.
        assert asyncio.run(_pending_at_hub(tmp_path / "hub")) == []
