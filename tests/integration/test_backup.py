"""Backing up a node and restoring it (node.backup.archive) on real files and a real SQLite
store: a backup taken while the store is being written restores a consistent store the
StoreGuard accepts, with every file and mode; a restore refuses a wrong passphrase, a
flipped byte anywhere, a cut at any length and a hostile entry, and writes nothing."""

from __future__ import annotations

import asyncio
import json
import secrets
import stat
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.backup import format as fmt
from node.backup.archive import BackupError, back_up
from node.backup.restoring import restore
from node.clock import FixedClock
from node.identity.config import CONFIG_FILE, dump_config, load_config
from node.identity.store import init_node
from node.store.guard import STORE_STATE_FILE, StoreGuard
from node.store.store import NewMessage, Store

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PASSPHRASE = b"a long enough passphrase"
FAST = 2**10  # scrypt's lowest cost: restoring thousands of damaged copies stays quick


def _message(n: int) -> NewMessage:
    return NewMessage(
        message_id=f"m-{n}", sender="NL", recipient="KE", certificate_number=f"NL-{n:05d}",
        certificate_type="851", certificate_status="70",
        content_digest="sha256:" + f"{n:064x}", payload=b"<rsm:SPSCertificate/>" * 20,
    )  # fmt: skip


def _node(root: Path) -> Path:
    node_dir = root / "nl"
    init_node(node_dir, country="NL", name="NVWA", endpoint=None, now=T0)
    (node_dir / "codelists").mkdir(mode=0o755)
    (node_dir / "codelists" / "units.json").write_text('{"version": 3}')
    (node_dir / "api-clients.json").write_text("[]")
    (node_dir / "api-clients.json").chmod(0o600)
    (node_dir / ".node.toml.4242.tmp").write_text("a crashed writer's leftover")
    return node_dir


async def _store_with(node_dir: Path, count: int) -> None:
    """The node's store with `count` messages, and its note of having exchanged."""
    store = Store.open(load_config(node_dir / CONFIG_FILE).database_url)
    try:
        await store.migrate()
        for n in range(count):
            await store.submit(_message(n), now=T0)
        guard = StoreGuard(node_dir / STORE_STATE_FILE, FixedClock(T0))
        await guard.check(store, accept_empty=False)
        async with AsyncExitStack() as stack:
            await guard.follow(stack, store)
    finally:
        await store.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _tree(root: Path) -> dict[str, tuple[int, bytes | None]]:
    return {
        p.relative_to(root).as_posix(): (_mode(p), None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.asyncio
async def test_a_backup_taken_while_the_store_is_written_restores_a_consistent_store(
    tmp_path: Path,
) -> None:
    node_dir = _node(tmp_path)
    await _store_with(node_dir, 40)
    store = Store.open(load_config(node_dir / CONFIG_FILE).database_url)
    written = 40
    output = tmp_path / "nl.backup"

    async def keep_writing() -> None:
        nonlocal written
        while True:
            await store.submit(_message(written), now=T0)
            written += 1
            await asyncio.sleep(0)

    writer = asyncio.get_running_loop().create_task(keep_writing())
    try:
        while written < 60:
            await asyncio.sleep(0.01)
        result = await asyncio.to_thread(
            back_up, node_dir, output, PASSPHRASE, keys_only=False, now=T0
        )
        at_end = written
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        await store.close()
    assert result.country == "NL" and result.database == "sqlite"
    assert _mode(output) == 0o600 and output.stat().st_size == result.size
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work files left

    restored_dir = tmp_path / "restored"
    restored = await asyncio.to_thread(restore, output, restored_dir, PASSPHRASE)
    assert restored.schema_revision == result.schema_revision is not None
    config = load_config(restored_dir / CONFIG_FILE)
    assert config.database_url == f"sqlite+aiosqlite:///{restored_dir.resolve() / 'node.db'}"
    assert config == replace(
        load_config(node_dir / CONFIG_FILE),
        directory=restored_dir,
        database_url=config.database_url,
    )
    # Every other file as it was, with its mode; the store's files and leftovers not.
    before, after = _tree(node_dir), _tree(restored_dir)
    for name in ("node.db", "node.db-wal", "node.db-shm", ".node.toml.4242.tmp", CONFIG_FILE):
        before.pop(name, None)
    assert after.pop("node.db")[0] == 0o600
    assert _mode(restored_dir / CONFIG_FILE) == 0o600
    after.pop(CONFIG_FILE)
    assert after == before
    assert after["keys/signing.key"][0] == 0o600 and after["codelists"][0] == 0o755
    assert STORE_STATE_FILE in after

    copy = Store.open(config.database_url)
    try:
        await StoreGuard(restored_dir / STORE_STATE_FILE, FixedClock(T0)).check(
            copy, accept_empty=False
        )  # not damaged, not empty: accepted
        await copy.ensure_schema(restored_dir)  # at this version's revision: accepted
        numbers = sorted(m.certificate_number for m in await copy.messages("out"))
    finally:
        await copy.close()
    # One snapshot: the first N submissions, N between the 60 before and all at the end.
    assert 60 <= len(numbers) <= at_end
    assert numbers == [f"NL-{n:05d}" for n in range(len(numbers))]


def test_a_restore_writes_nothing_for_a_flipped_byte_anywhere_or_a_cut_anywhere(
    tmp_path: Path,
) -> None:
    node_dir = _node(tmp_path)
    output = tmp_path / "keys.backup"
    back_up(node_dir, output, PASSPHRASE, keys_only=True, now=T0, scrypt_n=FAST)
    data = output.read_bytes()
    place = tmp_path / "restores"
    place.mkdir()
    damaged = place / "damaged.backup"
    target = place / "nl"

    def refused(copy: bytes) -> None:
        damaged.write_bytes(copy)
        with pytest.raises(fmt.BackupFormatError):
            restore(damaged, target, PASSPHRASE)
        assert sorted(p.name for p in place.iterdir()) == ["damaged.backup"]

    # Every byte of the header and the first chunk's length, then every 11th and the
    # last 40 (tests/unit/test_backup_format.py flips every bit of a sealed chunk).
    start = fmt.PREFIX_BYTES + fmt.header_length(data[: fmt.PREFIX_BYTES]) + fmt.LENGTH_BYTES
    places = sorted({*range(start + 1), *range(start, len(data), 11), *range(len(data))[-40:]})
    for at in places:
        refused(data[:at] + bytes([data[at] ^ 0x04]) + data[at + 1 :])
    for length in places:
        refused(data[:length])
    refused(data + b"\x00")
    refused(data + data)
    restore(output, target, PASSPHRASE)  # the file itself restores
    assert (target / CONFIG_FILE).is_file() and not (target / "node.db").exists()


def test_a_wrong_passphrase_is_told_apart_and_writes_nothing(tmp_path: Path) -> None:
    node_dir = _node(tmp_path)
    output = tmp_path / "keys.backup"
    back_up(node_dir, output, PASSPHRASE, keys_only=True, now=T0, scrypt_n=FAST)
    with pytest.raises(fmt.WrongPassphraseError, match="passphrase does not open"):
        restore(output, tmp_path / "restored", b"not the passphrase")
    assert not (tmp_path / "restored").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.backup", "nl"]


def test_a_restore_needs_a_new_or_empty_folder(tmp_path: Path) -> None:
    node_dir = _node(tmp_path)
    output = tmp_path / "keys.backup"
    back_up(node_dir, output, PASSPHRASE, keys_only=True, now=T0, scrypt_n=FAST)
    with pytest.raises(BackupError, match="is not empty"):
        restore(output, node_dir, PASSPHRASE)
    (tmp_path / "file").write_text("x")
    with pytest.raises(BackupError, match="is not a folder"):
        restore(output, tmp_path / "file", PASSPHRASE)
    with pytest.raises(BackupError, match="no such folder"):
        restore(output, tmp_path / "missing" / "nl", PASSPHRASE)
    empty = tmp_path / "empty"
    empty.mkdir()
    restore(output, empty, PASSPHRASE)
    assert (empty / CONFIG_FILE).is_file()


def test_a_backup_refuses_what_it_must_not_write(tmp_path: Path) -> None:
    node_dir = _node(tmp_path)
    (tmp_path / "taken").write_text("someone's file")
    with pytest.raises(BackupError, match="exists"):
        back_up(node_dir, tmp_path / "taken", PASSPHRASE, keys_only=True, now=T0)
    assert (tmp_path / "taken").read_text() == "someone's file"
    with pytest.raises(BackupError, match="outside the node directory"):
        back_up(node_dir, node_dir / "inside.backup", PASSPHRASE, keys_only=True, now=T0)
    with pytest.raises(BackupError, match="does not exist yet"):
        back_up(node_dir, tmp_path / "b", PASSPHRASE, keys_only=False, now=T0)
    assert not (tmp_path / "b").exists() and not (node_dir / "inside.backup").exists()


def test_a_postgresql_node_is_backed_up_without_its_store_and_restored_onto_another(
    tmp_path: Path,
) -> None:
    node_dir = _node(tmp_path)
    path = node_dir / CONFIG_FILE
    old_url = "postgresql+asyncpg://ephyto:secret@db.example:5432/nl"
    path.write_text(dump_config(replace(load_config(path), database_url=old_url)))
    with pytest.raises(BackupError, match=r"in postgresql \(.*:\*\*\*@.*pg_dump.*--keys-only"):
        back_up(node_dir, tmp_path / "all.backup", PASSPHRASE, keys_only=False, now=T0)
    output = tmp_path / "keys.backup"
    result = back_up(node_dir, output, PASSPHRASE, keys_only=True, now=T0, scrypt_n=FAST)
    assert result.database is None
    new_url = "postgresql+asyncpg://ephyto@db.example:5432/nl_restored"
    restore(output, tmp_path / "kept", PASSPHRASE)
    assert load_config(tmp_path / "kept" / CONFIG_FILE).database_url == old_url
    restore(output, tmp_path / "moved", PASSPHRASE, database_url=new_url)
    assert load_config(tmp_path / "moved" / CONFIG_FILE).database_url == new_url


@pytest.mark.asyncio
async def test_a_sqlite_backup_refuses_another_database_url(tmp_path: Path) -> None:
    node_dir = _node(tmp_path)
    await _store_with(node_dir, 1)
    output = tmp_path / "nl.backup"
    back_up(node_dir, output, PASSPHRASE, keys_only=False, now=T0, scrypt_n=FAST)
    with pytest.raises(BackupError, match="drop --database-url"):
        restore(output, tmp_path / "r", PASSPHRASE, database_url="postgresql+asyncpg://x/y")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "path", ["../escaped", "keys/../../escaped", "/tmp/escaped", "node.toml/x"]
)
def test_an_authentic_archive_with_a_hostile_path_writes_nothing(tmp_path: Path, path: str) -> None:
    """Made with the passphrase (a backup from an attacker who has it, or a bug): the
    entries are checked all the same."""
    key = fmt.derive_key(PASSPHRASE, bytes(16), FAST, 8, 1)
    header = fmt.new_header(key, bytes(16), secrets.token_bytes(7), n=FAST)
    toml = (_node(tmp_path) / CONFIG_FILE).read_bytes()
    manifest = fmt.manifest_entry({"format": fmt.VERSION, "country": "NL"})
    plain = b"".join(
        fmt.Entry(e.kind, e.path, e.mode, len(d)).to_bytes() + d
        for e, d in (
            manifest,
            (fmt.Entry(fmt.FILE, CONFIG_FILE, 0o600), toml),
            (fmt.Entry(fmt.FILE, path, 0o644), b"planted"),
            (fmt.Entry(fmt.END), b""),
        )
    )
    hostile = tmp_path / "hostile.backup"
    hostile.write_bytes(header.to_bytes() + fmt.seal_chunk(key, header, 0, plain, last=True))
    place = tmp_path / "place"
    place.mkdir()
    with pytest.raises(fmt.BackupFormatError):
        restore(hostile, place / "nl", PASSPHRASE)
    assert list(place.iterdir()) == []
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/escaped").exists()


def test_the_manifest_says_what_the_backup_holds(tmp_path: Path) -> None:
    node_dir = _node(tmp_path)
    output = tmp_path / "keys.backup"
    back_up(node_dir, output, PASSPHRASE, keys_only=True, now=T0, scrypt_n=FAST)
    data = output.read_bytes()
    length = fmt.header_length(data[: fmt.PREFIX_BYTES])
    header = fmt.parse_header(data[: fmt.PREFIX_BYTES + length])
    assert (header.n, header.r, header.p) == (FAST, fmt.SCRYPT_R, fmt.SCRYPT_P)
    key = fmt.derive_key(PASSPHRASE, header.salt, header.n, header.r, header.p)
    sealed = data[fmt.PREFIX_BYTES + length + fmt.LENGTH_BYTES :]
    reader = fmt.EntryReader()
    reader.feed(fmt.open_chunk(key, header, 0, sealed, last=True))
    reader.close()
    assert reader.manifest is not None
    assert reader.manifest["country"] == "NL" and reader.manifest["database"] is None
    assert reader.manifest["created"] == "2026-12-07T12:00:00+00:00"
    assert json.dumps(reader.manifest)  # plain JSON: an operator can read it
