"""A damaged, emptied or exposed store at start (issue 11), with `ephyto node serve` and
`ephyto hub serve` run as operators run them, on real SQLite files.

A node that has exchanged keeps `store-state.json` beside node.toml: a store found empty
then (0 bytes, removed, or without a message) has lost history and replay protection,
and the node refuses it unless told `--accept-empty-store`. A store whose SQLite file is
damaged is refused by node and hub alike, and left as it is for the operator.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import stat
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from node.clock import FixedClock, SystemClock
from node.demo.network import free_port
from node.fileio import write_atomic
from node.hub.accounts import AccountPolicy, Prepaid
from node.hub.config import load_hub_config
from node.hub.store import HubStore
from node.identity.config import CONFIG_FILE, default_database_url, dump_config, load_config
from node.service import Listening, run_node
from node.store.guard import STORE_STATE_FILE, EmptyStoreError, StoreGuard
from node.store.store import NewMessage, Store
from tests.databases import postgres_database
from tests.ephyto_cli import ok
from tests.integration.test_node_serve import START_TIMEOUT, Server, api, certificate_between

READY = re.compile(r"^node NL ready: exchange .*, api (?P<api>http://\S+)$")
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
GUIDE = Path(__file__).parents[2] / "docs" / "operations.md"
SECTION = 'docs/operations.md, "A damaged or empty store at start"'


def _new_node(root: Path) -> Path:
    """A node NL without an endpoint (its API only), configured for a registry nobody
    serves: it starts, accepts and queues submissions."""
    registry, node_dir = root / "registry", root / "nl"
    ok("registry", "init", "--dir", registry)
    ok("node", "init", "--country", "NL", "--name", "NVWA", "--dir", node_dir)
    ok("node", "configure", "--dir", node_dir,
       "--registry", f"http://127.0.0.1:{free_port()}/directory.json",
       "--anchor", registry / "maintainers" / "maintainers.json",
       "--api-port", str(free_port()))  # fmt: skip
    return node_dir


def _serve(node_dir: Path, *options: str) -> Server:
    """`ephyto node serve`, started with the usual umask (group and others may read)."""
    old = os.umask(0o022)
    try:
        return Server("NL", ["node", "serve", "--dir", str(node_dir), *options], node_dir.parent)
    finally:
        os.umask(old)


def _refused(workdir: Path, *args: str | Path) -> str:
    """The one error line of a `serve` that must refuse to start (exit 2); fails as soon
    as it gets ready instead."""
    server = Server("refused", [str(a) for a in args], workdir)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while server.process.poll() is None:
            assert " ready: " not in server.stdout.read_text(), server.output()
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
    finally:
        server.close()
    error = server.stderr.read_text()
    assert server.process.returncode == 2, server.output()
    assert error.startswith("ephyto: error: ") and len(error.splitlines()) == 1, server.output()
    return error


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def exchanged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node directory whose store holds one submitted certificate, the node stopped."""
    node_dir = _new_node(tmp_path_factory.mktemp("exchanged"))
    server = _serve(node_dir)
    try:
        ready = server.wait_for(READY)
        token = load_config(node_dir / CONFIG_FILE).api_token
        status, sent = api(
            ready["api"], token, "/api/v1/certificates", certificate_between("NL", "KE")
        )
        assert status == 202, sent
        assert server.terminate() == 0, server.output()
    finally:
        server.close()
    return node_dir


@pytest.fixture
def node(exchanged: Path, tmp_path: Path) -> Path:
    """A copy of the node that has exchanged, with its own store and API port."""
    copy = tmp_path / "nl"
    shutil.copytree(exchanged, copy)
    config = load_config(copy / CONFIG_FILE)
    moved = replace(config, database_url=default_database_url(copy), api_port=free_port())
    write_atomic(copy / CONFIG_FILE, dump_config(moved).encode(), 0o600)
    return copy


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            server.close()


def _api_closed(node_dir: Path) -> bool:
    _, port = load_config(node_dir / CONFIG_FILE).api_address
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


def test_the_refusals_name_a_section_the_guide_has() -> None:
    heading = SECTION.split(", ", 1)[1].strip('"')
    assert f"\n## {heading}\n" in GUIDE.read_text(encoding="utf-8")


def test_a_node_records_that_it_has_exchanged_once_its_store_holds_a_message(
    exchanged: Path,
) -> None:
    state = json.loads((exchanged / STORE_STATE_FILE).read_text())
    assert state["exchanged"] is True
    assert state["database"] == str(exchanged / "node.db")


def test_a_new_node_starts_on_a_new_store_readable_by_it_alone(
    tmp_path: Path, servers: list[Server]
) -> None:
    node_dir = _new_node(tmp_path)
    assert not (node_dir / "node.db").exists()
    server = _serve(node_dir)
    servers.append(server)
    server.wait_for(READY)
    for name in ("node.db", "node.db-wal", "node.db-shm"):  # SQLite in WAL mode, running
        assert _mode(node_dir / name) == 0o600, name
    assert not (node_dir / STORE_STATE_FILE).exists()  # nothing exchanged yet
    assert server.terminate() == 0, server.output()
    assert "WARNING node.store" not in server.stderr.read_text()


def _emptied(db: Path) -> None:
    db.write_bytes(b"")


def _removed(db: Path) -> None:
    db.unlink()


def _replaced_by_a_new_store(db: Path) -> None:
    db.unlink()

    async def create() -> None:
        store = Store.open(f"sqlite+aiosqlite:///{db}")
        await store.migrate()
        await store.close()

    asyncio.run(create())


@pytest.mark.parametrize("lose", [_emptied, _removed, _replaced_by_a_new_store])
def test_an_empty_store_of_a_node_that_has_exchanged_is_refused(
    node: Path, lose: Callable[[Path], None]
) -> None:
    db = node / "node.db"
    lose(db)
    before = db.read_bytes() if db.exists() else None
    line = _refused(node.parent, "node", "serve", "--dir", node)
    assert str(db) in line
    assert "has exchanged before" in line and "--accept-empty-store" in line
    assert SECTION in line
    assert (db.read_bytes() if db.exists() else None) == before  # left as it was
    assert (node / STORE_STATE_FILE).exists()
    assert _api_closed(node)


def test_accept_empty_store_starts_afresh_and_later_starts_need_no_flag(
    node: Path, servers: list[Server]
) -> None:
    _emptied(node / "node.db")
    server = _serve(node, "--accept-empty-store")
    servers.append(server)
    server.wait_for(READY)
    assert server.terminate() == 0, server.output()
    (accepted,) = [
        line for line in server.stderr.read_text().splitlines() if " WARNING node.store" in line
    ]
    assert str(node / "node.db") in accepted and "--accept-empty-store" in accepted
    # The operator's decision is taken once: the store is this node's new one.
    assert not (node / STORE_STATE_FILE).exists()
    again = _serve(node)
    servers.append(again)
    again.wait_for(READY)
    assert again.terminate() == 0, again.output()


def test_accept_empty_store_on_a_store_that_is_not_empty_changes_nothing(
    node: Path, servers: list[Server]
) -> None:
    state = (node / STORE_STATE_FILE).read_bytes()
    server = _serve(node, "--accept-empty-store")
    servers.append(server)
    server.wait_for(READY)
    assert server.terminate() == 0, server.output()
    assert (node / STORE_STATE_FILE).read_bytes() == state


def _page_size(data: bytes | bytearray) -> int:
    size = int.from_bytes(data[16:18], "big")
    return 65536 if size == 1 else size


def _damage_mid_file(db: Path, inside: bytes) -> None:
    """Overwrite the start of the page holding `inside`, a page in use past the first:
    what a torn write or a bad disk block does to a page header."""
    data = bytearray(db.read_bytes())
    size = _page_size(data)
    at = data.find(inside, size)
    assert at > 0, "the store does not hold what the test looks for"
    start = at - at % size
    assert start >= size
    data[start : start + size // 2] = b"\xa5" * (size // 2)
    db.write_bytes(bytes(data))


def _damage_header(db: Path, _inside: bytes) -> None:
    data = bytearray(db.read_bytes())
    data[0:16] = b"not SQLite at al"
    db.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_damage_mid_file, _damage_header])
def test_a_damaged_store_is_refused_and_left_as_it_is(
    node: Path, damage: Callable[[Path, bytes], None]
) -> None:
    db = node / "node.db"
    damage(db, b"SPSCertificate")  # in the certificate the store holds
    before = db.read_bytes()
    line = _refused(node.parent, "node", "serve", "--dir", node)
    assert str(db) in line and "damaged" in line
    assert "restore" in line and SECTION in line
    assert db.read_bytes() == before
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0
    assert _api_closed(node)


def test_a_store_others_could_read_is_made_private_at_start(
    node: Path, servers: list[Server]
) -> None:
    db = node / "node.db"
    db.chmod(0o644)
    server = _serve(node)
    servers.append(server)
    server.wait_for(READY)
    assert _mode(db) == 0o600
    assert server.terminate() == 0, server.output()
    log = server.stderr.read_text().splitlines()
    warnings = [line for line in log if " WARNING node.store" in line]
    assert len(warnings) == 1 and str(db) in warnings[0] and "0644" in warnings[0], warnings


@pytest.mark.asyncio
async def test_a_running_node_records_its_first_message_without_waiting_for_a_stop(
    tmp_path: Path,
) -> None:
    node_dir = await asyncio.to_thread(_new_node, tmp_path)
    config = load_config(node_dir / CONFIG_FILE)
    stop = asyncio.Event()
    ready: list[Listening] = []
    task = asyncio.create_task(run_node(config, clock=SystemClock(), stop=stop, ready=ready.append))
    try:
        for _ in range(400):
            if ready or task.done():
                break
            await asyncio.sleep(0.05)
        assert ready, task.result()
        state = node_dir / STORE_STATE_FILE
        assert not state.exists()
        status, _ = await asyncio.to_thread(
            api, ready[0].api_url, config.api_token, "/api/v1/certificates",
            certificate_between("NL", "KE"),
        )  # fmt: skip
        assert status == 202
        for _ in range(600):  # the node looks every few seconds
            if state.exists():
                break
            await asyncio.sleep(0.05)
        assert json.loads(state.read_text())["exchanged"] is True
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


@pytest_asyncio.fixture
async def pg_urls() -> AsyncIterator[tuple[str, str]]:
    async for first in postgres_database("ephyto_guard_test"):
        async for second in postgres_database("ephyto_guard_test"):
            yield first, second


def _message() -> NewMessage:
    return NewMessage(
        message_id="m-1", sender="NL", recipient="KE", certificate_number="NL-1",
        certificate_type="851", certificate_status="70",
        content_digest="sha256:" + "0" * 64, payload=b"<rsm:SPSCertificate/>",
    )  # fmt: skip


@pytest.mark.asyncio
async def test_an_empty_postgresql_store_of_a_node_that_has_exchanged_is_refused(
    pg_urls: tuple[str, str], tmp_path: Path
) -> None:
    """PostgreSQL has no quick_check here, but an emptied database is caught the same."""
    used, new = pg_urls
    guard = StoreGuard(tmp_path / STORE_STATE_FILE, FixedClock(T0))
    store = Store.open(used)
    try:
        await guard.check(store, accept_empty=False)  # a new node: nothing recorded yet
        await store.migrate()
        await store.submit(_message(), now=T0)
        async with AsyncExitStack() as stack:
            await guard.follow(stack, store)
    finally:
        await store.close()
    assert (tmp_path / STORE_STATE_FILE).exists()
    empty = Store.open(new)
    try:
        with pytest.raises(EmptyStoreError, match=r"has exchanged before.*--accept-empty-store"):
            await guard.check(empty, accept_empty=False)
        with pytest.raises(EmptyStoreError):  # tables but no message: empty all the same
            await empty.migrate()
            await guard.check(empty, accept_empty=False)
        await guard.check(empty, accept_empty=True)
    finally:
        await empty.close()
    assert not (tmp_path / STORE_STATE_FILE).exists()


@pytest.mark.asyncio
async def test_a_note_that_cannot_be_read_counts_as_exchanged_and_is_written_again(
    tmp_path: Path,
) -> None:
    note = tmp_path / STORE_STATE_FILE
    note.write_text("{damaged")
    missing = tmp_path / "lost.db"
    lost = Store.open(f"sqlite+aiosqlite:///{missing}")
    try:
        with pytest.raises(EmptyStoreError, match="has exchanged before"):
            await StoreGuard(note, FixedClock(T0)).check(lost, accept_empty=False)
    finally:
        await lost.close()
    assert not missing.exists()  # refused before anything opened it
    store = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'node.db'}")
    try:
        await store.migrate()
        await store.submit(_message(), now=T0)
        guard = StoreGuard(note, FixedClock(T0))
        await guard.check(store, accept_empty=False)
        async with AsyncExitStack() as stack:
            await guard.follow(stack, store)
    finally:
        await store.close()
    assert json.loads(note.read_text())["exchanged"] is True


def _new_hub(root: Path) -> Path:
    registry, hub_dir = root / "registry", root / "hub"
    ok("registry", "init", "--dir", registry)
    ok("hub", "init", "--name", "Test Hub", "--endpoint", f"https://127.0.0.1:{free_port()}",
       "--dir", hub_dir)  # fmt: skip
    ok("hub", "configure", "--dir", hub_dir,
       "--registry", f"http://127.0.0.1:{free_port()}/directory.json",
       "--anchor", registry / "maintainers" / "maintainers.json")  # fmt: skip
    return hub_dir


async def _hub_with_envelopes(url: str) -> None:
    store = HubStore.open(url)
    try:
        await store.migrate()
        for nppo in ("NL", "KE"):
            await store.set_policy(nppo, AccountPolicy("EUR", Prepaid(fee=0)), T0)
        for n in range(20):
            content = b"SEALED-%d-" % n * 300
            await store.deliver("NL", "KE", 851, 70, f"NL-{n}", content, T0 + timedelta(n))
    finally:
        await store.close()


@pytest.mark.parametrize("damage", [_damage_mid_file, _damage_header])
def test_a_damaged_hub_store_is_refused_and_left_as_it_is(
    tmp_path: Path, damage: Callable[[Path, bytes], None]
) -> None:
    hub_dir = _new_hub(tmp_path)
    config = load_hub_config(hub_dir / "hub.toml")
    asyncio.run(_hub_with_envelopes(config.database_url))
    db = hub_dir / "hub.db"
    damage(db, b"SEALED-10-")
    before = db.read_bytes()
    line = _refused(tmp_path, "hub", "serve", "--dir", hub_dir)
    assert str(db) in line and "damaged" in line
    assert "restore" in line and SECTION in line
    assert db.read_bytes() == before
