"""Secrets by file (issue 12): node.toml's `[api] token_file`, and `database_password_file`
in node.toml and hub.toml. The token is read when the file is loaded, the password only
when the store URL is made; neither is ever written back into the file nor shown by the
store's redacted URL; a wrong setting or file is refused in one line naming it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from node.errors import ConfigError
from node.hub.config import dump_hub_config, load_hub_config, new_hub_config
from node.identity.config import (
    dump_config,
    load_config,
    new_config,
    parse_config,
)
from node.identity.secret_file import MAX_SECRET_BYTES
from node.store.database import redacted

TOKEN = "T" * 40
PG = "postgresql+asyncpg://ephyto@db.example:5432/ephyto_node"
# Every character a URL gives a meaning to, so escaping is needed and tested.
PASSWORD = "p@ss:w/rd?#%&= x"


def _node(tmp_path: Path, **changes: Any) -> Path:
    config = new_config(tmp_path, country="NL", name="N", endpoint=None, api_token=TOKEN)
    path = tmp_path / "node.toml"
    path.write_text(dump_config(dataclasses.replace(config, **changes)), encoding="utf-8")
    return path


def test_the_token_is_read_from_its_file_and_never_written_back(tmp_path: Path) -> None:
    secret = "s" * 43
    (tmp_path / "token").write_text(secret + "\n", encoding="utf-8")  # echo's newline
    path = _node(tmp_path, api_token_file="token")
    config = load_config(path)
    assert (config.api_token, config.api_token_file) == (secret, "token")
    text = dump_config(config)
    assert secret not in text and TOKEN not in text and "api_token" not in text
    assert 'token_file = "token"' in text
    assert load_config(path) == config
    # The file is read at each load: a rotated token is what the next start uses.
    (tmp_path / "token").write_text("r" * 40, encoding="utf-8")
    assert load_config(path).api_token == "r" * 40


def test_an_absolute_token_file_stays_absolute(tmp_path: Path) -> None:
    elsewhere = tmp_path / "secrets"
    elsewhere.mkdir()
    (elsewhere / "token").write_text("a" * 32, encoding="utf-8")
    node_dir = tmp_path / "node"
    node_dir.mkdir()
    path = _node(node_dir, api_token_file=str(elsewhere / "token"))
    assert load_config(path).api_token == "a" * 32


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "api.token_file: cannot read "),
        (b"", "is empty"),
        (b"\n", "is empty"),
        (b"short\n", "api.token_file: the token is too short to be a secret"),
        (b"\xff" * 40, "is not UTF-8 text"),
        (b"x" * (MAX_SECRET_BYTES + 1), f"holds more than {MAX_SECRET_BYTES} bytes"),
    ],
)
def test_a_bad_token_file_is_refused_in_one_line(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    if content is not None:
        (tmp_path / "token").write_bytes(content)
    path = _node(tmp_path, api_token_file="token")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value) and str(path) in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1
    if content is not None and len(content) >= 20:
        assert content.decode("utf-8", "replace").strip() not in str(caught.value)


def test_a_token_file_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "token").mkdir()
    with pytest.raises(ConfigError, match=r"api\.token_file: cannot read "):
        load_config(_node(tmp_path, api_token_file="token"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # Both the inline token and the file: which one counts is not guessed.
        (lambda t: t.replace("version = 1\n", f'version = 1\napi_token = "{TOKEN}"\n'), "one of"),
        (lambda t: t.replace('token_file = "token"', 'token_file = ""'), "expected a file path"),
        (lambda t: t.replace('token_file = "token"', "token_file = 7"), "expected a string"),
        (lambda t: t.replace('token_file = "token"\n', ""), "api_token: missing"),
    ],
)
def test_a_bad_token_setting_is_refused(tmp_path: Path, edit: object, message: str) -> None:
    text = _node(tmp_path, api_token_file="token").read_text(encoding="utf-8")
    assert callable(edit)
    with pytest.raises(ConfigError, match=message):
        parse_config(edit(text), source="node.toml", directory=tmp_path)


def test_an_inline_token_loads_as_before(tmp_path: Path) -> None:
    config = load_config(_node(tmp_path))
    assert (config.api_token, config.api_token_file) == (TOKEN, None)
    assert f'api_token = "{TOKEN}"' in dump_config(config)
    short = _node(tmp_path).read_text().replace(TOKEN, "x" * 31)
    with pytest.raises(ConfigError, match="api_token: too short to be a secret"):
        parse_config(short, source="node.toml", directory=tmp_path)


def test_the_database_password_goes_into_the_url_only_when_the_store_opens(
    tmp_path: Path,
) -> None:
    (tmp_path / "pg").write_text(PASSWORD + "\n", encoding="utf-8")
    path = _node(tmp_path, database_url=PG, database_password_file="pg")
    config = load_config(path)
    assert config.database_url == PG and PASSWORD not in path.read_text()
    url = config.store_url()
    parsed = make_url(url)
    assert parsed.password == PASSWORD  # escaped in the URL, whole once parsed
    assert (parsed.drivername, parsed.username, parsed.host, parsed.port, parsed.database) == (
        "postgresql+asyncpg", "ephyto", "db.example", 5432, "ephyto_node"
    )  # fmt: skip
    assert PASSWORD not in redacted(url) and "***" in redacted(url)
    assert PASSWORD not in dump_config(config)
    # Without the setting, the URL is the file's own.
    assert load_config(_node(tmp_path)).store_url() == load_config(_node(tmp_path)).database_url


def test_the_hub_reads_its_database_password_the_same_way(tmp_path: Path) -> None:
    (tmp_path / "pg").write_text(PASSWORD, encoding="utf-8")
    config = new_hub_config(tmp_path, name="Hub", endpoint="https://hub.example:8443")
    config = dataclasses.replace(config, database_url=PG, database_password_file="pg")
    path = tmp_path / "hub.toml"
    path.write_text(dump_hub_config(config), encoding="utf-8")
    loaded = load_hub_config(path)
    assert loaded == config and PASSWORD not in path.read_text()
    assert make_url(loaded.store_url()).password == PASSWORD
    (tmp_path / "pg").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^database_password_file: .*pg is empty$"):
        loaded.store_url()


@pytest.mark.parametrize(
    ("url", "password_file", "message"),
    [
        ("sqlite+aiosqlite:////n/node.db", "pg", "SQLite has no password"),
        ("postgresql+asyncpg://u:inline@h/db", "pg", "database_url holds a password already"),
        (PG, "", "expected a file path"),
    ],
)
def test_a_password_file_that_cannot_apply_is_refused_by_both_files(
    tmp_path: Path, url: str, password_file: str, message: str
) -> None:
    text = dump_config(
        dataclasses.replace(
            new_config(tmp_path, country="NL", name="N", endpoint=None, api_token=TOKEN),
            database_url=url,
            database_password_file=password_file,
        )
    )
    with pytest.raises(ConfigError, match=f"node.toml: database_password_file: {message}"):
        parse_config(text, source="node.toml", directory=tmp_path)
    hub = dataclasses.replace(
        new_hub_config(tmp_path, name="Hub", endpoint="https://hub.example:8443"),
        database_url=url,
        database_password_file=password_file,
    )
    (tmp_path / "hub.toml").write_text(dump_hub_config(hub), encoding="utf-8")
    with pytest.raises(ConfigError, match=f"database_password_file: {message}"):
        load_hub_config(tmp_path / "hub.toml")


def test_a_missing_password_file_is_said_when_the_store_opens(tmp_path: Path) -> None:
    config = load_config(_node(tmp_path, database_url=PG, database_password_file="absent"))
    with pytest.raises(ConfigError) as caught:
        config.store_url()
    assert str(caught.value) == (
        f"database_password_file: cannot read {tmp_path / 'absent'}: No such file or directory"
    )
