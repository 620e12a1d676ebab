"""`ephyto doctor` on a node in each stage of a key rotation (offline: the cached directory).

Real files: the identity from `init_node`, next keys from `rotate_keys`, the rotation
recorded and published by a real registry whose directory is the node's cache, and
`ephyto node rotate-keys --finish` run through the CLI's main. The doctor reads the real
clock, so the rotations are placed around now.
"""

from __future__ import annotations

import dataclasses
import shutil
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest

from node.cli.main import main
from node.clock import SystemClock
from node.directory.refresh import timestamp_path
from node.doctor.checks import Finding, worst
from node.doctor.run import diagnose
from node.identity.config import dump_config, load_config
from node.identity.keys import private_key_pem
from node.identity.store import init_node, rotate_keys
from node.service import DIRECTORY_CACHE
from registry.state import RegistryState
from registry.timestamp import TIMESTAMP_FILE

NOW = datetime.now(UTC).replace(microsecond=0)
START = NOW - timedelta(hours=10)


@dataclasses.dataclass
class Node:
    directory: Path
    registry: RegistryState

    def rotate(self, at: datetime, overlap: timedelta | None) -> None:
        """`rotate-keys` at `at`; with `overlap`, recorded and published by the registry."""
        rotate_keys(self.directory, now=at)
        if overlap is None:
            return
        signer = self.registry.default_signer()
        assert signer is not None
        raw = (self.directory / "rotation-request.json").read_bytes()
        self.registry.rotate(raw, overlap, at, "test", signer)
        self.registry.publish(at, "test", code_lists={})
        self.cache()

    def cache(self) -> None:
        """The node's refresh: the registry's current directory becomes the node's cache."""
        data = self.registry.current_bytes()
        assert data is not None
        (self.directory / DIRECTORY_CACHE).write_bytes(data)
        # and its timestamp, published with it, which the refresh keeps beside the cache
        stamp = (self.registry.root / TIMESTAMP_FILE).read_bytes()
        timestamp_path(self.directory / DIRECTORY_CACHE).write_bytes(stamp)

    async def doctor(self) -> dict[str, Finding]:
        findings = await diagnose(self.directory, clock=SystemClock(), offline=True)
        return {f.check: f for f in findings}


@pytest.fixture
def node(tmp_path: Path) -> Node:
    registry = RegistryState.init(
        tmp_path / "registry", maintainer="m", threshold=1, now=START, actor="test"
    )
    made = init_node(tmp_path / "nl", country="NL", name="NVWA", endpoint=None, now=START)
    registry.enrol(made.request.read_bytes(), START, "test")
    registry.publish(START, "test", code_lists={})
    shutil.copy(registry.root / "maintainers/maintainers.json", made.directory / "anchor.json")
    config = load_config(made.config)
    configured = dataclasses.replace(
        config, registry_url="http://127.0.0.1:9/directory.json", registry_anchor="anchor.json"
    )
    made.config.write_text(dump_config(configured))
    made.config.chmod(0o600)
    result = Node(made.directory, registry)
    result.cache()
    return result


def _finish(node: Node) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["node", "rotate-keys", "--finish", "--dir", str(node.directory)])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.asyncio
async def test_next_keys_not_yet_published_say_to_send_the_request(node: Node) -> None:
    node.rotate(NOW - timedelta(hours=1), None)

    checks = await node.doctor()

    assert checks["next signing key"].status == "ok"
    assert checks["next encryption key"].status == "ok"
    rotation = checks["key rotation"]
    assert rotation.status == "warning" and "not in directory version 1" in rotation.detail
    assert rotation.action is not None and "rotation-request.json" in rotation.action
    assert "ephyto registry rotate" in rotation.action
    assert checks["signing key id"].status == "ok"  # the current keys carry on
    code, _, err = _finish(node)
    assert code == 2 and len(err.splitlines()) == 1
    assert "does not list the next keys" in err and "nothing changed" in err


@pytest.mark.asyncio
async def test_in_the_overlap_all_is_well_and_finishing_waits(node: Node) -> None:
    node.rotate(NOW - timedelta(hours=2), timedelta(hours=24))
    before = (node.directory / "node.toml").read_bytes()

    checks = await node.doctor()

    rotation = checks["key rotation"]
    assert rotation.status == "ok", rotation
    assert "valid until" in rotation.detail and "--finish" in rotation.detail
    assert worst(list(checks.values())) == "ok", [f for f in checks.values() if f.action]
    code, _, err = _finish(node)
    assert code == 2 and "the overlap runs until" in err and len(err.splitlines()) == 1
    assert (node.directory / "node.toml").read_bytes() == before


@pytest.mark.asyncio
async def test_after_the_overlap_it_advises_finish_and_finish_clears_it(node: Node) -> None:
    node.rotate(NOW - timedelta(hours=3), timedelta(hours=1))

    checks = await node.doctor()

    rotation = checks["key rotation"]
    assert rotation.status == "warning" and "overlap ended" in rotation.detail
    assert rotation.action is not None and "rotate-keys --finish" in rotation.action
    # The retired current keys are no fault while the rotation waits to be finished.
    for check in ("signing key id", "encryption key id"):
        assert checks[check].status == "warning", checks[check]
        assert "rotate-keys --finish" in (checks[check].action or "")
    assert worst(list(checks.values())) == "warning"

    code, out, err = _finish(node)
    assert code == 0, err
    assert "finished the key rotation of NL" in out and "keys/retired" in out
    assert "PRIVATE KEY" not in out

    after = await node.doctor()
    assert "key rotation" not in after and "next signing key" not in after
    assert worst(list(after.values())) == "ok", [f for f in after.values() if f.action]
    # And the next rotation can start.
    node.rotate(NOW, None)
    assert (await node.doctor())["key rotation"].status == "warning"


@pytest.mark.asyncio
async def test_a_missing_next_key_file_is_a_problem_saying_what_to_do(node: Node) -> None:
    node.rotate(NOW - timedelta(hours=2), timedelta(hours=24))
    (node.directory / "keys/signing.next.key").unlink()

    checks = await node.doctor()

    missing = checks["next signing key"]
    assert missing.status == "problem" and "missing" in missing.detail
    assert missing.action is not None and "restore" in missing.action
    assert "key rotation" not in checks  # nothing to compare without the key


@pytest.mark.asyncio
async def test_a_next_key_the_directory_does_not_list_is_a_problem(node: Node) -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    node.rotate(NOW - timedelta(hours=2), timedelta(hours=24))
    (node.directory / "keys/encryption.next.key").write_bytes(
        private_key_pem(X25519PrivateKey.generate())
    )
    (node.directory / "keys/encryption.next.key").chmod(0o644)

    checks = await node.doctor()

    rotation = checks["key rotation"]
    assert rotation.status == "problem"
    assert "cannot open" in rotation.detail and "encryption" in rotation.detail
    assert rotation.action is not None and "restore" in rotation.action
    loose = checks["next encryption key"]
    assert loose.status == "warning" and "chmod 600" in (loose.action or "")
