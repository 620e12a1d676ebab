"""Logs, metrics and health of a running network (issue 12): a registry, a hub and nodes
as real processes on loopback (node/demo/network.py), each with its metrics listener on
a port of its own.

NL sends KE a certificate directly and KE sends CL one through the hub; then each
process's /metrics shows the counters moved with the right labels, /health/ready answers
200, each event is one log line with its certificate number, message id, partner and
route, and a maintainer's publish is one line in the registry's log. Last, with the nodes
and the hub logging at DEBUG, no private key, API token or webhook secret of the
network's directories appears in any log it wrote.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from prometheus_client.parser import text_string_to_metric_families

from node.certificate.jsonmodel import certificate_from_json
from node.console.app import SESSION_KEY_FILE
from node.demo.network import Network, network
from node.demo.scenario import Step, routed
from node.samples import sample_model_bytes
from tests.cli.test_cert_cli import ephyto
from tests.integration.running_network import WAIT

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def ready(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def eventually(url: str, found: Callable[[Samples], bool]) -> Samples:
    """The scrape once `found` holds (the event tailer runs every couple of seconds)."""
    deadline = time.monotonic() + WAIT
    while True:
        samples = scrape(url)
        if found(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def logged(path: Path, pattern: str) -> str:
    deadline = time.monotonic() + WAIT
    while True:
        text = path.read_text(errors="replace")
        if re.search(pattern, text, re.MULTILINE) or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def test_a_network_logs_counts_and_answers_health_without_leaking_a_secret(
    tmp_path: Path,
) -> None:
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    with (
        (tmp_path / "demo.log").open("w") as log,
        network(tmp_path, log, ("NL", "KE"), hub=True, hub_only=("CL",), verbose=True) as net,
    ):
        nl, ke = net.nodes["NL"], net.nodes["KE"]
        for url in (
            nl.ready_url,
            ke.ready_url,
            net.hub_observed.ready,
            net.registry_observed.ready,
        ):
            status, body = ready(url)
            assert status == 200 and body["ready"] is True, (url, body)
        assert set(ready(nl.ready_url)[1]["checks"]) == {"store", "keys", "directory"}

        to_ke = routed(phyto, exporter="NL", importer="KE", number="NL-OBS-1")
        to_cl = routed(phyto, exporter="KE", importer="CL", number="KE-OBS-2")
        rows = net.run([Step("submit", "NL", to_ke), Step("submit", "KE", to_cl)])
        assert [(r.route, r.status) for r in rows] == [
            ("direct", "delivered (accepted)"), ("hub", "delivered (accepted)")
        ], rows  # fmt: skip

        sent = ("ephyto_messages_sent_total", (("partner", "KE"), ("route", "direct")))
        nl_samples = eventually(nl.metrics_url, lambda s: s.get(sent) == 1.0)
        assert nl_samples[sent] == 1.0
        latency = ("ephyto_delivery_latency_seconds_count", (("route", "direct"),))
        assert nl_samples[latency] == 1.0
        assert nl_samples[("ephyto_outbox_depth", ())] == 0.0
        assert nl_samples[("ephyto_directory_version", ())] >= 1
        assert nl_samples[("ephyto_directory_expires_in_seconds", ())] > 0
        assert nl_samples[("ephyto_tls_certificate_expires_in_days", ())] > 1
        assert any(name == "ephyto_key_expires_in_days" for name, _ in nl_samples)

        received = ("ephyto_messages_received_total", (("outcome", "accepted"), ("partner", "NL")))
        ke_samples = eventually(ke.metrics_url, lambda s: s.get(received) == 1.0)
        assert ke_samples[received] == 1.0
        by_hub = ("ephyto_messages_sent_total", (("partner", "CL"), ("route", "hub")))
        assert eventually(ke.metrics_url, lambda s: s.get(by_hub) == 1.0)[by_hub] == 1.0

        accepted = ("ephyto_hub_envelopes_total", (("kind", "delivered"),))
        acknowledged = ("ephyto_hub_envelopes_total", (("kind", "acknowledged"),))
        hub = eventually(net.hub_observed.metrics, lambda s: acknowledged in s)
        assert hub[accepted] >= 1 and hub[acknowledged] >= 1
        assert any(name == "ephyto_hub_balance_minor_units" for name, _ in hub)
        assert ("ephyto_hub_oldest_held_age_seconds", ()) in hub

        # Each event is one line carrying its certificate, message id, partner and route.
        message_id = net.message("NL", net.sent_id("NL", "NL-OBS-1"))["message_id"]
        nl_log = logged(tmp_path / "node-NL-1.log", r"node\.events: certificate delivered")
        assert re.search(
            r"node\.events: certificate delivered event=delivered certificate=NL-OBS-1"
            rf" message_id={message_id} partner=KE direction=out route=direct outcome=accepted",
            nl_log,
        ), nl_log
        ke_log = logged(tmp_path / "node-KE-1.log", "sent through the hub")
        assert "certificate received event=received certificate=NL-OBS-1" in ke_log
        assert "certificate sent through the hub event=relayed certificate=KE-OBS-2" in ke_log
        hub_log = logged(tmp_path / "hub.log", "envelope acknowledged")
        assert re.search(r"node\.hub\.events: envelope accepted .*from=KE to=CL", hub_log)

        # A maintainer's action, taken by another process, is one line in the registry's log.
        published = ("ephyto_registry_actions_total", (("action", "publish"),))
        before = scrape(net.registry_observed.metrics).get(published, 0.0)  # the demo's own
        result = ephyto("registry", "publish", "--dir", tmp_path / "registry", "--expires-in", "1d")
        assert result.returncode == 0, result.stderr
        registry_log = logged(tmp_path / "registry.log", "registry action publish")
        assert re.search(r"registry\.actions: registry action publish action=publish", registry_log)
        registry = eventually(net.registry_observed.metrics, lambda s: s[published] > before)
        assert registry[published] == before + 1
        assert registry[("ephyto_registry_published_version", ())] >= 2

        secrets = _add_a_webhook_client(net, tmp_path)
    _no_secret_in_any_log(tmp_path, secrets)


def _add_a_webhook_client(net: Network, tmp_path: Path) -> list[str]:
    """A named API client with a webhook nobody answers (its failures are logged), and a
    call with its token: the token and the secret the command printed."""
    nl = net.nodes["NL"]
    result = ephyto(
        "node", "api-client", "add", "watcher", "--scope", "read",
        "--webhook", "http://127.0.0.1:9/hook", "--dir", nl.directory,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    token = re.search(r"^token \(shown once, keep it secret\): (\S+)$", result.stdout, re.M)
    secret = re.search(
        r"^webhook secret \(shown once, keep it secret\): (\S+)$", result.stdout, re.M
    )
    assert token and secret, result.stdout
    request = urllib.request.Request(
        nl.api_url + "/certificates", headers={"Authorization": f"Bearer {token[1]}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    # The webhook's delivery fails (nothing listens on port 9) and is retried: logged.
    text = logged(tmp_path / "node-NL-1.log", "webhook of API client watcher: .* not delivered")
    assert "webhook of API client watcher" in text
    return [token[1], secret[1]]


def _no_secret_in_any_log(root: Path, printed: list[str]) -> None:
    secrets = set(printed)
    for key_file in root.rglob("*.key"):
        if key_file.name == SESSION_KEY_FILE:
            # The console's session key is 32 raw bytes, not a PEM private key: its forms.
            raw = key_file.read_bytes()
            secrets |= {raw.hex(), base64.b64encode(raw).decode()}
            continue
        secrets |= forms_of_private_key(key_file.read_bytes())
    for config in [*root.glob("*/node.toml")]:
        token = re.search(r'^api_token = "([^"]+)"', config.read_text(), re.M)
        assert token is not None
        secrets.add(token[1])
    assert len(secrets) > 20  # keys of 3 nodes, the hub, the maintainer; tokens; the secret
    logs = [
        p for p in root.rglob("*") if p.is_file() and (p.suffix == ".log" and p.name != "audit.log")
    ]
    assert len(logs) >= 5  # demo.log, registry.log, hub.log, a log per node
    for path in logs:
        text = path.read_text(errors="replace")
        leaked = [s[:12] for s in secrets if s in text]
        assert leaked == [], f"{path} holds a secret starting {leaked}"


def forms_of_private_key(pem: bytes, password: bytes | None = None) -> set[str]:
    """The PEM body's base64 lines, and the key's raw bytes in hex and base64."""
    forms = {
        line.strip()
        for line in pem.decode().splitlines()
        if line.strip() and not line.startswith("-----") and len(line.strip()) >= 40
    }
    key = load_pem_private_key(pem, password=password)
    if isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    else:
        raw = key.private_numbers().private_value.to_bytes(48, "big").lstrip(b"\0")  # type: ignore[union-attr]
    forms |= {
        raw.hex(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    return forms
