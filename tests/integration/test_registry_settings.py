"""How long a published directory is valid, as the maintainers set it (issue 12).

`registry init --directory-days N` and `registry settings --directory-days N` record the
choice in settings.json and the audit log; `publish` and `propose` use it unless
`--expires-in` overrides one version. Default: 90 days with a timestamp role (nodes stay
current through the daily timestamp), 7 without. A registry whose last version used 7 days
(an earlier release) keeps working; its next publication uses the setting. The `ephyto`
command runs in a subprocess, as maintainers run it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from node.clock import SystemClock
from node.demo.network import free_port
from node.directory.refresh import DirectoryRefresher, load
from node.directory.signing import parse_signed
from registry.publish import RegistryError
from registry.settings import SETTINGS_FILE, parse_days
from registry.state import RegistryState
from registry.timestamp import TIMESTAMP_DIR
from registry.web import create_registry_app
from tests.ephyto_cli import ok, refused


def _lifetime(path: Path) -> timedelta:
    directory = parse_signed(path.read_bytes()).directory
    return directory.expires - directory.issued


def _actions(reg: Path) -> list[str]:
    lines = (reg / "audit.log").read_text().splitlines()
    return [json.loads(line)["action"] for line in lines]


def test_init_records_the_validity_and_publish_and_propose_use_it(tmp_path: Path) -> None:
    reg = tmp_path / "registry"
    out = ok("registry", "init", "--dir", reg, "--directory-days", "30")
    assert "directory validity  30 days per published version" in out
    assert json.loads((reg / SETTINGS_FILE).read_text()) == {"directory_days": 30}
    init = json.loads((reg / "audit.log").read_text().splitlines()[0])
    assert (init["action"], init["details"]["directory_days"]) == ("init", 30)

    ok("registry", "publish", "--dir", reg)
    assert _lifetime(reg / "published/1.json") == timedelta(days=30)
    shown = ok("registry", "settings", "--dir", reg)
    assert "directory validity  30 days (chosen; settings.json)" in shown
    assert "timestamp role      yes" in shown

    ok("registry", "propose", "--dir", reg)
    assert _lifetime(reg / "proposed/2.json") == timedelta(days=30)
    # --expires-in still overrides one version.
    ok("registry", "publish", "--dir", reg, "--expires-in", "2d")
    assert _lifetime(reg / "published/2.json") == timedelta(days=2)


def test_a_new_registry_publishes_for_90_days_and_settings_change_it_signed(
    tmp_path: Path,
) -> None:
    reg = tmp_path / "registry"
    ok("registry", "init", "--dir", reg, "--maintainer", "ana", "--maintainer", "bo")
    assert not (reg / SETTINGS_FILE).exists()
    assert "directory validity  90 days (default" in ok("registry", "settings", "--dir", reg)
    ok("registry", "publish", "--dir", reg)
    assert _lifetime(reg / "published/1.json") == timedelta(days=90)

    out = ok("registry", "settings", "--dir", reg, "--directory-days", "120", "--maintainer", "bo")
    assert "directory validity: 90 -> 120 days, from the next publish" in out
    entry = json.loads((reg / "audit.log").read_text().splitlines()[-1])
    assert entry["action"] == "settings"
    assert entry["details"] == {"directory_days": 120, "previous": None, "from": "next publish"}
    assert entry["maintainer"] == RegistryState(reg).signer("bo").key_id  # signed by bo
    assert "intact" in ok("registry", "log", "--dir", reg, "--verify")

    # The published version keeps its own expiry; the next one uses the new value.
    assert _lifetime(reg / "published/1.json") == timedelta(days=90)
    ok("registry", "publish", "--dir", reg)
    assert _lifetime(reg / "published/2.json") == timedelta(days=120)


BAD_DAYS = ["0", "367", "-1", "abc", "1e3", "2.5", "", " ", "\u0663", "9" * 14, "30d", "0x10"]


@pytest.mark.parametrize("days", BAD_DAYS)
def test_a_bad_validity_is_refused_by_the_parser(days: str) -> None:
    with pytest.raises(RegistryError, match="--directory-days"):
        parse_days(days)


@pytest.mark.parametrize("days", ["0", "367", "abc", "\u0663"])
def test_a_bad_validity_is_refused_in_one_line_and_changes_nothing(
    tmp_path: Path, days: str
) -> None:
    reg = tmp_path / "registry"
    ok("registry", "init", "--dir", reg, "--directory-days", "30")
    settings, log = (reg / SETTINGS_FILE).read_bytes(), (reg / "audit.log").read_bytes()

    error = refused("registry", "settings", "--dir", reg, "--directory-days", days)

    assert "--directory-days" in error
    assert (reg / SETTINGS_FILE).read_bytes() == settings
    assert (reg / "audit.log").read_bytes() == log
    other = tmp_path / "other"
    assert "--directory-days" in refused(
        "registry", "init", "--dir", other, "--directory-days", days
    )
    assert not other.exists()  # refused before anything was created


def test_settings_without_a_value_to_sign_is_refused(tmp_path: Path) -> None:
    reg = tmp_path / "registry"
    ok("registry", "init", "--dir", reg)
    error = refused("registry", "settings", "--dir", reg, "--maintainer", "maintainer-1")
    assert "pass --directory-days N" in error
    assert "nobody" in refused(
        "registry", "settings", "--dir", reg, "--directory-days", "60", "--maintainer", "nobody"
    )
    assert not (reg / SETTINGS_FILE).exists()
    assert _actions(reg) == ["init"]


DAMAGED = [
    (b"{not json", "not JSON"),
    (b"[]", "not a JSON object"),
    (b'{"directory_days": "90"}', "is not a whole number"),
    (b'{"directory_days": true}', "is not a whole number"),
    (b'{"directory_days": 0}', "1 to 366 days"),
    (b'{"directory_days": 9999}', "1 to 366 days"),
    (b'{"directory_days": 30, "timestamp_days": 2}', "unknown setting 'timestamp_days'"),
    (b"\xff\xfe", "not JSON"),
    (b" " * 5000, "more than 4096 bytes"),
]


@pytest.mark.parametrize(("content", "message"), DAMAGED)
def test_a_damaged_settings_file_stops_publish_naming_it(
    tmp_path: Path, content: bytes, message: str
) -> None:
    now = datetime.now(UTC)
    state = RegistryState.init(tmp_path / "r", maintainer="m", threshold=1, now=now, actor="t")
    (state.root / SETTINGS_FILE).write_bytes(content)

    with pytest.raises(RegistryError) as error:
        state.publish(now, "t", code_lists={})

    assert str(state.root / SETTINGS_FILE) in str(error.value) and message in str(error.value)
    assert not (state.root / "published/1.json").exists()


def test_the_commands_say_a_damaged_settings_file_in_one_line(tmp_path: Path) -> None:
    reg = tmp_path / "registry"
    ok("registry", "init", "--dir", reg)
    (reg / SETTINGS_FILE).write_bytes(b"{not json")
    for command in ("publish", "settings", "propose"):
        error = refused("registry", command, "--dir", reg)
        assert f"{reg / SETTINGS_FILE}: not JSON" in error
    assert not (reg / "published/1.json").exists()


def test_a_registry_without_a_timestamp_role_keeps_seven_days(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    state = RegistryState.init(tmp_path / "r", maintainer="m", threshold=1, now=now, actor="t")
    for path in (state.root / TIMESTAMP_DIR).iterdir():
        path.unlink()
    (state.root / TIMESTAMP_DIR).rmdir()  # as a registry made before timestamps

    directory, _ = state.publish(now, "t", code_lists={})

    assert directory.timestamp_keys is None
    assert directory.expires - directory.issued == timedelta(days=7)
    assert "no: nodes know only the directory's expiry; publish often" in ok(
        "registry", "settings", "--dir", state.root
    )
    # Chosen explicitly, it is what the maintainers chose.
    state.set_directory_days(21, now, "t")
    directory, _ = state.publish(now + timedelta(seconds=1), "t", code_lists={})
    assert directory.expires - directory.issued == timedelta(days=21)
    with pytest.raises(RegistryError, match="1 to 366 days"):
        state.set_directory_days(0, now, "t")


# --- an existing registry moves to the long validity ----------------------------------------


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[RegistryState, str]]:
    now = datetime.now(UTC)
    state = RegistryState.init(tmp_path / "r", maintainer="m", threshold=1, now=now, actor="t")
    runner = web.AppRunner(create_registry_app(state.root))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield state, f"http://127.0.0.1:{port}/directory.json"
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_a_registry_that_published_for_7_days_moves_to_the_setting(
    served: tuple[RegistryState, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state, url = served
    now = datetime.now(UTC)
    # What an earlier release published: 7 days.
    old, _ = state.publish(now, "t", code_lists={}, validity=timedelta(days=7))
    cache = tmp_path / "node.json"
    node = DirectoryRefresher(
        url, load(cache, state.maintainers), cache, SystemClock(), aiohttp.ClientSession
    )
    with caplog.at_level(logging.WARNING, logger="node.directory.refresh"):
        assert (await node.refresh()).version == 1
        assert (await node.refresh()).outcome == "unchanged"
    warned = [r.message for r in caplog.records if "expires at" in r.message]
    assert len(warned) == 1, warned  # once, not at every refresh
    assert "directory version 1 expires at" in warned[0] and "signing round" in warned[0]

    caplog.clear()
    new, _ = state.publish(now + timedelta(seconds=1), "t", code_lists={})
    assert new.expires - new.issued == timedelta(days=90)
    with caplog.at_level(logging.WARNING, logger="node.directory.refresh"):
        result = await node.refresh()
    assert (result.outcome, result.version) == ("updated", 2), result.message
    assert node.current(datetime.now(UTC)).expires == new.expires
    assert not [r for r in caplog.records if "expires at" in r.message]  # 90 days: quiet
    assert old.expires < new.expires
