"""`ephyto node backup` and `ephyto node restore` as operators run them: what they print,
the passphrase from a file or the environment, and each refusal in one line (exit 2)
that leaves nothing behind."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from node.identity.config import CONFIG_FILE, dump_config, load_config
from tests.ephyto_cli import ok, refused

PASSPHRASE = "an operator's long passphrase"


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node with a store (created by `ephyto node migrate`)."""
    root = tmp_path_factory.mktemp("backup-cli")
    ok("node", "init", "--country", "NL", "--name", "NVWA", "--dir", root / "nl")
    ok("node", "migrate", "--dir", root / "nl")
    return root / "nl"


@pytest.fixture
def passphrase(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase"
    path.write_text(PASSPHRASE + "\n")
    return path


def test_a_backup_restores_into_a_new_directory(
    node_dir: Path, passphrase: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "nl.backup"
    said = ok("node", "backup", "--dir", node_dir, "-o", backup, "--passphrase-file", passphrase)
    assert said.startswith("backed up node NL with its store at schema revision ")
    assert f"to {backup} (" in said and "keep the passphrase apart" in said
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    restored = tmp_path / "restored"
    result = subprocess.run(
        [sys.executable, "-m", "node.cli.main", "node", "restore", str(backup),
         "--dir", str(restored), "--passphrase-env", "EPHYTO_TEST_PASSPHRASE"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "EPHYTO_TEST_PASSPHRASE": PASSPHRASE},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("restored node NL as backed up at 20")
    assert f"sqlite+aiosqlite:///{restored.resolve() / 'node.db'}" in result.stdout
    assert "the old node must stay stopped" in result.stdout
    assert stat.S_IMODE((restored / "node.db").stat().st_mode) == 0o600
    assert "nothing to do" in ok("node", "migrate", "--dir", restored)


def test_restore_refusals_are_one_line_and_write_nothing(
    node_dir: Path, passphrase: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "nl.backup"
    ok("node", "backup", "--dir", node_dir, "-o", backup, "--passphrase-file", passphrase)
    place = tmp_path / "place"
    place.mkdir()
    target = place / "nl"
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    assert "passphrase does not open" in refused(
        "node", "restore", backup, "--dir", target, "--passphrase-file", wrong
    )
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0x10
    damaged = tmp_path / "damaged.backup"
    damaged.write_bytes(bytes(data))
    assert "the backup is damaged" in refused(
        "node", "restore", damaged, "--dir", target, "--passphrase-file", passphrase
    )
    cut = tmp_path / "cut.backup"
    cut.write_bytes(backup.read_bytes()[:-100])
    assert "cut short" in refused(
        "node", "restore", cut, "--dir", target, "--passphrase-file", passphrase
    )
    assert "not an ephyto backup" in refused(
        "node", "restore", passphrase, "--dir", target, "--passphrase-file", passphrase
    )
    assert "drop --database-url" in refused(
        "node", "restore", backup, "--dir", target, "--passphrase-file", passphrase,
        "--database-url", "postgresql+asyncpg://postgres@127.0.0.1/other",
    )  # fmt: skip
    assert list(place.iterdir()) == []
    assert "is not empty" in refused(
        "node", "restore", backup, "--dir", node_dir, "--passphrase-file", passphrase
    )
    assert "EPHYTO_NOT_SET" in refused(
        "node", "restore", backup, "--dir", target, "--passphrase-env", "EPHYTO_NOT_SET"
    )
    assert list(place.iterdir()) == []


def test_backup_refusals_are_one_line_and_write_nothing(
    node_dir: Path, passphrase: Path, tmp_path: Path
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("kept")
    assert "exists" in refused(
        "node", "backup", "--dir", node_dir, "-o", taken, "--passphrase-file", passphrase
    )
    assert taken.read_text() == "kept"
    short = tmp_path / "short"
    short.write_text("too short\n")
    assert "too short" in refused(
        "node", "backup", "--dir", node_dir, "-o", tmp_path / "b", "--passphrase-file", short
    )
    assert "node.toml" in refused(
        "node", "backup", "--dir", tmp_path / "none", "-o", tmp_path / "b",
        "--passphrase-file", passphrase,
    )  # fmt: skip
    assert "outside the node directory" in refused(
        "node", "backup", "--dir", node_dir, "-o", node_dir / "b", "--passphrase-file", passphrase
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passphrase", "short", "taken"]


def test_a_postgresql_node_backs_up_its_keys_only(tmp_path: Path, passphrase: Path) -> None:
    ok("node", "init", "--country", "KE", "--name", "KEPHIS", "--dir", tmp_path / "ke")
    path = tmp_path / "ke" / CONFIG_FILE
    url = "postgresql+asyncpg://ephyto:secret@db.example:5432/ke"
    path.write_text(dump_config(replace(load_config(path), database_url=url)))
    line = refused(
        "node", "backup", "--dir", tmp_path / "ke", "-o", tmp_path / "b",
        "--passphrase-file", passphrase,
    )  # fmt: skip
    assert "pg_dump" in line and "--keys-only" in line and "secret" not in line
    said = ok("node", "backup", "--keys-only", "--dir", tmp_path / "ke", "-o", tmp_path / "b",
              "--passphrase-file", passphrase)  # fmt: skip
    assert "without its store" in said
    new = "postgresql+asyncpg://ephyto@db.example:5432/ke_restored"
    said = ok("node", "restore", tmp_path / "b", "--dir", tmp_path / "r",
              "--passphrase-file", passphrase, "--database-url", new)  # fmt: skip
    assert "not in this backup" in said
    assert load_config(tmp_path / "r" / CONFIG_FILE).database_url == new
