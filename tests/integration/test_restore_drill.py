"""The restore drill (issue 12): a node backed up during traffic, killed, restored into a
new directory and started again carries on: what it had queued before the backup is
delivered exactly once, its history is there, and an envelope it had received is still
recognised (the same envelope gets the original receipt, another under the same id is a
replay). On SQLite (`ephyto node backup`) and on PostgreSQL (pg_dump plus `ephyto node
backup --keys-only`, the documented procedure).

Real processes (registry, NL, KE), real TLS, real SQLite and PostgreSQL, real SIGKILL.
Certificates NL accepted after the backup was taken are lost by definition: the restored
node never heard of them. The test says which those are and counts only those before.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.xml_build import to_xml_bytes
from node.demo.network import Network, NodeHandle, network
from node.demo.scenario import routed
from node.envelope.envelope import EnvelopeHeader, seal
from node.identity.config import CONFIG_FILE, NodeConfig, dump_config, load_config
from node.identity.keys import load_encryption_key, load_signing_key
from node.samples import sample_model_bytes
from node.web.exchange import ENVELOPE_MEDIA_TYPE, ENVELOPES_PATH
from node.web.problems import PROBLEM_BASE
from tests.binding_documents import document
from tests.ephyto_cli import ok

BEFORE = 8  # certificates NL accepts before the backup starts
WAIT = 90.0  # seconds: a bound on each wait, not a timing under test
PG_ADMIN = ("-h", "127.0.0.1", "-p", "5432", "-U", "postgres")


@dataclass(frozen=True)
class Submitted:
    number: str
    began: float  # time.monotonic() when NL was asked
    ended: float  # ... and when it had answered 201/202


def test_a_sqlite_node_restored_from_a_backup_taken_during_traffic_carries_on(
    tmp_path: Path,
) -> None:
    _drill(tmp_path, None)


def test_a_postgresql_node_restored_from_pg_dump_and_its_keys_backup_carries_on(
    tmp_path: Path,
) -> None:
    for tool in ("pg_dump", "pg_restore", "psql"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian package postgresql-client)")
    with _pg_database() as old, _pg_database() as new:
        _drill(tmp_path, (old, new))


def _drill(tmp_path: Path, postgres: tuple[str, str] | None) -> None:
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("a drill passphrase, kept apart\n")
    with (
        (tmp_path / "drill.log").open("w") as log,
        network(tmp_path, log, ("NL", "KE"), ("--retry-cap", "2"), deferred=("NL", "KE")) as net,
    ):
        nl = net.nodes["NL"]
        if postgres is not None:
            # A node on PostgreSQL may share its store, so a restarted one lets a claim
            # from before run out instead of releasing it: a short lease, at test pace.
            _set_database(nl.directory, _asyncpg(postgres[0]), lease_seconds=3)
        net.restart("NL")  # KE stays down: whatever NL accepts waits in its outbox
        received = _envelope_from_ke(net, "KE-DRILL-0001")
        status, receipt = _post(net, received)
        assert status == 200

        submitted: list[Submitted] = []
        stop = threading.Event()
        traffic = threading.Thread(target=_submit_until, args=(net, submitted, stop, "T"))
        before = [_submit(net, f"NL-DRILL-B{i:02d}") for i in range(BEFORE)]
        traffic.start()
        while len(submitted) < 3:  # traffic flowing when the backup starts
            time.sleep(0.05)
        backup = tmp_path / "backups" / "nl.backup"
        backup.parent.mkdir()
        began = time.monotonic()
        if postgres is None:
            ok("node", "backup", "--dir", nl.directory, "-o", backup,
               "--passphrase-file", passphrase)  # fmt: skip
            ended = time.monotonic()
        else:
            dump = tmp_path / "backups" / "nl.pgdump"
            _run("pg_dump", "--format=custom", f"--file={dump}", _libpq(postgres[0]))
            ended = time.monotonic()  # the store's snapshot is pg_dump's
            ok("node", "backup", "--keys-only", "--dir", nl.directory, "-o", backup,
               "--passphrase-file", passphrase)  # fmt: skip
        while sum(s.began > ended for s in submitted) < 3:
            time.sleep(0.05)  # and accepted after it, to be lost
        stop.set()
        traffic.join()

        net.kill("NL")  # the node is gone: no shutdown, as in a crash
        dead = nl.directory.rename(nl.directory.with_name("NL-dead"))
        restored = tmp_path / "NL-restored"
        if postgres is None:
            said = ok("node", "restore", backup, "--dir", restored,
                      "--passphrase-file", passphrase)  # fmt: skip
        else:
            _run("pg_restore", "--no-owner", f"--dbname={_libpq(postgres[1])}", str(dump))
            said = ok("node", "restore", backup, "--dir", restored, "--passphrase-file",
                      passphrase, "--database-url", _asyncpg(postgres[1]))  # fmt: skip
        assert "restored node NL" in said
        assert load_config(restored / CONFIG_FILE) == _expected_config(dead, restored, postgres)
        net.nodes["NL"] = NodeHandle("NL", restored, nl.exchange_port, api_token=nl.api_token)
        net.restart("NL")
        net.restart("KE")

        # What NL accepted before the backup began must arrive; what it accepted after
        # the backup ended is lost by definition (the restored node never heard of it);
        # in between, either, but never twice.
        must = {s.number for s in submitted if s.ended < began} | set(before)
        lost = {s.number for s in submitted if s.began > ended}
        maybe = {s.number for s in submitted} - must - lost
        assert lost, "the drill must accept certificates after the backup"
        sent = _all_delivered(net)
        numbers = [m["number"] for m in sent]
        at_ke = [m["number"] for m in _list(net, "KE", "received")]
        assert len(at_ke) == len(set(at_ke)), f"KE holds one twice: {at_ke}"
        assert sorted(at_ke) == sorted(numbers)
        assert must <= set(at_ke), f"lost before the backup: {must - set(at_ke)}"
        assert set(at_ke) <= must | maybe, f"after the backup: {set(at_ke) & lost}"
        assert {m["outcome"] for m in sent} == {"accepted"}

        # History and replay protection: what NL received before the backup is there,
        # the same envelope again gets the original receipt and is not stored twice,
        # and another under the same message id is refused as a replay.
        assert [m["number"] for m in _list(net, "NL", "received")] == ["KE-DRILL-0001"]
        assert _post(net, received) == (200, receipt)
        replay = _envelope_from_ke(net, "KE-DRILL-0001", message_id=_message_id(received))
        status, problem = _post(net, replay)
        assert status == 409 and (PROBLEM_BASE + "replayed-message-id").encode() in problem
        assert [m["number"] for m in _list(net, "NL", "received")] == ["KE-DRILL-0001"]


# --- NL's traffic -------------------------------------------------------------------------


def _submit(net: Network, number: str) -> str:
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    cert = routed(phyto, exporter="NL", importer="KE", number=number)
    net.api("NL", "POST", "/certificates", to_xml_bytes(cert))
    return number


def _submit_until(
    net: Network, submitted: list[Submitted], stop: threading.Event, tag: str
) -> None:
    n = 0
    while not stop.is_set():
        began = time.monotonic()
        number = _submit(net, f"NL-DRILL-{tag}{n:03d}")
        submitted.append(Submitted(number, began, time.monotonic()))
        n += 1
        time.sleep(0.05)


def _list(net: Network, country: str, direction: str) -> list[dict[str, object]]:
    body = net.api(country, "GET", f"/certificates?direction={direction}&limit=1000")
    return list(body["certificates"])


def _all_delivered(net: Network) -> list[dict[str, object]]:
    deadline = time.monotonic() + WAIT
    while True:
        sent = _list(net, "NL", "sent")
        if all(m["state"] == "delivered" for m in sent) or time.monotonic() > deadline:
            return sent
        time.sleep(0.2)


# --- an envelope from KE, sealed with KE's own keys ---------------------------------------


def _envelope_from_ke(net: Network, number: str, *, message_id: str | None = None) -> bytes:
    """A certificate from KE to NL, sealed and signed with KE's keys (KE itself may be
    down); under a `message_id` given, with other content than the first one."""
    ke, nl = net.nodes["KE"], net.nodes["NL"]
    ke_config = load_config(ke.directory / CONFIG_FILE)
    nl_config = load_config(nl.directory / CONFIG_FILE)
    signing = load_signing_key(ke_config.path(ke_config.keys.signing).read_bytes(), "KE signing")
    encryption = load_encryption_key(
        nl_config.path(nl_config.keys.encryption).read_bytes(), "NL encryption"
    )
    payload = document(
        certificate_from_json(sample_model_bytes("phyto")),
        number=number,
        exporter="KE",
        importer="NL",
    )
    if message_id is not None:
        payload = payload.replace(b"</rsm:SPSCertificate>", b"<!-- other --></rsm:SPSCertificate>")
    message_id = message_id or str(uuid.uuid4())
    envelope = seal(
        header=EnvelopeHeader(
            message_id=message_id, from_country="KE", to_country="NL",
            certificate_type="851", certificate_status="70", certificate_number=number,
            created=datetime.now(UTC).replace(microsecond=0),
        ),
        payload=payload,
        sender_signing_key=signing,
        recipient_public_key=encryption.public_key(),
    )  # fmt: skip
    return envelope


def _message_id(envelope: bytes) -> str:
    header = json.loads(envelope)["header"]
    plain = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    return str(plain["message_id"])


def _post(net: Network, envelope: bytes) -> tuple[int, bytes]:
    """POST the envelope to NL's exchange endpoint as KE, over mutual TLS."""
    ke, nl = net.nodes["KE"], net.nodes["NL"]
    ke_config = load_config(ke.directory / CONFIG_FILE)
    nl_config = load_config(nl.directory / CONFIG_FILE)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=nl_config.path(nl_config.keys.tls_certificate))
    context.load_cert_chain(
        ke_config.path(ke_config.keys.tls_certificate), ke_config.path(ke_config.keys.tls_key)
    )
    request = urllib.request.Request(
        f"https://127.0.0.1:{nl.exchange_port}{ENVELOPES_PATH}",
        data=envelope,
        method="POST",
        headers={"Content-Type": ENVELOPE_MEDIA_TYPE},
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    return response.status, body


# --- the node's configuration and PostgreSQL ----------------------------------------------


def _expected_config(dead: Path, restored: Path, postgres: tuple[str, str] | None) -> NodeConfig:
    """The dead node's configuration, pointing at the restored store."""
    url = (
        f"sqlite+aiosqlite:///{restored.resolve() / 'node.db'}"
        if postgres is None
        else _asyncpg(postgres[1])
    )
    return replace(load_config(dead / CONFIG_FILE), directory=restored, database_url=url)


def _set_database(node_dir: Path, url: str, *, lease_seconds: int) -> None:
    path = node_dir / CONFIG_FILE
    config = replace(load_config(path), database_url=url, lease_seconds=lease_seconds)
    path.write_text(dump_config(config), encoding="utf-8")


@contextmanager
def _pg_database() -> Iterator[str]:
    """A new, empty database on the PostgreSQL at 127.0.0.1:5432, dropped afterwards."""
    name = f"ephyto_drill_{uuid.uuid4().hex[:12]}"
    try:
        _run("psql", *PG_ADMIN, "-d", "postgres", "-c", f'CREATE DATABASE "{name}"')
    except AssertionError as e:
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {e}")
    try:
        yield name
    finally:
        _run("psql", *PG_ADMIN, "-d", "postgres", "-c", f'DROP DATABASE "{name}" WITH (FORCE)')


def _libpq(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def _asyncpg(name: str) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{command[0]}: {result.stderr.strip()}"
