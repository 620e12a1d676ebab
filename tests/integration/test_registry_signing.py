"""Maintainers signing in turn from their own machines, and rotating the maintainer set.

Real files and the real CLI (in-process): a registry holding no maintainer key proposes;
"machines" are temporary folders holding one key each and a copy of the file; the signed
file comes back and `publish --signed` publishes it. Nodes are the real TrustedDirectory
and DirectoryRefresher (over HTTP from create_registry_app).
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from node.cli.main import main
from node.clock import SystemClock
from node.demo.network import free_port
from node.directory import MaintainerSet, RotationGap, ThresholdNotMet, TrustedDirectory
from node.directory.refresh import DirectoryRefresher, load
from node.directory.signing import parse_signed
from registry.web import create_registry_app
from tests.cli.test_cert_cli import ephyto

NAMES = ("alice", "bob", "carol")


@dataclass
class Run:
    code: int
    out: str
    err: str


@contextmanager
def _stdin(text: str) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved


def _run(*args: str | Path, stdin: str = "") -> Run:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), _stdin(stdin):
        code = main([str(a) for a in args])
    return Run(code, out.getvalue(), err.getvalue())


def _ok(*args: str | Path, stdin: str = "") -> str:
    result = _run(*args, stdin=stdin)
    assert result.code == 0, result.out + result.err
    return result.out


def _refused(*args: str | Path, stdin: str = "") -> str:
    result = _run(*args, stdin=stdin)
    assert result.code == 2, result.out + result.err
    assert result.err.startswith("ephyto: error: ") and len(result.err.splitlines()) == 1
    return result.err


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-of-3 registry (alice, bob, carol) that published version 1 listing NL; KE's
    enrolment request made (not sent)."""
    root = tmp_path_factory.mktemp("signing")
    reg = root / "registry"
    _ok("registry", "init", "--dir", reg, "--threshold", "2",
        "--maintainer", "alice", "--maintainer", "bob", "--maintainer", "carol")  # fmt: skip
    for cc, name in (("NL", "NVWA"), ("KE", "KEPHIS")):
        _ok("node", "init", "--country", cc, "--name", name, "--dir", root / cc.lower())
    _ok("registry", "add", root / "nl" / "enrolment-request.json", "--dir", reg)
    _ok("registry", "publish", "--dir", reg)
    return root


@dataclass
class World:
    root: Path
    reg: Path
    machines: dict[str, Path]  # name -> a folder holding only that maintainer's key
    keys: dict[str, Path]

    def anchor(self) -> MaintainerSet:
        return MaintainerSet.from_plain(
            json.loads((self.reg / "maintainers" / "maintainers.json").read_text())
        )

    def version(self, version: int) -> bytes:
        return (self.reg / "published" / f"{version}.json").read_bytes()

    def carry(self, src: Path, machine: str) -> Path:
        """Copy a file to a machine (the file travels, the key does not)."""
        dest = self.machines[machine] / src.name
        shutil.copyfile(src, dest)
        return dest

    def sign(self, file: Path, name: str, *extra: str | Path) -> str:
        return _ok("registry", "sign", file, "--key", self.keys[name], "--yes", *extra)

    def propose(self) -> Path:
        out = _ok("registry", "propose", "--dir", self.reg)
        line = next(x for x in out.splitlines() if x.startswith("proposed directory version"))
        return Path(line.split(": ", 1)[1])

    def signed_by(self, names: tuple[str, ...], previous: Path | None = None) -> Path:
        """Propose, then carry the file from machine to machine, each signing in turn."""
        file = self.propose()
        extra = () if previous is None else ("--previous", previous)
        for name in names:
            file = self.carry(file, name)
            self.sign(file, name, *extra)
        return file


@pytest.fixture
def world(base: Path, tmp_path: Path) -> World:
    root = tmp_path / "w"
    shutil.copytree(base, root)
    reg = root / "registry"
    anchor = MaintainerSet.from_plain(
        json.loads((reg / "maintainers" / "maintainers.json").read_text())
    )
    machines, keys = {}, {}
    for entry in anchor.keys:
        machines[entry.name] = root / f"machine-{entry.name}"
        machines[entry.name].mkdir(mode=0o700)
        keys[entry.name] = machines[entry.name] / f"{entry.key_id}.key"
        (reg / "maintainers" / f"{entry.key_id}.key").rename(keys[entry.name])
    return World(root, reg, machines, keys)


def _now() -> datetime:
    return datetime.now(UTC)


def _audit_actions(world: World) -> list[str]:
    lines = (world.reg / "audit.log").read_text().splitlines()
    return [json.loads(line)["action"] for line in lines]


# --- signing in turn ----------------------------------------------------------------------


def test_propose_sign_on_two_machines_then_publish(world: World) -> None:
    node = TrustedDirectory(world.anchor(), world.version(1))
    out = _ok("registry", "propose", "--dir", world.reg)
    proposed = world.reg / "proposed" / "2.json"
    assert f"proposed directory version 2: {proposed}" in out
    assert "NPPOs        NL" in out
    assert "0 signed, 2 needed (none; not yet: alice, bob, carol)" in out
    assert "next: send the file to the maintainers" in out
    assert "no change but the dates" in out

    on_a = world.carry(proposed, "alice")
    out = world.sign(on_a, "alice")
    assert "directory version 2" in out and "you sign as alice" in out
    assert "1 signed, 2 needed (alice; not yet: bob, carol)" in out
    on_b = world.carry(on_a, "bob")
    out = world.sign(on_b, "bob")
    assert "2 signed, 2 needed (alice, bob)" in out

    back = world.root / "inbox" / "2.json"
    back.parent.mkdir()
    shutil.copyfile(on_b, back)
    out = _ok("registry", "publish", "--signed", back, "--dir", world.reg)
    assert "published directory version 2 (signed in turn)" in out
    assert world.version(2) == back.read_bytes() == (world.reg / "current.json").read_bytes()
    assert not proposed.exists()
    assert node.update(world.version(2), _now()).version == 2
    assert _audit_actions(world)[-2:] == ["propose", "publish"]
    publish = json.loads((world.reg / "audit.log").read_text().splitlines()[-1])
    assert publish["details"]["via"] == "signed proposal"
    assert len(publish["details"]["signed_by"]) == 2
    assert "audit log intact" in _ok("registry", "log", "--verify", "--dir", world.reg)


def test_copies_signed_apart_merge_at_publish(world: World) -> None:
    proposed = world.propose()
    on_a, on_c = world.carry(proposed, "alice"), world.carry(proposed, "carol")
    world.sign(on_a, "alice")
    world.sign(on_c, "carol")
    _ok("registry", "publish", "--signed", on_a, "--signed", on_c, "--dir", world.reg)
    assert len(parse_signed(world.version(2)).signatures) == 2


def test_below_threshold_is_refused(world: World) -> None:
    file = world.signed_by(("alice",))
    err = _refused("registry", "publish", "--signed", file, "--dir", world.reg)
    assert "1 valid signatures of the current maintainer set, 2 needed" in err
    assert "ephyto registry sign" in err
    assert world.reg.joinpath("published", "2.json").exists() is False


def test_tampered_content_is_refused(world: World) -> None:
    file = world.signed_by(("alice", "bob"))
    data = file.read_bytes()
    # Still canonical and validly shaped, still the version expected: other content.
    tampered = data.replace(b'"name":"NVWA"', b'"name":"NVWB"')
    assert tampered != data
    file.write_bytes(tampered)
    err = _refused("registry", "publish", "--signed", file, "--dir", world.reg)
    assert "not the registry's proposal proposed/2.json" in err
    # Re-signed by a threshold after tampering: still not what the registry proposed.
    fresh = world.root / "resigned.json"
    shutil.copyfile(file, fresh)
    bare = b'{"signatures":[],' + tampered[tampered.index(b'"signed":') :]
    fresh.write_bytes(bare)
    world.sign(fresh, "alice")
    world.sign(fresh, "bob")
    err = _refused("registry", "publish", "--signed", fresh, "--dir", world.reg)
    assert "not the registry's proposal" in err


def test_a_stale_proposal_is_refused(world: World) -> None:
    file = world.signed_by(("alice", "bob"))
    _ok("registry", "suspend", "NL", "--reason", "key lost", "--maintainer", "carol",
        "--key", world.keys["carol"], "--dir", world.reg)  # fmt: skip
    err = _refused("registry", "publish", "--signed", file, "--dir", world.reg)
    assert "the registry changed since version 2 was proposed" in err
    assert "propose` again" in err
    again = world.signed_by(("alice", "bob"))
    _ok("registry", "publish", "--signed", again, "--dir", world.reg)
    assert parse_signed(world.version(2)).directory.nppo("NL").status == "suspended"


def test_the_wrong_version_is_refused(world: World) -> None:
    first = world.signed_by(("alice", "bob"))
    second = world.root / "copy-of-2.json"
    shutil.copyfile(first, second)
    _ok("registry", "publish", "--signed", first, "--dir", world.reg)
    err = _refused("registry", "publish", "--signed", second, "--dir", world.reg)
    assert "holds version 2 (already published), the next version is 3" in err
    err = _refused(
        "registry", "publish", "--signed", world.reg / "current.json", "--dir", world.reg
    )
    assert "already published" in err


def test_a_key_not_in_the_set_cannot_sign(world: World, tmp_path: Path) -> None:
    file = world.propose()
    _ok("registry", "keygen", "--name", "mallory", "--out", tmp_path / "m")
    stranger = next((tmp_path / "m").glob("*.key"))
    before = file.read_bytes()
    err = _refused("registry", "sign", file, "--key", stranger, "--yes")
    assert "is not in this directory's maintainer set" in err and "nothing signed" in err
    assert file.read_bytes() == before


def test_signing_twice_with_one_key_counts_once(world: World) -> None:
    file = world.signed_by(("alice",))
    err = _refused("registry", "sign", file, "--key", world.keys["alice"], "--yes")
    assert "already holds a valid signature by alice" in err
    # A hand-made file repeating alice's signature still has one maintainer's signature.
    data = file.read_bytes()
    start, end = data.index(b"[") + 1, data.index(b"]")
    entry = data[start:end]
    file.write_bytes(data[:start] + entry + b"," + entry + data[end:])
    assert len(parse_signed(file.read_bytes()).signatures) == 2
    err = _refused("registry", "publish", "--signed", file, "--dir", world.reg)
    assert "1 valid signatures of the current maintainer set, 2 needed" in err


def test_sign_asks_before_signing(world: World) -> None:
    file = world.carry(world.propose(), "alice")
    before = file.read_bytes()
    err = _refused("registry", "sign", file, "--key", world.keys["alice"], stdin="n\n")
    assert "not signed" in err and file.read_bytes() == before
    err = _refused("registry", "sign", file, "--key", world.keys["alice"], stdin="")
    assert file.read_bytes() == before
    out_file = world.machines["alice"] / "signed.json"
    out = _ok("registry", "sign", file, "--key", world.keys["alice"], "--out", out_file,
              stdin="y\n")  # fmt: skip
    assert "sign directory version 2? [y/N]" in out
    assert file.read_bytes() == before and out_file.read_bytes() != before


def test_plain_publish_says_what_to_do_without_keys(world: World) -> None:
    err = _refused("registry", "publish", "--dir", world.reg)
    assert "0 maintainer keys here, 2 needed to sign" in err and "registry propose" in err


# --- rotating the maintainer set ----------------------------------------------------------


def _keygen(world: World, name: str) -> Path:
    machine = world.root / f"machine-{name}"
    out = _ok("registry", "keygen", "--name", name, "--out", machine)
    assert "made maintainer key" in out and "mode 0600" in out
    world.machines[name] = machine
    world.keys[name] = next(machine.glob("*.key"))
    assert world.keys[name].stat().st_mode & 0o777 == 0o600
    return next(machine.glob("*.pub.json"))


def _rotate_carol_to_dave(world: World) -> None:
    public = _keygen(world, "dave")
    sent = world.root / "inbox" / public.name
    sent.parent.mkdir(exist_ok=True)
    shutil.copyfile(public, sent)
    _ok("registry", "maintainers", "remove", "carol", "--dir", world.reg)
    out = _ok("registry", "maintainers", "add", sent, "--dir", world.reg)
    assert "pending maintainer set (from the next published version): 2 of 3" in out
    assert "add dave" in out and "remove carol" in out


def test_rotation_end_to_end(world: World) -> None:
    old_anchor = world.anchor()
    skipper = TrustedDirectory(old_anchor, world.version(1))  # will miss the rotation
    follower = TrustedDirectory(old_anchor, world.version(1))
    # Carol announces a schema transition before she is rotated out: it must stay valid.
    _ok("registry", "schemas", "set", "D20B", "--from", "2030-01-01", "--maintainer", "carol",
        "--key", world.keys["carol"], "--dir", world.reg)  # fmt: skip
    _rotate_carol_to_dave(world)
    assert world.anchor() == old_anchor  # pending, not effective

    file = world.propose()
    text = _ok("registry", "sign", world.carry(file, "alice"), "--key", world.keys["alice"],
               "--yes", "--previous", world.reg / "current.json")  # fmt: skip
    assert "ROTATION" in text and "add dave" in text
    file = world.machines["alice"] / file.name
    # Carol is only in the current set: she signs to approve the change, with --previous.
    on_c = world.carry(file, "carol")
    err = _refused("registry", "sign", on_c, "--key", world.keys["carol"], "--yes")
    assert "pass --previous" in err
    out = world.sign(on_c, "carol", "--previous", world.reg / "maintainers" / "maintainers.json")
    assert "not in the new one" in out
    assert "current set 2 signed, 2 needed" in out and "new set     1 signed, 2 needed" in out
    # Old threshold met, new one not: refused.
    err = _refused("registry", "publish", "--signed", on_c, "--dir", world.reg)
    assert "1 valid signatures of the new maintainer set, 2 needed" in err
    on_d = world.carry(on_c, "dave")
    world.sign(on_d, "dave")
    out = _ok("registry", "publish", "--signed", on_d, "--dir", world.reg)
    assert "2 of 3: alice" in out and "dave" in out

    new_anchor = world.anchor()
    assert {k.name for k in new_anchor.keys} == {"alice", "bob", "dave"}
    folder = world.reg / "maintainers"
    kept = MaintainerSet.from_plain(json.loads((folder / "maintainers.1.json").read_text()))
    assert kept == old_anchor and not (folder / "maintainers.pending.json").exists()
    assert "maintainers-rotated" in _audit_actions(world)
    assert follower.update(world.version(2), _now()).maintainers == new_anchor

    # Version 3 by the new set only (bob and dave): the old set alone never signed it.
    v3 = world.signed_by(("bob", "dave"))
    _ok("registry", "publish", "--signed", v3, "--dir", world.reg)
    assert follower.update(world.version(3), _now()).version == 3
    with pytest.raises(RotationGap):
        skipper.update(world.version(3), _now())
    assert skipper.update_chain([world.version(2), world.version(3)], _now()).version == 3

    # Carol, rotated out, can no longer take part, alone or with a new maintainer.
    v4 = world.propose()
    err = _refused("registry", "sign", v4, "--key", world.keys["carol"], "--yes")
    assert "not in this directory's maintainer set" in err
    world.sign(v4, "carol", "--previous", folder / "maintainers.1.json")
    world.sign(v4, "dave")
    err = _refused("registry", "publish", "--signed", v4, "--dir", world.reg)
    assert "1 valid signatures of the current maintainer set, 2 needed" in err
    shutil.copyfile(world.keys["carol"], folder / world.keys["carol"].name)
    err = _refused("registry", "publish", "--dir", world.reg)
    assert "0 maintainer keys here, 2 needed" in err

    # The registry still reads what carol signed before (her suspend, her schema
    # transition, the audit log), and still builds the next version from them.
    _ok("registry", "show", "--dir", world.reg)
    assert "D20B" in _ok("registry", "schemas", "--dir", world.reg)
    assert [s.version for s in parse_signed(world.propose().read_bytes()).directory.schemas] == [
        "D17A",
        "D20B",
    ]
    assert "audit log intact" in _ok("registry", "log", "--verify", "--dir", world.reg)


def test_a_new_set_only_rotation_is_refused_by_registry_and_node(world: World) -> None:
    node = TrustedDirectory(world.anchor(), world.version(1))
    _rotate_carol_to_dave(world)
    file = world.propose()
    world.sign(file, "dave")
    world.sign(file, "bob")
    err = _refused("registry", "publish", "--signed", file, "--dir", world.reg)
    assert "1 valid signatures of the current maintainer set" in err
    with pytest.raises(ThresholdNotMet):
        node.update(file.read_bytes(), _now())
    assert node.current is not None and node.current.version == 1


def test_plain_publish_rotates_with_every_key_here(world: World) -> None:
    for name in NAMES:
        shutil.copyfile(world.keys[name], world.reg / "maintainers" / world.keys[name].name)
    machine = world.root / "machine-dave"
    _ok("registry", "keygen", "--name", "dave", "--out", machine)
    _ok("registry", "maintainers", "add", next(machine.glob("*.pub.json")), "--dir", world.reg)
    _ok("registry", "maintainers", "threshold", "4", "--dir", world.reg)
    err = _refused("registry", "publish", "--dir", world.reg)
    assert "3 maintainer keys of the new maintainer set here, 4 needed" in err
    shutil.copyfile(next(machine.glob("*.key")), world.reg / "maintainers" / "dave.tmp")
    (world.reg / "maintainers" / "dave.tmp").rename(
        world.reg / "maintainers" / next(machine.glob("*.key")).name
    )
    _ok("registry", "publish", "--dir", world.reg)
    assert world.anchor().threshold == 4 and len(world.anchor().keys) == 4
    node = TrustedDirectory(MaintainerSet.from_plain(
        json.loads((world.reg / "maintainers" / "maintainers.1.json").read_text())
    ), world.version(1))  # fmt: skip
    assert node.update(world.version(2), _now()).maintainers.threshold == 4


def test_maintainer_set_changes_refuse_nonsense(world: World, tmp_path: Path) -> None:
    reg = ("--dir", world.reg)
    out = _ok("registry", "maintainers", *reg)
    assert "current maintainer set: 2 of 3: alice" in out and "pending change: none" in out
    assert "needs 1 to 3" in _refused("registry", "maintainers", "threshold", "4", *reg)
    assert "whole number" in _refused("registry", "maintainers", "threshold", "two", *reg)
    _ok("registry", "maintainers", "remove", "carol", *reg)
    err = _refused("registry", "maintainers", "remove", "bob", *reg)
    assert "would leave 1 keys for a threshold of 2: lower the threshold first" in err
    assert "not in the maintainer set" in _refused("registry", "maintainers", "remove", "eve", *reg)
    _ok("registry", "keygen", "--name", "alice", "--out", tmp_path / "a2")
    err = _refused("registry", "maintainers", "add", next((tmp_path / "a2").glob("*.pub.json")),
                   *reg)  # fmt: skip
    assert "a maintainer named 'alice' is already in the set" in err
    dup = tmp_path / "bob.pub.json"
    bob = json.loads((world.reg / "maintainers" / "maintainers.json").read_text())["keys"][1]
    dup.write_text(json.dumps(bob | {"name": "bobby"}))
    assert "already in the set, as bob" in _refused("registry", "maintainers", "add", dup, *reg)
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x"}')
    assert "not a maintainer's public entry" in _refused(
        "registry", "maintainers", "add", bad, *reg
    )
    assert "needs PUBLIC.json" in _refused("registry", "maintainers", "add", *reg)
    out = _ok("registry", "maintainers", "cancel", *reg)
    assert "dropped" in out
    assert "nothing to cancel" in _refused("registry", "maintainers", "cancel", *reg)
    # Undoing a pending change by hand leaves nothing pending.
    _ok("registry", "maintainers", "threshold", "3", *reg)
    out = _ok("registry", "maintainers", "threshold", "2", *reg)
    assert "no maintainer-set change is pending now" in out
    actions = _audit_actions(world)
    assert actions.count("maintainers-change") == 3 and "maintainers-cancel" in actions


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    out_dir = tmp_path / "k"
    out = _ok("registry", "keygen", "--name", "erin", "--out", out_dir)
    entry = json.loads(next(out_dir.glob("*.pub.json")).read_text())
    assert entry["name"] == "erin" and entry["keyid"] in out
    err = _refused("registry", "keygen", "--name", "erin", "--out", out_dir)
    assert "already holds a key of erin" in err
    assert len(list(out_dir.glob("*.key"))) == 1
    assert "name" in _refused("registry", "keygen", "--name", " ", "--out", tmp_path / "x")


# --- a node refreshing over HTTP across a rotation ------------------------------------------


@asynccontextmanager
async def _registry_app(registry: Path) -> AsyncIterator[str]:
    runner = web.AppRunner(create_registry_app(registry))
    await runner.setup()
    port = free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_a_node_that_skipped_the_rotation_follows_it_over_http(world: World) -> None:
    anchor = world.anchor()
    cache = world.root / "node-directory.json"
    cache.write_bytes(world.version(1))
    _rotate_carol_to_dave(world)
    anchor_file = world.root / "anchor.json"
    shutil.copyfile(world.reg / "maintainers" / "maintainers.json", anchor_file)
    for names in (("alice", "carol", "dave"), ("bob", "dave"), ("alice", "dave")):
        signed = world.signed_by(names, previous=anchor_file)
        _ok("registry", "publish", "--signed", signed, "--dir", world.reg)

    async with _registry_app(world.reg) as url:
        node = DirectoryRefresher(
            f"{url}/directory.json", load(cache, anchor), cache, SystemClock(),
            aiohttp.ClientSession,
        )  # fmt: skip
        result = await node.refresh()
        assert (result.outcome, result.version) == ("updated", 4), result.message
        assert cache.read_bytes() == world.version(4)
        assert node.trusted.maintainers == world.anchor()

        # A node starting from the old anchor alone walks from version 1.
        fresh = world.root / "fresh.json"
        other = DirectoryRefresher(
            f"{url}/directory.json", load(fresh, anchor), fresh, SystemClock(),
            aiohttp.ClientSession,
        )  # fmt: skip
        assert (await other.refresh()).version == 4

        # A version in between missing: refused, the cached copy kept.
        (world.reg / "published" / "2.json").rename(world.root / "2.json")
        stuck_cache = world.root / "stuck.json"
        stuck_cache.write_bytes(world.version(1))
        stuck = DirectoryRefresher(
            f"{url}/directory.json", load(stuck_cache, anchor), stuck_cache, SystemClock(),
            aiohttp.ClientSession,
        )  # fmt: skip
        result = await stuck.refresh()
        assert result.outcome == "refused" and isinstance(result.error, RotationGap)
        assert "version 2, needed to follow the rotation, could not be fetched" in result.message
        assert stuck_cache.read_bytes() == world.version(1)


# --- the CLI's help and errors (a real process) ------------------------------------------


def test_help_and_usage_errors() -> None:
    for command in ("propose", "sign", "keygen", "maintainers", "publish"):
        result = ephyto("registry", command, "--help")
        assert result.returncode == 0, result.stderr
    assert "--signed FILE" in ephyto("registry", "publish", "--help").stdout
    assert "--previous FILE" in ephyto("registry", "sign", "--help").stdout
    missing = ephyto("registry", "sign", "nothing.json")
    assert missing.returncode == 2 and "--key" in missing.stderr
    gone = ephyto("registry", "sign", "nothing.json", "--key", "nokey.pem", "--yes")
    assert gone.returncode == 2 and "nothing.json" in gone.stderr
    assert "Traceback" not in gone.stderr


def test_expiry_window_is_counted_from_the_proposal(world: World) -> None:
    out = _ok("registry", "propose", "--expires-in", "2h", "--dir", world.reg)
    doc = parse_signed((world.reg / "proposed" / "2.json").read_bytes()).directory
    assert doc.expires - doc.issued == timedelta(hours=2)
    assert "expires" in out
