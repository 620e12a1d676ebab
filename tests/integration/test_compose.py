"""The deployment files: compose/compose.yaml, the Dockerfile, the systemd units and the
monitoring configuration. No container engine runs here, so the compose file is what is
tested: against the Compose Specification's schema, and by running every service's
command exactly as it is written (tests/integration/compose_local.py says what is mapped)
and exchanging certificates through the whole topology, directly and through the hub."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from node.certificate.model import Certificate
from node.certificate.xml_build import to_xml_bytes
from node.demo.network import READY_TIMEOUT
from node.demo.scenario import routed
from node.observe import names
from tests.databases import postgres_database
from tests.integration.compose_local import (
    COMPOSE_DIR,
    COMPOSE_FILE,
    DOCKERFILE,
    IMAGE,
    STATE,
    Local,
    dockerfile_instructions,
)
from tests.integration.running_network import WAIT

SCHEMA = Path(__file__).resolve().parents[1] / "compose" / "compose_spec.json"
# Run elsewhere (their images are not installed here); their configuration is checked.
NOT_RUN = {"postgres", "prometheus", "grafana"}
ONE_SHOT = {"setup"}
# The order the services start in (each after what it depends on).
STARTS = ("registry", "registry-mirror", "hub-a", "hub-b", "hub-lb", "node-nl", "node-ke",
          "node-us")  # fmt: skip
# Every metric name the processes export (node.observe.names), histograms with their
# series suffixes: a renamed metric fails the rules and the dashboard here.
EXPORTED = set(names.HELP) | {f"{names.LATENCY}_{s}" for s in ("bucket", "sum", "count")}
# How often the nodes pull from the hub, which setup writes into their node.toml: every
# second here, where compose.yaml's 10 would make each delivery through the hub below wait
# up to 10 s for the recipient's pull, and as long again for the sender to see it taken.
HUB_POLL = {"EPHYTO_HUB_POLL_SECONDS": "1"}


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return document


def test_compose_file_follows_the_compose_specification() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    document = compose()
    assert [e.message for e in validator.iter_errors(document)] == []
    # The schema refuses what compose would: the check can fail.
    broken = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    broken["services"]["registry"]["restart"] = {"policy": "always"}
    broken["services"]["hub-a"]["depends_on"]["setup"]["condition"] = "service_done"
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_service_restarts_has_a_health_check_and_keeps_its_state_in_volumes() -> None:
    services = compose()["services"]
    assert set(services) == NOT_RUN | ONE_SHOT | set(STARTS), "a new service needs a test here"
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no"
            continue
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"][0] == "CMD", name
        # Everything that must survive is in a named volume.
        if service["image"] == IMAGE or name in NOT_RUN:
            assert any(not v.startswith(".") for v in service.get("volumes", [])), name
    for name in STARTS:
        if services[name]["image"] == IMAGE:
            condition = services[name]["depends_on"]["setup"]["condition"]
            assert condition == "service_completed_successfully", name


def test_each_volume_has_one_mount_point_and_the_image_makes_it_the_users() -> None:
    document = compose()
    made = " ".join(rest for word, rest in _final_stage() if word == "RUN")
    for name, service in document["services"].items():
        for spec in service.get("volumes", []):
            source, target = spec.split(":")[:2]
            if service["image"] == IMAGE and not source.startswith("."):
                # compose_local maps /var/lib/ephyto/<volume>: the same in every service.
                assert target == f"{STATE}/{source}", f"{name}: {spec}"
                assert target in made.split(), f"the Dockerfile does not make {target}"


def test_secrets_are_files_and_each_service_names_those_it_reads() -> None:
    document = compose()
    declared = document["secrets"]
    assert all(set(entry) == {"file"} for entry in declared.values())
    made = (COMPOSE_DIR / "make-secrets.sh").read_text(encoding="utf-8")
    assert set(declared) <= set(re.findall(r"\b(\w+(?:_password|_token|_passphrase))\b", made))
    services = document["services"]
    for name, service in services.items():
        for value in (service.get("environment") or {}).values():
            for secret in re.findall(r"/run/secrets/(\w+)", str(value)):
                assert secret in service["secrets"], f"{name} reads {secret} undeclared"
    for country in ("nl", "ke", "us"):
        # node.toml names the files; the node reads them from its own /run/secrets.
        for secret in (f"node_{country}_api_token", f"node_{country}_key_passphrase"):
            assert secret in services[f"node-{country}"]["secrets"]
            assert secret in services["setup"]["secrets"]
    for name in ("hub-a", "hub-b", "node-nl"):
        assert "postgres_password" in services[name]["secrets"], name


def test_dockerfile_is_multi_stage_slim_non_root_without_a_compiler() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))
    stages = [rest for word, rest in instructions if word == "FROM"]
    assert len(stages) >= 2 and stages[0].endswith(" AS build"), stages
    final = _final_stage()
    assert stages[-1] == "python:3.11-slim"
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    assert any("--uid 10001" in rest for word, rest in final if word == "RUN")
    compilers = re.compile(r"\b(gcc|g\+\+|clang|cc|build-essential|make|apt-get install)\b")
    assert [rest for word, rest in final if word == "RUN" and compilers.search(rest)] == []
    # Nothing of the source tree in the final stage: only the wheels, mounted for one step.
    assert [rest for word, rest in final if word in ("COPY", "ADD")] == []
    assert ("ENTRYPOINT", '["ephyto"]') in final
    assert any(w == "WORKDIR" and rest == STATE for w, rest in final)
    # The build context holds what the build stage copies, and no more.
    lines = (COMPOSE_DIR.parent / ".dockerignore").read_text(encoding="utf-8").splitlines()
    ignored = [line for line in lines if line and not line.startswith("#")]
    assert ignored[0] == "*", "the context starts from nothing"
    copied = {
        source.rstrip("/")
        for word, rest in instructions
        if word == "COPY"
        for source in rest.split()[:-1]
    }
    assert {line.lstrip("!").rstrip("/") for line in ignored if line.startswith("!")} == copied


def test_systemd_units_are_hardened_and_verify() -> None:
    units = sorted((COMPOSE_DIR / "systemd").glob("*.service"))
    assert [u.name for u in units] == [
        "ephyto-hub.service", "ephyto-node.service", "ephyto-registry.service"
    ]  # fmt: skip
    for unit in units:
        settings = _unit_settings(unit.read_text(encoding="utf-8"))
        for key, value in {
            "User": "ephyto", "ProtectSystem": "strict", "ProtectHome": "yes",
            "NoNewPrivileges": "yes", "PrivateTmp": "yes",
        }.items():  # fmt: skip
            assert settings.get(key) == [value], f"{unit.name}: {key}"
        assert settings["StateDirectory"][0].startswith("ephyto/"), unit.name
        assert settings["ExecStart"][0].startswith("/opt/ephyto/bin/ephyto "), unit.name
    node = _unit_settings((COMPOSE_DIR / "systemd" / "ephyto-node.service").read_text())
    assert node["LoadCredential"] == ["ephyto-keys:/etc/ephyto/keys.pass"]
    assert node["ExecStartPre"] == [
        "/opt/ephyto/bin/ephyto node migrate --dir /var/lib/ephyto/node"
    ]


def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian: systemd)")
    # verify needs ExecStart's binary to exist: this virtualenv's, in copies of the units.
    ephyto = Path(sys.executable).with_name("ephyto")
    for unit in sorted((COMPOSE_DIR / "systemd").glob("*.service")):
        text = unit.read_text(encoding="utf-8").replace("/opt/ephyto/bin/ephyto", str(ephyto))
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
    units = sorted(str(p) for p in tmp_path.glob("*.service"))
    result = subprocess.run([tool, "verify", *units], capture_output=True, text=True)
    # A bad value is only a warning to verify (exit 0): nothing may be said at all.
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")
    broken = tmp_path / "broken.service"
    broken.write_text(Path(units[0]).read_text().replace("=strict", "=stricter"))
    assert "stricter" in subprocess.run([tool, "verify", str(broken)], capture_output=True,
                                        text=True).stderr  # fmt: skip


def test_prometheus_scrapes_every_metrics_listener_and_alerts_on_real_metrics(
    tmp_path: Path,
) -> None:
    config = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    # Every process's metrics listener, as its health check (which passes) reaches it.
    listeners = set()
    for name, service in compose()["services"].items():
        probe = " ".join(service["healthcheck"].get("test", []))
        if match := re.search(r"127\.0\.0\.1:(\d+)/health/ready", probe):
            listeners.add(f"{name}:{match[1]}")
    assert listeners and targets == listeners
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    rules_file = COMPOSE_DIR / "prometheus" / "alerts.yml"
    rules = [r for g in yaml.safe_load(rules_file.read_text())["groups"] for r in g["rules"]]
    alerts = {rule["alert"] for rule in rules}
    for needed in ("OutboxStuck", "OutboxOldMessage", "DirectoryExpiring", "TimestampExpiring",
                   "KeyExpiresIn30Days", "KeyExpiresIn7Days", "CertificateExpiresIn30Days",
                   "CertificateExpiresIn7Days", "HubBacklogGrowing"):  # fmt: skip
        assert f"Ephyto{needed}" in alerts
    for rule in rules:
        assert rule["expr"] and rule["for"] and rule["annotations"]["summary"], rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        used = set(re.findall(r"\bephyto_\w+", rule["expr"]))
        assert used and used <= EXPORTED, f"{rule['alert']}: {used - EXPORTED} not exported"
    promtool = shutil.which("promtool")
    if promtool is not None:  # Debian: prometheus; without it the checks above stand
        checked = subprocess.run([promtool, "check", "rules", str(rules_file)],
                                 capture_output=True, text=True)  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr
        copy = tmp_path / "prometheus.yml"
        copy.write_text(yaml.safe_dump(config | {"rule_files": [str(rules_file)]}))
        checked = subprocess.run([promtool, "check", "config", str(copy)],
                                 capture_output=True, text=True)  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_grafana_provisions_prometheus_and_a_dashboard_of_real_metrics() -> None:
    grafana = COMPOSE_DIR / "grafana"
    source = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())
    [datasource] = source["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((grafana / "provisioning/dashboards/ephyto.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    mounts = compose()["services"]["grafana"]["volumes"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts
    dashboard = json.loads((grafana / "dashboards" / "ephyto.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert all(t["datasource"]["uid"] == datasource["uid"]
               for p in dashboard["panels"] for t in p["targets"])  # fmt: skip
    used = {m for e in exprs for m in re.findall(r"\bephyto_\w+", e)}
    assert used <= EXPORTED, used - EXPORTED
    for needed in (names.OUTBOX_DEPTH, names.SENT, names.HUB_HELD, names.KEY_EXPIRY):
        assert needed in used


def test_setup_refuses_a_missing_setting_or_secret_clearly_and_makes_nothing(
    tmp_path: Path,
) -> None:
    local = Local(compose(), tmp_path)
    env = local.env("setup")
    argv = local.argv("setup")
    del env["EPHYTO_HUB_ENDPOINT"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip() == "setup: the environment variable EPHYTO_HUB_ENDPOINT is not set"
    assert list((tmp_path / "volumes" / "registry").iterdir()) == []
    # A secret missing, or a token too short to be one: said before anything is made.
    made = subprocess.run([str(COMPOSE_DIR / "make-secrets.sh"), str(tmp_path / "secrets")],
                          capture_output=True, text=True)  # fmt: skip
    assert made.returncode == 0, made.stderr
    (tmp_path / "secrets" / "node_ke_key_passphrase").unlink()
    result = subprocess.run(argv, env=local.env("setup"), capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.startswith("setup: cannot read the secret ")
    assert "node_ke_key_passphrase: No such file or directory" in result.stderr
    (tmp_path / "secrets" / "node_ke_key_passphrase").write_text("x\n")
    (tmp_path / "secrets" / "node_us_api_token").write_text("short\n")
    result = subprocess.run(argv, env=local.env("setup"), capture_output=True, text=True)
    assert result.returncode != 0
    assert "node_us_api_token is not a token" in result.stderr
    assert "Traceback" not in result.stderr
    assert [p for p in (tmp_path / "volumes").rglob("*") if p.is_file()] == []


@pytest_asyncio.fixture
async def databases() -> AsyncIterator[dict[str, str]]:
    """The hubs' and the NL node's databases, made on the local PostgreSQL."""
    async for hub in postgres_database("ephyto_compose_hub_test"):
        async for node in postgres_database("ephyto_compose_node_test"):
            yield {"EPHYTO_HUB_DATABASE": hub, "EPHYTO_NL_DATABASE": node}


@pytest.mark.slow
@pytest.mark.asyncio
async def test_the_topology_runs_as_written_and_exchanges_both_routes(
    tmp_path: Path, databases: dict[str, str], phyto: Certificate
) -> None:
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (Debian: haproxy; .ci/run installs it)")
    document = compose()
    _check_databases(document, databases)
    busy = [p for p in _ports(document) if _taken(p)]
    assert busy == [], f"the topology's ports are in use on this machine: {busy}"
    made = subprocess.run([str(COMPOSE_DIR / "make-secrets.sh"), str(tmp_path / "secrets")],
                          capture_output=True, text=True)  # fmt: skip
    assert made.returncode == 0, made.stderr
    local = Local(document, tmp_path, databases | HUB_POLL)
    try:
        first = local.run("setup")
        assert first.returncode == 0, first.stdout + first.stderr
        _assert_no_secret_in_config_files(tmp_path / "secrets", tmp_path / "volumes")
        before = _snapshot(tmp_path / "volumes")
        again = local.run("setup")
        assert again.returncode == 0, again.stdout + again.stderr
        assert _snapshot(tmp_path / "volumes") == before, "a second setup changed files"
        for name in STARTS:
            local.start(name)
            local.await_healthy(name, READY_TIMEOUT)
        api = {c: _Api(c, local) for c in ("NL", "KE", "US")}
        direct = api["NL"].submit(routed(phyto, exporter="NL", importer="KE", number="CMP-1"))
        hub = api["NL"].submit(routed(phyto, exporter="NL", importer="US", number="CMP-2"))
        # US has no endpoint of its own: what is sent to it goes through the hub, while
        # it sends straight to a partner that has one.
        back = api["US"].submit(routed(phyto, exporter="US", importer="KE", number="CMP-3"))
        to_us = api["KE"].submit(routed(phyto, exporter="KE", importer="US", number="CMP-5"))
        assert api["NL"].settled(direct)["route"] == "direct"
        assert api["NL"].settled(hub)["route"] == "hub"
        assert api["US"].settled(back)["route"] == "direct"
        assert api["KE"].settled(to_us)["route"] == "hub"
        # One hub process gone: the load balancer sends the next one to the other.
        local.kill("hub-a")
        after = api["NL"].submit(routed(phyto, exporter="NL", importer="US", number="CMP-4"))
        assert api["NL"].settled(after)["route"] == "hub"
        assert api["KE"].received() >= {"CMP-1", "CMP-3"}
        assert api["US"].received() >= {"CMP-2", "CMP-4", "CMP-5"}
    finally:
        local.kill_all()
    assert all(p.poll() is not None for p in local.processes.values())


class _Api:
    """A node's national-system API, as compose.yaml publishes it, with its secret token."""

    def __init__(self, country: str, local: Local) -> None:
        service = local.service(f"node-{country.lower()}")
        port = next(p.split(":")[-2] for p in service["ports"] if p.startswith("127.0.0.1:"))
        self.base = f"http://127.0.0.1:{port}/api/v1"
        secret = local.root / "secrets" / f"node_{country.lower()}_api_token"
        self.token = secret.read_text(encoding="utf-8").strip()

    def submit(self, certificate: Certificate) -> int:
        body = self._call("POST", "/certificates", to_xml_bytes(certificate))
        identifier: int = body["id"]
        return identifier

    def settled(self, message: int) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT
        while True:
            body: dict[str, Any] = self._call("GET", f"/certificates/{message}")
            if body["state"] == "delivered":
                return body
            assert body["state"] != "failed" and time.monotonic() < deadline, body
            time.sleep(0.5)

    def received(self) -> set[str]:
        body = self._call("GET", "/certificates?direction=received")
        return {summary["number"] for summary in body["certificates"]}

    def _call(self, method: str, path: str, xml: bytes | None = None) -> Any:
        request = urllib.request.Request(
            self.base + path,
            data=xml,
            method=method,
            headers={"Authorization": f"Bearer {self.token}"}
            | ({"Content-Type": "application/xml"} if xml is not None else {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path}: {e.code} {e.read()[:300]!r}") from None


def _assert_no_secret_in_config_files(secrets: Path, volumes: Path) -> None:
    """No node.toml or hub.toml holds a token or password of the secret files: they name
    the files, whose contents the services read themselves."""
    values = {
        path.name: path.read_text(encoding="utf-8").strip()
        for path in secrets.iterdir()
        if path.name.endswith(("_token", "_password"))
    }
    assert len(values) >= 4 and all(len(v) >= 16 for v in values.values()), values.keys()
    configs = sorted([*volumes.glob("*/node.toml"), *volumes.glob("*/hub.toml")])
    assert len(configs) == 5, configs
    for config in configs:
        text = config.read_text(encoding="utf-8")
        found = [name for name, value in values.items() if value in text]
        assert found == [], f"{config} holds the secret {found}"
        if config.name == "node.toml":
            assert "api_token =" not in text and "token_file =" in text, config
        uses_postgres = config.parent.name in ("hub-a", "hub-b", "node-nl")
        assert ("database_password_file =" in text) == uses_postgres, config


def _final_stage() -> list[tuple[str, str]]:
    """The instructions of the Dockerfile's last stage, from its FROM."""
    instructions = dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))
    last = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last:]


def _unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def _check_databases(document: dict[str, Any], databases: dict[str, str]) -> None:
    """compose.yaml's database URLs name the postgres service and the databases it makes,
    the ones the test replaces with its own."""
    env = document["services"]["setup"]["environment"]
    postgres = document["services"]["postgres"]["environment"]
    initdb = (COMPOSE_DIR / "postgres" / "initdb" / "10-node-nl.sql").read_text()
    made = {postgres["POSTGRES_DB"], *re.findall(r"CREATE DATABASE (\w+)", initdb)}
    for key in databases:
        match = re.fullmatch(r"postgresql\+asyncpg://(\w+)@postgres:5432/(\w+)", env[key])
        assert match and match[1] == postgres["POSTGRES_USER"] and match[2] in made, env[key]


def _ports(document: dict[str, Any]) -> list[int]:
    """The ports the processes run here listen on: each one's own, from its health check
    and published ports, and the registry's and the load balancer's."""
    text = json.dumps({n: s for n, s in document["services"].items() if n not in NOT_RUN})
    ports = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d{4})", text)}
    ports |= {int(p) for p in re.findall(r'"(\d{4}):\d{4}"', text)}
    return sorted(ports | {8000, 8443, 8444, 9443})


def _taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _snapshot(root: Path) -> dict[str, tuple[int, bytes | str]]:
    """Every file's mode and bytes (a link's target) under `root`, SQLite files aside."""
    found: dict[str, tuple[int, bytes | str]] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = (0, str(path.readlink()))
        elif path.is_file() and ".db" not in path.name:
            found[key] = (path.stat().st_mode, path.read_bytes())
    return found
